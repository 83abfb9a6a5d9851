//! The report beside the paper: the methods compared (Fig. 8, Tab. 4: lin and tran-1 per
//! width, fine-tuning, one line per method, per-seed gaps to QB-Heat), Tab. 3 as the paper
//! means it (the *final* E(A)/E(B) of each schedule) and Tab. 8 (parameters and multiply-adds
//! of the presets used). The paper's numbers come from `analysis::paper`, labelled as such.

use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

use super::figure::{color, plot, Axes, Series};
use super::html::{self, Td};
use super::sections::Page;
use super::Data;
use crate::analysis::paper;
use crate::config::RunConfig;
use crate::curve::mean_std;
use crate::probe::ProbeVariant;
use crate::spec::ProbeKind;
use crate::store::{RunRow, Status};

/// A probe column of the methods table: lin, tran at a width (depth 1), or fine-tuning
/// (the supervised baseline's training goes there: it trains encoder + tran-1 head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Col {
    Lin,
    Tran(usize),
    Ft,
}

impl Col {
    fn label(self) -> String {
        match self {
            Col::Lin => "lin".into(),
            Col::Tran(w) => format!("tran-1 w{w}"),
            Col::Ft => "ft".into(),
        }
    }
}

/// The top-1 of each column of a finished run.
fn columns(data: &Data, run: &RunRow) -> BTreeMap<Col, f64> {
    let mut out = BTreeMap::new();
    let Ok(cfg) = serde_json::from_str::<RunConfig>(&run.config) else {
        return out;
    };
    let default_width = cfg.probe.tran_width_for(cfg.model.preset);
    for m in data.latest.get(&run.id).into_iter().flatten() {
        let Some(name) = m
            .key
            .strip_prefix("probe/")
            .and_then(|k| k.strip_suffix("/top1"))
        else {
            continue;
        };
        let col = match name {
            "supervised" | "finetune" => Some(Col::Ft),
            _ => ProbeVariant::parse(name, default_width).and_then(|v| match v.kind {
                ProbeKind::Lin => Some(Col::Lin),
                ProbeKind::Tran1 if v.depth == 1 => Some(Col::Tran(v.width)),
                _ => None,
            }),
        };
        if let Some(col) = col.filter(|_| m.value.is_finite()) {
            out.insert(col, 100.0 * m.value);
        }
    }
    out
}

fn shown(vals: &[f64]) -> String {
    match mean_std(vals) {
        Some((m, Some(sd))) => format!("{m:.1} ± {sd:.1}"),
        Some((m, None)) => format!("{m:.1}"),
        None => "–".into(),
    }
}

