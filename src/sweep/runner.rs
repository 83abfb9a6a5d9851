//! `workbench sweep`: registers the expanded runs in the store and executes them, each in its
//! own child process, `jobs` at a time. A crashed or hung worker's run goes back to the queue
//! and resumes from its last checkpoint; Ctrl-C stops every worker at a checkpoint.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::binding::{self, Found};
use super::legacy::adopt_legacy_runs;
use super::progress::ProgressView;
use super::spec::Sweep;
use super::worker::{run_dir, Job};
use crate::store::claim::hostname;
use crate::store::{Locator, NewRun, Owner, RunRow, Status, Store};
use crate::train::checkpoint;

/// Default seconds without a heartbeat after which a worker is presumed dead or hung.
pub const STALE_AFTER_S: f64 = 300.0;
/// Smallest accepted stale limit (workers beat every second).
pub const MIN_STALE_AFTER_S: f64 = 5.0;
/// A run whose worker died this many times is marked failed.
pub const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub db: Locator,
    pub jobs: usize,
    pub retry_failed: bool,
    /// Folder that holds one folder per run [default: runs/<sweep name>].
    pub runs_root: Option<PathBuf>,
    /// Live progress bars (a terminal) instead of plain log lines.
    pub progress: bool,
    /// Seconds without a heartbeat after which a worker is killed (ours) or its run requeued.
    pub stale_after: f64,
    /// Log file of this sweep process, noted in the store for the TUI.
    pub log_file: Option<PathBuf>,
    /// GPU indices (`--devices 0,1`): one run per GPU at a time, overriding `jobs`; each run
    /// gets a free GPU and records it. Empty: runs use their config's device.
    pub devices: Vec<usize>,
    /// Take over checkpoints another store watched train (their history is copied from the
    /// checkpoints) instead of refusing to run on them.
    pub adopt: bool,
}

/// Which GPU of `devices` is free: not held by one of our workers, nor (as recorded in the
/// store, `cuda:N`) by a live worker of an earlier sweep.
pub fn free_device(devices: &[usize], ours: &[usize], others: &[Option<String>]) -> Option<usize> {
    let busy = |d: usize| {
        ours.contains(&d)
            || others
                .iter()
                .flatten()
                .any(|name| name.strip_prefix("cuda:") == Some(d.to_string().as_str()))
    };
    devices.iter().copied().find(|&d| !busy(d))
}

/// How a sweep ended.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    pub counts: BTreeMap<Status, usize>,
    /// (run id, error) of failed runs.
    pub failed: Vec<(String, String)>,
}

/// Is process `pid` alive (Linux: /proc; elsewhere assumed alive, the heartbeat decides).
pub fn pid_alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
    } else {
        true
    }
}

fn is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Why the worker of a running run that is not this sweep's child is presumed dead, if it
/// is: its process is gone (checked only when it runs on `this_host`: a pid means nothing
/// elsewhere, and a worker on another node is judged by its heartbeat alone), or its
/// heartbeat is `stale`.
fn presumed_dead(
    row: &RunRow,
    this_host: &str,
    stale: bool,
    alive: impl Fn(i64) -> bool,
) -> Option<&'static str> {
    let here = row.host.as_deref().is_none_or(|h| h == this_host);
    if here && row.pid.is_none_or(|p| !alive(p)) {
        Some("process gone")
    } else if stale {
        Some("heartbeat stale")
    } else {
        None
    }
}

/// Puts a run whose worker died back in the queue, or fails it after [`MAX_ATTEMPTS`]; a
/// compare-and-swap on the row as observed (`running` at its attempt), so a run that
/// finished or was claimed again meanwhile is left alone.
fn requeue_dead(store: &Store, row: &RunRow, why: &str) -> Result<String> {
    let failed = (row.attempts >= MAX_ATTEMPTS)
        .then(|| format!("worker died {} times (last: {why})", row.attempts));
    if !store.requeue_dead(&row.id, row.claim_number(), failed.as_deref())? {
        let now = store.run(&row.id).map_or("gone".into(), |r| {
            format!("{}, attempt {}", r.status, r.attempts)
        });
        return Ok(format!(
            "left     {} its worker looked dead ({why}), but the run changed meanwhile ({now})",
            row.id
        ));
    }
    Ok(match failed {
        Some(msg) => format!("failed   {} {msg}", row.id),
        None => format!(
            "requeued {} worker died ({why}); resumes from its last checkpoint",
            row.id
        ),
    })
}

