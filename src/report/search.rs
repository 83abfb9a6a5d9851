//! Searches and grids in the report: a `[search]`'s trials sorted by the chosen metric and a
//! parallel-coordinates figure (one polyline per trial across the searched keys, coloured by
//! the metric); a factorial grid's main effect of each swept key (the exact one-way table,
//! every other key averaged over its levels); the early-stopping decisions.

use anyhow::Result;
use plotters::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::figure::{svg_title, Figure};
use super::html::{self, Td};
use super::sections::{slug, table_cells, Page};
use super::Data;
use crate::analysis::ablation;
use crate::config::early_stop::Mode;
use crate::config::identity::setting_id;
use crate::config::RunConfig;
use crate::curve::mean_std;
use crate::store::{RunRow, Status};

/// The metric a search is judged on: its `[early_stop]` metric, else the first of lin top-1,
/// kNN top-1 and validation loss that a run has.
fn chosen_metric(data: &Data, configs: &HashMap<&str, RunConfig>) -> Option<(String, Mode)> {
    if let Some(es) = data
        .runs
        .iter()
        .find_map(|r| configs.get(r.id.as_str())?.early_stop.as_ref())
    {
        return Some((es.metric.clone(), es.mode));
    }
    [
        ("probe/lin/top1", Mode::Max),
        ("monitor/knn/top1", Mode::Max),
        ("epoch/val_loss", Mode::Min),
    ]
    .into_iter()
    .find(|(k, _)| data.runs.iter().any(|r| data.value(&r.id, k).is_some()))
    .map(|(k, m)| (k.to_string(), m))
}

/// One trial: the runs (seeds) of one setting.
struct Trial<'a> {
    runs: Vec<&'a RunRow>,
    /// Mean of the metric's last value over the runs that have it, its std, and n.
    metric: Option<(f64, Option<f64>, usize)>,
    /// The last epoch any of its runs logged.
    epochs: i64,
    status: String,
}

/// The setting of each run (its run id when its config does not parse), by run id.
fn settings<'a>(data: &'a Data, configs: &HashMap<&str, RunConfig>) -> HashMap<&'a str, String> {
    data.runs
        .iter()
        .map(|r| {
            let setting = configs.get(r.id.as_str()).map_or(r.id.clone(), setting_id);
            (r.id.as_str(), setting)
        })
        .collect()
}

fn trials<'a>(data: &'a Data, settings: &HashMap<&str, String>, metric: &str) -> Vec<Trial<'a>> {
    let mut by_setting: BTreeMap<&str, Vec<&RunRow>> = BTreeMap::new();
    for r in &data.runs {
        by_setting
            .entry(&settings[r.id.as_str()])
            .or_default()
            .push(r);
    }
    by_setting
        .into_values()
        .map(|runs| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| data.value(&r.id, metric))
                .collect();
            let epochs = runs
                .iter()
                .filter_map(|r| {
                    data.latest
                        .get(&r.id)?
                        .iter()
                        .find(|m| m.key == "epoch/val_loss")
                        .map(|m| m.epoch)
                })
                .max()
                .unwrap_or(0);
            let statuses: BTreeSet<&str> = runs.iter().map(|r| r.status.as_str()).collect();
            Trial {
                metric: mean_std(&values).map(|(m, s)| (m, s, values.len())),
                epochs,
                status: statuses.into_iter().collect::<Vec<_>>().join("/"),
                runs,
            }
        })
        .collect()
}

/// Trials best first: finished ones by the metric, then the others by how far they got.
fn sort_trials(trials: &mut [Trial], mode: Mode) {
    let key = |t: &Trial| {
        let done = t.runs.iter().all(|r| r.status == Status::Finished);
        let v = t.metric.map_or(f64::NAN, |m| m.0);
        let v = if mode == Mode::Max { -v } else { v };
        (!done, -t.epochs, if v.is_nan() { f64::INFINITY } else { v })
    };
    trials.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
    });
}