/// "Methods compared (paper Fig. 8, Tab. 4)": when the runs hold more than one method or
/// tran-1 at more than one width.
pub fn methods(data: &Data, page: &mut Page) -> Result<()> {
    // method → seed → column → top-1 (%)
    let mut by: BTreeMap<String, BTreeMap<String, BTreeMap<Col, f64>>> = BTreeMap::new();
    for r in data.runs.iter().filter(|r| r.status == Status::Finished) {
        let method = data.param(&r.id, "method").unwrap_or("qbheat").to_string();
        let cols = columns(data, r);
        if !cols.is_empty() {
            by.entry(method)
                .or_default()
                .insert(r.seed.to_string(), cols);
        }
    }
    let all: BTreeSet<Col> = by
        .values()
        .flat_map(|s| s.values().flat_map(|c| c.keys().copied()))
        .collect();
    let widths: Vec<usize> = all
        .iter()
        .filter_map(|c| match c {
            Col::Tran(w) => Some(*w),
            _ => None,
        })
        .collect();
    if by.len() < 2 && widths.len() < 2 {
        return Ok(());
    }
    page.h2("Methods compared (paper Fig. 8, Tab. 4)");
    let values = |method: &str, col: Col| -> Vec<f64> {
        by.get(method)
            .map(|s| s.values().filter_map(|c| c.get(&col).copied()).collect())
            .unwrap_or_default()
    };
    let mut header = vec!["method".to_string(), "n".to_string()];
    header.extend(all.iter().map(|c| format!("{} top-1 (%)", c.label())));
    let rows: Vec<Vec<Td>> = by
        .iter()
        .map(|(method, seeds)| {
            let mut row = vec![
                Td::plain(method.clone()),
                Td::plain(seeds.len().to_string()),
            ];
            row.extend(all.iter().map(|&c| Td::plain(shown(&values(method, c)))));
            row
        })
        .collect();
    page.raw(&html::table(
        "Top-1 per method and probe, mean ± std over seeds (ft: fine-tuning; for the supervised baseline its own training of encoder + tran-1 head)",
        &header,
        &rows,
    ));
    // per-seed gaps of QB-Heat to every other method
    if let Some(ours) = by.get("qbheat") {
        let mut gap_rows = Vec::new();
        for (method, seeds) in by.iter().filter(|(m, _)| m.as_str() != "qbheat") {
            let mut row = vec![Td::plain(format!("qbheat − {method}"))];
            let mut any = false;
            for &c in &all {
                let gaps: Vec<f64> = ours
                    .iter()
                    .filter_map(|(seed, cols)| Some(cols.get(&c)? - seeds.get(seed)?.get(&c)?))
                    .collect();
                any |= !gaps.is_empty();
                row.push(Td::plain(match mean_std(&gaps) {
                    None => "–".into(),
                    Some((m, sd)) => {
                        let each: Vec<String> = gaps.iter().map(|g| format!("{g:+.1}")).collect();
                        let sd = sd.map_or(String::new(), |sd| format!(" ± {sd:.1}"));
                        format!("{m:+.1}{sd} (seeds: {})", each.join(", "))
                    }
                }));
            }
            // a method sharing no probe with QB-Heat (the supervised baseline's ft) has no row
            if any {
                gap_rows.push(row);
            }
        }
        let mut header = vec!["gap (points)".to_string()];
        header.extend(all.iter().map(|c| c.label()));
        page.raw(&html::table(
            "QB-Heat minus each method, per seed (same seed, same data), mean ± std of the gaps",
            &header,
            &gap_rows,
        ));
    }
    // Fig. 8: tran-1 top-1 against the width, lin as a dashed level, one colour per method
    if !widths.is_empty() {
        let (lo, hi) = (widths[0] as f64, widths[widths.len() - 1] as f64);
        let mut series = Vec::new();
        for (mi, method) in by.keys().enumerate() {
            let mut line = Series::line(format!("{method} tran-1"), color(mi), 2, Vec::new());
            let mut err = Vec::new();
            for &w in &widths {
                if let Some((m, sd)) = mean_std(&values(method, Col::Tran(w))) {
                    line.points.push((w as f64, m));
                    err.push(sd.unwrap_or(0.0));
                }
            }
            line.error = Some(err);
            if !line.points.is_empty() {
                series.push(line);
            }
            if let Some((m, _)) = mean_std(&values(method, Col::Lin)) {
                let mut lin = Series::line(
                    format!("{method} lin"),
                    color(mi),
                    1,
                    vec![(lo, m), (hi, m)],
                );
                lin.dashed = true;
                series.push(lin);
            }
        }
        let (name, qb, moco) = (
            paper::FIG8_QUOTE.0,
            paper::FIG8_QUOTE.2,
            paper::FIG8_QUOTE.3,
        );
        page.fig(plot(
            "fig8-methods",
            &format!(
                "Fig. 8: tran-1 top-1 vs decoder width per method (lin dashed), mean ± std over seeds; paper ({name}, tran-1 w{}): QB-Heat {qb} vs MoCo-v2 {moco}",
                paper::FIG8_QUOTE.1
            ),
            &Axes {
                x: "tran-1 width".into(),
                y: "top-1 (%)".into(),
                ..Default::default()
            },
            series,
        )?);
    }
    let tab4: Vec<Vec<Td>> = paper::TAB4
        .iter()
        .map(|(m, a, b, c)| {
            vec![
                Td::plain(*m),
                Td::plain(format!("{a:.1}")),
                Td::plain(format!("{b:.1}")),
                Td::plain(format!("{c:.1}")),
            ]
        })
        .collect();
    page.raw(&html::table(
        "Reference: paper Tab. 4, fine-tuning top-1 (%) with tran-1 on ImageNet-1K",
        &["method", "MF-285M", "MF-1.0G", "MF-3.7G"].map(String::from),
        &tab4,
    ));
    Ok(())
}

