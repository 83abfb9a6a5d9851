//! Reference runs (issue 26, point 3): a published training log — MAE / DINO style `log.txt`
//! (one JSON object per epoch, e.g. `{"train_loss": 0.41, "test_acc1": 67.2, "epoch": 3}`) or
//! a CSV with a header — read into metric rows to overlay on a sweep's curves. Keys are
//! renamed by `old=new` pairs (unmapped keys keep their names); the `epoch` field gives the
//! step (a 0-based log is shifted to the workbench's 1-based epochs); values are stored as
//! they are (a log's accuracy in % stays in %). A malformed line is an error naming
//! `file:line` (`:column` for CSV) and nothing is stored.

use anyhow::Result;
use serde_json::Value;
use std::path::Path;

use crate::store::Metric;

/// The two log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Jsonl,
    Csv,
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s {
            "jsonl" | "json" => Ok(LogFormat::Jsonl),
            "csv" => Ok(LogFormat::Csv),
            _ => Err(format!("unknown format {s:?}; valid: jsonl, csv")),
        }
    }

    /// The format a file's name says (`.csv` → CSV, anything else JSON lines).
    pub fn of(path: &Path) -> LogFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => LogFormat::Csv,
            _ => LogFormat::Jsonl,
        }
    }
}

/// One `old=new` key mapping.
pub fn parse_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!(
            "--map {s:?}: expected old=new, e.g. train_loss=epoch/train_loss"
        )),
    }
}

/// One parsed epoch: its number as found and its numeric fields.
type Record = (Option<f64>, Vec<(String, f64)>);

fn jsonl(path: &Path, text: &str) -> Result<Vec<(usize, Record)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{n}: not a JSON object ({e})", path.display()))?;
        let Value::Object(map) = v else {
            anyhow::bail!("{}:{n}: expected a JSON object per line", path.display());
        };
        let epoch = map.get("epoch").and_then(Value::as_f64);
        let fields = map
            .into_iter()
            .filter(|(k, _)| k != "epoch")
            .filter_map(|(k, v)| v.as_f64().map(|x| (k, x)))
            .collect();
        out.push((n, (epoch, fields)));
    }
    Ok(out)
}

fn csv(path: &Path, text: &str) -> Result<Vec<(usize, Record)>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        anyhow::bail!("{}: empty file (a CSV needs a header)", path.display());
    };
    let names: Vec<String> = header.split(',').map(|h| h.trim().to_string()).collect();
    let mut out = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        anyhow::ensure!(
            cells.len() == names.len(),
            "{}:{n}: {} fields, the header has {}",
            path.display(),
            cells.len(),
            names.len()
        );
        let mut epoch = None;
        let mut fields = Vec::new();
        for (c, (name, cell)) in names.iter().zip(&cells).enumerate() {
            if cell.is_empty() {
                continue;
            }
            let x: f64 = cell.parse().map_err(|_| {
                anyhow::anyhow!(
                    "{}:{n}:{}: {name} = {cell:?} is not a number",
                    path.display(),
                    c + 1
                )
            })?;
            if name == "epoch" {
                epoch = Some(x);
            } else {
                fields.push((name.clone(), x));
            }
        }
        out.push((n, (epoch, fields)));
    }
    Ok(out)
}

