//! The parts of a report, each only when its data exists (a sentence otherwise).

use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::figure::{self, color, histogram, plot, Axes, Figure, Series};
use super::html::{self, esc, Td};
use super::Data;
use crate::analysis::ablation;
use crate::analysis::progress::format_duration;
use crate::curve::{ema, mean_std, minmax_downsample};
use crate::store::{now, RunRow, Status};

/// The page being written.
#[derive(Default)]
pub struct Page {
    pub body: String,
    pub figures: Vec<Figure>,
    pub missing: Vec<String>,
    /// PNG files written beside the page (file name, bytes); the page inlines them too.
    pub images: Vec<(String, Vec<u8>)>,
}

impl Page {
    pub(super) fn h2(&mut self, title: &str) {
        let _ = writeln!(self.body, "<h2>{}</h2>", esc(title));
    }

    pub(super) fn raw(&mut self, html: &str) {
        self.body.push_str(html);
    }

    pub(super) fn fig(&mut self, f: Figure) {
        self.body.push_str(&html::figure(&f));
        self.figures.push(f);
    }

    pub(super) fn missing(&mut self, text: String) {
        self.body.push_str(&html::missing(&text));
        self.missing.push(text);
    }
}

/// Metrics of the paper's tables that hold accuracies.
const PROBES: [(&str, &str); 3] = [
    ("probe/lin/top1", "lin"),
    ("probe/tran-1/top1", "tran-1"),
    ("probe/finetune/top1", "ft"),
];

/// "; other settings at k = v, …" for what a study holds fixed, or "".
fn other_settings(study: &ablation::Study) -> String {
    if study.held.is_empty() {
        String::new()
    } else {
        format!("; other settings at {}", study.held.join(", "))
    }
}

