//! Sweeps end to end: crash safety (SIGKILL of a worker, of the sweep parent), Ctrl-C,
//! failing runs, bad sweep files, and concurrent access to the store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qbheat_workbench::store::{Metric, NewRun, Status, Store};

const BIN: &str = env!("CARGO_BIN_EXE_workbench");

fn sweep_file(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"
name = "crash"
seeds = [0]
[base.data]
image_size = 32
train_size = 128
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
epochs = 6
batch_size = 16
base_lr = 1e-3
[grid]
"masking.position" = ["corner", "center"]
{extra}
"#
    );
    let path = dir.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_sweep(dir: &Path, file: &Path, jobs: usize) -> Child {
    start_sweep_with(dir, file, jobs, &[])
}

/// `workbench sweep FILE --db DB --runs-dir DIR/runs`.
fn sweep_command(dir: &Path, file: &Path, db: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("sweep")
        .arg(file)
        .arg("--db")
        .arg(db)
        .arg("--runs-dir")
        .arg(dir.join("runs"));
    cmd
}

fn start_sweep_with(dir: &Path, file: &Path, jobs: usize, extra: &[&str]) -> Child {
    sweep_command(dir, file, &dir.join("w.db"))
        .arg("--jobs")
        .arg(jobs.to_string())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait(child: &mut Child, limit: Duration) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(t.elapsed() < limit, "sweep did not end in {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls until `pred` holds on the store.
fn wait_for(db: &Path, limit: Duration, mut pred: impl FnMut(&Store) -> bool) {
    let t = Instant::now();
    loop {
        if db.exists() {
            if let Ok(store) = Store::open(db) {
                if pred(&store) {
                    return;
                }
            }
        }
        assert!(t.elapsed() < limit, "condition not reached in {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid of a worker that has stored at least one finished epoch.
fn worker_pid_after_an_epoch(store: &Store, parent: u32) -> Option<(String, i64)> {
    store
        .runs(None, None)
        .ok()?
        .into_iter()
        .filter(|r| r.status == Status::Running)
        .filter(|r| r.pid.is_some_and(|p| p != parent as i64))
        .find(|r| {
            store
                .latest_metrics(&r.id)
                .is_ok_and(|m| m.iter().any(|m| m.key == "epoch/train_loss"))
        })
        .map(|r| (r.id, r.pid.unwrap()))
}

fn kill(sig: &str, pid: i64) {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
}

/// Every finished run logged train/loss at exactly steps 1..=N once, and the store is sound.
fn assert_consistent(db: &Path) {
    let store = Store::open(db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.duplicate_metric_rows().unwrap(), 0);
    for run in store.runs(None, None).unwrap() {
        if run.status != Status::Finished {
            continue;
        }
        let steps: Vec<i64> = store
            .series(&run.id, "train/loss", None)
            .unwrap()
            .iter()
            .map(|m| m.step)
            .collect();
        let expected: Vec<i64> = (1..=steps.len() as i64).collect();
        assert_eq!(steps, expected, "run {}", run.id);
        assert_eq!(steps.len(), 6 * 8, "run {}", run.id);
        let epochs = store.series(&run.id, "epoch/val_loss", None).unwrap();
        assert_eq!(epochs.len(), 6);
        assert!(!store.artifacts(&run.id).unwrap().is_empty());
        // one spectrum per epoch per scale, with a finite energy ratio
        let spectra = store.spectra(&run.id).unwrap();
        let epochs: Vec<i64> = spectra.iter().map(|s| s.epoch).collect();
        assert_eq!(epochs, (1..=6).collect::<Vec<i64>>(), "run {}", run.id);
        assert!(spectra
            .iter()
            .all(|s| s.spectrum.energy_ratio.is_finite() && s.spectrum.matrices.len() == 2));
        assert_eq!(
            store
                .series(&run.id, "spectrum/seconds", None)
                .unwrap()
                .len(),
            6
        );
    }
}

#[test]
fn killed_worker_resumes_and_failed_run_does_not_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "[[runs]]\ntrain.base_lr = 1e30\n");
    let db = dir.path().join("w.db");
    let mut parent = start_sweep(dir.path(), &file, 2);
    let parent_pid = parent.id();
    let mut victim = None;
    wait_for(&db, Duration::from_secs(120), |s| {
        victim = worker_pid_after_an_epoch(s, parent_pid);
        victim.is_some()
    });
    let (victim_id, pid) = victim.unwrap();
    kill("-KILL", pid);
    let code = wait(&mut parent, Duration::from_secs(300));
    assert_eq!(code, 1, "a failed run makes the sweep exit non-zero");
    let store = Store::open(&db).unwrap();
    let runs = store.runs(Some("crash"), None).unwrap();
    assert_eq!(runs.len(), 3);
    let finished = runs.iter().filter(|r| r.status == Status::Finished).count();
    let failed: Vec<_> = runs.iter().filter(|r| r.status == Status::Failed).collect();
    assert_eq!(finished, 2);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].error.as_deref().unwrap().contains("loss became"),
        "{:?}",
        failed[0].error
    );
    let victim = store.run(&victim_id).unwrap();
    assert_eq!(victim.status, Status::Finished);
    assert_eq!(victim.attempts, 2, "killed once, resumed once");
    assert_consistent(&db);

    // running the same sweep again skips finished runs and leaves failed ones alone
    let mut again = start_sweep(dir.path(), &file, 2);
    assert_eq!(wait(&mut again, Duration::from_secs(60)), 1);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.run(&victim_id).unwrap().attempts, 2);
}

