//! The identity of a run: a stable id hashed from the config's canonical form, and the
//! flattened `key = value` parameters stored with it.
//!
//! The canonical form leaves out every setting equal to its default, so adding a new setting
//! (with a default) to the schema keeps the id of every existing run: an upgraded binary
//! resumes a finished sweep instead of running it again. Changing a default value is the one
//! schema change that keeps ids while changing what they mean; treat it like renaming a key.
//!
//! Probe settings are evaluations of a run, not part of what it trains: the `[probe]` table
//! stays out of the id, so adding a probe width to a finished run probes it again without
//! pre-training again. The supervised baseline is the exception: its probe settings are its
//! training recipe, so they stay in its id (all but which probes run: `kinds`,
//! `tran_widths`, `tran_depth`). Ids made while `[probe]` was hashed are found by
//! [`run_id_with_probe`] and renamed once (`sweep::legacy`).

use serde_json::Value;

use super::RunConfig;

/// FNV-1a 64-bit: a hash that is stable across Rust versions and platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Removes from `v` every leaf equal to the same path in `default`; drops emptied tables.
fn prune(v: &mut Value, default: &Value) {
    if let (Value::Object(map), Value::Object(def)) = (&mut *v, default) {
        map.retain(|k, child| match def.get(k) {
            Some(d) if d == child => false,
            Some(d) => {
                prune(child, d);
                !matches!(child, Value::Object(m) if m.is_empty())
            }
            None => true,
        });
    }
}

/// The settings of `cfg` that differ from the defaults, as sorted JSON text: what its id
/// hashes (the probe settings left out, see the module doc).
pub fn canonical(cfg: &RunConfig) -> String {
    let to_json = |c: &RunConfig| serde_json::to_value(c).unwrap_or(Value::Null);
    let (mut v, mut d) = (to_json(cfg), to_json(&RunConfig::default()));
    for j in [&mut v, &mut d] {
        let Some(obj) = j.as_object_mut() else {
            continue;
        };
        if cfg.method == crate::spec::Method::Supervised {
            if let Some(probe) = obj.get_mut("probe").and_then(Value::as_object_mut) {
                for key in ["kinds", "tran_widths", "tran_depth"] {
                    probe.remove(key);
                }
            }
        } else {
            obj.remove("probe");
        }
    }
    prune(&mut v, &d);
    v.to_string()
}

/// The canonical text of the id scheme before the probe settings left the id (every
/// setting that differs from the defaults, `[probe]` included).
fn canonical_with_probe(cfg: &RunConfig) -> String {
    let to_json = |c: &RunConfig| serde_json::to_value(c).unwrap_or(Value::Null);
    let mut v = to_json(cfg);
    prune(&mut v, &to_json(&RunConfig::default()));
    v.to_string()
}

/// Stable id of a resolved config (the seed is part of it): 12 hex digits.
pub fn run_id(cfg: &RunConfig) -> String {
    format!("{:012x}", fnv1a(canonical(cfg).as_bytes()) >> 16)
}

/// The id the workbench gave `cfg` while its probe settings were hashed too.
pub fn run_id_with_probe(cfg: &RunConfig) -> String {
    format!("{:012x}", fnv1a(canonical_with_probe(cfg).as_bytes()) >> 16)
}

/// The id of a run's setting (what a sweep point is, seeds apart): the run id of its config
/// with seed 0. Seeds of one setting share it.
pub fn setting_id(cfg: &RunConfig) -> String {
    let mut c = cfg.clone();
    c.seed = 0;
    run_id(&c)
}

/// The id the workbench gave a config before ids became canonical (hash of the whole
/// serialised config); used once to adopt runs of older stores.
pub fn legacy_run_id(config_json: &str) -> String {
    format!("{:012x}", fnv1a(config_json.as_bytes()) >> 16)
}

/// `key = value` pairs of every leaf of a config, dotted, values as TOML writes them.
pub fn flatten(cfg: &RunConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(cfg) {
        flatten_table("", &t, &mut out);
    }
    out.into_iter().map(|(k, v)| (k, display(&v))).collect()
}

