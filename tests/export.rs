//! `workbench export RUN` (issue 26): the encoder as safetensors with its manifest and check
//! file; bad requests are one line and write nothing.

mod common;

use qbheat_workbench::config::RunConfig;
use qbheat_workbench::store::{Locator, NewRun, Store};

use common::workbench_in as workbench;

#[test]
fn a_finished_run_exports_its_encoder_manifest_and_check_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    let file = common::tiny_sweep(
        dir.path(),
        "exp",
        1,
        64,
        "\"corner\"",
        "[base.analysis]\npictures_every = 0\n",
    );
    common::sweep_ok(dir.path(), &db, &file);
    let store = Store::open_read_only(Locator::Sqlite(db.clone())).unwrap();
    let run = store.runs(None, None).unwrap().remove(0);
    let cfg: RunConfig = serde_json::from_str(&run.config).unwrap();
    drop(store);
    let out = workbench(dir.path(), &db, &["export", &run.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = dir.path().join("exports").join(&run.id);
    let weights = std::fs::read(base.with_extension("safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&weights).unwrap();
    assert_eq!(
        st.tensor("stem.conv.weight").unwrap().shape(),
        [16, 3, 3, 3]
    );
    assert!(st.tensor("blocks.1.f2m.v.bias").is_ok());
    assert!(st
        .names()
        .iter()
        .all(|n| !n.starts_with("decoder") && !n.starts_with("predictor")));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.with_extension("json")).unwrap()).unwrap();
    assert_eq!(manifest["run"], run.id.as_str());
    assert_eq!(manifest["preset"], "mf-micro");
    assert_eq!(manifest["epoch"], 1);
    assert_eq!(manifest["image_size"], 32);
    // the normalisation is the one the run trained with: its training set's statistics
    let (train, _) = qbheat_workbench::data::load(&cfg).unwrap();
    let stats = train.channel_stats();
    for (c, (mean, std)) in stats.iter().enumerate() {
        assert_eq!(
            manifest["normalisation"]["mean"][c].as_f64().unwrap() as f32,
            *mean
        );
        assert_eq!(
            manifest["normalisation"]["std"][c].as_f64().unwrap() as f32,
            *std
        );
    }
    let check = std::fs::read(
        dir.path()
            .join("exports")
            .join(format!("{}.check.safetensors", run.id)),
    )
    .unwrap();
    let check = safetensors::SafeTensors::deserialize(&check).unwrap();
    assert_eq!(check.tensor("input").unwrap().shape(), [8, 3, 32, 32]);
    assert_eq!(check.tensor("pooled").unwrap().shape(), [8, 128 + 64]);
    // generators: A and B of the corner scale
    let g = dir.path().join("g.safetensors");
    let out = workbench(
        dir.path(),
        &db,
        &[
            "export",
            &run.id,
            "--what",
            "generators",
            "--out",
            g.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&g).unwrap();
    let gens = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = gens.names();
    names.sort();
    assert_eq!(names, ["corner.A", "corner.B"]);
    assert_eq!(gens.tensor("corner.A").unwrap().shape(), [32, 32]);
}

#[test]
fn bad_export_requests_are_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    let mut store = Store::open(Locator::Sqlite(db.clone())).unwrap();
    let run = NewRun::from_config(&RunConfig::default());
    let sup = NewRun::from_config(&RunConfig {
        method: qbheat_workbench::spec::Method::Supervised,
        ..Default::default()
    });
    store
        .register_sweep("s", "s.toml", &[run.clone(), sup.clone()])
        .unwrap();
    drop(store);
    let out_file = dir.path().join("x.safetensors");
    for (args, says, code) in [
        (vec!["export", run.id.as_str()], "no checkpoint", 1),
        (vec!["export", sup.id.as_str()], "keeps no checkpoint", 1),
        (vec!["export", "nosuchrun"], "no run", 1),
        (
            vec!["export", run.id.as_str(), "--what", "decoder"],
            "valid: encoder, generators",
            1,
        ),
        (
            vec!["export", run.id.as_str(), "--format", "csv"],
            "drop the RUN",
            1,
        ),
        (vec!["export", "--format", "safetensors"], "name the RUN", 1),
        (vec!["export", "--format", "xml"], "valid: csv, json", 2),
    ] {
        let mut args = args.clone();
        args.extend(["--out", out_file.to_str().unwrap()]);
        if args[1] == "--format" {
            args.truncate(3);
        }
        let out = workbench(dir.path(), &db, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        // our errors are one line; clap's usage errors (exit 2) add its --help hint
        assert!(
            code == 2 || err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(
            !out_file.exists() && !dir.path().join("exports").exists(),
            "{args:?} wrote"
        );
    }
}