#[test]
fn killed_sweep_parent_then_rerun_finishes_every_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "");
    let db = dir.path().join("w.db");
    let mut parent = start_sweep(dir.path(), &file, 1);
    let parent_pid = parent.id();
    wait_for(&db, Duration::from_secs(120), |s| {
        worker_pid_after_an_epoch(s, parent_pid).is_some()
    });
    kill("-KILL", parent_pid as i64);
    wait(&mut parent, Duration::from_secs(10));
    // the orphaned worker keeps going; the new sweep waits for it and runs the rest
    let mut rerun = start_sweep(dir.path(), &file, 1);
    assert_eq!(wait(&mut rerun, Duration::from_secs(300)), 0);
    let store = Store::open(&db).unwrap();
    let runs = store.runs(Some("crash"), None).unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status == Status::Finished && r.attempts == 1),
        "{runs:?}"
    );
    assert_consistent(&db);
}

#[test]
fn sigusr2_preempts_a_worker_which_checkpoints_and_its_sweep_resumes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "");
    let db = dir.path().join("w.db");
    let mut parent = start_sweep(dir.path(), &file, 1);
    let parent_pid = parent.id();
    let mut victim = None;
    wait_for(&db, Duration::from_secs(120), |s| {
        victim = worker_pid_after_an_epoch(s, parent_pid);
        victim.is_some()
    });
    let (id, pid) = victim.unwrap();
    kill("-USR2", pid);
    assert_eq!(wait(&mut parent, Duration::from_secs(300)), 0);
    let store = Store::open(&db).unwrap();
    let row = store.run(&id).unwrap();
    assert_eq!(
        (row.status, row.attempts, row.preemptions),
        (Status::Finished, 1, 1),
        "preempted once, resumed by the same sweep, no crash counted"
    );
    assert_consistent(&db);
}

#[test]
fn ctrl_c_stops_at_a_checkpoint_and_the_next_sweep_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "");
    let db = dir.path().join("w.db");
    let mut parent = start_sweep(dir.path(), &file, 2);
    let parent_pid = parent.id();
    wait_for(&db, Duration::from_secs(120), |s| {
        worker_pid_after_an_epoch(s, parent_pid).is_some()
    });
    kill("-INT", parent_pid as i64);
    assert_eq!(wait(&mut parent, Duration::from_secs(60)), 0);
    let store = Store::open(&db).unwrap();
    let statuses: Vec<Status> = store
        .runs(None, None)
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert!(statuses.contains(&Status::Stopped), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s != Status::Running),
        "{statuses:?}"
    );
    let mut again = start_sweep(dir.path(), &file, 2);
    assert_eq!(wait(&mut again, Duration::from_secs(300)), 0);
    assert_consistent(&db);
}

