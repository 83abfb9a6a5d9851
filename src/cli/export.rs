//! `workbench export RUN`: a run's encoder (or generators) as safetensors for PyTorch.

use anyhow::Result;
use std::path::PathBuf;

use qbheat_workbench::analysis::export::{export, What};
use qbheat_workbench::store::Store;

use super::{DbArg, ExportFormat};

pub fn run(
    db: &DbArg,
    run: &str,
    with_sweep: bool,
    format: Option<ExportFormat>,
    what: &str,
    out: Option<PathBuf>,
) -> Result<()> {
    anyhow::ensure!(
        !with_sweep,
        "--sweep exports metrics; a RUN's export is its weights (drop one of them)"
    );
    anyhow::ensure!(
        matches!(format, None | Some(ExportFormat::Safetensors)),
        "a RUN's weights are exported as safetensors (csv and json export metrics: drop the RUN)"
    );
    let what = match what {
        "encoder" => What::Encoder,
        "generators" => What::Generators,
        other => anyhow::bail!("--what {other:?}: valid: encoder, generators"),
    };
    let store = Store::open_read_only(db.locator())?;
    let row = store.run(run)?;
    let latest = store.latest_metrics(&row.id)?;
    let out = out.unwrap_or_else(|| {
        let suffix = if what == What::Generators {
            "-generators"
        } else {
            ""
        };
        PathBuf::from("exports").join(format!("{}{suffix}.safetensors", row.id))
    });
    let e = export(&row, &latest, &out, what)?;
    println!(
        "run {} epoch {}: {} tensors, {} values -> {} (manifest {}{})",
        e.run,
        e.epoch,
        e.tensors,
        e.values,
        e.weights.display(),
        e.manifest.display(),
        e.check
            .as_ref()
            .map_or(String::new(), |c| format!(", check {}", c.display()))
    );
    Ok(())
}
