//! `workbench sweep`: registers the expanded runs in the store and executes them, each in its
//! own child process, `jobs` at a time. A crashed worker's run goes back to the queue and
//! resumes from its last checkpoint; Ctrl-C stops every worker at a checkpoint.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::spec::Sweep;
use super::worker::run_dir;
use crate::store::{now, NewRun, RunRow, Status, Store};

/// A worker that misses heartbeats this long is presumed dead.
pub const STALE_AFTER_S: f64 = 300.0;
/// A run whose worker died this many times is marked failed.
pub const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub db: PathBuf,
    pub jobs: usize,
    pub retry_failed: bool,
    /// Folder that holds one folder per run [default: runs/<sweep name>].
    pub runs_root: Option<PathBuf>,
    pub progress: bool,
}

/// How a sweep ended.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    pub counts: BTreeMap<String, usize>,
    /// (run id, error) of failed runs.
    pub failed: Vec<(String, String)>,
}

fn pid_alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

fn describe(sweep: &Sweep, id: &str) -> String {
    sweep
        .runs
        .iter()
        .find(|r| r.id == id)
        .map(|r| {
            r.overrides
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Puts a run whose worker died back in the queue, or fails it after [`MAX_ATTEMPTS`].
fn requeue_dead(store: &Store, row: &RunRow, why: &str) -> Result<String> {
    if row.attempts >= MAX_ATTEMPTS {
        let msg = format!("worker died {} times (last: {why})", row.attempts);
        store.set_status(&row.id, Status::Failed, Some(&msg))?;
        Ok(format!("failed   {} {msg}", row.id))
    } else {
        store.set_status(&row.id, Status::Queued, None)?;
        Ok(format!(
            "requeued {} worker died ({why}); resumes from its last checkpoint",
            row.id
        ))
    }
}

/// Runs every unfinished run of `sweep`.
pub fn run(
    sweep: &Sweep,
    file: &Path,
    opts: &SweepOptions,
    stop: Arc<AtomicBool>,
) -> Result<SweepReport> {
    let mut store = Store::open(&opts.db)?;
    let planned: Vec<NewRun> = sweep
        .runs
        .iter()
        .map(|r| NewRun::from_config(&r.config))
        .collect();
    store.register_sweep(&sweep.name, &file.display().to_string(), &planned)?;
    let runs_root = opts
        .runs_root
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&sweep.name));
    let exe = std::env::current_exe().context("cannot locate the workbench binary")?;
    let ids: Vec<String> = sweep.runs.iter().map(|r| r.id.clone()).collect();
    let mut children: HashMap<String, Child> = HashMap::new();
    let mut attempted: HashSet<String> = HashSet::new();
    let mut signalled = false;

    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(ids.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} runs {elapsed_precise} {msg}",
            )
            .expect("valid template"),
        );
        b
    });
    let say = |line: String| match &bar {
        Some(b) => b.println(line),
        None => println!("{line}"),
    };

    loop {
        // 1. reap our workers
        let mut exited = Vec::new();
        for (id, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                exited.push((id.clone(), status));
            }
        }
        for (id, status) in exited {
            children.remove(&id);
            let row = store.run(&id)?;
            let line = match Status::parse(&row.status) {
                Some(Status::Running) => requeue_dead(&store, &row, &status.to_string())?,
                Some(Status::Finished) => {
                    let loss = store
                        .latest_metrics(&id)?
                        .into_iter()
                        .find(|m| m.key == "epoch/val_loss")
                        .map_or(String::new(), |m| format!("val_loss={:.4}", m.value));
                    format!("finished {id} {} {loss}", describe(sweep, &id))
                }
                Some(Status::Failed) => format!("failed   {id} {}", row.error.unwrap_or_default()),
                _ => format!("{:<8} {id}", row.status),
            };
            say(line);
        }

        // 2. recover runs whose worker is not ours and has died
        let rows = store.runs(Some(&sweep.name), None)?;
        for row in rows
            .iter()
            .filter(|r| r.status == "running" && !children.contains_key(&r.id))
        {
            let dead = row.pid.is_none_or(|p| !pid_alive(p));
            let stale = row.heartbeat.is_none_or(|h| now() - h > STALE_AFTER_S);
            if dead || stale {
                say(requeue_dead(
                    &store,
                    row,
                    if dead {
                        "process gone"
                    } else {
                        "heartbeat stale"
                    },
                )?);
            }
        }

        // 3. start new workers
        let stopping = stop.load(Ordering::SeqCst);
        if stopping && !signalled {
            for child in children.values() {
                let _ = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status();
            }
            signalled = true;
        }
        if !stopping {
            let rows = store.runs(Some(&sweep.name), None)?;
            for row in &rows {
                if children.len() >= opts.jobs {
                    break;
                }
                let claimable = match row.status.as_str() {
                    "queued" | "stopped" => true,
                    "failed" => opts.retry_failed && !attempted.contains(&row.id),
                    _ => false,
                };
                if !claimable || !store.claim(&row.id, std::process::id(), opts.retry_failed)? {
                    continue;
                }
                attempted.insert(row.id.clone());
                let out = run_dir(&runs_root, &row.id);
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("{}: cannot create", out.display()))?;
                let log = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(out.join("worker.log"))?;
                let child = Command::new(&exe)
                    .arg("worker")
                    .arg("--db")
                    .arg(&opts.db)
                    .arg("--run")
                    .arg(&row.id)
                    .arg("--out")
                    .arg(&out)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("cannot start a worker process")?;
                say(format!("started  {} {}", row.id, describe(sweep, &row.id)));
                children.insert(row.id.clone(), child);
            }
        }

        // 4. done?
        let rows = store.runs(Some(&sweep.name), None)?;
        let done = rows.iter().filter(|r| r.status == "finished").count();
        if let Some(b) = &bar {
            b.set_position(done as u64);
            b.set_message(format!("{} running", children.len()));
        }
        let others_running = rows
            .iter()
            .any(|r| r.status == "running" && !children.contains_key(&r.id));
        let claimable = rows.iter().any(|r| {
            r.status == "queued"
                || r.status == "stopped"
                || (r.status == "failed" && opts.retry_failed && !attempted.contains(&r.id))
        });
        if children.is_empty() && (stopping || (!claimable && !others_running)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    let mut report = SweepReport::default();
    for row in store.runs(Some(&sweep.name), None)? {
        *report.counts.entry(row.status.clone()).or_default() += 1;
        if row.status == "failed" {
            report.failed.push((row.id, row.error.unwrap_or_default()));
        }
    }
    Ok(report)
}
