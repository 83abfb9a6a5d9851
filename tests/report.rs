//! Reports built from fixture stores made through the store API: SVGs that parse and hold
//! their series, the ablation table with the fixture's numbers, messages for missing data,
//! no ± for a single seed, and (with WORKBENCH_CHROMIUM=1) a headless-Chromium screenshot.

use std::path::Path;

use qbheat_workbench::config::RunConfig;
use qbheat_workbench::report::{self, Selection};
use qbheat_workbench::spec::Position;
use qbheat_workbench::store::{MatrixSpectrum, Metric, NewRun, ScaleSpectrum, Status, Store};

const LIN: [[f64; 3]; 2] = [[0.600, 0.620, 0.640], [0.700, 0.710, 0.750]];

fn spectrum(scale: &str, epoch: i64) -> ScaleSpectrum {
    let m = |name: &str, k: f64| MatrixSpectrum {
        name: name.into(),
        eig_re: vec![2.0 * k, -k, 0.5 * k, 0.1],
        eig_im: vec![0.0, 0.5, -0.5, 0.0],
        energy: 3.6 * k,
        rank: 4,
        condition: 4.0,
        complex_fraction: 0.5,
    };
    ScaleSpectrum {
        scale: scale.into(),
        delta: if scale == "corner" { 0.5 } else { 0.25 },
        matrices: vec![m("A", 1.0 + 0.1 * epoch as f64), m("B", 1.2)],
        energy_ratio: 0.9 + 0.01 * epoch as f64,
        commutator: 0.2,
    }
}

/// A sweep "fx": position ∈ {corner, corner+center} × `seeds` seeds, finished, with train
/// loss curves, val loss per epoch, lin top-1 and spectra; plus one failed run without metrics.
fn fixture(dir: &Path, seeds: u64) -> std::path::PathBuf {
    let db = dir.join("r.db");
    let mut s = Store::open(&db).unwrap();
    let mut runs = Vec::new();
    for pos in [Position::Corner, Position::CornerCenter] {
        for seed in 0..seeds {
            let mut c = RunConfig::default();
            c.masking.position = pos;
            c.seed = seed;
            runs.push((pos, seed, NewRun::from_config(&c)));
        }
    }
    let mut failed = RunConfig::default();
    failed.masking.position = Position::Center;
    let failed = NewRun::from_config(&failed);
    let mut all: Vec<NewRun> = runs.iter().map(|r| r.2.clone()).collect();
    all.push(failed.clone());
    s.register_sweep("fx", "fx.toml", &all).unwrap();
    for (k, (pos, seed, r)) in runs.iter().enumerate() {
        let g = usize::from(*pos == Position::CornerCenter);
        let mut rows: Vec<Metric> = (1..=30)
            .map(|step| Metric {
                key: "train/loss".into(),
                step,
                epoch: 1 + (step - 1) / 10,
                value: 1.0 / step as f64 + 0.01 * k as f64,
                wall: step as f64,
            })
            .collect();
        for e in 1..=3 {
            rows.push(Metric {
                key: "epoch/val_loss".into(),
                step: 10 * e,
                epoch: e,
                value: 0.8 - 0.1 * e as f64 + 0.01 * g as f64,
                wall: 0.0,
            });
        }
        rows.push(Metric {
            key: "probe/lin/top1".into(),
            step: 1,
            epoch: 1,
            value: LIN[g][*seed as usize],
            wall: 0.0,
        });
        s.log_metrics(&r.id, &rows).unwrap();
        if *pos == Position::CornerCenter {
            for e in 1..=3 {
                s.log_spectra(&r.id, e, &[spectrum("corner", e), spectrum("center", e)])
                    .unwrap();
            }
        }
        s.set_status(&r.id, Status::Finished, None).unwrap();
    }
    s.set_status(
        &failed.id,
        Status::Failed,
        Some("loss became NaN at epoch 1 step 3"),
    )
    .unwrap();
    db
}

fn build(db: &Path) -> report::Report {
    let store = Store::open_read_only(db).unwrap();
    report::build(&store, &Selection::Sweep("fx".into())).unwrap()
}

