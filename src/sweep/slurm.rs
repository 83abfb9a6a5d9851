//! The `slurm` executor (`workbench sweep FILE --executor slurm --db postgresql://…`): the
//! sweep's unfinished runs are submitted as one SLURM job array whose task `i` always runs the
//! run frozen to task `i` ([`Store::assign_tasks`]); each task `exec`s
//! `workbench worker --sweep S --task $SLURM_ARRAY_TASK_ID`, which claims its run itself.
//! Running the same command again reconciles: a run whose worker's task is neither pending nor
//! running in SLURM and whose heartbeat (the database's clock) went stale goes back to the
//! queue, and only unfinished runs whose task is not already pending or running are
//! submitted. With `--agents P`, P tasks each claim the next queued run until none is left
//! (sweeps larger than the cluster's `MaxArraySize`).

use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::runner::{prepare, SweepOptions, SweepReport, MAX_ATTEMPTS};
use super::spec::Sweep;
use super::worker::{run_dir, Job};
use crate::store::{Claim, Locator, Owner, RunRow, Status, Store};

/// What `--executor slurm` adds to a sweep's options.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// Tasks running at once (`--array=…%P`).
    pub throttle: Option<usize>,
    pub time: Option<String>,
    pub partition: Option<String>,
    pub gres: Option<String>,
    /// Further `sbatch` arguments, as given.
    pub sbatch_args: Vec<String>,
    /// Wait for the sweep to end (reconciling and resubmitting as tasks die).
    pub wait: bool,
    /// P agents that each claim the next queued run, instead of one task per run.
    pub agents: Option<usize>,
    /// Seconds before the time limit at which SLURM sends SIGUSR2 (`--signal=B:USR2@S`).
    pub signal_lead: u32,
}

/// SLURM states in which a task still holds (or will hold) its run.
const ACTIVE: &[&str] = &[
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SUSPENDED",
    "SIGNALING",
    "STAGE_OUT",
];

/// File systems on which SQLite's locking (WAL) does not hold across nodes, by `statfs` magic.
const NETWORK_FS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x0BD0_0BD0, "Lustre"),
    (0x4750_4653, "GPFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42_u32 as i64, "CIFS"),
    (0xFE53_4D42_u32 as i64, "SMB2"),
    (0x6573_5546, "FUSE"),
];

