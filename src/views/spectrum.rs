//! `workbench spectrum`: Tab. 3 (epoch × scale → E(A)/E(B) and the commutator), then the
//! per-matrix summary of one epoch (default: the newest).

use anyhow::Result;
use std::collections::BTreeSet;
use std::fmt::Write;

use super::{render_table, Format};
use crate::store::SpectrumRow;

pub fn spectrum(spectra: &[SpectrumRow], epoch: Option<i64>, format: Format) -> Result<String> {
    anyhow::ensure!(format != Format::Csv, "spectrum prints table or json");
    let epochs: BTreeSet<i64> = spectra.iter().map(|s| s.epoch).collect();
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
            .filter(|s| epoch.is_none_or(|x| x == s.epoch))
            .map(|s| (s.epoch, &s.spectrum))
            .collect();
        return Ok(serde_json::to_string_pretty(&all)? + "\n");
    }
    let scales: BTreeSet<&str> = spectra.iter().map(|s| s.spectrum.scale.as_str()).collect();
    let mut header = vec!["epoch".to_string()];
    header.extend(scales.iter().map(|s| format!("E(A)/E(B) {s}")));
    header.extend(scales.iter().map(|s| format!("commutator {s}")));
    let at = |e: i64, s: &str| {
        spectra
            .iter()
            .find(|x| x.epoch == e && x.spectrum.scale == s)
            .map(|x| &x.spectrum)
    };
    let rows: Vec<Vec<String>> =
        epochs
            .iter()
            .map(|&e| {
                let mut row = vec![e.to_string()];
                row.extend(scales.iter().map(|s| {
                    at(e, s).map_or(String::new(), |sp| format!("{:.4}", sp.energy_ratio))
                }));
                row.extend(
                    scales.iter().map(|s| {
                        at(e, s).map_or(String::new(), |sp| format!("{:.4}", sp.commutator))
                    }),
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
    for s in spectra.iter().filter(|s| s.epoch == chosen) {
        for m in &s.spectrum.matrices {
            let top: Vec<String> = m
                .normalised_magnitudes()
                .iter()
                .take(4)
                .map(|x| format!("{x:.4}"))
                .collect();
            rows.push(vec![
                s.spectrum.scale.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_three_over_epochs_and_the_chosen_epochs_matrices() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ids) = crate::views::fixture::store(dir.path());
        let spectra = s.spectra(&ids[0]).unwrap();
        let out = spectrum(&spectra, None, Format::Table).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "epoch  E(A)/E(B) corner  commutator corner");
        assert_eq!(lines[1], "1      1.5000            0.2500");
        assert_eq!(lines[2], "2      1.2500            0.2500");
        assert!(out.contains("epoch 2: generators"), "{out}");
        assert!(
            out.contains("corner  A       3.0000  2     2.000e0    0%       0.6667 0.3333"),
            "{out}"
        );
        let e1 = spectrum(&spectra, Some(1), Format::Table).unwrap();
        assert!(e1.contains("epoch 1: generators"));
        assert!(spectrum(&spectra, Some(7), Format::Table).is_err());
        let json: serde_json::Value =
            serde_json::from_str(&spectrum(&spectra, Some(2), Format::Json).unwrap()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 1);
    }
}
