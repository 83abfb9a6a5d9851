//! `workbench import FILE --as NAME`: a published training log as a read-only reference run.

use anyhow::Result;
use std::path::Path;

use qbheat_workbench::analysis::reference::{read, LogFormat};
use qbheat_workbench::store::Store;

use super::DbArg;

pub fn run(
    db: &DbArg,
    file: &Path,
    name: &str,
    format: Option<LogFormat>,
    map: &[(String, String)],
    replace: bool,
) -> Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "--as {name:?}: use 1 to 40 letters, digits or - _ ."
    );
    let format = format.unwrap_or_else(|| LogFormat::of(file));
    // the whole file is read and checked before the store is opened: a bad file stores nothing
    let rows = read(file, format, map)?;
    let id = format!("ref-{name}");
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let provenance = serde_json::json!({
        "reference": {
            "file": abs.display().to_string(),
            "format": if format == LogFormat::Csv { "csv" } else { "jsonl" },
            "map": map.iter().map(|(a, b)| format!("{a}={b}")).collect::<Vec<_>>(),
            "rows": rows.len(),
        }
    })
    .to_string();
    let replaced = Store::open(db.locator())?.import_reference(&id, &provenance, &rows, replace)?;
    let mut keys: Vec<&str> = rows.iter().map(|m| m.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let epochs = rows.iter().map(|m| m.epoch).max().unwrap_or(0);
    println!(
        "{} {id} (sweep references): {} rows, {epochs} epochs, keys {}",
        if replaced { "replaced" } else { "imported" },
        rows.len(),
        keys.join(", ")
    );
    Ok(())
}