pub fn summary(data: &Data, page: &mut Page) {
    page.h2("Summary");
    let mut rows: Vec<Vec<Td>> = Vec::new();
    let mut row = |k: &str, v: String| rows.push(vec![Td::plain(k), Td::plain(v)]);
    if let Some(f) = &data.file {
        row("sweep file", f.clone());
    }
    if data.axes.is_empty() {
        row("swept settings", "none (seeds only)".into());
    }
    for (k, values) in &data.axes {
        row(&format!("axis {k}"), values.join(", "));
    }
    let seeds: BTreeSet<i64> = data.runs.iter().map(|r| r.seed).collect();
    row(
        "seeds",
        seeds
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let by_status: Vec<String> = Status::ALL
        .iter()
        .filter_map(|s| {
            let n = data.runs.iter().filter(|r| r.status == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    row(
        "runs",
        format!("{} ({})", data.runs.len(), by_status.join(", ")),
    );
    let t = now();
    let compute: f64 = data.runs.iter().filter_map(|r| r.elapsed(t)).sum();
    row("compute time", format_duration(compute));
    let distinct = |f: &dyn Fn(&RunRow) -> Option<String>| -> String {
        let set: BTreeSet<String> = data.runs.iter().filter_map(f).collect();
        if set.is_empty() {
            "-".into()
        } else {
            set.into_iter().collect::<Vec<_>>().join(", ")
        }
    };
    row(
        "backend and device",
        distinct(&|r| {
            r.backend
                .as_ref()
                .map(|b| format!("{b} ({})", r.device.clone().unwrap_or_default()))
        }),
    );
    row("binary commit", distinct(&|r| r.git_commit.clone()));
    let first = data.runs.iter().filter_map(|r| r.started).reduce(f64::min);
    let last = data
        .runs
        .iter()
        .filter_map(|r| r.ended.or(r.heartbeat))
        .reduce(f64::max);
    if let (Some(a), Some(b)) = (first, last) {
        row("dates", format!("{} to {}", html::date(a), html::date(b)));
    }
    page.raw(&html::table("", &["".into(), "".into()], &rows));
}

pub fn ablations(data: &Data, page: &mut Page) -> Result<()> {
    page.h2("Ablations (paper Tab. 2)");
    if data.axes.is_empty() {
        page.missing(
            "The runs differ in no setting but the seed: there is no ablation table.".into(),
        );
    }
    let any_probe = data
        .runs
        .iter()
        .any(|r| PROBES.iter().any(|(k, _)| data.value(&r.id, k).is_some()));
    if !any_probe {
        page.missing(
            "No probe results are stored: add probe.kinds = [\"lin\", \"tran-1\"] to the sweep \
             to get the paper's accuracy columns."
                .into(),
        );
    }
    for (axis, _) in &data.axes {
        let study = data.study(axis);
        let slice = &study.runs;
        let t = ablation::table(axis, slice, &data.params, &data.latest, true);
        let unfinished = slice
            .iter()
            .filter(|r| r.status != Status::Finished)
            .count();
        if t.groups.is_empty() || t.columns.is_empty() {
            page.missing(format!(
                "No finished run of the `{axis}` study has final metrics yet."
            ));
            continue;
        }
        let (mut header, mut rows) = table_cells(&t);
        // the paper's row for each value, where Tab. 2 has one
        let paper: Vec<_> = t
            .groups
            .iter()
            .map(|g| crate::analysis::paper::ablation_row(axis, &g.value))
            .collect();
        if paper.iter().any(Option::is_some) {
            header.push(format!(
                "{} (lin / tran-1 / ft)",
                crate::analysis::paper::SOURCE
            ));
            for (row, p) in rows.iter_mut().zip(&paper) {
                row.push(Td::plain(p.map_or("–".to_string(), |p| {
                    format!(
                        "{:.1} / {:.1} / {:.1}{}",
                        p.lin,
                        p.tran1,
                        p.ft,
                        if p.default { " (default)" } else { "" }
                    )
                })));
            }
        }
        let caption = ablation::caption(axis, &t, &study.held);
        page.raw(&html::table(&caption, &header, &rows));
        if unfinished > 0 {
            page.missing(format!(
                "{unfinished} run(s) of the `{axis}` study did not finish and are left out of its table."
            ));
        }
        // the same table as CSV
        let mut csv = String::from("value,n,column,mean,std,n_values\n");
        for g in &t.groups {
            for (ci, c) in t.columns.iter().enumerate() {
                if let Some(s) = g.cells[ci] {
                    let _ = writeln!(
                        csv,
                        "{},{},{},{},{},{}",
                        crate::views::csv_field(&g.value),
                        g.runs.len(),
                        c.label,
                        s.mean,
                        s.std.map_or(String::new(), |v| v.to_string()),
                        s.n
                    );
                }
            }
        }
        page.figures.push(Figure {
            name: format!("table-{}", slug(axis)),
            caption: caption.clone(),
            svg: String::new(),
            csv,
            series: 0,
        });
    }
    Ok(())
}

/// The header and cells of an ablation table, the best group per column in bold.
pub(super) fn table_cells(t: &ablation::Table) -> (Vec<String>, Vec<Vec<Td>>) {
    let (header, rows) = t.cells();
    let rows = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|(text, best)| Td { text, best })
                .collect()
        })
        .collect();
    (header, rows)
}

/// A file-name-safe form of a setting name.
pub(super) fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub fn schedule(data: &Data, page: &mut Page) -> Result<()> {
    page.h2("Training schedule (paper Fig. 6)");
    if !data.axes.iter().any(|(k, _)| k == "train.epochs") {
        page.missing("The sweep does not vary train.epochs: no schedule figure.".into());
        return Ok(());
    }
    let study = data.study("train.epochs");
    let series = schedule_series(data, &study.runs);
    if series.is_empty() {
        page.missing(
            "Fig. 6 needs probe results of finished runs: none of the schedule study has them."
                .into(),
        );
        return Ok(());
    }
    let axes = Axes {
        x: "pre-training epochs".into(),
        y: "top-1 (%)".into(),
        ..Default::default()
    };
    page.fig(plot(
        "fig6-schedule",
        &format!(
            "Probe top-1 vs pre-training epochs (mean ± std over seeds){}",
            other_settings(&study)
        ),
        &axes,
        series,
    )?);
    // Fig. 11: the same per encoder preset, when the sweep varies the preset too
    let Some((_, presets)) = data.axes.iter().find(|(k, _)| k == "model.preset") else {
        return Ok(());
    };
    for preset in presets {
        let runs: Vec<&RunRow> = data
            .runs
            .iter()
            .filter(|r| data.param(&r.id, "model.preset") == Some(preset.as_str()))
            .collect();
        let series = schedule_series(data, &runs);
        if series.is_empty() {
            continue;
        }
        page.fig(plot(
            &format!("fig11-schedule-{}", slug(preset)),
            &format!(
                "Fig. 11 ({preset}): probe top-1 vs pre-training epochs (mean ± std over every finished run of the preset)"
            ),
            &axes,
            series,
        )?);
    }
    Ok(())
}

/// One line per probe (lin, tran-1, ft): top-1 (%) against `train.epochs`, mean ± std over
/// the finished runs of `runs` at each schedule.
fn schedule_series(data: &Data, runs: &[&RunRow]) -> Vec<Series> {
    let mut series = Vec::new();
    for (pi, (key, label)) in PROBES.iter().enumerate() {
        let mut by_epochs: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for r in runs.iter().filter(|r| r.status == Status::Finished) {
            let e = data
                .param(&r.id, "train.epochs")
                .and_then(|v| v.parse::<i64>().ok());
            if let (Some(e), Some(v)) = (e, data.value(&r.id, key)) {
                by_epochs.entry(e).or_default().push(100.0 * v);
            }
        }
        if by_epochs.is_empty() {
            continue;
        }
        let mut s = Series::line(format!("{label} top-1"), color(pi), 2, Vec::new());
        let mut err = Vec::new();
        for (e, vals) in by_epochs {
            if let Some((m, sd)) = mean_std(&vals) {
                s.points.push((e as f64, m));
                err.push(sd.unwrap_or(0.0));
            }
        }
        s.error = Some(err);
        series.push(s);
    }
    series
}

/// Curves (x, y points) of the runs that share one value of a setting.
type Curves = Vec<Vec<(f64, f64)>>;

/// A run and its stored (epoch, scale, E(A)/E(B), commutator) rows.
type RunRatios<'a> = (&'a RunRow, Vec<(i64, String, f64, f64)>);