/// The metric rows of a log: every numeric field of every line, renamed by `map`, at the
/// line's epoch (1-based; the line's position when it has none).
pub fn read(path: &Path, format: LogFormat, map: &[(String, String)]) -> Result<Vec<Metric>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read ({e})", path.display()))?;
    let records = match format {
        LogFormat::Jsonl => jsonl(path, &text)?,
        LogFormat::Csv => csv(path, &text)?,
    };
    anyhow::ensure!(!records.is_empty(), "{}: no records", path.display());
    let zero_based = records.iter().any(|(_, (e, _))| *e == Some(0.0));
    let mut rows = Vec::new();
    for (k, (n, (epoch, fields))) in records.into_iter().enumerate() {
        let epoch = match epoch {
            Some(e) if e.fract() == 0.0 && e >= 0.0 => e as i64 + i64::from(zero_based),
            Some(e) => anyhow::bail!("{}:{n}: epoch {e} is not a whole number", path.display()),
            None => k as i64 + 1,
        };
        for (key, value) in fields {
            anyhow::ensure!(
                value.is_finite(),
                "{}:{n}: {key} is {value}, not a finite number",
                path.display()
            );
            let key = map
                .iter()
                .find(|(old, _)| *old == key)
                .map_or(key, |(_, new)| new.clone());
            rows.push(Metric {
                key,
                step: epoch,
                epoch,
                value,
                wall: 0.0,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format of MAE's `log.txt` (`main_pretrain.py` / `main_finetune.py` write one
    /// `json.dumps(log_stats)` per epoch), written here from that format.
    const MAE_LOG: &str = r#"{"train_lr": 0.00010, "train_loss": 0.9612, "epoch": 0, "n_parameters": 111907840}
{"train_lr": 0.00030, "train_loss": 0.7214, "epoch": 1, "n_parameters": 111907840}
{"train_lr": 0.00050, "train_loss": 0.6502, "test_loss": 1.9, "test_acc1": 58.25, "test_acc5": 81.0, "epoch": 2, "n_parameters": 111907840}
"#;

    #[test]
    fn an_mae_log_and_a_csv_become_epoch_rows_under_mapped_keys() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.txt");
        std::fs::write(&log, MAE_LOG).unwrap();
        let map = vec![
            ("train_loss".to_string(), "epoch/train_loss".to_string()),
            ("test_acc1".to_string(), "probe/finetune/top1".to_string()),
        ];
        let rows = read(&log, LogFormat::of(&log), &map).unwrap();
        let get = |k: &str, e: i64| {
            rows.iter()
                .find(|m| m.key == k && m.epoch == e)
                .map(|m| m.value)
        };
        // 0-based epochs shifted to 1-based
        assert_eq!(get("epoch/train_loss", 1), Some(0.9612));
        assert_eq!(get("epoch/train_loss", 3), Some(0.6502));
        assert_eq!(get("probe/finetune/top1", 3), Some(58.25));
        assert_eq!(
            get("test_acc5", 3),
            Some(81.0),
            "unmapped keys keep their names"
        );
        assert_eq!(rows.iter().filter(|m| m.key == "train_lr").count(), 3);
        assert!(rows.iter().all(|m| m.key != "epoch"));
        let csv_file = dir.path().join("curve.csv");
        std::fs::write(&csv_file, "epoch,val_loss,lin\n1,0.80,\n2,0.70,0.31\n").unwrap();
        let rows = read(&csv_file, LogFormat::of(&csv_file), &[]).unwrap();
        assert_eq!(rows.len(), 3, "empty cells are skipped");
        assert_eq!(rows[2].key, "lin");
        assert_eq!((rows[2].epoch, rows[2].value), (2, 0.31));
    }

    #[test]
    fn malformed_lines_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "a.txt",
                "{\"epoch\": 0, \"train_loss\": 1.0}\n{\"epoch\": 1, \"train_loss\": \n",
                "a.txt:2: not a JSON object",
            ),
            ("b.txt", "[1, 2]\n", "b.txt:1: expected a JSON object"),
            (
                "c.csv",
                "epoch,loss\n1,0.5\n2,abc\n",
                "c.csv:3:2: loss = \"abc\" is not a number",
            ),
            (
                "d.csv",
                "epoch,loss\n1,0.5,9\n",
                "d.csv:2: 3 fields, the header has 2",
            ),
            (
                "e.txt",
                "{\"epoch\": 1.5, \"loss\": 1}\n",
                "e.txt:1: epoch 1.5 is not a whole number",
            ),
            ("f.csv", "", "f.csv: empty file"),
        ];
        for (name, text, says) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let e = format!("{:#}", read(&p, LogFormat::of(&p), &[]).unwrap_err());
            assert!(e.contains(says), "{name}: {e}");
        }
        assert!(parse_map("a=b").is_ok() && parse_map("ab").is_err() && parse_map("=b").is_err());
    }
}
