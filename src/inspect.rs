//! Read-only views of the store: `runs`, `show`, `compare`, `export`.

use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

use crate::store::{RunRow, Status, Store};

/// Output formats of the listing verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Config keys shown as columns of the run table.
const PARAM_COLUMNS: [(&str, &str); 5] = [
    ("model.preset", "preset"),
    ("masking.position", "position"),
    ("predictor.models", "models"),
    ("train.epochs", "epochs"),
    ("seed", "seed"),
];

/// Metrics shown as columns of the run table.
const METRIC_COLUMNS: [(&str, &str); 3] = [
    ("epoch/train_loss", "train_loss"),
    ("epoch/val_loss", "val_loss"),
    ("epoch/img_per_s", "img/s"),
];

fn json_path(cfg: &serde_json::Value, dotted: &str) -> String {
    let v = dotted.split('.').try_fold(cfg, |v, k| v.get(k));
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Renders rows as an aligned text table.
pub fn render_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(header, &mut out);
    for r in rows {
        line(r, &mut out);
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn render_csv(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows.iter().map(|r| r.as_slice())) {
        let _ = writeln!(
            out,
            "{}",
            r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",")
        );
    }
    out
}

fn fmt_value(v: Option<&f64>) -> String {
    v.map_or(String::new(), |x| {
        if x.abs() >= 100.0 {
            format!("{x:.0}")
        } else if *x != 0.0 && x.abs() < 1e-3 {
            format!("{x:.3e}")
        } else {
            format!("{x:.4}")
        }
    })
}

/// `workbench runs`: one line per run.
pub fn runs(
    store: &Store,
    sweep: Option<&str>,
    status: Option<Status>,
    format: Format,
) -> Result<String> {
    let rows = store.runs(sweep, status)?;
    let metrics: Vec<_> = METRIC_COLUMNS
        .iter()
        .map(|(k, _)| store.latest_values(k))
        .collect::<Result<_>>()?;
    let mut header: Vec<String> = ["id", "sweep", "status"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(PARAM_COLUMNS.iter().map(|(_, h)| h.to_string()));
    header.extend(METRIC_COLUMNS.iter().map(|(_, h)| h.to_string()));
    header.push("error".into());
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let cfg: serde_json::Value = serde_json::from_str(&r.config).unwrap_or_default();
            let mut line = vec![r.id.clone(), r.sweep.clone(), r.status.clone()];
            line.extend(PARAM_COLUMNS.iter().map(|(k, _)| json_path(&cfg, k)));
            line.extend(metrics.iter().map(|m| fmt_value(m.get(&r.id))));
            line.push(r.error.clone().unwrap_or_default());
            line
        })
        .collect();
    Ok(match format {
        Format::Table => render_table(&header, &table),
        Format::Csv => render_csv(&header, &table),
        Format::Json => {
            let objs: Vec<BTreeMap<&str, &str>> = table
                .iter()
                .map(|r| {
                    header
                        .iter()
                        .map(|h| h.as_str())
                        .zip(r.iter().map(|c| c.as_str()))
                        .collect()
                })
                .collect();
            serde_json::to_string_pretty(&objs)? + "\n"
        }
    })
}

/// `workbench show RUN`: config, status, latest metrics, artifacts.
pub fn show(store: &Store, id: &str) -> Result<String> {
    let r = store.run(id)?;
    let mut out = String::new();
    let _ = writeln!(out, "run        {}", r.id);
    let _ = writeln!(out, "sweep      {}", r.sweep);
    let _ = writeln!(out, "status     {}", r.status);
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error      {e}");
    }
    let _ = writeln!(out, "attempts   {}", r.attempts);
    let _ = writeln!(
        out,
        "backend    {} ({})",
        r.backend.as_deref().unwrap_or("-"),
        r.device.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "binary     {}", r.git_commit.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "folder     {}", r.out_dir.as_deref().unwrap_or("-"));
    if let (Some(s), e) = (r.started, r.ended) {
        let end = e.unwrap_or_else(crate::store::now);
        let _ = writeln!(out, "duration   {:.1}s", end - s);
    }
    let _ = writeln!(out, "\nconfig");
    for (k, v) in store.params(&r.id)? {
        let _ = writeln!(out, "  {k} = {v}");
    }
    let _ = writeln!(out, "\nlatest metrics");
    for m in store.latest_metrics(&r.id)? {
        let _ = writeln!(
            out,
            "  {:<24} {:>12.6}  (epoch {}, step {})",
            m.key, m.value, m.epoch, m.step
        );
    }
    let _ = writeln!(out, "\nartifacts");
    for (kind, path, epoch) in store.artifacts(&r.id)? {
        let _ = writeln!(
            out,
            "  {kind:<12} {path} (epoch {})",
            epoch.map_or("-".into(), |e| e.to_string())
        );
    }
    Ok(out)
}

/// `workbench compare RUN...`: the parameters that differ, then final metrics side by side.
pub fn compare(store: &Store, ids: &[String]) -> Result<String> {
    let runs: Vec<RunRow> = ids.iter().map(|i| store.run(i)).collect::<Result<_>>()?;
    let params: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| store.params(&r.id).map(|p| p.into_iter().collect()))
        .collect::<Result<_>>()?;
    let mut header = vec!["".to_string()];
    header.extend(runs.iter().map(|r| r.id.clone()));
    let mut rows = Vec::new();
    let keys: std::collections::BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    for k in keys {
        let vals: Vec<String> = params
            .iter()
            .map(|p| p.get(k).cloned().unwrap_or_default())
            .collect();
        if vals.windows(2).any(|w| w[0] != w[1]) {
            let mut row = vec![k.clone()];
            row.extend(vals);
            rows.push(row);
        }
    }
    rows.push(
        std::iter::once("status".to_string())
            .chain(runs.iter().map(|r| r.status.clone()))
            .collect(),
    );
    let metrics: Vec<BTreeMap<String, f64>> = runs
        .iter()
        .map(|r| {
            store
                .latest_metrics(&r.id)
                .map(|m| m.into_iter().map(|m| (m.key, m.value)).collect())
        })
        .collect::<Result<_>>()?;
    let mkeys: std::collections::BTreeSet<&String> =
        metrics.iter().flat_map(|m| m.keys()).collect();
    for k in mkeys {
        let mut row = vec![k.clone()];
        row.extend(metrics.iter().map(|m| fmt_value(m.get(k))));
        rows.push(row);
    }
    Ok(render_table(&header, &rows))
}

