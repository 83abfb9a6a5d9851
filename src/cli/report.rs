//! `workbench report`: the HTML/SVG report of a sweep or a run.

use anyhow::Result;
use std::path::PathBuf;

use qbheat_workbench::store::Locator;

use qbheat_workbench::report::{self, Selection};
use qbheat_workbench::store::Store;

use super::DbArg;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The sweep to report on.
    #[arg(long, conflicts_with = "run")]
    sweep: Option<String>,
    /// One run (id or unique prefix) instead of a sweep.
    #[arg(long)]
    run: Option<String>,
    #[command(flatten)]
    db: DbArg,
    /// Output folder [default: reports/<sweep> or reports/run-<id>].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Builds and writes the report of `sel`; returns the page and the parts left out.
pub fn write(
    db: &Locator,
    sel: &Selection,
    out: Option<PathBuf>,
) -> Result<(PathBuf, Vec<String>)> {
    let store = Store::open_read_only(db)?;
    let report = report::build(&store, sel)?;
    let dir = match out {
        Some(d) => d,
        None => report::default_dir(&store, sel)?,
    };
    Ok((report::write(&report, &dir)?, report.missing))
}

pub fn run(a: ReportArgs) -> Result<()> {
    let db = a.db.locator();
    let sel = match (a.sweep, a.run) {
        (Some(s), _) => Selection::Sweep(s),
        (None, Some(r)) => Selection::Run(r),
        (None, None) => {
            let store = Store::open_read_only(&db)?;
            let sweeps: Vec<String> = store.sweeps()?.into_iter().map(|s| s.name).collect();
            anyhow::bail!(
                "name a sweep with --sweep (sweeps in {}: {}) or a run with --run",
                db,
                if sweeps.is_empty() {
                    "none".to_string()
                } else {
                    sweeps.join(", ")
                }
            );
        }
    };
    let (page, missing) = write(&db, &sel, a.out)?;
    println!("report: {}", page.display());
    for m in missing {
        println!("  left out: {m}");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchReportArgs {
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    #[arg(long, default_value_t = 1_000_000)]
    metrics: usize,
    /// Runs of a second sweep, each its own ablation cell with a finished run's pictures
    /// (the report's worst case for pictures; 0 = skip).
    #[arg(long, default_value_t = 1000)]
    cells: usize,
}

pub fn bench(a: BenchReportArgs) -> Result<()> {
    let dir = super::bench::tempdir()?;
    let result = qbheat_workbench::bench::report::run(&dir, a.runs, a.metrics, a.cells);
    let _ = std::fs::remove_dir_all(&dir);
    let r = result?;
    println!(
        "bench-report: runs={} rows={} seconds={:.2} figures={} largest_svg_kb={:.0} largest_svg={} max_points_per_line={} html_kb={:.0} png_files={} png_kb={:.0} cells={} cells_html_kb={:.0} cells_png_files={}",
        a.runs,
        r.rows,
        r.seconds,
        r.figures,
        r.largest_svg_bytes as f64 / 1024.0,
        r.largest_svg,
        r.max_points_per_line,
        r.html_bytes as f64 / 1024.0,
        r.images,
        r.image_bytes as f64 / 1024.0,
        r.cells,
        r.cells_html_bytes as f64 / 1024.0,
        r.cells_images
    );
    Ok(())
}
