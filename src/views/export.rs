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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_every_metric_row_and_json_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ids) = crate::views::fixture::store(dir.path());
        let csv = export(&s, Some("fx"), Format::Csv).unwrap();
        assert_eq!(csv.lines().count(), 1 + 3 * 9);
        assert!(
            csv.contains(&format!(
                "{},fx,finished,epoch/img_per_s,1,1,100,1001.000",
                ids[0]
            )),
            "{csv}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&export(&s, None, Format::Json).unwrap()).unwrap();
        assert_eq!(json[0]["run"]["status"], "finished");
        assert_eq!(json[0]["metrics"].as_array().unwrap().len(), 9);
        assert!(json[0]["metrics"][0]["value"].is_number());
        assert_eq!(json[0]["params"]["masking.position"], "corner");
        assert!(export(&s, None, Format::Table).is_err());
    }
}
