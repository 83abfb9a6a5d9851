//! Text views of the store (`runs`, `show`, `compare`, `export`, `spectrum`), built only from
//! the store's typed read API. Each table column has one number format; JSON carries numbers
//! as numbers and missing values as `null`.

pub mod compare;
pub mod export;
pub mod runs;
pub mod show;
pub mod spectrum;
pub mod table;

use serde_json::Value;
use std::fmt::Write;

/// Output formats of the listing verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Table, Format::Csv, Format::Json];

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format {s:?}; valid: table, csv, json"))
    }
}

/// One cell of a view: typed, so JSON keeps numbers numeric and a column keeps one format.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A number shown with this many decimals in tables and CSV.
    Num(f64, usize),
    /// Words shown comma-separated (a JSON array).
    List(Vec<String>),
    Missing,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// A JSON config value as a cell (strings stay text, integers stay integers).
    pub fn from_json(v: Option<&Value>, decimals: usize) -> Cell {
        match v {
            None | Some(Value::Null) => Cell::Missing,
            Some(Value::String(s)) => Cell::Text(s.clone()),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Cell::Int(i),
                None => n.as_f64().map_or(Cell::Missing, |f| Cell::Num(f, decimals)),
            },
            Some(other) => Cell::Text(other.to_string()),
        }
    }

    pub fn opt_num(v: Option<f64>, decimals: usize) -> Cell {
        v.map_or(Cell::Missing, |x| Cell::Num(x, decimals))
    }

    pub fn shown(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Num(x, d) => format!("{x:.d$}"),
            Cell::List(v) => v.join(","),
            Cell::Missing => String::new(),
        }
    }

    pub fn json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(i) => Value::from(*i),
            Cell::Num(x, _) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Cell::List(v) => Value::from(v.clone()),
            Cell::Missing => Value::Null,
        }
    }
}

/// The widest a table cell is shown; longer text (a stored error message, a path) is cut
/// with "…" in tables. CSV and JSON keep the whole text.
pub const MAX_CELL_CHARS: usize = 160;

/// `s` cut to at most `max` characters, the last one "…" when it was cut; line breaks
/// become spaces so a cell stays on its row.
pub fn clip(s: &str, max: usize) -> String {
    let flat = || {
        s.chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
    };
    if s.chars().count() <= max {
        return flat().collect();
    }
    let mut out: String = flat().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Renders rows as an aligned text table (each cell clipped to [`MAX_CELL_CHARS`]).
pub fn render_table(header: &[String], rows: &[Vec<String>]) -> String {
    let clipped =
        |r: &[String]| -> Vec<String> { r.iter().map(|c| clip(c, MAX_CELL_CHARS)).collect() };
    let header = clipped(header);
    let rows: Vec<Vec<String>> = rows.iter().map(|r| clipped(r)).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let pad = w.saturating_sub(c.chars().count());
                format!("{c}{}", " ".repeat(pad))
            })
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&header, &mut out);
    for r in &rows {
        line(r, &mut out);
    }
    out
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
pub fn csv_field(s: &str) -> String {
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

/// Renders typed rows in a format: tables and CSV show each cell's text, JSON is an array
/// of objects keyed by the header.
pub fn render(format: Format, header: &[String], rows: &[Vec<Cell>]) -> String {
    let shown = || -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(Cell::shown).collect())
            .collect()
    };
    match format {
        Format::Table => render_table(header, &shown()),
        Format::Csv => render_csv(header, &shown()),
        Format::Json => {
            let objs: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let map: serde_json::Map<String, Value> = header
                        .iter()
                        .cloned()
                        .zip(r.iter().map(Cell::json))
                        .collect();
                    Value::Object(map)
                })
                .collect();
            serde_json::to_string_pretty(&objs).unwrap_or_default() + "\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_a_character_and_flattens_line_breaks() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("a\nb", 5), "a b");
        assert_eq!(clip("ééééé", 4), "ééé…");
        let t = render_table(&["h".into()], &[vec!["y".repeat(70_000)]]);
        assert_eq!(t.lines().nth(1).unwrap().chars().count(), MAX_CELL_CHARS);
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A small store with two finished runs, one failed run, metrics, a checkpoint artifact and
    //! spectra, built through the store API (shared by the view tests).
    use crate::config::RunConfig;
    use crate::spec::Position;
    use crate::store::{MatrixSpectrum, Metric, NewRun, ScaleSpectrum, Status, Store};

    pub fn store(dir: &std::path::Path) -> (Store, Vec<String>) {
        let mut s = Store::open(dir.join("f.db")).unwrap();
        let mut runs = Vec::new();
        for (i, pos) in [Position::Corner, Position::Center, Position::CornerCenter]
            .into_iter()
            .enumerate()
        {
            let mut c = RunConfig::default();
            c.masking.position = pos;
            c.train.epochs = 6;
            c.seed = i as u64;
            runs.push(NewRun::from_config(&c));
        }
        s.register_sweep("fx", "fx.toml", &runs).unwrap();
        let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
        for (k, id) in ids.iter().enumerate() {
            let at = |key: &str, step: i64, epoch: i64, value: f64| Metric {
                key: key.into(),
                step,
                epoch,
                value,
                wall: 1000.0 + step as f64,
            };
            let rows: Vec<Metric> = (1..=3)
                .flat_map(|step| {
                    [
                        at("train/loss", step, 1, 1.0 / (step + k as i64) as f64),
                        at("epoch/val_loss", step, step, 0.5 + 0.01 * k as f64),
                        at("epoch/img_per_s", step, step, 100.0 + 57.0693 * k as f64),
                    ]
                })
                .collect();
            s.log_metrics(id, &rows).unwrap();
        }
        let first = s
            .claim(&ids[0], &crate::store::claim::Owner::local(1), false)
            .unwrap()
            .unwrap();
        s.set_artifact(
            &first,
            "checkpoint",
            "runs/fx/x/checkpoints/step-00000003",
            Some(3),
        )
        .unwrap();
        s.finish(&first, Status::Finished, None).unwrap();
        s.set_status(&ids[1], Status::Finished, None).unwrap();
        s.set_status(
            &ids[2],
            Status::Failed,
            Some("loss became NaN at epoch 2 step 5"),
        )
        .unwrap();
        let spectrum = |scale: &str, ratio: f64| ScaleSpectrum {
            scale: scale.into(),
            delta: 0.5,
            matrices: vec![
                MatrixSpectrum {
                    name: "A".into(),
                    eig_re: vec![2.0, -1.0],
                    eig_im: vec![0.0, 0.0],
                    energy: 3.0,
                    rank: 2,
                    condition: 2.0,
                    complex_fraction: 0.0,
                },
                MatrixSpectrum {
                    name: "B".into(),
                    eig_re: vec![0.0, 0.0],
                    eig_im: vec![1.0, -1.0],
                    energy: 2.0,
                    rank: 2,
                    condition: 1.0,
                    complex_fraction: 1.0,
                },
            ],
            energy_ratio: ratio,
            commutator: 0.25,
        };
        s.log_spectra(&ids[0], 1, &[spectrum("corner", 1.5)])
            .unwrap();
        s.log_spectra(&ids[0], 2, &[spectrum("corner", 1.25)])
            .unwrap();
        (s, ids)
    }
}
