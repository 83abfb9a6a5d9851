//! `workbench table`: the ablation table as Markdown, LaTeX and CSV, numbers by hand.

use std::process::Command;

use qbheat_workbench::config::RunConfig;
use qbheat_workbench::spec::Position;
use qbheat_workbench::store::{Locator, Metric, NewRun, Status, Store};

const BIN: &str = env!("CARGO_BIN_EXE_workbench");

/// lin top-1 per position (corner, center) and seed.
const LIN: [[f64; 2]; 2] = [[0.50, 0.54], [0.61, 0.65]];

fn table(db: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["table", "--sweep", "t", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn markdown_latex_and_csv_hold_mean_std_n_and_the_best_in_bold() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut s = Store::open(Locator::Sqlite(db.clone())).unwrap();
    let mut runs = Vec::new();
    for pos in [Position::Corner, Position::Center] {
        for seed in 0..2 {
            runs.push(NewRun::from_config(&RunConfig {
                seed,
                masking: qbheat_workbench::config::MaskingConfig { position: pos },
                ..Default::default()
            }));
        }
    }
    s.register_sweep("t", "t.toml", &runs).unwrap();
    for (k, r) in runs.iter().enumerate() {
        let m = |key: &str, value: f64| Metric {
            key: key.into(),
            step: 10,
            epoch: 1,
            value,
            wall: 0.0,
        };
        s.log_metrics(
            &r.id,
            &[
                m("probe/lin/top1", LIN[k / 2][k % 2]),
                m("epoch/val_loss", 0.5 + 0.1 * k as f64),
            ],
        )
        .unwrap();
        s.set_status(&r.id, Status::Finished, None).unwrap();
    }
    drop(s);
    // by hand: corner 52.0 ± 2.8 (std of 50, 54 = 2.83), center 63.0 ± 2.8
    let (code, md, err) = table(&db, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains("| masking.position | n | lin top-1 (%) | val loss |"),
        "{md}"
    );
    assert!(
        md.contains("| corner | 2 | 52.0 ± 2.8 | **0.5500 ± 0.0707** |"),
        "{md}"
    );
    assert!(
        md.contains("| center | 2 | **63.0 ± 2.8** | 0.7500 ± 0.0707 |"),
        "{md}"
    );
    let (_, tex, _) = table(&db, &["--format", "latex", "--metrics", "lin"]);
    assert!(
        tex.contains("\\toprule") && tex.contains("\\bottomrule"),
        "{tex}"
    );
    assert!(
        tex.contains("masking.position & n & lin top-1 (\\%) \\\\"),
        "{tex}"
    );
    assert!(
        tex.contains("center & 2 & \\textbf{63.0 $\\pm$ 2.8} \\\\"),
        "{tex}"
    );
    assert!(!tex.contains("val loss"), "{tex}");
    let (_, csv, _) = table(&db, &["--format", "csv"]);
    let row = csv
        .lines()
        .find(|l| l.starts_with("masking.position,center,2,lin,"))
        .unwrap();
    let f: Vec<&str> = row.split(',').collect();
    assert!((f[4].parse::<f64>().unwrap() - 0.63).abs() < 1e-12, "{row}");
    assert!(
        (f[5].parse::<f64>().unwrap() - 0.02828427).abs() < 1e-6,
        "{row}"
    );
    // bad requests: one line, exit non-zero
    for (args, says) in [
        (vec!["--by", "seed"], "does not vary"),
        (vec!["--metrics", "acc"], "unknown metric"),
    ] {
        let (code, out, err) = table(&db, &args);
        assert_ne!(code, 0);
        assert!(
            out.is_empty() && err.contains(says) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}