#[derive(Serialize)]
struct ExportRun {
    run: RunRow,
    params: BTreeMap<String, String>,
    metrics: Vec<crate::store::Metric>,
}

/// `workbench export`: every metric row of the selected runs (CSV) or runs with params and
/// metrics (JSON).
pub fn export(store: &Store, sweep: Option<&str>, format: Format) -> Result<String> {
    let runs = store.runs(sweep, None)?;
    match format {
        Format::Json => {
            let all: Vec<ExportRun> = runs
                .into_iter()
                .map(|r| {
                    let params = store.params(&r.id)?.into_iter().collect();
                    let mut st = store.conn().prepare_cached(
                        "SELECT key, step, epoch, value, wall FROM metrics WHERE run_id = ?1 ORDER BY key, step",
                    )?;
                    let metrics = st
                        .query_map([&r.id], crate::store::Metric::from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(ExportRun { run: r, params, metrics })
                })
                .collect::<Result<_>>()?;
            Ok(serde_json::to_string_pretty(&all)? + "\n")
        }
        _ => {
            let mut out = String::from("run,sweep,status,key,step,epoch,value,wall\n");
            let mut st = store.conn().prepare_cached(
                "SELECT key, step, epoch, value, wall FROM metrics WHERE run_id = ?1 ORDER BY key, step",
            )?;
            for r in &runs {
                let rows = st.query_map([&r.id], |m| {
                    Ok((
                        m.get::<_, String>(0)?,
                        m.get::<_, i64>(1)?,
                        m.get::<_, i64>(2)?,
                        m.get::<_, f64>(3)?,
                        m.get::<_, f64>(4)?,
                    ))
                })?;
                for row in rows {
                    let (k, s, e, v, w) = row?;
                    let _ = writeln!(
                        out,
                        "{},{},{},{},{s},{e},{v},{w:.3}",
                        r.id,
                        r.sweep,
                        r.status,
                        csv_field(&k)
                    );
                }
            }
            Ok(out)
        }
    }
}

/// `workbench spectrum`: Tab. 3 (epoch × scale → E(A)/E(B)), then the per-matrix summary of
/// one epoch (default: the newest).
pub fn spectrum(
    spectra: &[(i64, crate::analysis::spectrum::ScaleSpectrum)],
    epoch: Option<i64>,
    format: Format,
) -> Result<String> {
    let epochs: std::collections::BTreeSet<i64> = spectra.iter().map(|(e, _)| *e).collect();
    let chosen = match epoch {
        Some(e) => {
            anyhow::ensure!(
                epochs.contains(&e),
                "no spectrum stored for epoch {e}; stored: {epochs:?}"
            );
            e
        }
        None => *epochs
            .iter()
            .last()
            .ok_or_else(|| anyhow::anyhow!("no spectrum stored"))?,
    };
    if format == Format::Json {
        let all: Vec<_> = spectra
            .iter()
            .filter(|(e, _)| epoch.is_none_or(|x| x == *e))
            .collect();
        return Ok(serde_json::to_string_pretty(&all)? + "\n");
    }
    let scales: Vec<String> = {
        let mut v: Vec<String> = spectra.iter().map(|(_, s)| s.scale.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut header = vec!["epoch".to_string()];
    header.extend(scales.iter().map(|s| format!("E(A)/E(B) {s}")));
    header.extend(scales.iter().map(|s| format!("commutator {s}")));
    let rows: Vec<Vec<String>> = epochs
        .iter()
        .map(|e| {
            let at = |s: &String| {
                spectra
                    .iter()
                    .find(|(x, sp)| x == e && &sp.scale == s)
                    .map(|(_, sp)| sp)
            };
            let mut row = vec![e.to_string()];
            row.extend(
                scales
                    .iter()
                    .map(|s| at(s).map_or(String::new(), |sp| format!("{:.4}", sp.energy_ratio))),
            );
            row.extend(
                scales
                    .iter()
                    .map(|s| at(s).map_or(String::new(), |sp| format!("{:.4}", sp.commutator))),
            );
            row
        })
        .collect();
    let mut out = render_table(&header, &rows);
    let _ = writeln!(out, "\nepoch {chosen}: generators (A = Ā/Δ)");
    let header: Vec<String> = [
        "scale",
        "matrix",
        "E=Σ|λ|",
        "rank",
        "condition",
        "complex",
        "top |λ|/E",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rows = Vec::new();
    for (_, s) in spectra.iter().filter(|(e, _)| *e == chosen) {
        for m in &s.matrices {
            let top: Vec<String> = m
                .normalised_magnitudes()
                .iter()
                .take(4)
                .map(|x| format!("{x:.4}"))
                .collect();
            rows.push(vec![
                s.scale.clone(),
                m.name.clone(),
                format!("{:.4}", m.energy),
                m.rank.to_string(),
                format!("{:.3e}", m.condition),
                format!("{:.0}%", 100.0 * m.complex_fraction),
                top.join(" "),
            ]);
        }
    }
    out.push_str(&render_table(&header, &rows));
    Ok(out)
}
