//! What the integration tests share: a small sweep file, the learned values of a store's
//! runs, and a TUI in tmux.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use qbheat_workbench::store::{Locator, Metric, Store};

/// A sweep `name` of the micro model on built-in data: `epochs` epochs over `train` images,
/// one run per masking position in `grid` (TOML list items), `extra` appended.
pub fn tiny_sweep(
    dir: &Path,
    name: &str,
    epochs: usize,
    train: usize,
    grid: &str,
    extra: &str,
) -> PathBuf {
    let text = format!(
        r#"
name = "{name}"
seeds = [0]
[base.data]
image_size = 32
train_size = {train}
val_size = 32
[base.model]
preset = "mf-micro"
[base.predictor]
dim = 32
[base.decoder]
dim = 32
depth = 1
heads = 2
[base.train]
epochs = {epochs}
batch_size = 16
base_lr = 1e-3
{extra}
[grid]
"masking.position" = [{grid}]
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Every metric of every run that does not measure time (wall clock zeroed), by run: what
/// must be bit-identical between two stores that ran the same sweep.
pub fn learned(db: &Locator) -> Vec<(String, Vec<Metric>)> {
    let store = Store::open_read_only(db).unwrap();
    store
        .runs(None, None)
        .unwrap()
        .into_iter()
        .map(|r| {
            let ms: Vec<Metric> = store
                .metrics(&r.id)
                .unwrap()
                .into_iter()
                .filter(|m| !m.key.contains("per_s") && !m.key.contains("seconds"))
                .map(|m| Metric { wall: 0.0, ..m })
                .collect();
            (r.id, ms)
        })
        .collect()
}

/// `tmux -L socket ARGS`; its stdout.
pub fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The text of window `w` of the tmux server on `socket`.
pub fn capture(socket: &str) -> String {
    tmux(socket, &["capture-pane", "-p", "-t", "w"])
}

/// Waits (at most `limit`) until the pane shows `text`; returns the screen.
pub fn wait_for_screen(socket: &str, text: &str, limit: Duration) -> String {
    let t = Instant::now();
    loop {
        let screen = capture(socket);
        if screen.contains(text) {
            return screen;
        }
        assert!(t.elapsed() < limit, "`{text}` never appeared:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether tmux can be used; panics when `WORKBENCH_REQUIRE_TMUX` is set and it is missing.
pub fn tmux_available() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("WORKBENCH_REQUIRE_TMUX").is_none(),
        "tmux is required (WORKBENCH_REQUIRE_TMUX is set) but not installed"
    );
    false
}

/// `workbench sweep FILE --no-report --db DB` in `dir`, which must succeed.
pub fn sweep_ok(dir: &Path, db: &Path, file: &Path) {
    let out = workbench_in(dir, db, &["sweep", file.to_str().unwrap(), "--no-report"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `workbench ARGS --db DB` run in `dir`.
pub fn workbench_in(dir: &Path, db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_workbench"))
        .current_dir(dir)
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}