/// The network file system `path` lies on, if it is one SQLite cannot lock across nodes.
pub fn network_fs(path: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into a zeroed struct of the right type; `c` is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let magic = st.f_type as i64;
    NETWORK_FS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// Refuses a SQLite store on a network file system for a cluster sweep (one line naming it).
fn check_store(db: &Locator) -> Result<()> {
    let Some(path) = db.sqlite_path() else {
        return Ok(());
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Some(fs) = network_fs(dir) {
        anyhow::bail!(
            "{}: a SQLite store on {fs} cannot be shared by a cluster's nodes (its locks do not \
             hold there); use --db postgresql://user@host:port/db",
            path.display()
        );
    }
    Ok(())
}

/// `0-2,5,7-9`: an array index list.
pub fn array_list(tasks: &[i64]) -> String {
    let mut sorted = tasks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Runs a SLURM command; its stdout, or one line with its message.
fn slurm(cmd: &str, args: &[String]) -> Result<String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        anyhow::anyhow!("{cmd}: cannot run it ({e}); is SLURM's client installed here?")
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " ");
        anyhow::bail!("{cmd} failed: {msg}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// State of every task of `jobs` SLURM still knows: `"<array job>_<task>"` → state.
pub fn task_states(jobs: &[String]) -> Result<HashMap<String, String>> {
    if jobs.is_empty() {
        return Ok(HashMap::new());
    }
    let args: Vec<String> = [
        "-h",
        "-r",
        "-t",
        "all",
        "-j",
        &jobs.join(","),
        "-o",
        "%F_%K|%T",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let text = match slurm("squeue", &args) {
        Ok(t) => t,
        // every job id forgotten (past MinJobAge): nothing is active
        Err(e) if e.to_string().contains("Invalid job id") => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(id, state)| (id.trim().to_string(), state.trim().to_string()))
        .collect())
}

fn is_active(state: Option<&String>) -> bool {
    state.is_some_and(|s| ACTIVE.contains(&s.as_str()))
}

/// The sweep's jobs as stored.
fn jobs_of(store: &Store, sweep: &str) -> Result<Vec<String>> {
    Ok(store
        .sweep(sweep)?
        .slurm_jobs
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// Puts back in the queue every running run whose SLURM task is gone (not pending or
/// running) and whose heartbeat is older than `stale_after` by the database's clock; fails it
/// after [`MAX_ATTEMPTS`] crashes. Returns one line per run changed.
fn reconcile(
    store: &Store,
    sweep: &str,
    states: &HashMap<String, String>,
    stale_after: f64,
) -> Result<Vec<String>> {
    let now = store.db_now()?;
    let mut lines = Vec::new();
    for row in store.runs(Some(sweep), Some(Status::Running))? {
        let alive = row
            .slurm_job
            .as_ref()
            .is_some_and(|j| is_active(states.get(j)));
        let stale = row.heartbeat_stale(now, stale_after);
        if alive || !stale {
            continue;
        }
        let why = format!(
            "SLURM task {} gone, no heartbeat for {:.0}s",
            row.slurm_job.as_deref().unwrap_or("?"),
            row.heartbeat.map_or(f64::INFINITY, |h| now - h)
        );
        let failed = (row.attempts >= MAX_ATTEMPTS)
            .then(|| format!("worker died {} times (last: {why})", row.attempts));
        if store.requeue_dead(&row.id, row.claim_number(), failed.as_deref())? {
            lines.push(match failed {
                Some(msg) => format!("failed   {} {msg}", row.id),
                None => format!("requeued {} ({why})", row.id),
            });
        }
    }
    Ok(lines)
}

/// The batch script: one line that becomes the worker (`exec`: the signal SLURM sends the
/// batch shell reaches the worker, and no orphan is left).
fn script_text(exe: &Path, db: &Locator, sweep: &str, agents: bool) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mode = if agents {
        "--agent".to_string()
    } else {
        "--task \"$SLURM_ARRAY_TASK_ID\"".to_string()
    };
    format!(
        "#!/bin/bash\n\
         # workbench sweep {sweep}: written by `workbench sweep --executor slurm`\n\
         exec {} worker --db {} --sweep {} {mode}\n",
        quote(&exe.display().to_string()),
        quote(&db.as_arg().to_string_lossy()),
        quote(sweep),
    )
}

/// Writes the script (owner-only when the store's URL holds a password).
fn write_script(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("{}: cannot write", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Submits the array `indices` of `script`; returns the job id.
fn submit(
    script: &Path,
    runs_root: &Path,
    sweep: &str,
    indices: &str,
    slurm_opts: &SlurmOptions,
) -> Result<String> {
    let logs = runs_root.join("slurm");
    std::fs::create_dir_all(&logs)?;
    let throttle = slurm_opts
        .throttle
        .map(|p| format!("%{p}"))
        .unwrap_or_default();
    let mut args = vec![
        "--parsable".to_string(),
        format!("--array={indices}{throttle}"),
        "--requeue".into(),
        "--open-mode=append".into(),
        format!("--signal=B:USR2@{}", slurm_opts.signal_lead),
        format!("--job-name=wb-{sweep}"),
        format!("--output={}", logs.join("%A_%a.log").display()),
    ];
    if let Some(t) = &slurm_opts.time {
        args.push(format!("--time={t}"));
    }
    if let Some(p) = &slurm_opts.partition {
        args.push(format!("--partition={p}"));
    }
    if let Some(g) = &slurm_opts.gres {
        args.push(format!("--gres={g}"));
    }
    args.extend(slurm_opts.sbatch_args.iter().cloned());
    args.push(script.display().to_string());
    let out = slurm("sbatch", &args)?;
    // `--parsable` prints `jobid` or `jobid;cluster`
    let job = out
        .lines()
        .next()
        .and_then(|l| l.split(';').next())
        .map(str::trim)
        .filter(|j| !j.is_empty() && j.chars().all(|c| c.is_ascii_digit()))
        .with_context(|| format!("sbatch printed no job id: {out:?}"))?;
    Ok(job.to_string())
}

/// The unfinished runs of the sweep and, in task mode, the tasks to submit: those whose run is
/// queued or stopped and whose task is not pending or running already.
fn to_submit(
    rows: &[RunRow],
    tasks: &[(i64, String)],
    states: &HashMap<String, String>,
    jobs: &[String],
) -> Vec<i64> {
    let status: HashMap<&str, Status> = rows.iter().map(|r| (r.id.as_str(), r.status)).collect();
    tasks
        .iter()
        .filter(|(_, id)| {
            matches!(
                status.get(id.as_str()),
                Some(Status::Queued | Status::Stopped)
            )
        })
        .filter(|(task, _)| {
            !jobs
                .iter()
                .any(|j| is_active(states.get(&format!("{j}_{task}"))))
        })
        .map(|(task, _)| *task)
        .collect()
}

/// Runs `sweep` on SLURM: registers and freezes its runs, reconciles with what SLURM still
/// runs, submits what is unfinished, and with `--wait` watches until every run has ended.
pub fn run(
    sweep: &Sweep,
    file: &Path,
    opts: &SweepOptions,
    slurm_opts: &SlurmOptions,
    stop: Arc<AtomicBool>,
) -> Result<SweepReport> {
    check_store(&opts.db)?;
    // every node reads the runs folder: it is stored absolute
    let mut opts = opts.clone();
    let root = opts
        .runs_root
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&sweep.name));
    std::fs::create_dir_all(&root).with_context(|| format!("{}: cannot create", root.display()))?;
    opts.runs_root = Some(root.canonicalize()?);
    let (store, planned, runs_root) = prepare(sweep, file, &opts)?;
    let ids: Vec<String> = planned.iter().map(|r| r.id.clone()).collect();
    let tasks = store.assign_tasks(&sweep.name, &ids)?;
    if opts.retry_failed {
        for r in store.runs(Some(&sweep.name), Some(Status::Failed))? {
            store.requeue(&r.id)?;
        }
    }
    let exe = std::env::current_exe().context("cannot locate the workbench binary")?;
    let script = runs_root
        .join("slurm")
        .join(format!("{}.sbatch", sweep.name));
    std::fs::create_dir_all(runs_root.join("slurm"))?;
    write_script(
        &script,
        &script_text(&exe, &opts.db, &sweep.name, slurm_opts.agents.is_some()),
    )?;
    store.set_sweep_executor(
        &sweep.name,
        "slurm",
        &runs_root.display().to_string(),
        Some(&script.display().to_string()),
    )?;

    let mut last: BTreeMap<String, Status> = BTreeMap::new();
    loop {
        let jobs = jobs_of(&store, &sweep.name)?;
        let states = task_states(&jobs)?;
        for line in reconcile(&store, &sweep.name, &states, opts.stale_after)? {
            println!("{line}");
        }
        let rows = store.runs(Some(&sweep.name), None)?;
        let submitted = match slurm_opts.agents {
            None => {
                let pending = to_submit(&rows, &tasks, &states, &jobs);
                if pending.is_empty() {
                    None
                } else {
                    let list = array_list(&pending);
                    Some((
                        submit(&script, &runs_root, &sweep.name, &list, slurm_opts)?,
                        list,
                    ))
                }
            }
            Some(p) => {
                let queued = rows
                    .iter()
                    .filter(|r| matches!(r.status, Status::Queued | Status::Stopped))
                    .count();
                let live = states.values().filter(|s| is_active(Some(s))).count();
                let want = p.min(queued).saturating_sub(live);
                if want == 0 {
                    None
                } else {
                    let list = format!("0-{}", want - 1);
                    Some((
                        submit(&script, &runs_root, &sweep.name, &list, slurm_opts)?,
                        list,
                    ))
                }
            }
        };
        if let Some((job, list)) = submitted {
            store.add_slurm_job(&sweep.name, &job)?;
            println!(
                "submitted SLURM array job {job} (tasks {list}) of sweep {}; script {}",
                sweep.name,
                script.display()
            );
        } else if !slurm_opts.wait {
            println!("nothing to submit: every unfinished run's task is pending or running");
        }
        for r in &rows {
            if last.get(&r.id) != Some(&r.status) {
                if !last.is_empty() || slurm_opts.wait {
                    let on = r
                        .slurm_job
                        .as_deref()
                        .map(|j| format!(" (SLURM {j})"))
                        .unwrap_or_default();
                    println!("{:<8} {}{on}", r.status.to_string(), r.id);
                }
                last.insert(r.id.clone(), r.status);
            }
        }
        let done = rows
            .iter()
            .all(|r| matches!(r.status, Status::Finished | Status::Failed | Status::Pruned));
        if !slurm_opts.wait || done {
            break;
        }
        if stop.load(Ordering::SeqCst) {
            println!("stopped watching; the SLURM jobs keep running (run the same command to watch again)");
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let mut report = SweepReport::default();
    for row in store.runs(Some(&sweep.name), None)? {
        *report.counts.entry(row.status).or_default() += 1;
        if row.status == Status::Failed && slurm_opts.wait {
            report.failed.push((row.id, row.error.unwrap_or_default()));
        }
    }
    Ok(report)
}

/// The job of a SLURM task's worker: the run frozen to `task` (or, for an agent, the next
/// queued run), claimed by this process. `None` when the run is not claimable (it finished,
/// or another task holds it) or no run is left. A runs folder this node cannot see fails the
/// run with that message instead of training into a local folder.
pub fn claim_for_task(store: &mut Store, sweep: &str, task: Option<i64>) -> Result<Option<Job>> {
    let row = store.sweep(sweep)?;
    let owner = Owner::this_process();
    let claim: Option<Claim> = match task {
        Some(t) => {
            let id = store.run_of_task(sweep, t)?;
            store.claim(&id, &owner, false)?
        }
        None => store.claim_next(sweep, &owner)?,
    };
    let Some(claim) = claim else {
        return Ok(None);
    };
    let root = PathBuf::from(row.runs_root.unwrap_or_else(|| format!("runs/{sweep}")));
    if !root.is_dir() {
        let msg = format!(
            "the runs folder {} is not visible from host {}: it must be on a file system \
             every node mounts",
            root.display(),
            owner.host
        );
        store.finish(&claim, Status::Failed, Some(&msg))?;
        anyhow::bail!(msg);
    }
    let existing = store.run(&claim.run)?.out_dir;
    let out = existing
        .map(PathBuf::from)
        .unwrap_or_else(|| run_dir(&root, &claim.run));
    Ok(Some(Job {
        claim,
        out,
        device: None,
        adopt: false,
    }))
}

/// Tasks of `sweep` still pending or running in SLURM, for the viewers: (`job_task`, state).
pub fn live_tasks(store: &Store, sweep: &str) -> Result<Vec<(String, String)>> {
    let jobs = jobs_of(store, sweep)?;
    let mut out: Vec<(String, String)> = task_states(&jobs)?.into_iter().collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_are_ranges() {
        assert_eq!(array_list(&[0, 1, 2, 5, 7, 8, 9]), "0-2,5,7-9");
        assert_eq!(array_list(&[3]), "3");
        assert_eq!(array_list(&[4, 2, 3, 3]), "2-4");
    }

    #[test]
    fn the_script_execs_the_worker_with_quoted_arguments() {
        let s = script_text(
            Path::new("/opt/wb's/workbench"),
            &Locator::parse("postgresql://u@h:5/db"),
            "abl",
            false,
        );
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains(
            "exec '/opt/wb'\\''s/workbench' worker --db 'postgresql://u@h:5/db' --sweep 'abl' \
             --task \"$SLURM_ARRAY_TASK_ID\""
        ));
    }

    #[test]
    fn only_unfinished_runs_whose_task_is_not_alive_are_submitted() {
        let mut rows = vec![
            RunRow::example("a", Status::Queued),
            RunRow::example("b", Status::Queued),
            RunRow::example("c", Status::Finished),
            RunRow::example("d", Status::Stopped),
        ];
        rows[1].slurm_job = Some("7_1".into());
        let tasks: Vec<(i64, String)> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| (i as i64, id.to_string()))
            .collect();
        let states: HashMap<String, String> = [
            ("7_1".to_string(), "PENDING".to_string()),
            ("7_3".to_string(), "COMPLETED".to_string()),
        ]
        .into();
        assert_eq!(to_submit(&rows, &tasks, &states, &["7".into()]), [0, 3]);
    }

    #[test]
    fn a_local_folder_is_not_a_network_file_system() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(network_fs(dir.path()), None);
        assert!(check_store(&Locator::Sqlite(dir.path().join("x.db"))).is_ok());
    }
}