#[test]
fn bad_sweep_files_exit_2_and_leave_the_store_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    // a store with content, to check it is untouched
    {
        let mut s = Store::open(&db).unwrap();
        let cfg = qbheat_workbench::config::RunConfig::default();
        s.register_sweep("keep", "k.toml", &[NewRun::from_config(&cfg)])
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let cases = [
        ("[grid\n", ":1:"),
        ("[grid]\n\"masking.postion\" = [\"corner\"]\n", ":2:"),
        ("[grid]\n\"train.epochs\" = [1, \"x\"]\n", ":2:"),
        ("[grid]\n\"predictor.models\" = []\n", ":2:"),
        ("seeds = [1]\n", ":1:"),
    ];
    for (text, place) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .arg("sweep")
            .arg(&path)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("bad.toml{place}")), "{text}: {err}");
        assert!(!err.contains("panicked"));
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let fresh = dir.path().join("never.db");
    let path = dir.path().join("bad.toml");
    let out = Command::new(BIN)
        .arg("sweep")
        .arg(&path)
        .arg("--db")
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!fresh.exists(), "a bad sweep must not create the database");
}

#[test]
fn two_writers_and_a_reader_never_see_a_locked_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let ids: Vec<String> = (0..2).map(|i| format!("run{i}")).collect();
    {
        let mut s = Store::open(&db).unwrap();
        let planned: Vec<NewRun> = ids
            .iter()
            .map(|id| NewRun {
                id: id.clone(),
                seed: 0,
                config: "{}".into(),
                params: vec![],
            })
            .collect();
        s.register_sweep("c", "c.toml", &planned).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(4);
    let writers: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&db).unwrap();
                let claim = s
                    .claim(
                        &id,
                        &qbheat_workbench::store::claim::Owner::local(std::process::id()),
                        false,
                    )
                    .unwrap()
                    .unwrap();
                let mut step = 0i64;
                while Instant::now() < deadline {
                    let rows: Vec<Metric> = (0..50)
                        .map(|i| Metric {
                            key: "train/loss".into(),
                            step: step + i,
                            epoch: 0,
                            value: 1.0,
                            wall: 0.0,
                        })
                        .collect();
                    s.log_metrics_held(&claim, &rows).unwrap();
                    assert!(s.heartbeat(&claim, qbheat_workbench::store::now()).unwrap());
                    step += 50;
                }
                step
            })
        })
        .collect();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || {
            let s = Store::open(&db).unwrap();
            let mut reads = 0;
            while Instant::now() < deadline {
                let listing = qbheat_workbench::views::runs::runs(
                    &s,
                    None,
                    None,
                    None,
                    qbheat_workbench::views::Format::Table,
                )
                .unwrap();
                assert!(listing.contains("run1"));
                reads += 1;
            }
            reads
        })
    };
    let written: Vec<i64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(reader.join().unwrap() > 0);
    let s = Store::open(&db).unwrap();
    for (id, n) in ids.iter().zip(written) {
        assert!(n > 0);
        assert_eq!(s.series(id, "train/loss", None).unwrap().len() as i64, n);
    }
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

/// Rows of every metric of a run.
fn row_count(store: &Store, id: &str) -> usize {
    store.metrics(id).unwrap().len()
}

#[test]
fn an_unreadable_checkpoint_fails_the_run_and_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "");
    let db = dir.path().join("w.db");
    let mut parent = start_sweep(dir.path(), &file, 1);
    let parent_pid = parent.id();
    let mut victim = None;
    // after an epoch's checkpoint, not only its metrics (the analyses of the epoch, spectra and
    // pictures, come in between)
    let pointer_of = |id: &str| {
        dir.path()
            .join("runs")
            .join(id)
            .join("checkpoints")
            .join("latest.json")
    };
    wait_for(&db, Duration::from_secs(120), |s| {
        victim =
            worker_pid_after_an_epoch(s, parent_pid).filter(|(id, _)| pointer_of(id).is_file());
        victim.is_some()
    });
    let (id, pid) = victim.unwrap();
    kill("-KILL", parent_pid as i64);
    kill("-KILL", pid);
    wait(&mut parent, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let store = Store::open(&db).unwrap();
    let before = row_count(&store, &id);
    assert!(before > 0);
    let pointer = pointer_of(&id);
    std::fs::write(&pointer, "{ not json").unwrap();
    drop(store);
    let mut again = start_sweep(dir.path(), &file, 1);
    assert_eq!(
        wait(&mut again, Duration::from_secs(300)),
        1,
        "a failed run: exit 1"
    );
    let store = Store::open(&db).unwrap();
    let run = store.run(&id).unwrap();
    assert_eq!(run.status, Status::Failed);
    let err = run.error.unwrap();
    assert!(
        err.contains("cannot read the checkpoint") && err.contains("latest.json"),
        "{err}"
    );
    assert_eq!(row_count(&store, &id), before, "no metric row lost");
}