fn kill(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs every unfinished run of `sweep`.
pub fn run(
    sweep: &Sweep,
    file: &Path,
    opts: &SweepOptions,
    stop: Arc<AtomicBool>,
) -> Result<SweepReport> {
    let (mut store, _planned, runs_root) = prepare(sweep, file, opts)?;
    store.set_sweep_runner(&sweep.name, std::process::id())?;
    if let Some(log) = &opts.log_file {
        store.set_sweep_log(&sweep.name, &log.display().to_string())?;
    }
    let exe = std::env::current_exe().context("cannot locate the workbench binary")?;
    let described: HashMap<&str, String> = sweep
        .runs
        .iter()
        .map(|r| {
            let d = r
                .overrides
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            (r.id.as_str(), d)
        })
        .collect();
    let describe = |id: &str| described.get(id).cloned().unwrap_or_default();
    let jobs = if opts.devices.is_empty() {
        opts.jobs
    } else {
        opts.devices.len()
    };
    let mut children: HashMap<String, Child> = HashMap::new();
    // the GPU each of our workers holds (with --devices)
    let mut held: HashMap<String, usize> = HashMap::new();
    let mut killed_hung: HashSet<String> = HashSet::new();
    let mut attempted: HashSet<String> = HashSet::new();
    // runs stopped on request (TUI `S`) stay stopped until requeued or the next sweep
    let mut stopped_here: HashSet<String> = HashSet::new();
    let mut signalled = false;
    let this_host = hostname();
    let mut view = ProgressView::new(opts.progress, sweep.runs.len());
    let mut last_view = Instant::now() - Duration::from_secs(1);

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
            held.remove(&id);
            let row = store.run(&id)?;
            let line = match row.status {
                Status::Running => {
                    let why = if killed_hung.remove(&id) {
                        format!("no heartbeat for {:.0}s, killed", opts.stale_after)
                    } else {
                        status.to_string()
                    };
                    requeue_dead(&store, &row, &why)?
                }
                Status::Finished => {
                    let loss = store
                        .latest_metrics(&id)?
                        .into_iter()
                        .filter(|m| m.key == "epoch/val_loss" || m.key.ends_with("/top1"))
                        .map(|m| format!("{}={:.4}", m.key.trim_start_matches("epoch/"), m.value))
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!("finished {id} {} {loss}", describe(&id))
                }
                Status::Failed => format!("failed   {id} {}", row.error.unwrap_or_default()),
                Status::Pruned => format!("pruned   {id} {}", row.error.unwrap_or_default()),
                Status::Stopped => {
                    stopped_here.insert(id.clone());
                    format!("stopped  {id} (checkpointed; the next sweep resumes it)")
                }
                other => format!("{other:<8} {id}"),
            };
            view.say(&line);
        }

        // 2. a worker of ours that stopped heartbeating is hung: kill it (reaped above next
        //    time, then requeued); runs of workers that are not ours and died go back too
        let rows = store.runs(Some(&sweep.name), None)?;
        let t = store.db_now()?;
        for row in rows.iter().filter(|r| r.status == Status::Running) {
            let stale = row.heartbeat_stale(t, opts.stale_after);
            match children.get(&row.id) {
                Some(child) if stale && !killed_hung.contains(&row.id) => {
                    kill("-KILL", child.id());
                    killed_hung.insert(row.id.clone());
                }
                Some(_) => {}
                None => {
                    if let Some(why) = presumed_dead(row, &this_host, stale, pid_alive) {
                        view.say(&requeue_dead(&store, row, why)?);
                    }
                }
            }
        }

        // 3. start new workers; live workers of an earlier (killed) sweep take job slots too
        let stopping = stop.load(Ordering::SeqCst);
        if stopping && !signalled {
            for child in children.values() {
                kill("-INT", child.id());
            }
            signalled = true;
        }
        let rows = store.runs(Some(&sweep.name), None)?;
        let orphan_devices: Vec<Option<String>> = rows
            .iter()
            .filter(|r| r.status == Status::Running && !children.contains_key(&r.id))
            .map(|r| r.device.clone())
            .collect();
        let orphans = orphan_devices.len();
        if !stopping {
            for row in &rows {
                if children.len() + orphans >= jobs {
                    break;
                }
                let device = if opts.devices.is_empty() {
                    None
                } else {
                    let ours: Vec<usize> = held.values().copied().collect();
                    match free_device(&opts.devices, &ours, &orphan_devices) {
                        Some(d) => Some(d),
                        None => break,
                    }
                };
                let claimable = match row.status {
                    Status::Queued => true,
                    Status::Stopped => !stopped_here.contains(&row.id),
                    Status::Failed => opts.retry_failed && !attempted.contains(&row.id),
                    _ => false,
                };
                if !claimable {
                    continue;
                }
                let Some(claim) =
                    store.claim(&row.id, &Owner::this_process(), opts.retry_failed)?
                else {
                    continue;
                };
                attempted.insert(row.id.clone());
                let out = row
                    .out_dir
                    .as_ref()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| run_dir(&runs_root, &row.id));
                let job = Job {
                    claim: claim.clone(),
                    out,
                    device,
                    adopt: opts.adopt,
                };
                let spawned = spawn_worker(&exe, &opts.db, &job);
                match spawned {
                    Ok(child) => {
                        let on = device.map(|d| format!(" on cuda:{d}")).unwrap_or_default();
                        view.say(&format!("started  {}{on} {}", row.id, describe(&row.id)));
                        children.insert(row.id.clone(), child);
                        if let Some(d) = device {
                            held.insert(row.id.clone(), d);
                        }
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        store.finish(&claim, Status::Failed, Some(&msg))?;
                        view.say(&format!("failed   {} {msg}", row.id));
                    }
                }
            }
        }

        // 4. progress and done?
        let rows = store.runs(Some(&sweep.name), None)?;
        if last_view.elapsed() >= Duration::from_millis(500) {
            view.update(&store, &rows)?;
            last_view = Instant::now();
        }
        let others_running = rows
            .iter()
            .any(|r| r.status == Status::Running && !children.contains_key(&r.id));
        let claimable = rows.iter().any(|r| {
            r.status == Status::Queued
                || (r.status == Status::Stopped && !stopped_here.contains(&r.id))
                || (r.status == Status::Failed && opts.retry_failed && !attempted.contains(&r.id))
        });
        if children.is_empty() && (stopping || (!claimable && !others_running)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    view.finish();
    store.set_sweep_runner(&sweep.name, 0)?;

    let mut report = SweepReport::default();
    for row in store.runs(Some(&sweep.name), None)? {
        *report.counts.entry(row.status).or_default() += 1;
        if row.status == Status::Failed {
            report.failed.push((row.id, row.error.unwrap_or_default()));
        }
    }
    Ok(report)
}