/// Points per line for `lines` lines in one figure (≤ [`figure::MAX_POINTS`]).
fn points_per_line(lines: usize) -> usize {
    (60_000 / lines.max(1)).clamp(30, figure::MAX_POINTS)
}

/// Mean over runs at every x all of them have.
fn mean_curve(curves: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    let Some(first) = curves.first() else {
        return Vec::new();
    };
    let maps: Vec<BTreeMap<i64, f64>> = curves
        .iter()
        .map(|c| {
            c.iter()
                .map(|(x, y)| ((x * 1e6).round() as i64, *y))
                .collect()
        })
        .collect();
    first
        .iter()
        .filter_map(|(x, _)| {
            let k = (x * 1e6).round() as i64;
            let vals: Vec<f64> = maps.iter().filter_map(|m| m.get(&k).copied()).collect();
            (vals.len() == maps.len()).then(|| (*x, vals.iter().sum::<f64>() / vals.len() as f64))
        })
        .collect()
}

/// A per-run metric series drawn per value of each swept setting: what it is, how it is
/// smoothed and scaled, and how its figures are named.
pub(super) struct CurveSpec<'a> {
    pub key: &'a str,
    /// "train loss", "kNN top-1", … (titles and the y axis).
    pub what: &'a str,
    /// File stem prefix of the figures (`loss-train`, `monitor-knn`).
    pub stem: &'a str,
    /// EMA weight (0: none).
    pub weight: f64,
    /// "step" or "epoch": the x of each point.
    pub x: &'a str,
    /// Multiplies every value (100 for accuracies in %).
    pub scale: f64,
    pub unit: &'a str,
}

/// The swept settings' studies (every run when nothing is swept), as (axis, runs).
pub(super) fn studies<'a>(data: &'a Data) -> Vec<(String, Vec<&'a RunRow>)> {
    if data.axes.is_empty() {
        vec![("run".to_string(), data.runs.iter().collect())]
    } else {
        data.axes
            .iter()
            .map(|(k, _)| (k.clone(), data.study(k).runs))
            .collect()
    }
}

