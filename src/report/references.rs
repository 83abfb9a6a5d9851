//! Reference runs in the report (issue 26, point 3): each imported log (`workbench import`)
//! drawn dashed beside the report's runs on every epoch-level metric both have, with a
//! tolerance band around it and the runs' values outside the band marked.

use anyhow::Result;
use plotters::style::RGBColor;
use std::collections::BTreeMap;

use super::figure::{color, plot, Axes, Series};
use super::sections::Page;
use super::Data;
use crate::store::Metric;

/// Relative half-width of the tolerance band around a reference curve.
pub const TOLERANCE: f64 = 0.10;

/// Reference runs drawn per report at most.
pub const MAX_REFERENCES: usize = 3;

/// Runs of the report drawn against a reference at most.
const MAX_RUNS: usize = 8;

/// The reference's colour (a dark grey no run uses) and its band's.
const REFERENCE: RGBColor = RGBColor(60, 60, 60);
const BAND: RGBColor = RGBColor(170, 170, 170);
const OUTSIDE: RGBColor = RGBColor(200, 0, 0);

/// (epoch, value) of a run's `key` rows, the last value of each epoch.
fn by_epoch(rows: &[Metric]) -> Vec<(f64, f64)> {
    let mut m: BTreeMap<i64, f64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.epoch > 0) {
        m.insert(r.epoch, r.value);
    }
    m.into_iter().map(|(e, v)| (e as f64, v)).collect()
}

pub fn references(data: &Data, page: &mut Page) -> Result<()> {
    let refs: Vec<_> = data
        .store
        .runs(Some("references"), None)?
        .into_iter()
        .filter(|r| r.reference().is_some())
        .take(MAX_REFERENCES)
        .collect();
    if refs.is_empty() {
        return Ok(());
    }
    page.h2("Reference runs (imported logs)");
    let runs: Vec<_> = data
        .runs
        .iter()
        .filter(|r| r.reference().is_none())
        .take(MAX_RUNS)
        .collect();
    let mut drawn = 0;
    for (ri, reference) in refs.iter().enumerate() {
        let file = reference.reference().unwrap_or_default();
        let mut keys: Vec<String> = data
            .store
            .latest_metrics(&reference.id)?
            .into_iter()
            .map(|m| m.key)
            .collect();
        keys.sort();
        for key in keys {
            let ref_points = by_epoch(&data.store.series(&reference.id, &key, None)?);
            let mut series = Vec::new();
            let mut outside = 0;
            let mut total = 0;
            let mut marks = Vec::new();
            for (i, r) in runs.iter().enumerate() {
                let pts = by_epoch(&data.store.series(&r.id, &key, None)?);
                if pts.is_empty() {
                    continue;
                }
                for &(e, v) in &pts {
                    if let Some(&(_, rv)) = ref_points.iter().find(|p| p.0 == e) {
                        total += 1;
                        if (v - rv).abs() > TOLERANCE * rv.abs() {
                            outside += 1;
                            marks.push((e, v));
                        }
                    }
                }
                series.push(Series::line(r.id.clone(), color(i), 2, pts));
            }
            if series.is_empty() {
                continue;
            }
            let band = |k: f64| {
                ref_points
                    .iter()
                    .map(|&(e, v)| (e, v + k * TOLERANCE * v.abs()))
                    .collect()
            };
            let mut reference_line = Series::line(
                format!("{} (reference)", reference.id),
                REFERENCE,
                2,
                ref_points.clone(),
            );
            reference_line.dashed = true;
            series.push(reference_line);
            for (k, label) in [
                (1.0, format!("±{:.0} %", 100.0 * TOLERANCE)),
                (-1.0, String::new()),
            ] {
                let mut b = Series::line(label, BAND, 1, band(k));
                b.dashed = true;
                b.legend = k > 0.0;
                series.push(b);
            }
            if !marks.is_empty() {
                series.push(Series::scatter("outside the band", OUTSIDE, marks));
            }
            page.fig(plot(
                &format!("reference-{}-{}", ri + 1, key.replace('/', "-")),
                &format!(
                    "{key}: the runs against {} (dashed, imported from {file}); {outside} of {total} values at common epochs outside ±{:.0} % of it",
                    reference.id,
                    100.0 * TOLERANCE
                ),
                &Axes {
                    x: "epoch".into(),
                    y: key.clone(),
                    ..Default::default()
                },
                series,
            )?);
            drawn += 1;
        }
    }
    if drawn == 0 {
        page.missing(format!(
            "No run of this report shares a metric key with the imported references ({}); `workbench import --map old=new` renames a log's keys.",
            refs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}
