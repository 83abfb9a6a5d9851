//! The TUI the way a user sees it: `workbench tui` in a real terminal (tmux), every tab, the
//! help popup, `q`, exit status 0 and the terminal restored. Needs tmux (`.ci/run` installs
//! it); without it the test says so and passes unless `WORKBENCH_REQUIRE_TMUX` is set.

use std::path::Path;
use std::time::{Duration, Instant};

use qbheat_workbench::config::RunConfig;
use qbheat_workbench::store::{Metric, NewRun, Status, Store};

mod common;
use common::{capture, tmux, tmux_available, wait_for_screen};

/// Waits until the pane shows `text`.
fn wait_for(socket: &str, text: &str) -> String {
    wait_for_screen(socket, text, Duration::from_secs(20))
}

fn fixture(db: &Path) {
    let mut s = Store::open(db).unwrap();
    let runs: Vec<NewRun> = (0..3u64)
        .map(|seed| {
            NewRun::from_config(&RunConfig {
                seed,
                ..Default::default()
            })
        })
        .collect();
    s.register_sweep("smoke", "smoke.toml", &runs).unwrap();
    for r in &runs {
        let rows: Vec<Metric> = (1..=30)
            .map(|step| Metric {
                key: "train/loss".into(),
                step,
                epoch: 1,
                value: 1.0 / step as f64,
                wall: step as f64,
            })
            .collect();
        s.log_metrics(&r.id, &rows).unwrap();
        s.set_status(&r.id, Status::Finished, None).unwrap();
    }
}

#[test]
fn tui_in_tmux_switches_every_tab_and_quits_cleanly() {
    if !tmux_available() {
        eprintln!("tmux not installed: skipping the terminal smoke test (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("smoke.db");
    fixture(&db);
    let done = dir.path().join("exit");
    let socket = format!("wb-smoke-{}", std::process::id());
    let cmd = format!(
        "{} tui --db {}; echo $? > {}; sleep 30",
        env!("CARGO_BIN_EXE_workbench"),
        db.display(),
        done.display()
    );
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "w",
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ],
    );
    let screen = wait_for(&socket, "3 runs");
    assert!(screen.contains("finished"), "{screen}");
    for (key, marker) in [
        ("2", "train loss"),
        ("3", "no runs marked"),
        ("4", "no spectrum stored yet"),
        ("5", "smoke"),
        ("1", "sort: created"),
    ] {
        tmux(&socket, &["send-keys", "-t", "w", key]);
        wait_for(&socket, marker);
    }
    tmux(&socket, &["send-keys", "-t", "w", "?"]);
    wait_for(&socket, "keys (any key closes)");
    tmux(&socket, &["send-keys", "-t", "w", "Escape"]);
    tmux(&socket, &["send-keys", "-t", "w", "q"]);
    let t = Instant::now();
    while !done.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the TUI did not quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = std::fs::read_to_string(&done).unwrap();
    let after = capture(&socket);
    tmux(&socket, &["kill-server"]);
    assert_eq!(status.trim(), "0", "exit status");
    // the alternate screen is gone: nothing of the TUI is left on the terminal
    assert!(!after.contains("1 Runs") && !after.contains('┌'), "{after}");
}
