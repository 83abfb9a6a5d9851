//! Sweeps on a real SLURM (started by `.ci/run` with `scripts/slurm.sh`, `SLURM_CONF` set)
//! against a real PostgreSQL store (`WORKBENCH_TEST_PG`): the same runs and bit-identical
//! losses as a local sweep; preemption (checkpoint, requeue, resume); a task killed outright
//! (stale heartbeat, reconcile, resubmit); a second invocation submits only what is
//! unfinished. Skipped without both services, except under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qbheat_workbench::store::scratch::{postgres_server, ScratchStore};
use qbheat_workbench::store::{Locator, Status, Store};

mod common;
use common::{capture, learned, tiny_sweep, tmux, tmux_available, wait_for_screen};

const BIN: &str = env!("CARGO_BIN_EXE_workbench");

/// The node is shared: one scenario at a time.
static NODE: Mutex<()> = Mutex::new(());

/// Whether a SLURM controller answers; panics under `CI=true` when it does not.
fn slurm_up() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but no SLURM controller answers (scripts/slurm.sh start, SLURM_CONF)");
    }
    up
}

fn services() -> Option<String> {
    let pg = postgres_server()?;
    slurm_up().then_some(pg)
}

fn sweep_file(dir: &Path, name: &str, epochs: usize, train: usize, grid: &str) -> PathBuf {
    tiny_sweep(dir, name, epochs, train, grid, "")
}

fn sweep_cmd(file: &Path, db: &Locator, runs: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("sweep")
        .arg(file)
        .arg("--db")
        .arg(db.as_arg())
        .arg("--runs-dir")
        .arg(runs)
        .arg("--no-report")
        .args(extra);
    cmd
}

