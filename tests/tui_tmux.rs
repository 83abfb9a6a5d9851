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

/// Starts `workbench tui --db DB` in a detached 100×30 tmux session `w` on `socket`; the
/// shell writes the exit status to `done` when it ends.
fn start(socket: &str, db: &Path, done: &Path) {
    let cmd = format!(
        "{} tui --db {}; echo $? > {}; sleep 30",
        env!("CARGO_BIN_EXE_workbench"),
        db.display(),
        done.display()
    );
    tmux(
        socket,
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
}

/// Presses `q`, waits for the TUI to end and stops tmux; the exit status and the screen
/// left behind.
fn quit(socket: &str, done: &Path) -> (String, String) {
    tmux(socket, &["send-keys", "-t", "w", "q"]);
    let t = Instant::now();
    while !done.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the TUI did not quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = std::fs::read_to_string(done).unwrap();
    let after = capture(socket);
    tmux(socket, &["kill-server"]);
    (status, after)
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
    start(&socket, &db, &done);
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
    // the key table (36 keys) is taller than 30 rows: the help pages through it
    let total = qbheat_workbench::tui::keys::BINDINGS.len();
    tmux(&socket, &["send-keys", "-t", "w", "?"]);
    wait_for(
        &socket,
        &format!("keys 1–28 of {total} (↑↓ PgUp PgDn scroll"),
    );
    tmux(&socket, &["send-keys", "-t", "w", "End"]);
    let end = wait_for(&socket, &format!("keys {}–{total} of {total}", total - 27));
    assert!(end.contains("this help"), "{end}");
    tmux(&socket, &["send-keys", "-t", "w", "Escape"]);
    let (status, after) = quit(&socket, &done);
    assert_eq!(status.trim(), "0", "exit status");
    // the alternate screen is gone: nothing of the TUI is left on the terminal
    assert!(!after.contains("1 Runs") && !after.contains('┌'), "{after}");
}

#[test]
fn tui_in_tmux_on_a_fresh_path_opens_an_empty_workbench() {
    if !tmux_available() {
        eprintln!("tmux not installed: skipping the terminal smoke test (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let done = dir.path().join("exit");
    let socket = format!("wb-fresh-{}", std::process::id());
    start(&socket, &db, &done);
    let screen = wait_for(&socket, "is empty: press n to launch a sweep");
    assert!(
        screen.contains("0 runs") && screen.contains("created an empty store"),
        "{screen}"
    );
    assert!(db.is_file(), "the store was created");
    tmux(&socket, &["send-keys", "-t", "w", "5"]);
    wait_for(&socket, "sweeps (n launches one)");
    tmux(&socket, &["send-keys", "-t", "w", "n"]);
    wait_for(&socket, "launch a sweep");
    tmux(&socket, &["send-keys", "-t", "w", "Escape"]);
    wait_for(&socket, "no log yet");
    // the TUI watches the store it created: a sweep registered now shows up without a key
    fixture(&db);
    let screen = wait_for(&socket, "3 runs");
    assert!(screen.contains("smoke"), "{screen}");
    tmux(&socket, &["send-keys", "-t", "w", "1"]);
    wait_for(&socket, "sort: created");
    let (status, after) = quit(&socket, &done);
    assert_eq!(status.trim(), "0", "exit status");
    assert!(!after.contains('┌'), "{after}");
}

#[test]
fn tui_in_tmux_shows_a_reconstruction_strip_in_half_blocks() {
    if !tmux_available() {
        eprintln!("tmux not installed: skipping the terminal smoke test (.ci/run installs it)");
        return;
    }
    use image::{Rgb, RgbImage};
    use qbheat_workbench::store::NewPicture;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pics.db");
    fixture(&db);
    let mut s = Store::open(db.as_path()).unwrap();
    let run = s.runs(None, None).unwrap()[0].id.clone();
    let strip = RgbImage::from_fn(70, 16, |x, y| Rgb([(x * 3) as u8, (y * 15) as u8, 128]));
    let png = qbheat_workbench::analysis::raster::png(&strip).unwrap();
    let pics: Vec<NewPicture> = (0..8)
        .map(|item| NewPicture {
            kind: "reconstruction".into(),
            epoch: 1,
            item,
            caption: format!("image {item}"),
            value: Some(0.25),
            png: png.clone(),
        })
        .collect();
    s.log_pictures(&run, None, &pics).unwrap();
    drop(s);
    let done = dir.path().join("exit");
    let socket = format!("wb-pics-{}", std::process::id());
    start(&socket, &db, &done);
    wait_for(&socket, "3 runs");
    tmux(&socket, &["send-keys", "-t", "w", "6"]);
    let mut screen = wait_for(&socket, "masked error 0.2500");
    // the caption can reach the pane before the rest of the frame (a loaded machine): wait
    // for the whole strip
    let t = Instant::now();
    while screen.matches('▀').count() < 70 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        screen = wait_for(&socket, "masked error 0.2500");
    }
    let halves = screen.matches('▀').count();
    assert!(halves >= 70, "{halves} half blocks:\n{screen}");
    eprintln!("{screen}");
    // the picture's colours reach the terminal: the pane holds 24-bit colour escapes
    let colours = tmux(&socket, &["capture-pane", "-p", "-e", "-t", "w"]);
    assert!(
        colours.contains("38;2;") && colours.contains("48;2;"),
        "{colours}"
    );
    let (status, _) = quit(&socket, &done);
    assert_eq!(status.trim(), "0", "exit status");
}