/// A TOML value as shown to users: strings without quotes.
pub fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Flattens nested tables into dotted `(key, value)` leaves.
pub fn flatten_table(prefix: &str, t: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => flatten_table(&key, inner, out),
            other => out.push((key, other.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_do_not_enter_the_id() {
        let base = RunConfig::default();
        assert_eq!(canonical(&base), "{}");
        let mut a = base.clone();
        a.train.epochs = 3;
        a.seed = 4;
        assert_eq!(canonical(&a), r#"{"seed":4,"train":{"epochs":3}}"#);
        // setting a value to its default is the same run
        let mut b = a.clone();
        b.predictor.dim = crate::config::PredictorConfig::default().dim;
        assert_eq!(run_id(&a), run_id(&b));
        let mut c = a.clone();
        c.train.base_lr *= 1.0000001;
        assert_ne!(run_id(&a), run_id(&c));
    }

    /// A config type of an older binary: the same settings minus one that was added later.
    #[derive(serde::Serialize, serde::Deserialize, Default)]
    #[serde(default)]
    struct Older {
        seed: u64,
        train: OlderTrain,
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct OlderTrain {
        epochs: usize,
    }
    impl Default for OlderTrain {
        fn default() -> Self {
            OlderTrain {
                epochs: crate::config::TrainConfig::default().epochs,
            }
        }
    }

    #[test]
    fn adding_a_defaulted_setting_keeps_ids() {
        // an "old" config that only knew seed and train.epochs, written by an old binary...
        let old = Older {
            seed: 7,
            train: OlderTrain { epochs: 12 },
        };
        let old_json = serde_json::to_value(&old).unwrap();
        let mut old_default = serde_json::to_value(Older::default()).unwrap();
        let mut pruned = old_json.clone();
        prune(&mut pruned, &old_default);
        // ...hashes exactly like the same settings in today's schema, which has dozens of
        // settings the old one lacked (all at their defaults)
        let mut now = RunConfig {
            seed: 7,
            ..Default::default()
        };
        now.train.epochs = 12;
        assert_eq!(pruned.to_string(), canonical(&now));
        // and a new setting left at its default does not move the id either
        old_default = serde_json::to_value(RunConfig::default()).unwrap();
        let mut full = serde_json::to_value(&now).unwrap();
        prune(&mut full, &old_default);
        assert_eq!(full.to_string(), canonical(&now));
    }

    #[test]
    fn probe_settings_stay_out_of_the_id() {
        let mut a = RunConfig::default();
        a.train.epochs = 3;
        let mut b = a.clone();
        b.probe.kinds = vec![crate::spec::ProbeKind::Lin, crate::spec::ProbeKind::Tran1];
        b.probe.tran_widths = vec![64, 256];
        b.probe.lin_epochs = 90;
        assert_eq!(run_id(&a), run_id(&b));
        // the old scheme told them apart, and gave the default-probe run the same id as now
        assert_ne!(run_id_with_probe(&a), run_id_with_probe(&b));
        assert_eq!(run_id_with_probe(&a), run_id(&a));
        // the supervised baseline trains with its probe recipe: that stays in its id
        a.method = crate::spec::Method::Supervised;
        b.method = crate::spec::Method::Supervised;
        assert_ne!(run_id(&a), run_id(&b));
        b.probe.lin_epochs = a.probe.lin_epochs;
        assert_eq!(run_id(&a), run_id(&b), "which probes run is not training");
        b.probe.finetune_epochs += 1;
        assert_ne!(run_id(&a), run_id(&b));
    }

    #[test]
    fn flatten_lists_every_leaf() {
        let flat = flatten(&RunConfig::default());
        assert!(flat.contains(&("masking.position".into(), "corner".into())));
        assert!(flat.contains(&("predictor.models".into(), "2".into())));
        assert!(flat.iter().any(|(k, _)| k == "train.base_lr"));
    }
}