#[test]
fn a_hung_worker_is_killed_and_requeued_by_its_own_parent() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), "");
    let db = dir.path().join("w.db");
    let mut parent = start_sweep_with(dir.path(), &file, 1, &["--stale-after", "5"]);
    let parent_pid = parent.id();
    let mut victim = None;
    wait_for(&db, Duration::from_secs(120), |s| {
        victim = worker_pid_after_an_epoch(s, parent_pid);
        victim.is_some()
    });
    let (id, pid) = victim.unwrap();
    // a stopped process neither trains nor heartbeats: hung, from the outside
    kill("-STOP", pid);
    assert_eq!(wait(&mut parent, Duration::from_secs(300)), 0);
    let store = Store::open(&db).unwrap();
    let run = store.run(&id).unwrap();
    assert_eq!(run.status, Status::Finished);
    assert_eq!(run.attempts, 2, "killed once, resumed once");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.contains(") Z")
        }
    );
    assert_consistent(&db);
}

/// A sweep of one run: a short pre-training, then a quick lin probe and a fine-tuning probe
/// that takes many minutes.
fn long_probe_file(dir: &Path) -> PathBuf {
    let file = dir.join("probe.toml");
    std::fs::write(
        &file,
        r#"
name = "long-probe"
[base.data]
train_size = 256
val_size = 32
[base.predictor]
dim = 32
[base.decoder]
dim = 32
depth = 1
heads = 2
[base.train]
epochs = 1
batch_size = 32
[base.probe]
kinds = ["lin", "finetune"]
lin_epochs = 2
finetune_from_tran1 = false
finetune_epochs = 500
batch_size = 32
[grid]
"masking.position" = ["corner"]
"#,
    )
    .unwrap();
    file
}

/// Waits until the run of [`long_probe_file`] has finished pre-training (it then probes);
/// returns its id.
fn wait_for_the_probe(db: &Path) -> String {
    let mut id = String::new();
    wait_for(db, Duration::from_secs(120), |s| {
        s.runs(None, Some(Status::Running))
            .ok()
            .and_then(|r| r.into_iter().next())
            .filter(|r| {
                s.latest_metrics(&r.id)
                    .is_ok_and(|m| m.iter().any(|m| m.key == "epoch/train_loss"))
            })
            .map(|r| id = r.id)
            .is_some()
    });
    id
}

#[test]
fn a_worker_in_a_long_probe_is_not_requeued_by_a_second_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let file = long_probe_file(dir.path());
    let db = dir.path().join("w.db");
    // The stale limit leaves a margin a loaded 2-core machine meets (a probe step takes
    // milliseconds; the limit is 20 s), and the test watches for longer than the limit: a
    // probe that did not keep the heartbeat fresh would be requeued within it.
    const STALE: f64 = 20.0;
    let stale = STALE.to_string();
    let mut first = start_sweep_with(dir.path(), &file, 1, &["--stale-after", &stale]);
    let id = wait_for_the_probe(&db);
    let probing_since = Store::open(&db)
        .unwrap()
        .run(&id)
        .unwrap()
        .heartbeat
        .unwrap();
    let mut second = start_sweep_with(dir.path(), &file, 1, &["--stale-after", &stale]);
    let watch = Instant::now();
    let mut run = Store::open(&db).unwrap().run(&id).unwrap();
    while watch.elapsed().as_secs_f64() < STALE * 1.5 {
        std::thread::sleep(Duration::from_secs(1));
        run = Store::open(&db).unwrap().run(&id).unwrap();
        assert_eq!(run.status, Status::Running, "still probing");
        assert_eq!(run.attempts, 1, "never requeued");
    }
    // the probe kept the heartbeat moving for longer than the stale limit
    assert!(
        run.heartbeat.unwrap() - probing_since > STALE,
        "heartbeat {} → {}",
        probing_since,
        run.heartbeat.unwrap()
    );
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second sweep waits"
    );
    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(pid) = run.pid {
        kill("-KILL", pid);
    }
}

