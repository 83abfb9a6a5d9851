//! `workbench table --sweep S`: the ablation tables the report shows (paper Tab. 2: mean ± std
//! over seeds per value of a swept setting, the other settings at their base values, n per
//! row, best per column in bold) as Markdown, LaTeX (`booktabs`) or CSV, for a paper.

use anyhow::Result;
use std::fmt::Write;

use crate::analysis::ablation::{self, Table};
use crate::store::{RunRow, Store};

/// How `workbench table` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Markdown,
    Latex,
    Csv,
}

impl TableFormat {
    pub fn parse(s: &str) -> Result<TableFormat, String> {
        match s {
            "markdown" | "md" => Ok(TableFormat::Markdown),
            "latex" | "tex" => Ok(TableFormat::Latex),
            "csv" => Ok(TableFormat::Csv),
            _ => Err(format!("unknown format {s:?}; valid: markdown, latex, csv")),
        }
    }
}

/// One ablation table with its caption.
struct Titled {
    caption: String,
    table: Table,
}

/// The tables of sweep `sweep`: one per swept setting (or only `by`), with the columns whose
/// labels are in `metrics` (all when empty).
fn tables(store: &Store, sweep: &str, by: Option<&str>, metrics: &[String]) -> Result<Vec<Titled>> {
    store.sweep(sweep)?;
    let runs = store.runs(Some(sweep), None)?;
    let (params, latest) = ablation::params_and_latest(store, &runs)?;
    let refs: Vec<&RunRow> = runs.iter().collect();
    let keys = ablation::differing_keys(&params, &refs, false);
    let labels: Vec<&str> = ablation::COLUMNS.iter().map(|c| c.label).collect();
    for m in metrics {
        anyhow::ensure!(
            labels.contains(&m.as_str()),
            "unknown metric {m:?}; valid: {}",
            labels.join(", ")
        );
    }
    let axes: Vec<String> = match by {
        Some(k) => {
            anyhow::ensure!(
                keys.iter().any(|x| x == k),
                "sweep {sweep} does not vary {k:?}; it varies: {}",
                if keys.is_empty() {
                    "nothing but the seed".to_string()
                } else {
                    keys.join(", ")
                }
            );
            vec![k.to_string()]
        }
        None => keys.clone(),
    };
    anyhow::ensure!(
        !axes.is_empty(),
        "sweep {sweep}: the runs differ in no setting but the seed, so there is no ablation table"
    );
    let mut out = Vec::new();
    for axis in &axes {
        let study = ablation::one_factor(axis, &keys, &refs, &params);
        let mut table = ablation::table(axis, &study.runs, &params, &latest, true);
        if !metrics.is_empty() {
            let keep: Vec<usize> = (0..table.columns.len())
                .filter(|&i| metrics.iter().any(|m| m == table.columns[i].label))
                .collect();
            table.columns = keep.iter().map(|&i| table.columns[i]).collect();
            table.best = keep.iter().map(|&i| table.best[i]).collect();
            for g in &mut table.groups {
                g.cells = keep.iter().map(|&i| g.cells[i]).collect();
            }
        }
        out.push(Titled {
            caption: ablation::caption(axis, &table, &study.held),
            table,
        });
    }
    Ok(out)
}

/// LaTeX-escaped text (`_ % & # $ { }`, `±` as `$\pm$`).
fn tex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '±' => out.push_str("$\\pm$"),
            '–' => out.push_str("--"),
            c => out.push(c),
        }
    }
    out
}

/// The ablation tables of a sweep in `format`.
pub fn table(
    store: &Store,
    sweep: &str,
    by: Option<&str>,
    metrics: &[String],
    format: TableFormat,
) -> Result<String> {
    let mut out = String::new();
    let all = tables(store, sweep, by, metrics)?;
    if format == TableFormat::Csv {
        out.push_str("setting,value,n,column,mean,std,n_values\n");
    }
    for t in &all {
        let (header, rows) = t.table.cells();
        match format {
            TableFormat::Markdown => {
                let _ = writeln!(out, "**{}**\n", t.caption);
                let _ = writeln!(out, "| {} |", header.join(" | "));
                let align: Vec<&str> = (0..header.len())
                    .map(|i| if i == 0 { ":--" } else { "--:" })
                    .collect();
                let _ = writeln!(out, "|{}|", align.join("|"));
                for row in rows {
                    let cells: Vec<String> = row
                        .into_iter()
                        .map(|(text, best)| if best { format!("**{text}**") } else { text })
                        .collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
            TableFormat::Latex => {
                let cols = "l".to_string() + &"r".repeat(header.len() - 1);
                let _ = writeln!(out, "% {}", t.caption);
                let _ = writeln!(out, "\\begin{{table}}[t]\n\\centering");
                let _ = writeln!(out, "\\caption{{{}}}", tex(&t.caption));
                let _ = writeln!(out, "\\begin{{tabular}}{{{cols}}}\n\\toprule");
                let head: Vec<String> = header.iter().map(|h| tex(h)).collect();
                let _ = writeln!(out, "{} \\\\\n\\midrule", head.join(" & "));
                for row in rows {
                    let cells: Vec<String> = row
                        .into_iter()
                        .map(|(text, best)| {
                            if best {
                                format!("\\textbf{{{}}}", tex(&text))
                            } else {
                                tex(&text)
                            }
                        })
                        .collect();
                    let _ = writeln!(out, "{} \\\\", cells.join(" & "));
                }
                let _ = writeln!(out, "\\bottomrule\n\\end{{tabular}}\n\\end{{table}}\n");
            }
            TableFormat::Csv => {
                for g in &t.table.groups {
                    for (ci, c) in t.table.columns.iter().enumerate() {
                        if let Some(s) = g.cells[ci] {
                            let _ = writeln!(
                                out,
                                "{},{},{},{},{},{},{}",
                                super::csv_field(&t.table.key),
                                super::csv_field(&g.value),
                                g.runs.len(),
                                c.label,
                                s.mean,
                                s.std.map_or(String::new(), |v| v.to_string()),
                                s.n
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}
