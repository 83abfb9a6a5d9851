//! `workbench compare RUN...`: the parameters that differ, then final metrics side by side.

use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

use super::render_table;
use crate::store::{RunRow, Store};

/// Decimals of a metric in the comparison (one format per metric row).
fn decimals(key: &str) -> usize {
    if key.ends_with("img_per_s") || key.ends_with("seconds") {
        1
    } else {
        4
    }
}

pub fn compare(store: &Store, ids: &[String]) -> Result<String> {
    let runs: Vec<RunRow> = ids.iter().map(|i| store.run(i)).collect::<Result<_>>()?;
    let params: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| store.params(&r.id).map(|p| p.into_iter().collect()))
        .collect::<Result<_>>()?;
    let mut header = vec!["".to_string()];
    header.extend(runs.iter().map(|r| r.id.clone()));
    let mut rows = Vec::new();
    let keys: BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    for k in keys {
        let vals: Vec<String> = params
            .iter()
            .map(|p| p.get(k).cloned().unwrap_or_default())
            .collect();
        if vals.windows(2).any(|w| w[0] != w[1]) {
            let mut row = vec![k.clone()];
            row.extend(vals);
            rows.push(row);
        }
    }
    rows.push(
        std::iter::once("status".to_string())
            .chain(runs.iter().map(|r| r.status.to_string()))
            .collect(),
    );
    let metrics: Vec<BTreeMap<String, f64>> = runs
        .iter()
        .map(|r| {
            store
                .latest_metrics(&r.id)
                .map(|m| m.into_iter().map(|m| (m.key, m.value)).collect())
        })
        .collect::<Result<_>>()?;
    let mkeys: BTreeSet<&String> = metrics.iter().flat_map(|m| m.keys()).collect();
    for k in mkeys {
        let d = decimals(k);
        let mut row = vec![k.clone()];
        row.extend(
            metrics
                .iter()
                .map(|m| m.get(k).map_or(String::new(), |v| format!("{v:.d$}"))),
        );
        rows.push(row);
    }
    Ok(render_table(&header, &rows))
}
