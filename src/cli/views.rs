//! `workbench runs`, `show`, `compare`, `export`: read-only views of the store.

use anyhow::Result;

use qbheat_workbench::store::{Status, Store};
use qbheat_workbench::views::{self, Format};

use super::{emit, DbArg};

fn open(db: &DbArg) -> Result<Store> {
    Store::open_read_only(db.locator())
}

pub fn runs(
    db: &DbArg,
    sweep: Option<&str>,
    status: Option<Status>,
    tag: Option<&str>,
    format: Format,
) -> Result<()> {
    let store = open(db)?;
    if let Some(s) = sweep {
        store.sweep(s)?;
    }
    emit(&views::runs::runs(&store, sweep, status, tag, format)?);
    Ok(())
}

pub fn show(db: &DbArg, run: &str) -> Result<()> {
    emit(&views::show::show(&open(db)?, run)?);
    Ok(())
}

pub fn compare(db: &DbArg, runs: &[String]) -> Result<()> {
    emit(&views::compare::compare(&open(db)?, runs)?);
    Ok(())
}

pub fn export(db: &DbArg, sweep: Option<&str>, format: Format) -> Result<()> {
    let store = open(db)?;
    if let Some(s) = sweep {
        store.sweep(s)?;
    }
    emit(&views::export::export(&store, sweep, format)?);
    Ok(())
}

pub fn table(
    db: &DbArg,
    sweep: &str,
    by: Option<&str>,
    metrics: &[String],
    format: views::table::TableFormat,
) -> Result<()> {
    emit(&views::table::table(
        &open(db)?,
        sweep,
        by,
        metrics,
        format,
    )?);
    Ok(())
}