pub fn search(data: &Data, page: &mut Page) -> Result<()> {
    let searched = data.store.sweep_search(&data.name).unwrap_or_default();
    let decisions = data.store.decisions(Some(&data.name)).unwrap_or_default();
    if searched.is_empty() && decisions.is_empty() && !factorial(data) {
        return Ok(());
    }
    page.h2("Search and early stopping");
    let configs: HashMap<&str, RunConfig> = data
        .runs
        .iter()
        .filter_map(|r| Some((r.id.as_str(), serde_json::from_str(&r.config).ok()?)))
        .collect();
    let settings = settings(data, &configs);
    let metric = chosen_metric(data, &configs);
    if let (false, Some((key, mode))) = (searched.is_empty(), &metric) {
        let mut ts = trials(data, &settings, key);
        sort_trials(&mut ts, *mode);
        trials_table(data, page, &ts, &searched, key);
        if let Some(f) = parallel_coordinates(data, &ts, &searched, key, *mode)? {
            page.fig(f);
        }
    }
    if searched.is_empty() && factorial(data) {
        main_effects(data, page);
    }
    if !decisions.is_empty() {
        // the first run of each setting names it (runs are oldest first)
        let mut first_run: HashMap<&str, &str> = HashMap::new();
        for r in data.runs.iter().rev() {
            first_run.insert(&settings[r.id.as_str()], &r.id);
        }
        let pruned = decisions.iter().filter(|d| d.prune).count();
        let rows: Vec<Vec<Td>> = decisions
            .iter()
            .map(|d| {
                vec![
                    Td::plain(d.rung.to_string()),
                    Td::plain(
                        first_run
                            .get(d.setting.as_str())
                            .copied()
                            .unwrap_or(&d.setting),
                    ),
                    Td::plain(format!("{:.4}", d.value)),
                    Td::plain(d.seeds.to_string()),
                    Td::plain(format!("{} of {}", d.rank, d.peers)),
                    Td::plain(d.keep_top.to_string()),
                    Td {
                        text: if d.prune { "pruned" } else { "goes on" }.into(),
                        best: !d.prune,
                    },
                ]
            })
            .collect();
        let caption = format!(
            "Early-stopping decisions on {} ({} pruned of {}): at each rung a setting goes on when \
             its mean over the seeds that reached the rung ranks in the top ⌈n / keep⌉ of the n \
             settings there so far",
            decisions[0].metric,
            pruned,
            decisions.len()
        );
        let header = [
            "epoch",
            "setting (first run)",
            "value",
            "seeds",
            "rank",
            "top",
            "verdict",
        ];
        page.raw(&html::table(&caption, &header.map(String::from), &rows));
    }
    Ok(())
}

fn trials_table(data: &Data, page: &mut Page, ts: &[Trial], searched: &[String], metric: &str) {
    let percent = metric.ends_with("top1");
    let mut header = vec!["#".to_string(), "run".into()];
    header.extend(searched.iter().cloned());
    header.extend([metric.to_string(), "epochs".into(), "status".into()]);
    let rows: Vec<Vec<Td>> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut row = vec![
                Td::plain((i + 1).to_string()),
                Td::plain(t.runs[0].id.clone()),
            ];
            for k in searched {
                row.push(Td::plain(data.param(&t.runs[0].id, k).unwrap_or("-")));
            }
            let (k, d) = if percent { (100.0, 2) } else { (1.0, 4) };
            let shown = t.metric.map_or("–".to_string(), |(m, s, n)| match s {
                Some(s) => format!("{:.d$} ± {:.d$} (n={n})", m * k, s * k),
                None => format!("{:.d$}", m * k),
            });
            row.push(Td {
                text: shown,
                best: i == 0,
            });
            row.push(Td::plain(t.epochs.to_string()));
            row.push(Td::plain(t.status.clone()));
            row
        })
        .collect();
    page.raw(&html::table(
        &format!(
            "The search's {} trials, best first by the last {metric}{} (finished trials first; \
             a pruned trial's value is from the epoch it stopped at)",
            ts.len(),
            if percent { " (%)" } else { "" }
        ),
        &header,
        &rows,
    ));
}

/// How a searched key is placed on its axis: numbers linearly or, when they span a factor of
/// ten or more and are all positive, logarithmically; other values by their order.
fn axis_position(values: &[Option<&str>]) -> Vec<Option<f64>> {
    let nums: Vec<Option<f64>> = values
        .iter()
        .map(|v| v.and_then(|s| s.parse::<f64>().ok()))
        .collect();
    if nums.iter().all(|n| n.is_some()) && !nums.is_empty() {
        let xs: Vec<f64> = nums.iter().flatten().copied().collect();
        let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, &x| {
            (a.0.min(x), a.1.max(x))
        });
        let log = lo > 0.0 && hi / lo >= 10.0;
        let f = |x: f64| if log { x.ln() } else { x };
        let (a, b) = (f(lo), f(hi));
        return xs
            .iter()
            .map(|&x| Some(if b > a { (f(x) - a) / (b - a) } else { 0.5 }))
            .collect();
    }
    let mut levels: Vec<&str> = values.iter().flatten().copied().collect();
    levels.sort();
    levels.dedup();
    let n = levels.len().max(2) - 1;
    values
        .iter()
        .map(|v| {
            let i = levels.iter().position(|l| Some(*l) == *v)?;
            Some(i as f64 / n as f64)
        })
        .collect()
}

/// Blue (low) to orange (high) through grey: the metric's colour scale.
fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let (a, b) = ((0.0, 114.0, 178.0), (213.0, 94.0, 0.0));
    RGBColor(
        (a.0 + (b.0 - a.0) * t) as u8,
        (a.1 + (b.1 - a.1) * t) as u8,
        (a.2 + (b.2 - a.2) * t) as u8,
    )
}

