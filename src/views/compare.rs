//! `workbench compare RUN...`: the parameters that differ, then final metrics side by side.

use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

use super::render_table;
use crate::store::{RunRow, Store};

/// A metric's value in the comparison: one format per metric row (learning rates in
/// scientific notation, speeds and durations with one or two decimals, the rest with four).
fn shown(key: &str, v: f64) -> String {
    if key.ends_with("lr") {
        format!("{v:.3e}")
    } else if key.ends_with("img_per_s") {
        format!("{v:.1}")
    } else if key.ends_with("seconds") {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
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
        let mut row = vec![k.clone()];
        row.extend(
            metrics
                .iter()
                .map(|m| m.get(k).map_or(String::new(), |v| shown(k, *v))),
        );
        rows.push(row);
    }
    Ok(render_table(&header, &rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_params_then_metrics_with_one_format_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ids) = crate::views::fixture::store(dir.path());
        let out = compare(&s, &ids).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].contains(&ids[0]) && lines[0].contains(&ids[2]));
        let row = |k: &str| lines.iter().find(|l| l.starts_with(k)).copied().unwrap();
        let pos = row("masking.position");
        assert!(pos.contains("corner") && pos.contains("center") && pos.contains("corner+center"));
        assert!(row("seed").contains('2'));
        assert!(
            !out.contains("model.preset"),
            "equal params are left out:\n{out}"
        );
        assert!(row("status").contains("failed"));
        let img = row("epoch/img_per_s");
        assert!(
            img.contains("100.0") && img.contains("157.1") && img.contains("214.1"),
            "{img}"
        );
        assert!(row("epoch/val_loss").contains("0.5100"));
    }
}