/// One figure per study of `spec.key`: a line per run (thin) and the mean per value of the
/// setting (thick) when seeds repeat it. Returns whether any run had the series.
pub(super) fn curves_by_setting(data: &Data, page: &mut Page, spec: &CurveSpec) -> Result<bool> {
    let mut any = false;
    for (axis, runs) in studies(data) {
        let cap = points_per_line(runs.len());
        let mut by_value: Vec<(String, Curves)> = Vec::new();
        for r in &runs {
            let rows = data.store.series(&r.id, spec.key, None)?;
            if rows.is_empty() {
                continue;
            }
            let ys = ema(
                &rows.iter().map(|m| m.value).collect::<Vec<_>>(),
                spec.weight,
            );
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .zip(ys)
                .map(|(m, y)| {
                    let x = if spec.x == "epoch" {
                        m.epoch as f64
                    } else {
                        m.step as f64
                    };
                    (x, y * spec.scale)
                })
                .collect();
            let value = if axis == "run" {
                r.id.clone()
            } else {
                data.param(&r.id, &axis).unwrap_or("-").to_string()
            };
            match by_value.iter_mut().find(|(v, _)| *v == value) {
                Some((_, c)) => c.push(pts),
                None => by_value.push((value, vec![pts])),
            }
        }
        if by_value.is_empty() {
            continue;
        }
        any = true;
        let mut series = Vec::new();
        // a legend entry per value, unless there are more values than colours
        let legend = by_value.len() <= figure::PALETTE.len();
        for (vi, (value, curves)) in by_value.iter().enumerate() {
            let c = color(vi);
            let several = curves.len() > 1;
            for pts in curves {
                let mut s = Series::line(value.clone(), c, 1, minmax_downsample(pts, cap / 2));
                s.legend = legend && !several;
                series.push(s);
            }
            if several {
                let mean = mean_curve(curves);
                series.push(Series::line(
                    format!("{value} (mean of {})", curves.len()),
                    c,
                    3,
                    minmax_downsample(&mean, figure::MAX_POINTS / 2),
                ));
            }
        }
        let seeds = by_value.iter().any(|(_, c)| c.len() > 1);
        let what = spec.what;
        let title = match (axis == "run", seeds) {
            (true, _) => what.to_string(),
            (false, true) => format!("{what} by {axis} (thin: seeds, thick: mean)"),
            (false, false) => format!("{what} by {axis}"),
        };
        page.fig(plot(
            &format!("{}-{}", spec.stem, slug(&axis)),
            &title,
            &Axes {
                x: spec.x.into(),
                y: format!(
                    "{what}{}{}",
                    spec.unit,
                    if spec.weight > 0.0 { " (EMA 0.9)" } else { "" }
                ),
                ..Default::default()
            },
            series,
        )?);
    }
    Ok(any)
}

pub fn loss_curves(data: &Data, page: &mut Page) -> Result<()> {
    page.h2("Loss curves");
    let mut any = false;
    for (key, what, stem, weight, x) in [
        ("train/loss", "train loss", "loss-train", 0.9, "step"),
        ("epoch/val_loss", "val loss", "loss-val", 0.0, "epoch"),
    ] {
        let spec = CurveSpec {
            key,
            what,
            stem,
            weight,
            x,
            scale: 1.0,
            unit: "",
        };
        any |= curves_by_setting(data, page, &spec)?;
    }
    if !any {
        page.missing("No run has logged a loss yet.".into());
    }
    Ok(())
}

