//! Pictures end to end (issue 28): a small sweep stores reconstructions every epoch, attention
//! maps and the PCA of its probe features; the stored pixels show learning; the report inlines
//! them; `workbench attention` refuses bad input without writing anything.

mod common;

use std::path::Path;

use qbheat_workbench::analysis::raster;
use qbheat_workbench::analysis::reconstruction::stored_pixel_error;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::data::batch::BatchMaker;
use qbheat_workbench::model::qbheat::QbHeat;
use qbheat_workbench::store::pictures::RECONSTRUCTION;
use qbheat_workbench::store::{Locator, Store};
use qbheat_workbench::train::reconstruction::{picture_quarter, reconstruct};

use common::workbench_in as workbench;

/// `workbench report --sweep SWEEP` into `DIR/rep`: the folder and its page.
fn report(dir: &Path, db: &Path, sweep: &str) -> (std::path::PathBuf, String) {
    let rep = dir.join("rep");
    let out = workbench(
        dir,
        db,
        &["report", "--sweep", sweep, "--out", rep.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    (rep, html)
}

/// Mean over the stored strips of one epoch of the masked pixel error read back from the PNGs.
fn pixel_error(store: &Store, run: &str, epoch: i64, cfg: &RunConfig) -> f64 {
    let pics = store.pictures(run, RECONSTRUCTION, Some(epoch)).unwrap();
    assert_eq!(pics.len(), 8, "epoch {epoch}");
    let size = cfg.data.image_size as u32;
    let errors: Vec<f64> = pics
        .iter()
        .map(|p| {
            let img = raster::decode(&p.png).unwrap();
            let q = picture_quarter(cfg.masking.position, p.item as usize, pics.len());
            stored_pixel_error(&img, size, q)
        })
        .collect();
    errors.iter().sum::<f64>() / errors.len() as f64
}

#[test]
fn a_sweep_stores_pictures_that_show_learning_and_the_report_inlines_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let file = common::tiny_sweep(
        dir.path(),
        "pics",
        6,
        512,
        "\"corner\", \"center\"",
        "[base.probe]\nkinds = [\"lin\"]\nlin_epochs = 2\n",
    );
    common::sweep_ok(dir.path(), &db, &file);
    let store = Store::open_read_only(Locator::Sqlite(db.clone())).unwrap();
    let runs = store.runs(None, None).unwrap();
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let cfg: RunConfig = serde_json::from_str(&run.config).unwrap();
        assert_eq!(
            store.picture_epochs(&run.id, RECONSTRUCTION).unwrap(),
            (1..=6).collect::<Vec<i64>>()
        );
        let first = pixel_error(&store, &run.id, 1, &cfg);
        let last = pixel_error(&store, &run.id, 6, &cfg);
        // an untrained model's reconstructions of the same images, through the same strips
        let (train, val) = qbheat_workbench::data::load(&cfg).unwrap();
        let maker = BatchMaker::for_config(&cfg, &train);
        let fresh = QbHeat::<qbheat_workbench::backend::Cpu>::new(&cfg, 3, &Default::default());
        let recs = reconstruct(&fresh, &maker, &val, &Default::default());
        let pics = qbheat_workbench::analysis::reconstruction::pictures(0, &recs).unwrap();
        let random: f64 = pics
            .iter()
            .zip(&recs)
            .map(|(p, r)| {
                stored_pixel_error(
                    &raster::decode(&p.png).unwrap(),
                    cfg.data.image_size as u32,
                    r.quarter,
                )
            })
            .sum::<f64>()
            / pics.len() as f64;
        eprintln!(
            "{} {:?}: pixel MSE random {random:.5} epoch 1 {first:.5} epoch 6 {last:.5}",
            run.id, cfg.masking.position
        );
        assert!(
            last < first,
            "{}: epoch 6 {last} vs epoch 1 {first}",
            run.id
        );
        assert!(
            last < random,
            "{}: epoch 6 {last} vs random init {random}",
            run.id
        );
        // the stored value of a strip is the masked loss of its image
        let stored: Vec<f64> = store
            .pictures(&run.id, RECONSTRUCTION, Some(6))
            .unwrap()
            .iter()
            .map(|p| p.value.unwrap())
            .collect();
        assert!(stored.iter().all(|v| v.is_finite() && *v > 0.0));
        // attention figures of every block, and the PCA of the lin probe's features
        let blocks = cfg.model.preset.spec().blocks.len();
        for kind in ["attention/m2f", "attention/f2m"] {
            let a = store.pictures(&run.id, kind, None).unwrap();
            assert_eq!(a.len(), blocks, "{kind}");
            assert!(a.iter().all(|p| p.epoch == 6));
        }
        let pca = store.embedding(&run.id, "pca").unwrap().unwrap();
        assert_eq!((pca.total, pca.points.len()), (32, 32));
        let shares = pca.variance_share;
        assert!(shares[0] >= shares[1] && shares[1] > 0.0 && shares[0] + shares[1] <= 1.0 + 1e-9);
    }
    drop(store);
    // the report inlines the strips, the attention figures and the PCA, and writes the PNGs
    let (rep, html) = report(dir.path(), &db, "pics");
    assert!(
        html.matches("data:image/png;base64,").count() >= 2 * 2 + 2 * 2,
        "too few pictures"
    );
    assert!(html.contains("Cross-attention") && html.contains("PCA of"));
    for name in [
        "recon-1-e1.png",
        "recon-1-e6.png",
        "recon-2-e6.png",
        "attention-1-m2f.png",
        "pca-1.svg",
    ] {
        assert!(rep.join(name).is_file(), "{name} missing");
    }
    raster::decode(&std::fs::read(rep.join("recon-2-e6.png")).unwrap()).unwrap();

    // `workbench attention`: bad input is one line, exit non-zero, nothing written
    let id = &runs[0].id;
    let count = |db: &Path| {
        let s = Store::open_read_only(Locator::Sqlite(db.to_path_buf())).unwrap();
        ["attention/m2f", "attention/f2m"]
            .iter()
            .map(|k| s.pictures(id, k, None).unwrap().len())
            .sum::<usize>()
    };
    let before = count(&db);
    let figs = dir.path().join("figs");
    for (args, says) in [
        (vec!["attention", "nosuchrun"], "no run"),
        (vec!["attention", id, "--image", "32"], "out of range"),
        (vec!["attention", id, "--block", "99"], "does not exist"),
        (vec!["attention", id, "--block", "0"], "does not exist"),
    ] {
        let mut args = args.clone();
        args.extend(["--out", figs.to_str().unwrap()]);
        let out = workbench(dir.path(), &db, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!figs.exists(), "{args:?} wrote files");
        assert_eq!(count(&db), before);
    }
    let out = workbench(
        dir.path(),
        &db,
        &[
            "attention",
            id,
            "--image",
            "3",
            "--block",
            "2",
            "--out",
            figs.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("block  2"), "{text}");
    assert!(figs.join("block2_m2f.png").is_file() && figs.join("block2_f2m.png").is_file());
}

#[test]
fn attention_on_a_run_without_a_checkpoint_is_refused_and_an_old_store_is_migrated_without_pictures(
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let mut store = Store::open(Locator::Sqlite(db.clone())).unwrap();
    let cfg = RunConfig::default();
    let run = qbheat_workbench::store::NewRun::from_config(&cfg);
    store
        .register_sweep("s", "s.toml", std::slice::from_ref(&run))
        .unwrap();
    drop(store);
    let figs = dir.path().join("figs");
    let out = workbench(
        dir.path(),
        &db,
        &["attention", &run.id, "--out", figs.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no checkpoint"),
        "{err}"
    );
    assert!(!figs.exists());
    // a store from before pictures (schema 5): the first open migrates it (viewers too, when
    // the file is writable), nothing of it is lost, and it simply has no pictures yet
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TABLE pictures; DROP TABLE embeddings; DROP TABLE run_tags; DROP TABLE run_notes;\n         DROP TABLE sweep_tags; DROP TABLE sweep_notes; DROP TABLE decisions;\n         ALTER TABLE sweeps DROP COLUMN search; PRAGMA user_version = 5;")
        .unwrap();
    drop(conn);
    let (_, html) = report(dir.path(), &db, "s");
    assert!(html.contains("No run of this report stored reconstructions"));
    let store = Store::open_read_only(Locator::Sqlite(db.clone())).unwrap();
    assert!(store.has_pictures().unwrap());
    assert!(store
        .pictures(&run.id, RECONSTRUCTION, None)
        .unwrap()
        .is_empty());
    assert!(store.embedding(&run.id, "pca").unwrap().is_none());
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.runs(None, None).unwrap().len(), 1);
    // and `workbench attention` on it is the same one-line refusal (no checkpoint)
    drop(store);
    let out = workbench(
        dir.path(),
        &db,
        &["attention", &run.id, "--out", figs.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no checkpoint"),
        "{err}"
    );
    assert!(!figs.exists());
}