#[test]
fn every_svg_parses_and_holds_its_series() {
    let dir = tempfile::tempdir().unwrap();
    let r = build(&fixture(dir.path(), 3));
    let svgs: Vec<_> = r.figures.iter().filter(|f| !f.svg.is_empty()).collect();
    assert!(
        svgs.len() >= 8,
        "{:?}",
        svgs.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    for f in &svgs {
        let doc = roxmltree::Document::parse(&f.svg)
            .unwrap_or_else(|e| panic!("{}: not XML: {e}", f.name));
        // series are coloured; the axes and ticks are black
        let polylines = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") != Some("#000000"))
            .count();
        match f.name.as_str() {
            // 2 groups × 3 seeds thin + 2 means
            "loss-train-masking-position" | "loss-val-masking-position" => {
                assert_eq!(polylines, 8, "{}", f.name)
            }
            // 2 scales × 3 seeds + 2 means
            "tab3-energy-ratio" | "commutator" => assert_eq!(polylines, 8, "{}", f.name),
            // 2 scatters and the diagonal
            "fig7-alignment" => {
                assert_eq!(polylines, 1, "{}", f.name);
                let circles = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("circle"))
                    .count();
                assert_eq!(circles, 2 * 4, "one point per eigenvalue of A and B");
            }
            "eigenvalues" => {
                let circles = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("circle"))
                    .count();
                assert_eq!(circles, 4 * 4, "one point per eigenvalue, 4 matrices");
            }
            _ => {}
        }
        assert!(f.svg.contains("<text"), "{}: text stays text", f.name);
        assert!(
            f.csv.lines().count() > 1,
            "{}: data behind the figure",
            f.name
        );
    }
}

#[test]
fn ablation_table_holds_mean_and_std_by_hand_with_the_best_in_bold() {
    let dir = tempfile::tempdir().unwrap();
    let r = build(&fixture(dir.path(), 3));
    for (g, lin) in LIN.iter().enumerate() {
        let mean = lin.iter().sum::<f64>() / 3.0;
        let std = (lin.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let cell = format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * std);
        let bold = format!("<b>{cell}</b>");
        assert!(r.html.contains(&cell), "group {g}: {cell}");
        // corner+center (group 1) has the higher lin top-1: bold
        assert_eq!(r.html.contains(&bold), g == 1, "{bold}");
    }
    assert!(r.html.contains("lin top-1 (%)"));
    assert!(r.html.contains("Tab. 3"));
    // the failed run is named, and left out of the table with a sentence saying so
    assert!(r.html.contains("loss became NaN at epoch 1 step 3"));
    assert!(
        r.missing.iter().any(|m| m.contains("did not finish")),
        "{:?}",
        r.missing
    );
    assert!(
        r.missing.iter().any(|m| m.contains("no metrics yet")),
        "{:?}",
        r.missing
    );
}

#[test]
fn one_seed_shows_no_plus_minus_and_missing_parts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let r = build(&fixture(dir.path(), 1));
    assert!(!r.html.contains('±'), "one seed: no ±");
    assert!(r.html.contains("60.0") && r.html.contains("<b>70.0</b>"));
    for needle in ["train.epochs", "analyze spatial"] {
        assert!(
            r.missing.iter().any(|m| m.contains(needle)),
            "{needle}: {:?}",
            r.missing
        );
    }
}

#[test]
fn a_store_with_nothing_but_registered_runs_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    let mut s = Store::open(&db).unwrap();
    s.register_sweep(
        "fx",
        "fx.toml",
        &[NewRun::from_config(&RunConfig::default())],
    )
    .unwrap();
    drop(s);
    let r = build(&db);
    assert!(r.html.contains("<h1>QB-Heat sweep fx</h1>"));
    for needle in [
        "No probe results",
        "No run has logged a loss",
        "No spectra",
        "no metrics yet",
    ] {
        assert!(r.html.contains(needle), "{needle}");
    }
    let out = dir.path().join("out");
    let page = report::write(&r, &out).unwrap();
    assert!(page.exists());
    let store = Store::open_read_only(&db).unwrap();
    let e = report::build(&store, &Selection::Sweep("nope".into()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("sweeps: fx"), "{e}");
}

#[test]
fn headless_chromium_renders_the_page() {
    if std::env::var_os("WORKBENCH_CHROMIUM").is_none() {
        eprintln!("set WORKBENCH_CHROMIUM=1 to render the report with headless Chromium");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = build(&fixture(dir.path(), 3));
    let page = report::write(&r, &dir.path().join("rep")).unwrap();
    let png = dir.path().join("rep.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/report-screenshot.sh");
    let out = std::process::Command::new(script)
        .arg(&page)
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 20_000,
        "a real picture"
    );
}

#[test]
fn the_paper_stands_beside_the_ablation_and_the_encoders_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let r = build(&fixture(dir.path(), 2));
    assert!(r
        .html
        .contains("paper, MF-3.7G on ImageNet-1K (lin / tran-1 / ft)"));
    assert!(r.html.contains("64.1 / 77.9 / 82.1"), "corner: Tab. 2a");
    assert!(
        r.html.contains("65.1 / 78.6 / 82.5 (default)"),
        "corner+center: Tab. 2a"
    );
    assert!(r.html.contains("Encoders (paper Tab. 8)"));
    assert!(r.html.contains("<td>mf-micro</td>"));
}