pub fn spectra(data: &Data, page: &mut Page) -> Result<()> {
    page.h2("Spectra of A and B (paper Tab. 3, Fig. 7)");
    let mut ratios: Vec<RunRatios> = Vec::new();
    for r in &data.runs {
        let rows = data.store.spectrum_ratios(&r.id)?;
        if !rows.is_empty() {
            ratios.push((r, rows));
        }
    }
    if ratios.is_empty() {
        page.missing(
            "No spectra are stored (analysis.spectrum_every = 0, or no epoch finished yet).".into(),
        );
        return Ok(());
    }
    let scales_of = |rows: &[(i64, String, f64, f64)]| -> BTreeSet<String> {
        rows.iter().map(|r| r.1.clone()).collect()
    };
    let both: Vec<&RunRatios> = ratios
        .iter()
        .filter(|(_, rows)| scales_of(rows).len() == 2)
        .collect();
    let chosen: Vec<&RunRatios> = if both.is_empty() {
        page.missing(
            "No run trained both scales (position = \"corner+center\"): Tab. 3 and Fig. 7 show one scale."
                .into(),
        );
        ratios.iter().collect()
    } else {
        // runs of the base configuration of the mixed-scale runs (their seeds)
        let first = both[0].0;
        let same = |r: &RunRow| {
            data.params.get(&r.id).map(|p| {
                p.iter()
                    .filter(|(k, _)| k.as_str() != "seed")
                    .collect::<BTreeMap<_, _>>()
            }) == data.params.get(&first.id).map(|p| {
                p.iter()
                    .filter(|(k, _)| k.as_str() != "seed")
                    .collect::<BTreeMap<_, _>>()
            })
        };
        both.into_iter().filter(|(r, _)| same(r)).collect()
    };
    // Tab. 3: epoch × scale, mean ± std over the chosen runs
    let scales: BTreeSet<String> = chosen
        .iter()
        .flat_map(|(_, rows)| scales_of(rows))
        .collect();
    let epochs: BTreeSet<i64> = chosen
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.0))
        .collect();
    let mut header = vec!["epoch".to_string()];
    header.extend(scales.iter().map(|s| format!("E(A)/E(B) {s}")));
    header.extend(scales.iter().map(|s| format!("commutator {s}")));
    let cell = |e: i64, s: &str, pick: fn(&(i64, String, f64, f64)) -> f64| -> String {
        let vals: Vec<f64> = chosen
            .iter()
            .flat_map(|(_, rows)| rows.iter().filter(|r| r.0 == e && r.1 == s).map(pick))
            .collect();
        match mean_std(&vals) {
            Some((m, Some(sd))) => format!("{m:.4} ± {sd:.4}"),
            Some((m, None)) => format!("{m:.4}"),
            None => "–".into(),
        }
    };
    let rows: Vec<Vec<Td>> = epochs
        .iter()
        .map(|&e| {
            let mut row = vec![Td::plain(e.to_string())];
            row.extend(scales.iter().map(|s| Td::plain(cell(e, s, |r| r.2))));
            row.extend(scales.iter().map(|s| Td::plain(cell(e, s, |r| r.3))));
            row
        })
        .collect();
    let ids: Vec<&str> = chosen.iter().map(|(r, _)| r.id.as_str()).collect();
    let over = if ids.len() > 1 {
        format!("mean ± std over runs {}", ids.join(", "))
    } else {
        format!("run {}", ids.join(", "))
    };
    page.raw(&html::table(
        &format!("Tab. 3: E(A)/E(B) per epoch and scale ({over})"),
        &header,
        &rows,
    ));
    for (name, what, pick) in [
        (
            "tab3-energy-ratio",
            "E(A)/E(B)",
            (|r: &(i64, String, f64, f64)| r.2) as fn(&_) -> f64,
        ),
        ("commutator", "‖AB−BA‖/(‖A‖‖B‖)", |r| r.3),
    ] {
        let mut series = Vec::new();
        for (si, s) in scales.iter().enumerate() {
            let curves: Vec<Vec<(f64, f64)>> = chosen
                .iter()
                .map(|(_, rows)| {
                    rows.iter()
                        .filter(|r| &r.1 == s)
                        .map(|r| (r.0 as f64, pick(r)))
                        .collect()
                })
                .collect();
            for c in &curves {
                let mut line = Series::line(s.clone(), color(si), 1, c.clone());
                line.legend = curves.len() == 1;
                series.push(line);
            }
            if curves.len() > 1 {
                series.push(Series::line(
                    format!("{s} (mean)"),
                    color(si),
                    3,
                    mean_curve(&curves),
                ));
            }
        }
        page.fig(plot(
            name,
            &format!("{what} over epochs per scale"),
            &Axes {
                x: "epoch".into(),
                y: what.into(),
                ..Default::default()
            },
            series,
        )?);
    }
    // Fig. 7 from the first chosen run's newest epoch
    let run = chosen[0].0;
    let spectra = data.store.spectra(&run.id)?;
    let Some(last) = spectra.iter().map(|s| s.epoch).max() else {
        return Ok(());
    };
    let at: Vec<&crate::store::ScaleSpectrum> = spectra
        .iter()
        .filter(|s| s.epoch == last)
        .map(|s| &s.spectrum)
        .collect();
    for name in ["A", "B"] {
        let mags: Vec<(String, Vec<f64>)> = at
            .iter()
            .filter_map(|s| s.matrix(name).map(|m| (s.scale.clone(), m.magnitudes())))
            .collect();
        let hi = mags
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max)
            .max(1e-12);
        let bins = 20;
        let hist: Vec<(String, plotters::style::RGBColor, Vec<u64>)> = mags
            .iter()
            .enumerate()
            .map(|(i, (scale, v))| {
                let mut counts = vec![0u64; bins];
                for m in v {
                    counts[((m / hi * bins as f64) as usize).min(bins - 1)] += 1;
                }
                (format!("{name} {scale}"), color(i), counts)
            })
            .collect();
        page.fig(histogram(
            &format!("fig7-magnitudes-{name}"),
            &format!(
                "Fig. 7 left: |λ| of {name} per scale (run {}, epoch {last})",
                run.id
            ),
            &Axes {
                x: format!("|λ| of {name}"),
                y: "eigenvalues".into(),
                ..Default::default()
            },
            0.0,
            hi,
            hist,
        )?);
    }
    let alignment: Vec<Series> = ["A", "B"]
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let get = |scale: &str| {
                at.iter()
                    .find(|s| s.scale == scale)
                    .and_then(|s| s.matrix(name))
                    .map(|m| m.normalised_magnitudes())
            };
            let (c, k) = (get("center")?, get("corner")?);
            Some(Series::scatter(
                format!("{name}¼ (x) vs {name}½ (y)"),
                color(i),
                c.into_iter().zip(k).collect(),
            ))
        })
        .collect();
    if alignment.is_empty() {
        page.missing("Fig. 7 right (alignment across scales) needs both scales.".into());
    } else {
        page.fig(plot(
            "fig7-alignment",
            &format!("Fig. 7 right: sorted normalised |λ|, centre vs corner scale (run {}, epoch {last})", run.id),
            &Axes {
                x: "|λ|/Σ|λ| at Δ = ¼".into(),
                y: "|λ|/Σ|λ| at Δ = ½".into(),
                diagonal: true,
                square: true,
            },
            alignment,
        )?);
    }
    let plane: Vec<Series> = at
        .iter()
        .flat_map(|s| s.matrices.iter().map(move |m| (s, m)))
        .enumerate()
        .map(|(i, (s, m))| {
            Series::scatter(
                format!("{} {}", m.name, s.scale),
                color(i),
                m.eig_re
                    .iter()
                    .copied()
                    .zip(m.eig_im.iter().copied())
                    .collect(),
            )
        })
        .collect();
    page.fig(plot(
        "eigenvalues",
        &format!(
            "Eigenvalues in the complex plane (run {}, epoch {last})",
            run.id
        ),
        &Axes {
            x: "Re λ".into(),
            y: "Im λ".into(),
            ..Default::default()
        },
        plane,
    )?);
    Ok(())
}

