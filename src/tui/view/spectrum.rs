//! The Spectrum tab: eigenvalues of A and B in the complex plane per scale for the chosen
//! epoch, E(A)/E(B) over epochs for both scales (Tab. 3), the commutator over epochs, and the
//! sorted normalised |λ| of A¼ against A½ (Fig. 7, right).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::chart::{self, Series, PALETTE};
use crate::store::SpectrumRow;
use crate::tui::app::App;
use crate::tui::snapshot::Snapshot;

/// The epoch shown: the chosen one if stored, else the newest.
pub fn shown_epoch(app: &App, spectra: &[SpectrumRow]) -> Option<i64> {
    let newest = spectra.iter().map(|s| s.epoch).max()?;
    Some(
        app.epoch
            .filter(|e| spectra.iter().any(|s| s.epoch == *e))
            .unwrap_or(newest),
    )
}

/// Eigenvalue points (re, im) of every matrix at `epoch`, one series per scale and matrix.
pub fn eigen_series(spectra: &[SpectrumRow], epoch: i64) -> Vec<Series> {
    let mut out = Vec::new();
    for s in spectra.iter().filter(|s| s.epoch == epoch) {
        for m in &s.spectrum.matrices {
            out.push(Series {
                name: format!("{} {}", m.name, s.spectrum.scale),
                color: PALETTE[out.len() % PALETTE.len()],
                points: m
                    .eig_re
                    .iter()
                    .copied()
                    .zip(m.eig_im.iter().copied())
                    .collect(),
                scatter: true,
            });
        }
    }
    out
}

/// (epoch, value) per scale of a per-epoch quantity.
fn over_epochs(spectra: &[SpectrumRow], value: impl Fn(&SpectrumRow) -> f64) -> Vec<Series> {
    let mut scales: Vec<&str> = spectra.iter().map(|s| s.spectrum.scale.as_str()).collect();
    scales.sort();
    scales.dedup();
    scales
        .iter()
        .enumerate()
        .map(|(i, scale)| Series {
            name: scale.to_string(),
            color: PALETTE[i],
            points: spectra
                .iter()
                .filter(|s| s.spectrum.scale == *scale)
                .map(|s| (s.epoch as f64, value(s)))
                .collect(),
            scatter: false,
        })
        .collect()
}

/// Fig. 7 right: sorted normalised |λ| of the centre scale (x) against the corner scale (y)
/// for A and B, with the diagonal.
pub fn alignment(spectra: &[SpectrumRow], epoch: i64) -> Vec<Series> {
    let at = |scale: &str, name: &str| {
        spectra
            .iter()
            .find(|s| s.epoch == epoch && s.spectrum.scale == scale)
            .and_then(|s| s.spectrum.matrix(name))
            .map(|m| m.normalised_magnitudes())
    };
    let mut out = Vec::new();
    let mut hi: f64 = 0.0;
    for (i, name) in ["A", "B"].iter().enumerate() {
        if let (Some(c), Some(k)) = (at("center", name), at("corner", name)) {
            let pts: Vec<(f64, f64)> = c.iter().copied().zip(k.iter().copied()).collect();
            hi = pts.iter().fold(hi, |h, p| h.max(p.0).max(p.1));
            out.push(Series {
                name: format!("{name}¼ vs {name}½"),
                color: PALETTE[i],
                points: pts,
                scatter: true,
            });
        }
    }
    if !out.is_empty() {
        out.push(Series {
            name: String::new(),
            color: PALETTE[5],
            points: vec![(0.0, 0.0), (hi, hi)],
            scatter: false,
        });
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) {
    let Some(id) = app.selected(snap) else {
        frame.render_widget(Paragraph::new("no run selected (Runs tab)"), area);
        return;
    };
    let spectra: &[SpectrumRow] = match &snap.spectra {
        Some((run, s)) if *run == id => s,
        _ => &[],
    };
    let Some(epoch) = shown_epoch(app, spectra) else {
        frame.render_widget(
            Paragraph::new(format!(
                "run {id}: no spectrum stored yet (one is stored per epoch, analysis.spectrum_every)"
            )),
            area,
        );
        return;
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let [tl, tr] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [bl, br] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    chart::draw(
        frame,
        tl,
        &format!("eigenvalues, epoch {epoch} (←/→)"),
        &eigen_series(spectra, epoch),
        "Re λ",
        false,
    );
    chart::draw(
        frame,
        tr,
        "E(A)/E(B) per scale (Tab. 3)",
        &over_epochs(spectra, |s| s.spectrum.energy_ratio),
        "epoch",
        false,
    );
    chart::draw(
        frame,
        bl,
        "commutator ‖AB−BA‖/(‖A‖‖B‖)",
        &over_epochs(spectra, |s| s.spectrum.commutator),
        "epoch",
        false,
    );
    let fig7 = alignment(spectra, epoch);
    if fig7.is_empty() {
        frame.render_widget(
            Paragraph::new("Fig. 7 needs both scales (position = \"corner+center\")")
                .block(ratatui::widgets::Block::bordered().title("sorted normalised |λ|")),
            br,
        );
    } else {
        chart::draw(
            frame,
            br,
            "sorted normalised |λ|: ¼ (x) vs ½ (y)",
            &fig7,
            "¼",
            false,
        );
    }
}
