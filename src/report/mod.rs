//! `workbench report`: the paper's tables and figures rebuilt from the store, as one
//! self-contained `index.html` (figures inlined as SVG) plus each figure as `.svg` and the data
//! behind it as `.csv`. Reads the store only through its read API.
//!
//! Every part appears only when its data exists; otherwise a sentence says what is missing.

pub mod figure;
pub mod html;
mod monitor;
mod paper;
mod pictures;
mod references;
mod search;
mod sections;

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::analysis::ablation::{self, Params};
use crate::store::{Metric, RunRow, Store};
use figure::Figure;

/// What a report covers.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Sweep(String),
    Run(String),
}

/// A report held in memory.
pub struct Report {
    pub title: String,
    pub html: String,
    pub figures: Vec<Figure>,
    /// Sentences saying what was left out and why.
    pub missing: Vec<String>,
    /// PNG files (name, bytes) written beside the page.
    pub images: Vec<(String, Vec<u8>)>,
}

/// The runs of a report and what the store knows of them.
pub struct Data<'a> {
    pub store: &'a Store,
    pub name: String,
    pub file: Option<String>,
    pub runs: Vec<RunRow>,
    pub params: HashMap<String, Params>,
    pub latest: HashMap<String, Vec<Metric>>,
    /// Swept settings (seed excluded) and their values (numbers in numeric order, others in
    /// order of appearance).
    pub axes: Vec<(String, Vec<String>)>,
}

impl Data<'_> {
    pub fn param(&self, run: &str, key: &str) -> Option<&str> {
        self.params.get(run)?.get(key).map(|s| s.as_str())
    }

    pub fn value(&self, run: &str, key: &str) -> Option<f64> {
        self.latest
            .get(run)?
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value)
            .filter(|v| v.is_finite())
    }

    /// The study of `axis`: its runs, every other axis at its base value.
    pub fn study(&self, axis: &str) -> ablation::Study<'_> {
        let keys: Vec<String> = self.axes.iter().map(|(k, _)| k.clone()).collect();
        let refs: Vec<&RunRow> = self.runs.iter().collect();
        ablation::one_factor(axis, &keys, &refs, &self.params)
    }
}

fn collect<'a>(store: &'a Store, sel: &Selection) -> Result<Data<'a>> {
    let (name, file, runs) = match sel {
        Selection::Sweep(s) => {
            let sweep = store.sweep(s)?;
            (
                sweep.name.clone(),
                Some(sweep.file),
                store.runs(Some(s), None)?,
            )
        }
        Selection::Run(id) => {
            let r = store.run(id)?;
            (format!("run-{}", r.id), None, vec![r])
        }
    };
    let (params, latest) = ablation::params_and_latest(store, &runs)?;
    let refs: Vec<&RunRow> = runs.iter().collect();
    let keys = crate::analysis::ablation::differing_keys(&params, &refs, false);
    let axes = keys
        .into_iter()
        .map(|k| {
            let mut values: Vec<String> = Vec::new();
            for r in &runs {
                if let Some(v) = params.get(&r.id).and_then(|p| p.get(&k)) {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
            }
            crate::analysis::ablation::sort_numeric(&mut values, |v| v);
            (k, values)
        })
        .collect();
    Ok(Data {
        store,
        name,
        file,
        runs,
        params,
        latest,
        axes,
    })
}

/// Builds the report of `sel` from the store.
pub fn build(store: &Store, sel: &Selection) -> Result<Report> {
    let data = collect(store, sel)?;
    let mut page = sections::Page::default();
    sections::summary(&data, &mut page);
    sections::ablations(&data, &mut page)?;
    paper::methods(&data, &mut page)?;
    search::search(&data, &mut page)?;
    sections::schedule(&data, &mut page)?;
    sections::loss_curves(&data, &mut page)?;
    monitor::monitor(&data, &mut page)?;
    references::references(&data, &mut page)?;
    sections::spectra(&data, &mut page)?;
    paper::final_spectra(&data, &mut page)?;
    sections::spatial(&data, &mut page)?;
    pictures::pictures(&data, &mut page)?;
    paper::presets(&data, &mut page)?;
    sections::runs(&data, &mut page);
    let title = match sel {
        Selection::Sweep(s) => format!("QB-Heat sweep {s}"),
        Selection::Run(_) => format!("QB-Heat {}", data.name),
    };
    Ok(Report {
        html: html::page(&title, &page.body),
        title,
        figures: page.figures,
        missing: page.missing,
        images: page.images,
    })
}

/// The default folder of a report: `reports/<sweep>` or `reports/run-<id>`.
pub fn default_dir(store: &Store, sel: &Selection) -> Result<PathBuf> {
    let name = match sel {
        Selection::Sweep(s) => store.sweep(s)?.name,
        Selection::Run(id) => format!("run-{}", store.run(id)?.id),
    };
    Ok(PathBuf::from("reports").join(name))
}

/// Writes `index.html`, every figure's `.svg` and `.csv` into `dir`; returns the page's path.
pub fn write(report: &Report, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let put = |name: String, text: &str| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
    };
    for f in &report.figures {
        // tables have only their data
        if !f.svg.is_empty() {
            put(format!("{}.svg", f.name), &f.svg)?;
        }
        put(format!("{}.csv", f.name), &f.csv)?;
    }
    for (name, png) in &report.images {
        let path = dir.join(name);
        std::fs::write(&path, png).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    put("index.html".into(), &report.html)?;
    Ok(dir.join("index.html"))
}