#[test]
fn ctrl_c_during_a_probe_stops_the_run_and_the_next_sweep_only_probes_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = long_probe_file(dir.path());
    let db = dir.path().join("w.db");
    let mut parent = start_sweep(dir.path(), &file, 1);
    let id = wait_for_the_probe(&db);
    // lin ends within seconds and is stored at once; then the long fine-tuning runs
    let has = |s: &Store, key: &str| {
        s.latest_metrics(&id)
            .is_ok_and(|m| m.iter().any(|m| m.key == key))
    };
    wait_for(&db, Duration::from_secs(120), |s| has(s, "probe/lin/top1"));
    std::thread::sleep(Duration::from_secs(2));
    let lin: Vec<_> = Store::open(&db)
        .unwrap()
        .metrics(&id)
        .unwrap()
        .into_iter()
        .filter(|m| m.key.starts_with("probe/lin/"))
        .collect();
    let losses = row_count(&Store::open(&db).unwrap(), &id);
    // Ctrl-C in a terminal reaches the sweep and its workers
    kill("-INT", parent.id() as i64);
    let worker = Store::open(&db).unwrap().run(&id).unwrap().pid.unwrap();
    kill("-INT", worker);
    assert_eq!(wait(&mut parent, Duration::from_secs(30)), 0);
    let store = Store::open(&db).unwrap();
    let run = store.run(&id).unwrap();
    assert_eq!(run.status, Status::Stopped);
    assert_eq!(row_count(&store, &id), losses, "pre-training rows kept");
    assert!(
        store
            .latest_metrics(&id)
            .unwrap()
            .iter()
            .all(|m| !m.key.starts_with("probe/finetune/")),
        "no partial result of the stopped probe"
    );
    assert!(
        has(&store, "probe/lin/top1"),
        "the probe that ended is kept"
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    // the next sweep resumes the run: pre-training is complete, so it goes straight to the probe
    let mut again = start_sweep(dir.path(), &file, 1);
    wait_for(&db, Duration::from_secs(60), |s| {
        s.run(&id).is_ok_and(|r| r.status == Status::Running)
    });
    std::thread::sleep(Duration::from_secs(5));
    let store = Store::open(&db).unwrap();
    assert_eq!(store.run(&id).unwrap().status, Status::Running);
    assert_eq!(row_count(&store, &id), losses, "no step trained again");
    let lin_again: Vec<_> = store
        .metrics(&id)
        .unwrap()
        .into_iter()
        .filter(|m| m.key.starts_with("probe/lin/"))
        .collect();
    assert_eq!(lin_again, lin, "lin is not probed again, only fine-tuning");
    kill("-INT", again.id() as i64);
    assert_eq!(wait(&mut again, Duration::from_secs(30)), 0);
    assert_eq!(
        Store::open(&db).unwrap().run(&id).unwrap().status,
        Status::Stopped
    );
}