pub fn spatial(data: &Data, page: &mut Page) -> Result<()> {
    page.h2("Spatial correlation of feature maps (paper App. D, Fig. 12)");
    let mut series = Vec::new();
    let (mut lo, mut hi) = (0.0, 1.0);
    for r in &data.runs {
        for h in data.store.histograms(&r.id)? {
            if h.name == "spatial/mean_abs_corr" && series.len() < figure::PALETTE.len() {
                (lo, hi) = (h.lo, h.hi);
                series.push((
                    format!("{} (epoch {})", r.id, h.epoch),
                    color(series.len()),
                    h.counts,
                ));
            }
        }
    }
    if series.is_empty() {
        page.missing(
            "`workbench analyze spatial RUN` has not run for any run of this report.".into(),
        );
        return Ok(());
    }
    page.fig(histogram(
        "fig12-spatial",
        "Mean |off-diagonal spatial correlation| per image",
        &Axes {
            x: "mean |corr| between positions".into(),
            y: "images".into(),
            ..Default::default()
        },
        lo,
        hi,
        series,
    )?);
    Ok(())
}

pub fn runs(data: &Data, page: &mut Page) {
    page.h2("Runs");
    let keys: Vec<String> = data.axes.iter().map(|(k, _)| k.clone()).collect();
    let mut header = vec!["run".to_string(), "status".into(), "seed".into()];
    header.extend(keys.iter().cloned());
    header.extend([
        "val loss".into(),
        "lin".into(),
        "tran-1".into(),
        "ft".into(),
        "error".into(),
    ]);
    let pct = |v: Option<f64>| v.map_or(String::new(), |x| format!("{:.1}", 100.0 * x));
    let rows: Vec<Vec<Td>> = data
        .runs
        .iter()
        .map(|r| {
            let mut row = vec![
                Td::plain(r.id.clone()),
                Td::plain(r.status.as_str()),
                Td::plain(r.seed.to_string()),
            ];
            row.extend(
                keys.iter()
                    .map(|k| Td::plain(data.param(&r.id, k).unwrap_or("").to_string())),
            );
            row.push(Td::plain(
                data.value(&r.id, "epoch/val_loss")
                    .map_or(String::new(), |v| format!("{v:.4}")),
            ));
            for (k, _) in PROBES {
                row.push(Td::plain(pct(data.value(&r.id, k))));
            }
            row.push(Td::plain(r.error.clone().unwrap_or_default()));
            row
        })
        .collect();
    page.raw(&html::table("", &header, &rows));
    let without: Vec<&str> = data
        .runs
        .iter()
        .filter(|r| data.latest.get(&r.id).is_none_or(|m| m.is_empty()))
        .map(|r| r.id.as_str())
        .collect();
    if !without.is_empty() {
        page.missing(format!(
            "{} run(s) have no metrics yet: {}.",
            without.len(),
            without.join(", ")
        ));
    }
    for r in &data.runs {
        let mut text = String::new();
        let mut p: Vec<(&String, &String)> = data
            .params
            .get(&r.id)
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        p.sort();
        for (k, v) in p {
            let _ = writeln!(text, "{k} = {v}");
        }
        let ckpt = data
            .store
            .artifacts(&r.id)
            .ok()
            .and_then(|a| a.into_iter().find(|a| a.kind == "checkpoint"))
            .map(|a| {
                let abs = std::fs::canonicalize(&a.path).unwrap_or_else(|_| a.path.clone().into());
                format!(
                    " — checkpoint <a href=\"file://{}\">{}</a>",
                    esc(&abs.display().to_string()),
                    esc(&a.path)
                )
            })
            .unwrap_or_default();
        let error = r
            .error
            .as_ref()
            .map(|e| format!("<p class=\"error\">{}</p>", esc(e)))
            .unwrap_or_default();
        let _ = writeln!(
            page.body,
            "<details><summary>{} ({}){}</summary>{error}<pre>{}</pre></details>",
            esc(&r.id),
            r.status,
            ckpt,
            esc(&text)
        );
    }
    notes(data, page);
}

