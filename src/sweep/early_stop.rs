//! The worker's side of early stopping: at each rung of its config's `[early_stop]`, its
//! setting (the config without the seed) is judged against the other settings of its sweep
//! that reached the rung, on the mean over each setting's seeds that reached it
//! ([`judge`]); the verdict is stored once per setting and rung ([`Store::decide`]) and every
//! later arrival (another seed, a resumed run) abides by it.

use anyhow::Result;
use std::collections::BTreeMap;

use crate::config::early_stop::judge;
use crate::config::identity::setting_id;
use crate::config::RunConfig;
use crate::store::{Claim, Decision, Store};

/// The decision that stops the run `claim` holds (config `cfg`, sweep `sweep`) after `epoch`
/// epochs, if any: a prune of its setting already stored at any rung (by another of its seeds),
/// else the first prune among the rungs ≤ `epoch` it decides now. `None`: it goes on.
pub fn verdict(
    store: &Store,
    claim: &Claim,
    sweep: &str,
    cfg: &RunConfig,
    epoch: usize,
) -> Result<Option<Decision>> {
    let Some(es) = &cfg.early_stop else {
        return Ok(None);
    };
    let setting = setting_id(cfg);
    let decided: Vec<Decision> = store
        .decisions(Some(sweep))?
        .into_iter()
        .filter(|d| d.setting == setting)
        .collect();
    if let Some(d) = decided.iter().find(|d| d.prune) {
        return Ok(Some(d.clone()));
    }
    let pending: Vec<usize> = es
        .rungs
        .iter()
        .copied()
        .filter(|&r| r <= epoch && !decided.iter().any(|d| d.rung == r as i64))
        .collect();
    if pending.is_empty() {
        return Ok(None);
    }
    // the sweep's runs under the same early stopping, by setting
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in store.runs(Some(sweep), None)? {
        let Ok(other) = serde_json::from_str::<RunConfig>(&row.config) else {
            continue;
        };
        if other.early_stop.as_ref() == Some(es) {
            settings.entry(setting_id(&other)).or_default().push(row.id);
        }
    }
    settings.entry(setting.clone()).or_default();
    for rung in pending {
        let values = store.values_at_epoch(&es.metric, rung as i64)?;
        let mean_of = |runs: &[String]| -> Option<(f64, usize)> {
            let v: Vec<f64> = runs.iter().filter_map(|r| values.get(r)).copied().collect();
            (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64, v.len()))
        };
        let Some((own, seeds)) = mean_of(&settings[&setting]) else {
            anyhow::bail!(
                "early stopping needs {} at epoch {rung}, which run {} did not write",
                es.metric,
                claim.run
            );
        };
        let others: Vec<f64> = settings
            .iter()
            .filter(|(s, _)| **s != setting)
            .filter_map(|(_, runs)| mean_of(runs).map(|(v, _)| v))
            .collect();
        let j = judge(own, &others, es.keep, es.mode);
        let d = store.decide(
            claim,
            &Decision {
                sweep: sweep.to_string(),
                setting: setting.clone(),
                rung: rung as i64,
                metric: es.metric.clone(),
                value: own,
                seeds: seeds as i64,
                rank: j.rank as i64,
                peers: j.peers as i64,
                keep_top: j.keep_top as i64,
                prune: !j.continues(),
                run: claim.run.clone(),
                created: 0.0,
            },
        )?;
        if d.prune {
            return Ok(Some(d));
        }
    }
    Ok(None)
}
