//! `workbench attention RUN`: the cross-attention maps of a stored run's encoder (Fig. 13–14),
//! written as PNG files and stored as the run's pictures.

use anyhow::{Context, Result};
use std::path::PathBuf;

use qbheat_workbench::analysis::attention::{for_run, normalised_entropy};
use qbheat_workbench::store::Store;

use super::DbArg;

pub fn run(
    db: &DbArg,
    run: &str,
    image: usize,
    block: Option<usize>,
    out: Option<PathBuf>,
) -> Result<()> {
    let locator = db.locator();
    let row = Store::open_read_only(&locator)?.run(run)?;
    // every check (run, checkpoint, image, block) comes before anything is written
    let a = for_run(&row, image, block)?;
    let dir = out.unwrap_or_else(|| PathBuf::from("reports/attention").join(&a.run));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    for p in &a.pictures {
        let name = format!(
            "block{}_{}.png",
            p.item + 1,
            p.kind.trim_start_matches("attention/")
        );
        let path = dir.join(name);
        std::fs::write(&path, &p.png)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Store::open_existing(&locator)?.log_pictures(&a.run, None, &a.pictures)?;
    println!(
        "run {} epoch {} image {}: {} blocks, figures in {}",
        a.run,
        a.epoch,
        a.image,
        a.blocks.len(),
        dir.display()
    );
    for b in &a.blocks {
        let m2f: Vec<f64> = (0..b.heads)
            .flat_map(|h| (0..b.tokens).map(move |t| (h, t)))
            .map(|(h, t)| normalised_entropy(b.m2f_map(h, t)))
            .collect();
        let hw = b.output.0 * b.output.1;
        let f2m: Vec<f64> = (0..b.heads)
            .flat_map(|h| (0..hw).map(move |p| (h, p)))
            .map(|(h, p)| {
                normalised_entropy(&b.f2m[(h * hw + p) * b.tokens..(h * hw + p + 1) * b.tokens])
            })
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        println!(
            "  block {:>2}  {}×{} → {}×{}  {} heads × {} tokens  entropy/uniform: M→F {:.3}  M←F {:.3}",
            b.block + 1,
            b.input.0,
            b.input.1,
            b.output.0,
            b.output.1,
            b.heads,
            b.tokens,
            mean(&m2f),
            mean(&f2m)
        );
    }
    Ok(())
}