/// The runs' and the sweep's tags and notes (`workbench tag`, `workbench note`), under the
/// runs table.
fn notes(data: &Data, page: &mut Page) {
    use crate::store::tags::Target;
    let (Ok(tags), Ok(notes)) = (
        data.store.all_tags(Target::Run),
        data.store.all_notes(Target::Run),
    ) else {
        return;
    };
    let mut items = Vec::new();
    if let (Ok(st), Ok(sn)) = (
        data.store.all_tags(Target::Sweep),
        data.store.all_notes(Target::Sweep),
    ) {
        if let Some(t) = st.get(&data.name) {
            items.push(format!(
                "<li>sweep {}: tags {}</li>",
                esc(&data.name),
                esc(&t.join(", "))
            ));
        }
        for n in sn.get(&data.name).into_iter().flatten() {
            items.push(format!(
                "<li>sweep {} ({}): {}</li>",
                esc(&data.name),
                html::date(n.created),
                esc(&n.text)
            ));
        }
    }
    for r in &data.runs {
        if let Some(t) = tags.get(&r.id) {
            items.push(format!(
                "<li>{}: tags {}</li>",
                esc(&r.id),
                esc(&t.join(", "))
            ));
        }
        for n in notes.get(&r.id).into_iter().flatten() {
            items.push(format!(
                "<li>{} ({}): {}</li>",
                esc(&r.id),
                html::date(n.created),
                esc(&n.text)
            ));
        }
    }
    if !items.is_empty() {
        page.h2("Tags and notes");
        let _ = writeln!(page.body, "<ul>\n{}\n</ul>", items.join("\n"));
    }
}
