//! Launching sweeps from the TUI: the sweep files on offer, the dry run shown before
//! starting, and the detached `workbench sweep` process (its own process group, so it
//! outlives the TUI) logging to `runs/<sweep>/sweep.log`.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::store::{Locator, Status, Store};
use crate::sweep::spec::Sweep;

/// `*.toml` files under `dir`, sorted.
pub fn sweep_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The dry run of a sweep file against the store: run count, axes, how many are finished.
pub fn preview(file: &Path, store: &Store) -> String {
    match Sweep::load(file) {
        Err(e) => format!("{e:#}"),
        Ok(sweep) => {
            let stored = store.runs(Some(&sweep.name), None).unwrap_or_default();
            let finished = sweep
                .runs
                .iter()
                .filter(|r| {
                    stored
                        .iter()
                        .any(|s| s.id == r.id && s.status == Status::Finished)
                })
                .count();
            let mut text = format!(
                "sweep {}: {} runs, {} already finished, {} to run\nseeds {:?}\n",
                sweep.name,
                sweep.runs.len(),
                finished,
                sweep.runs.len() - finished,
                sweep.seeds
            );
            for (k, v) in &sweep.axes {
                text.push_str(&format!("{k} = [{}]\n", v.join(", ")));
            }
            text.push_str("\nEnter starts it in the background (it keeps running after q)");
            text
        }
    }
}

/// Starts `workbench sweep FILE --db DB` detached; returns the log path.
pub fn launch(file: &Path, db: &Locator) -> Result<PathBuf> {
    use std::os::unix::process::CommandExt;
    let sweep = Sweep::load(file)?;
    let dir = PathBuf::from("runs").join(&sweep.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let log_path = dir.join("sweep.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("{}: cannot open", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot locate the workbench binary")?;
    Command::new(exe)
        .arg("sweep")
        .arg(file)
        .arg("--db")
        .arg(db.as_arg())
        .arg("--log-file")
        .arg(&log_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start `workbench sweep`")?;
    Ok(log_path)
}

/// The last `n` lines of a text file (empty when it cannot be read).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