#[test]
fn a_new_sweep_counts_orphaned_workers_against_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(
        dir.path(),
        "[[runs]]\ntrain.epochs = 7\n[[runs]]\ntrain.epochs = 8\n",
    );
    let db = dir.path().join("w.db");
    let mut parent = start_sweep(dir.path(), &file, 2);
    let running = |s: &Store| s.runs(None, Some(Status::Running)).map_or(0, |r| r.len());
    wait_for(&db, Duration::from_secs(120), |s| running(s) == 2);
    kill("-KILL", parent.id() as i64);
    wait(&mut parent, Duration::from_secs(10));
    let mut rerun = start_sweep(dir.path(), &file, 2);
    let t = Instant::now();
    let mut most = 0;
    while t.elapsed() < Duration::from_secs(8) {
        if let Ok(s) = Store::open(&db) {
            most = most.max(running(&s));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(most <= 2, "{most} runs at once with --jobs 2");
    assert_eq!(wait(&mut rerun, Duration::from_secs(400)), 0);
    assert_consistent_all_finished(&db);
}

fn assert_consistent_all_finished(db: &Path) {
    let store = Store::open(db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.duplicate_metric_rows().unwrap(), 0);
    assert!(store
        .runs(None, None)
        .unwrap()
        .iter()
        .all(|r| r.status == Status::Finished));
}

/// A sweep with `extra` arguments against the store `db`, run to its end: (exit code, stderr).
fn sweep_to_end(dir: &Path, file: &Path, db: &Path, extra: &[&str]) -> (i32, String) {
    let out = sweep_command(dir, file, db)
        .arg("--no-report")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_fresh_store_refuses_checkpoints_it_did_not_watch_and_adopts_them_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.toml");
    std::fs::write(
        &file,
        r#"
name = "bound"
[base.data]
image_size = 32
train_size = 64
val_size = 16
[base.predictor]
dim = 32
[base.decoder]
dim = 32
depth = 1
heads = 2
[base.train]
epochs = 2
batch_size = 16
[grid]
"masking.position" = ["corner", "center"]
"#,
    )
    .unwrap();
    let first = dir.path().join("first.db");
    assert_eq!(sweep_to_end(dir.path(), &file, &first, &[]).0, 0);
    let trained = Store::open(&first).unwrap();
    let first_id = trained.store_id().unwrap();
    let runs = trained.runs(None, None).unwrap();
    assert_eq!(runs.len(), 2);
    let folder = PathBuf::from(runs[0].out_dir.clone().unwrap());
    let bound: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("run.json")).unwrap()).unwrap();
    assert_eq!(bound["store_id"], serde_json::Value::from(first_id.clone()));
    let losses = trained.series(&runs[0].id, "train/loss", None).unwrap();
    assert_eq!(losses.len(), 2 * 4);
    drop(trained);
    let first_bytes = std::fs::read(&first).unwrap();

    // a fresh store on the same runs folder: refused in one line, nothing registered
    let fresh = dir.path().join("fresh.db");
    let (code, err) = sweep_to_end(dir.path(), &file, &fresh, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("2 run folder(s) hold checkpoints this store")
            && err.contains(&format!("written under store {first_id}"))
            && err.contains("--adopt"),
        "{err}"
    );
    assert!(Store::open(&fresh)
        .unwrap()
        .runs(None, None)
        .unwrap()
        .is_empty());
    assert_eq!(
        std::fs::read(&first).unwrap(),
        first_bytes,
        "the old store untouched"
    );

    // --adopt: the checkpoint's history is copied in and marked as adopted
    let (code, err) = sweep_to_end(dir.path(), &file, &fresh, &["--adopt"]);
    assert_eq!(code, 0, "{err}");
    let store = Store::open(&fresh).unwrap();
    for run in store.runs(None, None).unwrap() {
        assert_eq!(run.status, Status::Finished);
        let adopted = store.series(&run.id, "train/loss", None).unwrap();
        let steps: Vec<(i64, i64)> = adopted.iter().map(|m| (m.step, m.epoch)).collect();
        assert_eq!(
            steps,
            [
                (1, 1),
                (2, 1),
                (3, 1),
                (4, 1),
                (5, 2),
                (6, 2),
                (7, 2),
                (8, 2)
            ]
        );
        let epochs = store.series(&run.id, "epoch/val_loss", None).unwrap();
        assert_eq!(epochs.iter().map(|m| m.step).collect::<Vec<_>>(), [4, 8]);
        let p: serde_json::Value =
            serde_json::from_str(run.provenance.as_deref().expect("provenance")).unwrap();
        assert_eq!(
            p["adopted_from_store"],
            serde_json::Value::from(first_id.clone())
        );
        assert!(p["missing"].to_string().contains("train/lr"), "{p}");
        let out = PathBuf::from(run.out_dir.unwrap());
        let b: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(
            b["store_id"],
            serde_json::Value::from(store.store_id().unwrap())
        );
    }
    // the adopted losses are the ones the first store watched
    let id = &runs[0].id;
    let again: Vec<f64> = store
        .series(id, "train/loss", None)
        .unwrap()
        .iter()
        .map(|m| m.value)
        .collect();
    let watched: Vec<f64> = losses.iter().map(|m| (m.value as f32) as f64).collect();
    assert_eq!(again, watched);
    let shown = Command::new(BIN)
        .args(["show", id, "--db"])
        .arg(&fresh)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!(
            "adopted    from store {first_id} at checkpoint step 8"
        )) && shown.contains("missing: train/lr of each step"),
        "{shown}"
    );
}
