//! Stores made before run ids became canonical: their runs are adopted under today's ids the
//! next time their sweep runs (see [`crate::config::identity`]).
//!
//! An old run's id is the hash of its whole stored config JSON. Its config is read back with
//! the settings it did not know set to what that older binary did (AdamW decayed every
//! parameter; probes had no dropout; fine-tuning started its decoder fresh), and the run is
//! renamed to the canonical id of that config. A run whose behaviour today's defaults would
//! change therefore gets an id of its own, and the planned run with today's defaults runs anew.

use anyhow::Result;
use serde_json::Value;

use crate::config::identity::{legacy_run_id, run_id, run_id_with_probe};
use crate::config::RunConfig;
use crate::store::Store;

/// Settings added after the first id scheme, with the behaviour older binaries had.
fn legacy_behaviour() -> [(&'static str, &'static str, Value); 4] {
    [
        ("train", "decay_all", Value::from(true)),
        ("probe", "finetune_from_tran1", Value::from(false)),
        ("probe", "tran_dropout", Value::from(0.0)),
        ("probe", "finetune_dropout", Value::from(0.0)),
    ]
}

/// Today's config of a run stored by an older binary.
pub fn legacy_config(json: &str) -> Option<RunConfig> {
    let mut v: Value = serde_json::from_str(json).ok()?;
    let obj = v.as_object_mut()?;
    for (table, key, old) in legacy_behaviour() {
        let t = obj.get_mut(table)?.as_object_mut()?;
        t.entry(key).or_insert(old);
    }
    serde_json::from_value(v).ok()
}

/// Renames the runs of `sweep` that still carry an old-scheme id. Returns a line per run.
pub fn adopt_legacy_runs(store: &mut Store, sweep: &str) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for row in store.runs(Some(sweep), None)? {
        if row.id != legacy_run_id(&row.config) {
            continue;
        }
        let Some(cfg) = legacy_config(&row.config) else {
            continue;
        };
        let id = run_id(&cfg);
        if id != row.id && store.rename_run(&row.id, &id)? {
            lines.push(format!(
                "adopted  {} as {id} (run ids are canonical since this version)",
                row.id
            ));
        }
    }
    Ok(lines)
}

/// Renames the runs of `sweep` whose id still hashes their probe settings (made before
/// `[probe]` left the id). Two runs that differed only in probe settings are one training:
/// the first keeps the new id, the other keeps its old one (and says so). Returns a line per
/// run.
pub fn adopt_probe_split(store: &mut Store, sweep: &str) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for row in store.runs(Some(sweep), None)? {
        let Ok(cfg) = serde_json::from_str::<RunConfig>(&row.config) else {
            continue;
        };
        let id = run_id(&cfg);
        if row.id == id || row.id != run_id_with_probe(&cfg) {
            continue;
        }
        if store.rename_run(&row.id, &id)? {
            lines.push(format!(
                "adopted  {} as {id} (probe settings are no longer part of a run's id)",
                row.id
            ));
        } else {
            lines.push(format!(
                "kept     {} under its id: {id} holds the same pre-training (the two differ only in probe settings)",
                row.id
            ));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRun;

    #[test]
    fn old_runs_get_their_canonical_id_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("l.db")).unwrap();
        // the JSON an older binary stored: no decay_all, no probe dropout keys
        let mut cfg = RunConfig::default();
        cfg.train.epochs = 3;
        let mut v = serde_json::to_value(&cfg).unwrap();
        let t = v["train"].as_object_mut().unwrap();
        t.remove("decay_all");
        let p = v["probe"].as_object_mut().unwrap();
        for k in ["finetune_from_tran1", "finetune_dropout", "tran_dropout"] {
            p.remove(k);
        }
        let json = v.to_string();
        let old_id = legacy_run_id(&json);
        store
            .register_sweep(
                "s",
                "s.toml",
                &[NewRun {
                    id: old_id.clone(),
                    seed: 0,
                    config: json.clone(),
                    params: vec![],
                }],
            )
            .unwrap();
        let lines = adopt_legacy_runs(&mut store, "s").unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let adopted = legacy_config(&json).unwrap();
        assert!(adopted.train.decay_all && !adopted.probe.finetune_from_tran1);
        let new_id = run_id(&adopted);
        assert!(store.run(&new_id).is_ok());
        // the run trained with the old behaviour is not today's default run
        assert_ne!(new_id, run_id(&cfg));
        assert!(adopt_legacy_runs(&mut store, "s").unwrap().is_empty());
    }

    #[test]
    fn runs_hashed_with_their_probe_settings_are_renamed_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("p.db")).unwrap();
        let mut a = RunConfig::default();
        a.train.epochs = 2;
        a.probe.kinds = vec![crate::spec::ProbeKind::Lin];
        let mut b = a.clone();
        b.probe.lin_epochs = 5;
        let old = |c: &RunConfig| NewRun {
            id: run_id_with_probe(c),
            seed: 0,
            config: serde_json::to_string(c).unwrap(),
            params: vec![],
        };
        assert_ne!(run_id_with_probe(&a), run_id_with_probe(&b));
        store
            .register_sweep("s", "s.toml", &[old(&a), old(&b)])
            .unwrap();
        let lines = adopt_probe_split(&mut store, "s").unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("adopted"), "{lines:?}");
        assert!(lines[1].starts_with("kept"), "{lines:?}");
        assert!(store.run(&run_id(&a)).is_ok());
        assert_eq!(run_id(&a), run_id(&b), "one pre-training");
        // the one that could not take the id keeps its old one, and is reported again
        assert!(store.run(&run_id_with_probe(&b)).is_ok());
        let again = adopt_probe_split(&mut store, "s").unwrap();
        assert!(again.iter().all(|l| l.starts_with("kept")), "{again:?}");
    }
}
