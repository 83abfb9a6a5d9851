//! `workbench bench-report`: report generation on a large store.

use anyhow::Result;
use std::path::Path;
use std::time::Instant;

use super::store::fill_store;
use crate::report::{self, Selection};
use crate::store::Store;

/// Result of the report benchmark.
#[derive(Debug, Clone)]
pub struct ReportBenchResult {
    pub rows: usize,
    pub seconds: f64,
    pub figures: usize,
    pub largest_svg_bytes: usize,
    pub largest_svg: String,
    pub max_points_per_line: usize,
    pub html_bytes: usize,
}

pub fn run(dir: &Path, runs: usize, rows: usize) -> Result<ReportBenchResult> {
    let db = dir.join("report.db");
    let (_, written) = fill_store(&crate::store::Locator::from(&db), runs, rows)?;
    let store = Store::open_read_only(&db)?;
    let t = Instant::now();
    let r = report::build(&store, &Selection::Sweep("bench".into()))?;
    report::write(&r, &dir.join("report"))?;
    let seconds = t.elapsed().as_secs_f64();
    let largest = r.figures.iter().max_by_key(|f| f.svg.len());
    let max_points = r
        .figures
        .iter()
        .flat_map(|f| f.svg.split("<polyline").skip(1))
        .map(|p| {
            p.split("points=\"")
                .nth(1)
                .and_then(|q| q.split('"').next())
                .map_or(0, |q| q.split_whitespace().count())
        })
        .max()
        .unwrap_or(0);
    Ok(ReportBenchResult {
        rows: written,
        seconds,
        figures: r.figures.len(),
        largest_svg_bytes: largest.map_or(0, |f| f.svg.len()),
        largest_svg: largest.map_or(String::new(), |f| f.name.clone()),
        max_points_per_line: max_points,
        html_bytes: r.html.len(),
    })
}
