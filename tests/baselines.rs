//! The paper's baselines in the harness: a MoCo-v2 sweep that pre-trains, checkpoints and
//! probes like QB-Heat, and probe variants added to finished runs without pre-training again
//! (a run's id leaves out its probe settings).

use std::collections::BTreeSet;
use std::path::Path;

mod common;

use qbheat_workbench::store::{Locator, Status, Store};

/// MoCo-v2 and random init on a small built-in set, probed with `probe` (TOML lines).
fn baselines_file(dir: &Path, probe: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
name = "bl"
seeds = [0]
[base.data]
image_size = 32
train_size = 128
val_size = 64
[base.model]
preset = "mf-micro"
[base.train]
epochs = 2
batch_size = 16
base_lr = 1e-3
[base.moco]
queue = 64
[base.analysis]
pictures_every = 0
[base.probe]
lin_epochs = 2
tran_epochs = 1
{probe}
[grid]
method = ["moco-v2", "random-init"]
"#
    );
    let path = dir.join("bl.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn series(store: &Store, run: &str, key: &str) -> Vec<qbheat_workbench::store::Metric> {
    let mut rows = store.metrics(run).unwrap();
    rows.retain(|m| m.key == key);
    rows
}

fn keys(store: &Store, run: &str) -> BTreeSet<String> {
    store
        .latest_metrics(run)
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect()
}

#[test]
fn moco_pretrains_and_added_probe_widths_reuse_the_pretraining() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let file = baselines_file(dir.path(), r#"kinds = ["lin"]"#);
    common::sweep_ok(dir.path(), &db, &file);
    let store = Store::open_read_only(Locator::from(db.as_path())).unwrap();
    let runs = store.runs(Some("bl"), None).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().all(|r| r.status == Status::Finished),
        "{runs:?}"
    );
    let moco = runs
        .iter()
        .find(|r| r.config.contains("moco-v2"))
        .expect("a moco-v2 run");
    let before = series(&store, &moco.id, "train/loss");
    let lin_before = series(&store, &moco.id, "probe/lin/top1");
    assert_eq!(before.len(), 2 * (128 / 16), "one loss row per step");
    let mk = keys(&store, &moco.id);
    for k in ["epoch/val_loss", "monitor/knn/top1", "probe/lin/top1"] {
        assert!(mk.contains(k), "{k} missing: {mk:?}");
    }
    assert!(
        !mk.iter().any(|k| k.starts_with("spectrum/")),
        "MoCo has no A, B: {mk:?}"
    );
    // the checkpoint folders (the newest and the one before it)
    let checkpoints = |id: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir.path().join("runs/bl").join(id).join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect()
    };
    let folders = checkpoints(&moco.id);
    assert!(folders.contains("step-00000016"), "{folders:?}");
    let ids: BTreeSet<String> = runs.iter().map(|r| r.id.clone()).collect();
    drop(store);

    // the same sweep asking for tran-1 at two widths: the same runs, probed again only
    let file = baselines_file(
        dir.path(),
        "kinds = [\"lin\", \"tran-1\"]\ntran_widths = [16]",
    );
    // a dry run says which runs would be probed again
    let dry = common::workbench_in(
        dir.path(),
        &db,
        &["sweep", file.to_str().unwrap(), "--dry-run"],
    );
    let dry = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.contains("(2 already finished, 2 to probe again)"),
        "{dry}"
    );
    assert!(dry.contains(&format!("{}  reprobe", moco.id)), "{dry}");
    let out = common::workbench_in(
        dir.path(),
        &db,
        &["sweep", file.to_str().unwrap(), "--no-report"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "reprobe  {} tran-1 tran-1@w16 (pre-training kept)",
            moco.id
        )),
        "{text}"
    );
    let store = Store::open_read_only(Locator::from(db.as_path())).unwrap();
    let runs = store.runs(Some("bl"), None).unwrap();
    let after_ids: BTreeSet<String> = runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, after_ids, "probe settings do not change run ids");
    assert!(
        runs.iter().all(|r| r.status == Status::Finished),
        "{runs:?}"
    );
    assert_eq!(
        series(&store, &moco.id, "train/loss"),
        before,
        "one pre-training: its rows untouched"
    );
    assert_eq!(checkpoints(&moco.id), folders, "no new checkpoint");
    for r in &runs {
        let k = keys(&store, &r.id);
        for key in [
            "probe/lin/top1",
            "probe/tran-1/top1",
            "probe/tran-1@w16/top1",
        ] {
            assert!(k.contains(key), "{}: {key} missing: {k:?}", r.id);
        }
    }
    // the lin result was kept (same rows, same wall times), not probed again
    assert_eq!(series(&store, &moco.id, "probe/lin/top1"), lin_before);
    drop(store);

    // and by hand: one more width, its own key
    let out = common::workbench_in(
        dir.path(),
        &db,
        &[
            "probe", &moco.id, "--kind", "tran-1", "--width", "8", "--depth", "2",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_read_only(Locator::from(db.as_path())).unwrap();
    assert!(keys(&store, &moco.id).contains("probe/tran-2@w8/top1"));
}
