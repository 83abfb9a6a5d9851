//! A store on a PostgreSQL server (`WORKBENCH_TEST_PG`, started by `.ci/run` with
//! `scripts/postgres.sh`): a sweep stores there exactly what it stores in SQLite, and every
//! viewer reads it unchanged. Skipped without a server, except under `CI=true`.

use std::path::Path;
use std::process::Command;

use qbheat_workbench::store::scratch::{postgres_server, ScratchStore};
use qbheat_workbench::store::{Locator, Status, Store};

mod common;
use common::{learned, tiny_sweep};

const BIN: &str = env!("CARGO_BIN_EXE_workbench");

fn sweep_file(dir: &Path) -> std::path::PathBuf {
    tiny_sweep(
        dir,
        "pg",
        2,
        96,
        r#""corner", "center""#,
        "[base.probe]\nkinds = [\"lin\"]",
    )
}

fn workbench(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn sweep(dir: &Path, file: &Path, db: &Locator, runs: &str) -> String {
    let runs = dir.join(runs);
    let (code, out) = workbench(&[
        "sweep".as_ref(),
        file.as_os_str(),
        "--db".as_ref(),
        db.as_arg().as_os_str(),
        "--runs-dir".as_ref(),
        runs.as_os_str(),
        "--no-report".as_ref(),
    ]);
    assert_eq!(code, 0, "{out}");
    out
}

#[test]
fn a_sweep_on_postgres_stores_bit_for_bit_what_sqlite_stores_and_viewers_read_it() {
    let Some(server) = postgres_server() else {
        eprintln!("WORKBENCH_TEST_PG not set: PostgreSQL not tested");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path());
    let pg = ScratchStore::postgres(&server).unwrap();
    let lite = Locator::Sqlite(dir.path().join("w.db"));
    sweep(dir.path(), &file, &lite, "runs-sqlite");
    sweep(dir.path(), &file, &pg.locator, "runs-pg");

    let b = Store::open_read_only(&pg.locator).unwrap();
    let (la, lb) = (learned(&lite), learned(&pg.locator));
    assert_eq!(la.len(), 2);
    assert!(la
        .iter()
        .all(|(_, ms)| ms.iter().any(|m| m.key == "train/loss")));
    assert!(la
        .iter()
        .all(|(_, ms)| ms.iter().any(|m| m.key == "probe/lin/top1")));
    assert_eq!(la, lb, "same run ids, same losses to the bit");
    for r in b.runs(None, None).unwrap() {
        assert_eq!(r.status, Status::Finished);
        assert_eq!(r.attempts, 1);
        assert!(r.host.is_some() && r.heartbeat.is_some());
    }
    assert_eq!(b.integrity_check().unwrap(), "ok");
    assert_eq!(b.duplicate_metric_rows().unwrap(), 0);
    // pictures (PNG bytes: BYTEA on the server, BLOB in SQLite) and embeddings, the same
    let a = Store::open_read_only(&lite).unwrap();
    for (id, _) in &la {
        for kind in ["reconstruction", "attention/m2f", "attention/f2m"] {
            let (pa, pb) = (
                a.pictures(id, kind, None).unwrap(),
                b.pictures(id, kind, None).unwrap(),
            );
            assert!(!pa.is_empty(), "{id} {kind}");
            assert_eq!(pa, pb, "{id} {kind}");
        }
        assert_eq!(a.picture_epochs(id, "reconstruction").unwrap(), vec![1, 2]);
        let e = a.embedding(id, "pca").unwrap();
        assert!(e.is_some());
        assert_eq!(e, b.embedding(id, "pca").unwrap());
    }

    // every viewer reads the server's store unchanged
    let url = pg.locator.as_arg();
    let id = &la[0].0;
    for args in [
        vec!["runs"],
        vec!["show", id.as_str()],
        vec!["export", "--format", "csv"],
        vec!["spectrum", id.as_str()],
    ] {
        let mut full: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_ref()).collect();
        full.push("--db".as_ref());
        full.push(url.as_os_str());
        let (code, out) = workbench(&full);
        assert_eq!(code, 0, "{args:?}: {out}");
        assert!(
            out.contains(&id[..8]) || args[0] == "spectrum",
            "{args:?}: {out}"
        );
    }
    let report = dir.path().join("report");
    let (code, out) = workbench(&[
        "report".as_ref(),
        "--sweep".as_ref(),
        "pg".as_ref(),
        "--db".as_ref(),
        url.as_os_str(),
        "--out".as_ref(),
        report.as_os_str(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(report.join("index.html").is_file());
}

#[test]
fn a_dry_run_on_an_empty_database_lists_the_runs_and_creates_nothing() {
    let Some(server) = postgres_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path());
    let pg = ScratchStore::postgres(&server).unwrap();
    let (code, out) = workbench(&[
        "sweep".as_ref(),
        file.as_os_str(),
        "--dry-run".as_ref(),
        "--db".as_ref(),
        pg.locator.as_arg().as_os_str(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 runs (0 already finished)"), "{out}");
    assert!(!Store::exists(&pg.locator).unwrap(), "nothing created");
}

#[test]
fn an_unreachable_server_is_one_line_naming_host_and_port_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path());
    let (code, out) = workbench(&[
        "sweep".as_ref(),
        file.as_os_str(),
        "--db".as_ref(),
        "postgresql://me:secret@127.0.0.1:9/nowhere".as_ref(),
        "--runs-dir".as_ref(),
        dir.path().join("runs").as_os_str(),
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("127.0.0.1:9"), "{out}");
    assert!(
        !out.contains("secret"),
        "the password is never shown: {out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    assert!(!dir.path().join("runs").exists(), "nothing was written");
}

/// Early stopping on the server: the same trials pruned at the same rung with the same
/// decisions as in SQLite (the `pruned` status passes the server's status check).
#[test]
fn early_stopping_on_postgres_decides_what_sqlite_decides() {
    let Some(server) = postgres_server() else {
        eprintln!("WORKBENCH_TEST_PG not set: PostgreSQL not tested");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = tiny_sweep(
        dir.path(),
        "pg-asha",
        2,
        64,
        r#""corner", "center", "corner+center""#,
        "[base.analysis]\npictures_every = 0\n[early_stop]\nmetric = \"val_loss\"\nrungs = [1]\nkeep = 3",
    );
    let pg = ScratchStore::postgres(&server).unwrap();
    let lite = Locator::Sqlite(dir.path().join("w.db"));
    sweep(dir.path(), &file, &lite, "runs-sqlite");
    sweep(dir.path(), &file, &pg.locator, "runs-pg");
    let (a, b) = (
        Store::open_read_only(&lite).unwrap(),
        Store::open_read_only(&pg.locator).unwrap(),
    );
    let outcome = |s: &Store| {
        let runs: Vec<(String, Status, Option<String>)> = s
            .runs(None, None)
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.status, r.error))
            .collect();
        let decisions: Vec<_> = s
            .decisions(Some("pg-asha"))
            .unwrap()
            .into_iter()
            .map(|d| (d.setting, d.rung, d.value, d.rank, d.peers, d.prune))
            .collect();
        (runs, decisions)
    };
    let (oa, ob) = (outcome(&a), outcome(&b));
    assert_eq!(oa, ob);
    assert_eq!(oa.1.len(), 3, "one decision per setting at the one rung");
    assert!(oa.0.iter().any(|r| r.1 == Status::Pruned), "{:?}", oa.0);
}

#[test]
fn probes_added_to_finished_runs_on_postgres_reuse_their_pretraining() {
    let Some(server) = postgres_server() else {
        eprintln!("WORKBENCH_TEST_PG not set: PostgreSQL not tested");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pg = ScratchStore::postgres(&server).unwrap();
    // the probe section after `[base.probe]` and the recipe both files share
    let file = |probes: &str| {
        tiny_sweep(
            dir.path(),
            "pgp",
            1,
            64,
            r#""corner""#,
            &format!("[base.probe]\ntran_epochs = 1\nlin_epochs = 2\n{probes}"),
        )
    };
    sweep(dir.path(), &file(r#"kinds = ["lin"]"#), &pg.locator, "runs");
    let store = Store::open_read_only(&pg.locator).unwrap();
    let run = store.runs(Some("pgp"), None).unwrap().remove(0);
    let train = store.metrics(&run.id).unwrap();
    let train: Vec<_> = train
        .into_iter()
        .filter(|m| m.key == "train/loss")
        .collect();
    drop(store);
    let out = sweep(
        dir.path(),
        &file("kinds = [\"lin\", \"tran-1\"]\ntran_widths = [16]"),
        &pg.locator,
        "runs",
    );
    assert!(
        out.contains(&format!(
            "reprobe  {} tran-1 tran-1@w16 (pre-training kept)",
            run.id
        )),
        "{out}"
    );
    let store = Store::open_read_only(&pg.locator).unwrap();
    let again = store.run(&run.id).unwrap();
    assert_eq!(again.status, Status::Finished);
    let rows = store.metrics(&run.id).unwrap();
    let keys: std::collections::BTreeSet<_> = rows.iter().map(|m| m.key.as_str()).collect();
    for k in [
        "probe/lin/top1",
        "probe/tran-1/top1",
        "probe/tran-1@w16/top1",
    ] {
        assert!(keys.contains(k), "{k}: {keys:?}");
    }
    let train_again: Vec<_> = rows.into_iter().filter(|m| m.key == "train/loss").collect();
    assert_eq!(train_again, train, "one pre-training");
}
