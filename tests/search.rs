//! Random search with early stopping (ASHA) end to end: trials drawn the same on every run of
//! the file, pruned runs keep what they wrote, decisions made once and kept across a kill -9
//! of the sweep mid-rung, and bad `[search]` / `[early_stop]` sections refused where written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod common;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qbheat_workbench::config::identity::setting_id;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::store::{Decision, Status, Store};
use qbheat_workbench::sweep::spec::Sweep;

const BIN: &str = env!("CARGO_BIN_EXE_workbench");

/// The micro model on built-in data (3 epochs), the grid point `corner` and `search` and
/// `early_stop` as given.
fn search_file(dir: &Path, search: &str, early_stop: &str) -> PathBuf {
    let extra = format!(
        "[base.analysis]\npictures_every = 0\nspectrum_every = 0\n[base.probe]\nkinds = []\n\
         {search}\n{early_stop}\n"
    );
    common::tiny_sweep(dir, "asha", 3, 128, r#""corner""#, &extra)
}

const SEARCH: &str = r#"[search]
trials = 6
seed = 5
"train.base_lr" = { min = 1e-4, max = 3e-3, log = true }
"decoder.depth" = [1, 2]"#;

const EARLY_STOP: &str = r#"[early_stop]
metric = "monitor/knn/top1"
rungs = [1, 2]
keep = 2"#;

fn sweep(dir: &Path, file: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .arg("sweep")
        .arg(file)
        .arg("--db")
        .arg(dir.join("w.db"))
        .arg("--runs-dir")
        .arg(dir.join("runs"))
        .arg("--jobs")
        .arg("1");
    cmd
}

/// Decisions by (setting, rung).
fn decisions(store: &Store) -> BTreeMap<(String, i64), Decision> {
    store
        .decisions(Some("asha"))
        .unwrap()
        .into_iter()
        .map(|d| ((d.setting.clone(), d.rung), d))
        .collect()
}

#[test]
fn a_killed_asha_search_resumes_with_the_same_trials_and_every_decision_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = search_file(dir.path(), SEARCH, EARLY_STOP);
    let planned = Sweep::load(&file).unwrap();
    // the grid's one point and the search's six trials
    assert_eq!(planned.runs.len(), 7);
    assert_eq!(planned.searched, ["decoder.depth", "train.base_lr"]);
    let db = dir.path().join("w.db");

    // kill -9 the sweep and its worker once a decision is stored and a run is mid-rung
    let mut child = sweep(dir.path(), &file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let before = loop {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "no decision in 300 s"
        );
        std::thread::sleep(Duration::from_millis(200));
        let Ok(store) = Store::open_read_only(&db) else {
            continue;
        };
        let Ok(d) = store.decisions(Some("asha")) else {
            continue;
        };
        let running = store.runs(None, Some(Status::Running)).unwrap_or_default();
        if d.len() >= 2 && !running.is_empty() {
            for r in running {
                if let Some(pid) = r.pid {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
            let _ = child.kill();
            break decisions(&store);
        }
    };
    child.wait().unwrap();

    // the rerun draws the same trials and keeps every decision made before the kill
    let out = sweep(dir.path(), &file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_read_only(&db).unwrap();
    let runs = store.runs(Some("asha"), None).unwrap();
    let ids: BTreeSet<String> = runs.iter().map(|r| r.id.clone()).collect();
    let expected: BTreeSet<String> = planned.runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, expected);
    let after = decisions(&store);
    for (k, d) in &before {
        let kept = &after[k];
        assert_eq!(
            (kept.value, kept.prune, kept.rank, kept.peers, kept.created),
            (d.value, d.prune, d.rank, d.peers, d.created),
            "decision {k:?} changed"
        );
    }
    // every run finished or was pruned; every rung a run reached is decided for its setting
    let mut pruned = 0;
    for r in &runs {
        let cfg: RunConfig = serde_json::from_str(&r.config).unwrap();
        let setting = setting_id(&cfg);
        let knn = store.series(&r.id, "monitor/knn/top1", None).unwrap();
        let reached: Vec<i64> = knn.iter().map(|m| m.epoch).collect();
        match r.status {
            Status::Finished => {
                assert_eq!(reached, [1, 2, 3], "{}", r.id);
                for rung in [1, 2] {
                    let d = &after[&(setting.clone(), rung)];
                    assert!(!d.prune);
                    // the setting's value at the rung is the run's own kNN there (one seed)
                    assert_eq!(d.value, knn[rung as usize - 1].value);
                }
            }
            Status::Pruned => {
                pruned += 1;
                let why = r.error.clone().unwrap();
                let rung = *reached.last().unwrap();
                assert!(
                    why.starts_with(&format!("pruned at epoch {rung}:")),
                    "{why}"
                );
                let d = &after[&(setting.clone(), rung)];
                assert!(d.prune && d.rank > d.keep_top, "{d:?}");
                // what it wrote is kept: its epochs' rows and a checkpoint
                assert_eq!(
                    store.series(&r.id, "epoch/val_loss", None).unwrap().len(),
                    rung as usize
                );
                assert!(!store.artifacts(&r.id).unwrap().is_empty());
            }
            other => panic!("run {} ended {other}", r.id),
        }
    }
    assert!(pruned >= 1, "no trial was pruned");
    // a third sweep has nothing to do and decides nothing new
    let out = sweep(dir.path(), &file).output().unwrap();
    assert!(out.status.success());
    assert_eq!(decisions(&Store::open_read_only(&db).unwrap()), after);
    // the report lists the trials and the decisions
    let out = common::workbench_in(
        dir.path(),
        &db,
        &["report", "--sweep", "asha", "--out", "report"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(dir.path().join("report/index.html")).unwrap();
    assert!(html.contains("The search&#39;s 7 trials") || html.contains("The search's 7 trials"));
    assert!(html.contains("Early-stopping decisions on monitor/knn/top1"));
    assert!(html.contains("Parallel coordinates"));
}

#[test]
fn bad_search_and_early_stop_sections_are_one_located_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 8] = [
        (
            "[search]\ntrials = 2\n\"train.base_lr\" = { min = 1e-2, max = 1e-4 }",
            "",
            "min 0.01 > max 0.0001",
        ),
        (
            "[search]\ntrials = 2\n\"train.base_lr\" = { min = 0.0, max = 1e-2, log = true }",
            "",
            "log = true needs min > 0",
        ),
        (
            "[search]\ntrials = 2\n\"train.bogus\" = [1, 2]",
            "",
            "unknown config path `train.bogus`",
        ),
        (
            "[search]\ntrials = 0\n\"decoder.depth\" = [1]",
            "",
            "trials",
        ),
        (
            SEARCH,
            "[early_stop]\nmetric = \"val_loss\"\nrungs = [1, 4]\nkeep = 3",
            "rung 4 is past the last epoch (3",
        ),
        (
            SEARCH,
            "[early_stop]\nmetric = \"probe/lin/top1\"\nrungs = [1]\nkeep = 3",
            "never write `probe/lin/top1`",
        ),
        (
            SEARCH,
            "[early_stop]\nmetric = \"val_loss\"\nrungs = [1]\nkeep = 1",
            "keeps every run",
        ),
        (
            SEARCH,
            "[early_stop]\nmetric = \"val_loss\"\nrungs = [1]\nkeep = 2\npatience = 3",
            "unknown field `patience`",
        ),
    ];
    let db = dir.path().join("w.db");
    for (search, early_stop, expect) in cases {
        let file = search_file(dir.path(), search, early_stop);
        let text = std::fs::read_to_string(&file).unwrap();
        let out = sweep(dir.path(), &file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expect}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{expect}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        // the error points at the line that says it
        let line: usize = err
            .split("asha.toml:")
            .nth(1)
            .and_then(|s| s.split(':').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no asha.toml:LINE in {err}"));
        let written = text.lines().nth(line - 1).unwrap_or("");
        let key = expect.split('`').nth(1).unwrap_or("");
        assert!(
            written.contains("min")
                || written.contains("trials")
                || written.contains("rungs")
                || written.contains("metric")
                || written.contains("keep")
                || written.contains("patience")
                || (!key.is_empty() && written.contains(key)),
            "{expect}: line {line} is {written:?}"
        );
        assert!(
            !db.exists()
                || Store::open_read_only(&db)
                    .unwrap()
                    .runs(None, None)
                    .unwrap()
                    .is_empty()
        );
    }
}