/// What every executor does first: checks the options, opens the store, renames runs of an
/// older id scheme, refuses run folders another store watched (unless `--adopt`), and
/// registers the sweep's runs. Returns the store, the planned runs and the runs folder.
pub(crate) fn prepare(
    sweep: &Sweep,
    file: &Path,
    opts: &SweepOptions,
) -> Result<(Store, Vec<NewRun>, PathBuf)> {
    anyhow::ensure!(
        opts.stale_after >= MIN_STALE_AFTER_S && opts.stale_after.is_finite(),
        "the stale limit must be at least {MIN_STALE_AFTER_S} seconds"
    );
    let mut store = Store::open(&opts.db)?;
    let planned: Vec<NewRun> = sweep
        .runs
        .iter()
        .map(|r| NewRun::from_config(&r.config))
        .collect();
    for line in adopt_legacy_runs(&mut store, &sweep.name)? {
        println!("{line}");
    }
    for line in crate::sweep::legacy::adopt_probe_split(&mut store, &sweep.name)? {
        println!("{line}");
    }
    let runs_root = opts
        .runs_root
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&sweep.name));
    if !opts.adopt {
        foreign_refusal(&store, &planned, &runs_root, opts.retry_failed)?;
    }
    store.register_sweep(&sweep.name, &file.display().to_string(), &planned)?;
    let configs: Vec<&crate::config::RunConfig> = sweep.runs.iter().map(|r| &r.config).collect();
    for line in crate::sweep::reprobe::sync_probe_settings(&mut store, &configs)? {
        println!("{line}");
    }
    store.set_sweep_search(&sweep.name, &sweep.searched)?;
    Ok((store, planned, runs_root))
}

