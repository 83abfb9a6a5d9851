//! `workbench import`: a published log as a read-only reference run; a bad file stores nothing.

mod common;

use qbheat_workbench::store::{Locator, Store};

#[test]
fn a_log_becomes_a_reference_run_and_a_bad_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    Store::open(Locator::Sqlite(db.clone())).unwrap();
    let log = dir.path().join("log.txt");
    // MAE's log.txt format: one json.dumps(log_stats) per epoch, epochs from 0
    std::fs::write(
        &log,
        "{\"train_lr\": 0.0001, \"train_loss\": 0.95, \"epoch\": 0}\n\
         {\"train_lr\": 0.0003, \"train_loss\": 0.82, \"test_acc1\": 41.5, \"epoch\": 1}\n",
    )
    .unwrap();
    let wb = |args: &[&str]| common::workbench_in(dir.path(), &db, args);
    let out = wb(&[
        "import",
        log.to_str().unwrap(),
        "--as",
        "mae",
        "--map",
        "train_loss=epoch/train_loss",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_read_only(Locator::Sqlite(db.clone())).unwrap();
    let run = store.run("ref-mae").unwrap();
    assert_eq!(run.sweep, "references");
    assert!(run.reference().unwrap().ends_with("log.txt"));
    let loss: Vec<(i64, f64)> = store
        .metrics("ref-mae")
        .unwrap()
        .into_iter()
        .filter(|m| m.key == "epoch/train_loss")
        .map(|m| (m.epoch, m.value))
        .collect();
    assert_eq!(loss, vec![(1, 0.95), (2, 0.82)]);
    let before = store.metrics("ref-mae").unwrap();
    drop(store);
    // a reference has no model: the model verbs say so in one line
    let out = wb(&["probe", "ref-mae"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is a reference imported from"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&wb(&["show", "ref-mae"]).stdout)
        .contains("reference  imported from"));
    // a malformed line: file:line, nothing stored (not even with --replace)
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "epoch,val_loss\n1,0.5\n2,oops\n").unwrap();
    for args in [
        vec!["import", bad.to_str().unwrap(), "--as", "bad"],
        vec!["import", bad.to_str().unwrap(), "--as", "mae", "--replace"],
        vec!["import", log.to_str().unwrap(), "--as", "mae"],
        vec!["import", log.to_str().unwrap(), "--as", "no spaces"],
    ] {
        let out = wb(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let err =
        String::from_utf8_lossy(&wb(&["import", bad.to_str().unwrap(), "--as", "bad"]).stderr)
            .into_owned();
    assert!(err.contains("bad.csv:3:2"), "{err}");
    let store = Store::open_read_only(Locator::Sqlite(db)).unwrap();
    assert!(store.run("ref-bad").is_err());
    assert_eq!(store.metrics("ref-mae").unwrap(), before);
    assert_eq!(store.runs(None, None).unwrap().len(), 1);
}

#[test]
fn the_report_draws_a_reference_dashed_with_its_band_and_marks_values_outside() {
    use qbheat_workbench::config::RunConfig;
    use qbheat_workbench::report::{self, Selection};
    use qbheat_workbench::store::{Metric, NewRun, Status};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let mut s = Store::open(Locator::Sqlite(db.clone())).unwrap();
    let run = NewRun::from_config(&RunConfig::default());
    s.register_sweep("fx", "fx.toml", std::slice::from_ref(&run))
        .unwrap();
    let m = |key: &str, e: i64, value: f64| Metric {
        key: key.into(),
        step: 10 * e,
        epoch: e,
        value,
        wall: 0.0,
    };
    // the run: 1.0, 0.8, 0.5; the reference: 1.0, 0.85, 0.7 → epoch 3 is 29 % below it
    s.log_metrics(
        &run.id,
        &[
            m("epoch/val_loss", 1, 1.0),
            m("epoch/val_loss", 2, 0.8),
            m("epoch/val_loss", 3, 0.5),
        ],
    )
    .unwrap();
    s.set_status(&run.id, Status::Finished, None).unwrap();
    let reference: Vec<Metric> = [(1, 1.0), (2, 0.85), (3, 0.7)]
        .into_iter()
        .map(|(e, v)| Metric {
            step: e,
            ..m("epoch/val_loss", e, v)
        })
        .collect();
    s.import_reference(
        "ref-paper",
        r#"{"reference": {"file": "/logs/paper.csv"}}"#,
        &reference,
        false,
    )
    .unwrap();
    drop(s);
    let store = Store::open_read_only(Locator::Sqlite(db)).unwrap();
    let r = report::build(&store, &Selection::Sweep("fx".into())).unwrap();
    let f = r
        .figures
        .iter()
        .find(|f| f.name == "reference-1-epoch-val_loss")
        .unwrap();
    assert!(
        f.caption
            .contains("1 of 3 values at common epochs outside ±10 %"),
        "{}",
        f.caption
    );
    // the reference and its two band lines are dashed polylines; the run's line is not
    assert_eq!(f.svg.matches("stroke-dasharray").count(), 3, "{}", f.svg);
    roxmltree::Document::parse(&f.svg).unwrap();
    assert!(f.csv.contains("outside the band"), "{}", f.csv);
}
