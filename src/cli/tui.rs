//! `workbench tui` and `workbench bench-tui`.

use anyhow::Result;
use std::path::PathBuf;

use qbheat_workbench::bench::tui as tui_bench;

use super::DbArg;
use qbheat_workbench::store::Locator;

#[derive(clap::Args)]
pub struct TuiArgs {
    #[command(flatten)]
    db: DbArg,
    /// Only the runs of this sweep.
    #[arg(long)]
    sweep: Option<String>,
    /// Folder of the sweep files the launcher (`n`) offers.
    #[arg(long, default_value = "experiments")]
    experiments: PathBuf,
}

pub fn run(a: TuiArgs) -> Result<()> {
    qbheat_workbench::tui::run(&a.db.locator(), a.sweep, a.experiments)
}

#[derive(clap::Args)]
pub struct BenchTuiArgs {
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    #[arg(long, default_value_t = 1_000_000)]
    metrics: usize,
    /// Frames timed per tab.
    #[arg(long, default_value_t = 20)]
    frames: usize,
    /// A PostgreSQL server URL to benchmark on (a database of its own, dropped afterwards), or
    /// a fresh SQLite file [default: a temporary file].
    #[arg(long, value_name = "PATH|URL")]
    db: Option<Locator>,
}

pub fn bench(a: BenchTuiArgs) -> Result<()> {
    let scratch = super::bench::bench_store_at(a.db)?;
    let r = tui_bench::run(&scratch.locator, a.runs, a.metrics, a.frames)?;
    let tabs: Vec<String> = r
        .frame_ms
        .iter()
        .map(|(tab, ms)| format!("{}_ms={ms:.1}", tab.to_lowercase()))
        .collect();
    println!(
        "bench-tui: backend={} runs={} rows={} size=160x48 {} max_frame_ms={:.1} commit_to_screen_ms={:.0} notify={}",
        scratch.name(),
        a.runs,
        r.rows,
        tabs.join(" "),
        r.frame_ms.iter().map(|x| x.1).fold(0.0, f64::max),
        r.commit_to_screen_ms,
        r.notify
    );
    Ok(())
}
