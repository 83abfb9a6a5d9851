//! `workbench export`: every metric row of the selected runs (CSV), or runs with their params
//! and metrics (JSON).

use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

use super::{csv_field, Format};
use crate::store::{Metric, RunRow, Store};

#[derive(Serialize)]
struct ExportRun {
    run: RunRow,
    params: BTreeMap<String, String>,
    metrics: Vec<Metric>,
}

pub fn export(store: &Store, sweep: Option<&str>, format: Format) -> Result<String> {
    anyhow::ensure!(format != Format::Table, "export writes csv or json");
    let runs = store.runs(sweep, None)?;
    if format == Format::Json {
        let all: Vec<ExportRun> = runs
            .into_iter()
            .map(|r| {
                Ok(ExportRun {
                    params: store.params(&r.id)?.into_iter().collect(),
                    metrics: store.metrics(&r.id)?,
                    run: r,
                })
            })
            .collect::<Result<_>>()?;
        return Ok(serde_json::to_string_pretty(&all)? + "\n");
    }
    let mut out = String::from("run,sweep,status,key,step,epoch,value,wall\n");
    for r in &runs {
        for m in store.metrics(&r.id)? {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{:.3}",
                r.id,
                r.sweep,
                r.status,
                csv_field(&m.key),
                m.step,
                m.epoch,
                m.value,
                m.wall
            );
        }
    }
    Ok(out)
}
