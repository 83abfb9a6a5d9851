//! `workbench tag`, `untag`, `note` and what shows them: `runs --tag`, `runs --format json`,
//! `show`, the report.

use std::process::Command;

use qbheat_workbench::config::RunConfig;
use qbheat_workbench::store::{Locator, NewRun, Store};

const BIN: &str = env!("CARGO_BIN_EXE_workbench");

fn wb(db: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tags_and_notes_from_the_command_line_show_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut s = Store::open(Locator::Sqlite(db.clone())).unwrap();
    let runs: Vec<NewRun> = (0..3u64)
        .map(|seed| {
            NewRun::from_config(&RunConfig {
                seed,
                ..Default::default()
            })
        })
        .collect();
    s.register_sweep("sw", "sw.toml", &runs).unwrap();
    drop(s);
    let (a, b) = (&runs[0].id, &runs[1].id);
    let (code, out, err) = wb(&db, &["tag", &a[..6], &b[..6], "keep"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tagged 2 runs with keep"), "{out}");
    assert_eq!(wb(&db, &["note", a, "best lin so far"]).0, 0);
    assert_eq!(wb(&db, &["tag", "--sweep", "sw", "ablation"]).0, 0);
    assert_eq!(wb(&db, &["note", "--sweep", "sw", "three seeds"]).0, 0);
    let (_, listed, _) = wb(&db, &["runs", "--tag", "keep"]);
    assert_eq!(listed.lines().count(), 3, "header + 2 runs:\n{listed}");
    assert!(listed.lines().next().unwrap().contains("tags"), "{listed}");
    let (_, json, _) = wb(&db, &["runs", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    let first = j
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == a.as_str())
        .unwrap();
    assert_eq!(first["tags"], serde_json::json!(["keep"]));
    assert_eq!(first["notes"], serde_json::json!(["best lin so far"]));
    let (_, shown, _) = wb(&db, &["show", a]);
    assert!(
        shown.contains("tags       keep") && shown.contains("best lin so far"),
        "{shown}"
    );
    assert!(wb(&db, &["untag", b, "keep"])
        .1
        .contains("removed keep from 1 of 1 runs"));
    assert_eq!(wb(&db, &["runs", "--tag", "keep"]).1.lines().count(), 2);
    let rep = dir.path().join("rep");
    let (code, _, err) = wb(
        &db,
        &["report", "--sweep", "sw", "--out", rep.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    assert!(
        html.contains("Tags and notes")
            && html.contains("three seeds")
            && html.contains("best lin so far")
    );
    // bad input: one line, nothing stored
    for (args, says) in [
        (vec!["tag", a.as_str(), "no spaces"], "use 1 to 64"),
        (vec!["tag", "nosuch", "x"], "no run"),
        (vec!["note", "--sweep", "nope", "x"], "no sweep"),
        (vec!["note", a.as_str(), " "], "needs some text"),
    ] {
        let (code, _, err) = wb(&db, &args);
        assert_ne!(code, 0, "{args:?}");
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let (_, json2, _) = wb(&db, &["runs", "--format", "json"]);
    let j2: serde_json::Value = serde_json::from_str(&json2).unwrap();
    let tags: usize = j2
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tags"].as_array().unwrap().len())
        .sum();
    assert_eq!(tags, 1, "nothing was added by the refused requests");
}
