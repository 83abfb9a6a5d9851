//! The feature monitor in the report: kNN top-1 against the epoch per setting, how well the
//! last kNN top-1 ranks the runs the way the lin probe does (Spearman), and the runs whose
//! features look collapsed.

use anyhow::Result;

use super::html::{self, Td};
use super::sections::{curves_by_setting, CurveSpec, Page};
use super::Data;
use crate::analysis::collapse::collapse_reason;
use crate::analysis::monitor::spearman;
use crate::store::Status;

pub fn monitor(data: &Data, page: &mut Page) -> Result<()> {
    page.h2("Feature monitor (kNN top-1, effective rank)");
    let spec = CurveSpec {
        key: "monitor/knn/top1",
        what: "kNN top-1",
        stem: "monitor-knn",
        weight: 0.0,
        x: "epoch",
        scale: 100.0,
        unit: " (%)",
    };
    if !curves_by_setting(data, page, &spec)? {
        page.missing(
            "No run stored the feature monitor (analysis.monitor_every; off for data without \
             labels and in runs from before it)."
                .into(),
        );
        return Ok(());
    }
    // does the monitor rank the runs as the probe does?
    let pairs: Vec<(f64, f64)> = data
        .runs
        .iter()
        .filter(|r| r.status == Status::Finished)
        .filter_map(|r| {
            Some((
                data.value(&r.id, "monitor/knn/top1")?,
                data.value(&r.id, "probe/lin/top1")?,
            ))
        })
        .collect();
    let (knn, lin): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    match spearman(&knn, &lin) {
        Some(rho) => page.raw(&format!(
            "<p>Last-epoch kNN top-1 against lin top-1 over {} finished runs: Spearman ρ = \
             {rho:.3} (1: the monitor orders the runs exactly as the probe does).</p>\n",
            pairs.len()
        )),
        None => page.missing(format!(
            "Spearman's ρ between kNN and lin top-1 needs 3 finished runs with both; {} have them.",
            pairs.len()
        )),
    }
    let mut collapsed = Vec::new();
    for r in &data.runs {
        let series = |key: &str| -> Result<Vec<(i64, f64)>> {
            Ok(data
                .store
                .series(&r.id, key, None)?
                .into_iter()
                .map(|m| (m.epoch, m.value))
                .collect())
        };
        let erank = series("monitor/erank")?;
        if erank.is_empty() {
            continue;
        }
        if let Some(why) = collapse_reason(&erank, &series("monitor/feature_std")?) {
            collapsed.push(vec![Td::plain(r.id.clone()), Td::plain(why)]);
        }
    }
    if collapsed.is_empty() {
        page.raw(
            "<p>No run's features collapsed (effective rank and feature std stay above a \
                  quarter of their peaks).</p>\n",
        );
    } else {
        page.raw(&html::table(
            "Runs whose features look collapsed",
            &["run".into(), "why".into()],
            &collapsed,
        ));
    }
    Ok(())
}