/// One polyline per trial across the searched keys and the metric (each axis scaled to its
/// own range), coloured by the metric (orange = best); pruned trials thin.
fn parallel_coordinates(
    data: &Data,
    ts: &[Trial],
    searched: &[String],
    metric: &str,
    mode: Mode,
) -> Result<Option<Figure>> {
    if ts.len() < 2 || searched.is_empty() {
        return Ok(None);
    }
    let mut columns: Vec<Vec<Option<f64>>> = searched
        .iter()
        .map(|k| {
            let vals: Vec<Option<&str>> = ts.iter().map(|t| data.param(&t.runs[0].id, k)).collect();
            axis_position(&vals)
        })
        .collect();
    let m: Vec<Option<f64>> = ts.iter().map(|t| t.metric.map(|m| m.0)).collect();
    let (lo, hi) = m
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, &x| {
            (a.0.min(x), a.1.max(x))
        });
    let lower_is_better = mode == Mode::Min;
    let norm = |v: f64| {
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        if lower_is_better {
            1.0 - t
        } else {
            t
        }
    };
    columns.push(m.iter().map(|v| v.map(norm)).collect());
    let mut labels: Vec<String> = ablation::unique_suffixes(searched);
    // the metric without its first component (`knn/top1`)
    labels.push(
        metric
            .split_once('/')
            .map_or(metric, |(_, rest)| rest)
            .to_string(),
    );
    let k = columns.len();
    let caption = format!(
        "Parallel coordinates of the search: one line per trial across {} and {metric} (each axis \
         from its lowest to its highest value, log-scaled where it spans 10× or more; the metric \
         axis with the best at the top), coloured by {metric} (orange = best); pruned trials thin",
        searched.join(", ")
    );
    let mut csv = String::from("trial,run");
    for l in &labels {
        csv.push(',');
        csv.push_str(&crate::views::csv_field(l));
    }
    csv.push('\n');
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(svg_title(&caption), ("sans-serif", 16))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.1f64..(k as f64 - 0.9), -0.05f64..1.05)?;
        let names = labels.clone();
        chart
            .configure_mesh()
            .x_labels(k)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                    names[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_desc("position on each axis (low → high)")
            .light_line_style(WHITE)
            .draw()?;
        for i in 0..k {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(i as f64, 0.0), (i as f64, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            )))?;
        }
        // worst first, so the best lines are drawn on top
        let mut order: Vec<usize> = (0..ts.len()).collect();
        order.sort_by(|&a, &b| {
            let v = |i: usize| columns[k - 1][i].unwrap_or(-1.0);
            v(a).total_cmp(&v(b))
        });
        for i in order {
            let pts: Vec<(f64, f64)> = (0..k)
                .filter_map(|c| columns[c][i].map(|y| (c as f64, y)))
                .collect();
            let pruned = ts[i].runs.iter().any(|r| r.status == Status::Pruned);
            let color = columns[k - 1][i].map_or(RGBColor(153, 153, 153), ramp);
            chart.draw_series(LineSeries::new(
                pts,
                color.stroke_width(if pruned { 1 } else { 3 }),
            ))?;
            let mut line = format!("{},{}", i + 1, ts[i].runs[0].id);
            for col in &columns {
                line.push(',');
                if let Some(v) = col[i] {
                    line.push_str(&v.to_string());
                }
            }
            csv.push_str(&line);
            csv.push('\n');
        }
        root.present()?;
    }
    Ok(Some(Figure {
        name: format!("search-parallel-{}", slug(metric)),
        caption,
        svg,
        csv,
        series: ts.len(),
    }))
}

/// Whether the runs form a full factorial grid over two or more swept settings: every
/// combination of their values appears.
fn factorial(data: &Data) -> bool {
    if data.axes.len() < 2 {
        return false;
    }
    let cells: std::collections::BTreeSet<Vec<&str>> = data
        .runs
        .iter()
        .map(|r| {
            data.axes
                .iter()
                .map(|(k, _)| data.param(&r.id, k).unwrap_or("-"))
                .collect()
        })
        .collect();
    let full: usize = data.axes.iter().map(|(_, v)| v.len()).product();
    cells.len() == full
}

/// The main effect of each swept key of a factorial grid: its one-way table over every
/// finished run (the other keys averaged over their levels).
fn main_effects(data: &Data, page: &mut Page) {
    let runs: Vec<&RunRow> = data.runs.iter().collect();
    for (axis, _) in &data.axes {
        let t = ablation::table(axis, &runs, &data.params, &data.latest, true);
        if t.groups.is_empty() || t.columns.is_empty() {
            continue;
        }
        let (header, rows) = table_cells(&t);
        page.raw(&html::table(
            &format!(
                "Main effect of {axis}: every finished run of the grid grouped by its value (the \
                 other swept settings averaged over all their levels), mean ± std, best in bold"
            ),
            &header,
            &rows,
        ));
    }
}