/// Refuses, in one message, to run a sweep whose run folders hold checkpoints this store did
/// not watch train (`--adopt` takes them over instead).
fn foreign_refusal(
    store: &Store,
    planned: &[NewRun],
    runs_root: &Path,
    retry_failed: bool,
) -> Result<()> {
    let foreign = foreign_checkpoints(store, planned, runs_root, retry_failed)?;
    if !foreign.is_empty() {
        anyhow::bail!(binding::refusal(&foreign, &store.store_id()?));
    }
    Ok(())
}

/// The planned runs a worker would take whose folders hold a checkpoint this store did not
/// watch train: (folder, the store it is bound to, its state). Unreadable checkpoints are left
/// to the worker, which fails the run and keeps its rows.
fn foreign_checkpoints(
    store: &Store,
    planned: &[NewRun],
    runs_root: &Path,
    retry_failed: bool,
) -> Result<Vec<(PathBuf, Option<String>, checkpoint::TrainState)>> {
    let store_id = store.store_id()?;
    let known: HashMap<String, RunRow> = store
        .runs(None, None)?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut foreign = Vec::new();
    for run in planned {
        let row = known.get(&run.id);
        let takes = row.is_none_or(|r| match r.status {
            Status::Queued | Status::Stopped => true,
            Status::Failed => retry_failed,
            Status::Running | Status::Finished | Status::Pruned => false,
        });
        if !takes {
            continue;
        }
        let out = row
            .and_then(|r| r.out_dir.as_ref())
            .map(PathBuf::from)
            .unwrap_or_else(|| run_dir(runs_root, &run.id));
        let Ok(Some((_, state))) = checkpoint::latest(&out) else {
            continue;
        };
        if let Found::Foreign { other } =
            binding::inspect(store, &store_id, &run.id, &out, Some(&state))?
        {
            foreign.push((out, other, state));
        }
    }
    Ok(foreign)
}

fn spawn_worker(exe: &Path, db: &Locator, job: &Job) -> Result<Child> {
    let out = job.out.as_path();
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("worker.log"))
        .with_context(|| format!("{}: cannot open", out.join("worker.log").display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .arg("--db")
        .arg(db.as_arg())
        .arg("--run")
        .arg(&job.claim.run)
        .arg("--attempt")
        .arg(job.claim.attempt.to_string())
        .arg("--out")
        .arg(out);
    if let Some(d) = job.device {
        cmd.arg("--device").arg(d.to_string());
    }
    if job.adopt {
        cmd.arg("--adopt");
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start a worker process")
}

#[cfg(test)]
mod tests {
    use super::{free_device, presumed_dead};
    use crate::store::{RunRow, Status};

    #[test]
    fn a_pid_is_checked_only_on_its_own_host() {
        let mut row = RunRow::example("r", Status::Running);
        row.pid = Some(4242);
        let gone = |_| false;
        row.host = Some("here".into());
        assert_eq!(
            presumed_dead(&row, "here", false, gone),
            Some("process gone")
        );
        assert_eq!(presumed_dead(&row, "here", false, |_| true), None);
        // the same pid on another node says nothing: only the heartbeat counts
        row.host = Some("node7".into());
        assert_eq!(presumed_dead(&row, "here", false, gone), None);
        assert_eq!(
            presumed_dead(&row, "here", true, gone),
            Some("heartbeat stale")
        );
    }

    #[test]
    fn each_gpu_holds_one_run() {
        let devices = [0, 1];
        assert_eq!(free_device(&devices, &[], &[]), Some(0));
        assert_eq!(free_device(&devices, &[0], &[]), Some(1));
        assert_eq!(free_device(&devices, &[0, 1], &[]), None);
        // a live worker of an earlier sweep holds the GPU it recorded
        assert_eq!(
            free_device(&devices, &[], &[Some("cuda:0".into()), None]),
            Some(1)
        );
        assert_eq!(free_device(&devices, &[1], &[Some("cuda:0".into())]), None);
        // "cuda:10" is not GPU 1
        assert_eq!(free_device(&[1], &[], &[Some("cuda:10".into())]), Some(1));
        assert_eq!(free_device(&[2, 3], &[], &[Some("cpu x2".into())]), Some(2));
    }
}