/// Tab. 3 the way the paper means it: the final E(A)/E(B) of each run of a `train.epochs`
/// study (each schedule its own run), per scale, beside the paper's rows.
pub fn final_spectra(data: &Data, page: &mut Page) -> Result<()> {
    if !data.axes.iter().any(|(k, _)| k == "train.epochs") {
        return Ok(());
    }
    let study = data.study("train.epochs");
    // epochs → scale → final ratios of the runs
    let mut by: BTreeMap<i64, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in study.runs.iter().filter(|r| r.status == Status::Finished) {
        let Some(e) = data
            .param(&r.id, "train.epochs")
            .and_then(|v| v.parse::<i64>().ok())
        else {
            continue;
        };
        let rows = data.store.spectrum_ratios(&r.id)?;
        let Some(last) = rows.iter().map(|r| r.0).max() else {
            continue;
        };
        for (_, scale, ratio, _) in rows.into_iter().filter(|r| r.0 == last) {
            by.entry(e)
                .or_default()
                .entry(scale)
                .or_default()
                .push(ratio);
        }
    }
    if by.is_empty() {
        return Ok(());
    }
    let scale_label = |s: &str| match s {
        "center" => "E(A¼)/E(B¼) (center)".to_string(),
        "corner" => "E(A½)/E(B½) (corner)".to_string(),
        other => format!("E(A)/E(B) {other}"),
    };
    let scales: BTreeSet<String> = by.values().flat_map(|m| m.keys().cloned()).collect();
    let mut header = vec!["pre-training epochs".to_string()];
    header.extend(scales.iter().map(|s| scale_label(s)));
    let fmt = |v: &[f64]| match mean_std(v) {
        Some((m, Some(sd))) => format!("{m:.4} ± {sd:.4} (n={})", v.len()),
        Some((m, None)) => format!("{m:.4}"),
        None => "–".into(),
    };
    let rows: Vec<Vec<Td>> = by
        .iter()
        .map(|(e, m)| {
            let mut row = vec![Td::plain(e.to_string())];
            row.extend(
                scales
                    .iter()
                    .map(|s| Td::plain(fmt(m.get(s).map_or(&[][..], |v| v)))),
            );
            row
        })
        .collect();
    page.raw(&html::table(
        "Tab. 3 (final): E(A)/E(B) at the end of each schedule of the train.epochs study, mean ± std over seeds",
        &header,
        &rows,
    ));
    let paper_rows: Vec<Vec<Td>> = paper::TAB3
        .iter()
        .map(|(e, q, h)| {
            vec![
                Td::plain(e.to_string()),
                Td::plain(format!("{q:.4}")),
                Td::plain(format!("{h:.4}")),
            ]
        })
        .collect();
    page.raw(&html::table(
        &format!("Reference: Tab. 3 ({}), separate schedules", paper::SOURCE),
        &[
            "pre-training epochs".to_string(),
            scale_label("center"),
            scale_label("corner"),
        ],
        &paper_rows,
    ));
    Ok(())
}

/// Tab. 8: the encoder presets of the report's runs, their parameters and multiply-adds (at
/// the runs' image size and at 224 px) beside the paper's.
pub fn presets(data: &Data, page: &mut Page) -> Result<()> {
    use crate::model::init::Init;
    use crate::model::mobile_former::MobileFormer;
    let mut used: BTreeSet<(String, usize, usize)> = BTreeSet::new();
    for r in &data.runs {
        if let Ok(cfg) = serde_json::from_str::<RunConfig>(&r.config) {
            let name = cfg.model.preset.spec().name.to_string();
            used.insert((name, cfg.data.image_size, cfg.data.channels));
        }
    }
    if used.is_empty() {
        return Ok(());
    }
    page.h2("Encoders (paper Tab. 8)");
    let dev = Default::default();
    let mut rows = Vec::new();
    for (name, size, channels) in used {
        let Ok(preset) = crate::spec::parse_name::<crate::spec::Preset>(&name) else {
            continue;
        };
        let spec = preset.spec();
        let enc =
            MobileFormer::<crate::backend::Cpu>::new(&spec, channels, &mut Init::new(0), &dev);
        let params = crate::model::trainable_params(&enc) as f64 / 1e6;
        let macs = enc.macs(1, size, size) as f64 / 1e6;
        let macs224 = enc.macs(1, 224, 224) as f64 / 1e6;
        let (pp, pm) = spec.paper.map_or(("–".to_string(), "–".to_string()), |p| {
            (format!("{:.1}", p.params_m), format!("{:.0}", p.macs_m))
        });
        rows.push(vec![
            Td::plain(name),
            Td::plain(format!("{channels}×{size}×{size}")),
            Td::plain(format!("{params:.2}")),
            Td::plain(format!("{macs:.1}")),
            Td::plain(format!("{macs224:.1}")),
            Td::plain(pp),
            Td::plain(pm),
        ]);
    }
    page.raw(&html::table(
        "Encoder parameters (trained, BatchNorm statistics excluded) and multiply-adds per image; the paper's MF-285M / 1.0G / 3.7G figures beside them",
        &[
            "preset",
            "input",
            "params (M)",
            "MAdds (M) at input",
            "MAdds (M) at 224 px",
            "paper params (M)",
            "paper MAdds (M)",
        ]
        .map(String::from),
        &rows,
    ));
    Ok(())
}
