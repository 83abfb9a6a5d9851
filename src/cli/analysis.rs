//! `workbench spectrum` and `workbench analyze spatial`.

use anyhow::Result;

use qbheat_workbench::analysis::stored;
use qbheat_workbench::store::Store;
use qbheat_workbench::views::{self, Format};

use super::{emit, DbArg};

pub fn spectrum(db: &DbArg, run: &str, epoch: Option<i64>, format: Format) -> Result<()> {
    anyhow::ensure!(format != Format::Csv, "spectrum prints table or json");
    match stored::spectra(&db.locator(), run)? {
        Some(spectra) => emit(&views::spectrum::spectrum(&spectra, epoch, format)?),
        None => {
            let row = Store::open_read_only(db.locator())?.run(run)?;
            let why = format!(
                "run {} ({}): no spectrum yet (no epoch finished and no checkpoint)",
                row.id, row.status
            );
            // typed output stays typed: JSON gets the empty list, the words go to stderr
            if format == Format::Json {
                emit("[]\n");
                eprintln!("{why}");
            } else {
                println!("{why}");
            }
        }
    }
    Ok(())
}

pub fn spatial(db: &DbArg, run: &str, images: usize) -> Result<()> {
    anyhow::ensure!(images >= 1, "--images must be at least 1");
    let mut store = Store::open_existing(db.locator())?;
    let s = stored::spatial(&mut store, run, images)?;
    println!(
        "run {} epoch {}: mean |off-diagonal spatial correlation| over {} images = {:.4}",
        s.run, s.epoch, s.images, s.mean
    );
    let peak = *s.counts.iter().max().unwrap_or(&1).max(&1);
    for (k, c) in s.counts.iter().enumerate() {
        let bar = "#".repeat((40 * c / peak) as usize);
        println!(
            "  [{:.2}, {:.2})  {c:>5}  {bar}",
            k as f64 / 20.0,
            (k + 1) as f64 / 20.0
        );
    }
    Ok(())
}