/// Starts `cmd` in the background, its output discarded.
fn spawn_quiet(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_to_end(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

fn wait_child(child: &mut Child, limit: Duration) {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success(), "the sweep failed: {s}");
            return;
        }
        assert!(t.elapsed() < limit, "the sweep did not end in {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for(db: &Locator, limit: Duration, what: &str, mut pred: impl FnMut(&Store) -> bool) {
    let t = Instant::now();
    loop {
        if let Ok(s) = Store::open_read_only(db) {
            if pred(&s) {
                return;
            }
        }
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn steps_logged(s: &Store, id: &str) -> usize {
    s.series(id, "train/loss", None).map_or(0, |v| v.len())
}

fn slurm_jobs(db: &Locator, sweep: &str) -> Vec<String> {
    Store::open_read_only(db)
        .unwrap()
        .sweep(sweep)
        .unwrap()
        .slurm_jobs
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_slurm_sweep_matches_a_local_one_and_a_second_invocation_submits_nothing() {
    let Some(server) = services() else {
        eprintln!("no SLURM or no WORKBENCH_TEST_PG: SLURM executor not tested");
        return;
    };
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "same", 2, 96, r#""corner", "center""#);
    let lite = Locator::Sqlite(dir.path().join("local.db"));
    run_to_end(sweep_cmd(&file, &lite, &dir.path().join("local"), &[]));
    let pg = ScratchStore::postgres(&server).unwrap();
    let out = run_to_end(sweep_cmd(
        &file,
        &pg.locator,
        &dir.path().join("slurm"),
        &["--executor", "slurm", "--wait"],
    ));
    assert!(out.contains("submitted SLURM array job"), "{out}");
    assert_eq!(
        learned(&lite),
        learned(&pg.locator),
        "same runs, same losses"
    );
    let script = dir.path().join("slurm/slurm/same.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("exec ") && text.contains("--task \"$SLURM_ARRAY_TASK_ID\""));

    let jobs = slurm_jobs(&pg.locator, "same");
    assert_eq!(jobs.len(), 1);
    let again = run_to_end(sweep_cmd(
        &file,
        &pg.locator,
        &dir.path().join("slurm"),
        &["--executor", "slurm"],
    ));
    assert!(again.contains("nothing to submit"), "{again}");
    assert_eq!(slurm_jobs(&pg.locator, "same"), jobs, "nothing resubmitted");
}

#[test]
fn agents_claim_every_queued_run_once() {
    let Some(server) = services() else {
        return;
    };
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(
        dir.path(),
        "agents",
        2,
        64,
        r#""corner", "center", "corner+center""#,
    );
    let pg = ScratchStore::postgres(&server).unwrap();
    let out = run_to_end(sweep_cmd(
        &file,
        &pg.locator,
        &dir.path().join("slurm"),
        &["--executor", "slurm", "--agents", "2", "--wait"],
    ));
    assert!(out.contains("(tasks 0-1)"), "two agents: {out}");
    let s = Store::open_read_only(&pg.locator).unwrap();
    let runs = s.runs(None, None).unwrap();
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!((r.status, r.attempts), (Status::Finished, 1), "{}", r.id);
    }
    assert_eq!(slurm_jobs(&pg.locator, "agents").len(), 1);
    let script = std::fs::read_to_string(dir.path().join("slurm/slurm/agents.sbatch")).unwrap();
    assert!(script.contains("--agent"), "{script}");
}

#[test]
fn preempted_tasks_checkpoint_requeue_and_resume_to_the_uninterrupted_losses() {
    let Some(server) = services() else {
        return;
    };
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "pre", 6, 512, r#""corner", "center""#);
    let pg = ScratchStore::postgres(&server).unwrap();
    let t0 = Instant::now();
    let mut sweep = spawn_quiet(sweep_cmd(
        &file,
        &pg.locator,
        &dir.path().join("slurm"),
        &["--executor", "slurm", "--wait", "--partition", "low"],
    ));
    // both low-priority tasks are training past their first steps
    wait_for(
        &pg.locator,
        Duration::from_secs(120),
        "both runs training",
        |s| {
            let runs = s.runs(None, None).unwrap();
            runs.len() == 2
                && runs
                    .iter()
                    .all(|r| r.status == Status::Running && steps_logged(s, &r.id) >= 20)
        },
    );
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let high = Command::new("sbatch")
        .args([
            "--parsable",
            "-p",
            "high",
            "-n",
            &cpus.to_string(),
            "--output=/dev/null",
            "--wrap",
            "sleep 3",
        ])
        .output()
        .unwrap();
    assert!(high.status.success(), "{high:?}");
    eprintln!(
        "preemption: high job submitted at {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    wait_child(&mut sweep, Duration::from_secs(300));
    eprintln!(
        "preemption: sweep ended at {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    let s = Store::open_read_only(&pg.locator).unwrap();
    for r in s.runs(None, None).unwrap() {
        assert_eq!(r.status, Status::Finished, "{}", r.id);
        assert_eq!(r.preemptions, 1, "{}: preempted once", r.id);
        assert_eq!(r.attempts, 1, "{}: a preemption is not a crash", r.id);
    }
    assert_eq!(s.duplicate_metric_rows().unwrap(), 0);
    // the same sweep, never interrupted
    let lite = Locator::Sqlite(dir.path().join("local.db"));
    run_to_end(sweep_cmd(&file, &lite, &dir.path().join("local"), &[]));
    assert_eq!(
        learned(&lite),
        learned(&pg.locator),
        "resumed = uninterrupted"
    );
}

#[test]
fn a_task_killed_outright_goes_stale_and_is_resubmitted() {
    let Some(server) = services() else {
        return;
    };
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "kill", 6, 512, r#""corner""#);
    let pg = ScratchStore::postgres(&server).unwrap();
    let mut sweep = spawn_quiet(sweep_cmd(
        &file,
        &pg.locator,
        &dir.path().join("slurm"),
        &["--executor", "slurm", "--wait", "--stale-after", "5"],
    ));
    let mut task = String::new();
    wait_for(
        &pg.locator,
        Duration::from_secs(120),
        "the run training",
        |s| {
            let runs = s.runs(None, None).unwrap();
            match runs.first() {
                Some(r) if r.status == Status::Running && steps_logged(s, &r.id) >= 20 => {
                    task = r.slurm_job.clone().unwrap_or_default();
                    true
                }
                _ => false,
            }
        },
    );
    let kill = Command::new("scancel")
        // SIGKILL to the task's batch process, which is the worker (no checkpoint, no word)
        .args(["--signal=KILL", "--batch", &task])
        .output()
        .unwrap();
    assert!(kill.status.success(), "{kill:?}");
    wait_child(&mut sweep, Duration::from_secs(300));
    let s = Store::open_read_only(&pg.locator).unwrap();
    let r = &s.runs(None, None).unwrap()[0];
    assert_eq!(r.status, Status::Finished);
    assert_eq!(r.attempts, 2, "the kill counted as a crash: {r:?}");
    assert_eq!(r.preemptions, 0);
    assert_eq!(slurm_jobs(&pg.locator, "kill").len(), 2, "resubmitted once");
    assert_eq!(s.duplicate_metric_rows().unwrap(), 0);
}

#[test]
fn the_tui_on_postgres_shows_a_slurm_sweeps_runs_advancing() {
    let Some(server) = services() else {
        return;
    };
    if !tmux_available() {
        return;
    }
    let _node = NODE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "watch", 6, 512, r#""corner", "center""#);
    let pg = ScratchStore::postgres(&server).unwrap();
    // one task at a time: the second run waits while the first advances
    let mut sweep = spawn_quiet(sweep_cmd(
        &file,
        &pg.locator,
        &dir.path().join("slurm"),
        &["--executor", "slurm", "--jobs", "1", "--wait"],
    ));
    wait_for(
        &pg.locator,
        Duration::from_secs(60),
        "the sweep registered",
        |s| s.runs(None, None).is_ok_and(|r| r.len() == 2),
    );
    let socket = format!("wb-slurm-{}", std::process::id());
    let cmd = format!(
        "{BIN} tui --db '{}'; sleep 30",
        pg.locator.as_arg().to_string_lossy()
    );
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "w",
            "-x",
            "160",
            "-y",
            "48",
            &cmd,
        ],
    );
    let limit = Duration::from_secs(120);
    wait_for_screen(&socket, "running", limit);
    let before = capture(&socket);
    // the Sweeps tab: the array job and each run's task, with SLURM's state of it
    tmux(&socket, &["send-keys", "-t", "w", "5"]);
    wait_for_screen(&socket, "SLURM jobs", limit);
    let tasks = wait_for_screen(&socket, "RUNNING", limit);
    wait_for_screen(&socket, "finished", limit);
    tmux(&socket, &["send-keys", "-t", "w", "1"]);
    wait_child(&mut sweep, Duration::from_secs(300));
    let after = wait_for_screen(&socket, "2 runs, 0 running", limit);
    tmux(&socket, &["kill-server"]);
    if let Ok(out) = std::env::var("WORKBENCH_TUI_CAPTURE") {
        let _ = std::fs::write(
            out,
            format!("{before}\n----- sweeps tab -----\n{tasks}\n----- at the end -----\n{after}"),
        );
    }
    assert!(before.contains("running"), "{before}");
    // the second run waits in its own pending task of the same array job
    assert!(tasks.contains("PENDING"), "{tasks}");
    assert_eq!(after.matches("finished").count(), 2, "{after}");
}

#[test]
fn sbatch_missing_is_one_line_and_a_sqlite_store_on_local_disk_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "nosbatch", 1, 32, r#""corner""#);
    let db = Locator::Sqlite(dir.path().join("w.db"));
    let out = sweep_cmd(
        &file,
        &db,
        &dir.path().join("runs"),
        &["--executor", "slurm"],
    )
    .env("PATH", dir.path())
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("sbatch: cannot run it"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
}

#[test]
fn sbatch_refusing_is_one_line_with_its_message() {
    let Some(server) = services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "refused", 1, 32, r#""corner""#);
    let pg = ScratchStore::postgres(&server).unwrap();
    let out = sweep_cmd(
        &file,
        &pg.locator,
        &dir.path().join("runs"),
        &["--executor", "slurm", "--partition", "nosuchpartition"],
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("sbatch failed:") && text.contains("artition"),
        "{text}"
    );
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    // the runs stay queued for the next submission
    let s = Store::open_read_only(&pg.locator).unwrap();
    assert!(s
        .runs(None, None)
        .unwrap()
        .iter()
        .all(|r| r.status == Status::Queued));
}