/// QB-Heat and MoCo-v2, seeds 0 and 1, probed with lin and tran-1 at widths 64 and 128.
#[test]
fn methods_are_compared_per_width_with_per_seed_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let mut s = Store::open(&db).unwrap();
    // (method, seed) → lin, tran-1 (w128, the default), tran-1@w64
    let values = [
        ("qbheat", 0, 0.70, 0.74, 0.72),
        ("qbheat", 1, 0.72, 0.78, 0.74),
        ("moco-v2", 0, 0.69, 0.70, 0.71),
        ("moco-v2", 1, 0.71, 0.72, 0.71),
    ];
    let mut runs = Vec::new();
    for (method, seed, ..) in values {
        let mut c = RunConfig {
            method: qbheat_workbench::spec::parse_name(method).unwrap(),
            seed,
            ..Default::default()
        };
        c.probe.tran_widths = vec![64];
        runs.push(NewRun::from_config(&c));
    }
    s.register_sweep("m", "m.toml", &runs).unwrap();
    for (r, (_, _, lin, tran, tran64)) in runs.iter().zip(values) {
        let row = |key: &str, value: f64| Metric {
            key: key.into(),
            step: 1,
            epoch: 1,
            value,
            wall: 0.0,
        };
        s.log_metrics(
            &r.id,
            &[
                row("probe/lin/top1", lin),
                row("probe/tran-1/top1", tran),
                row("probe/tran-1@w64/top1", tran64),
            ],
        )
        .unwrap();
        s.set_status(&r.id, Status::Finished, None).unwrap();
    }
    drop(s);
    let store = Store::open_read_only(&db).unwrap();
    let r = report::build(&store, &Selection::Sweep("m".into())).unwrap();
    assert!(r.html.contains("Methods compared (paper Fig. 8, Tab. 4)"));
    for header in [
        "lin top-1 (%)",
        "tran-1 w64 top-1 (%)",
        "tran-1 w128 top-1 (%)",
    ] {
        assert!(r.html.contains(header), "{header}");
    }
    // QB-Heat tran-1 w128: 74, 78 → 76.0 ± 2.8; MoCo-v2 lin 69, 71 → 70.0 ± 1.4
    assert!(r.html.contains("76.0 ± 2.8"), "{}", r.html);
    assert!(r.html.contains("70.0 ± 1.4"));
    // gaps per seed at w128: +4.0, +6.0 → 5.0 ± 1.4
    assert!(
        r.html.contains("+5.0 ± 1.4 (seeds: +4.0, +6.0)"),
        "{}",
        r.html
    );
    let fig = r.figures.iter().find(|f| f.name == "fig8-methods").unwrap();
    assert!(fig.svg.contains("moco-v2 tran-1") && fig.svg.contains("qbheat lin"));
    // lin dashed (width 1), tran-1 solid (width 2) in the same colour
    assert!(fig.svg.contains("stroke-dasharray"));
    assert!(
        !fig.svg
            .lines()
            .any(|l| l.contains("stroke-width=\"2\"") && l.contains("stroke-dasharray")),
        "tran-1 lines stay solid"
    );
}

/// Two presets × two schedules: Fig. 6 per preset (Fig. 11), and Tab. 3 (final) per schedule.
#[test]
fn schedules_per_preset_and_final_ratios_per_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let mut s = Store::open(&db).unwrap();
    let mut runs = Vec::new();
    for preset in ["mf-micro", "mf-tiny"] {
        for epochs in [2usize, 4] {
            let mut c = RunConfig::default();
            c.model.preset = qbheat_workbench::spec::parse_name(preset).unwrap();
            c.train.epochs = epochs;
            runs.push((epochs, NewRun::from_config(&c)));
        }
    }
    let all: Vec<NewRun> = runs.iter().map(|r| r.1.clone()).collect();
    s.register_sweep("f", "f.toml", &all).unwrap();
    for (epochs, r) in &runs {
        let row = Metric {
            key: "probe/lin/top1".into(),
            step: 1,
            epoch: 1,
            value: 0.5 + 0.01 * *epochs as f64,
            wall: 0.0,
        };
        s.log_metrics(&r.id, &[row]).unwrap();
        // the last epoch's ratio is what Tab. 3 (final) shows: 0.9 + 0.01 × epochs
        for e in 1..=*epochs as i64 {
            s.log_spectra(&r.id, e, &[spectrum("corner", e), spectrum("center", e)])
                .unwrap();
        }
        s.set_status(&r.id, Status::Finished, None).unwrap();
    }
    drop(s);
    let store = Store::open_read_only(&db).unwrap();
    let r = report::build(&store, &Selection::Sweep("f".into())).unwrap();
    for name in ["fig11-schedule-mf-micro", "fig11-schedule-mf-tiny"] {
        assert!(r.figures.iter().any(|f| f.name == name), "{name}");
    }
    assert!(r.html.contains("Tab. 3 (final)"));
    // the train.epochs study holds the base preset (mf-micro): one run per schedule
    assert!(
        r.html.contains("<td>0.9200</td>") && r.html.contains("<td>0.9400</td>"),
        "{}",
        r.html
    );
    assert!(r.html.contains("0.6813"), "the paper's rows beside");
}
