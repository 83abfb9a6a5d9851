//! `workbench runs`: one line per run.

use anyhow::Result;
use serde_json::Value;

use super::{render, Cell, Format};
use crate::store::tags::Target;
use crate::store::{Status, Store};

/// Config keys shown as columns: (dotted key, header).
pub const PARAM_COLUMNS: [(&str, &str); 5] = [
    ("model.preset", "preset"),
    ("masking.position", "position"),
    ("predictor.models", "models"),
    ("train.epochs", "epochs"),
    ("seed", "seed"),
];

/// Metrics shown as columns: (key, header, decimals).
pub const METRIC_COLUMNS: [(&str, &str, usize); 3] = [
    ("epoch/train_loss", "train_loss", 4),
    ("epoch/val_loss", "val_loss", 4),
    ("epoch/img_per_s", "img/s", 1),
];

/// Probe accuracies, shown when some listed run has them: (key, header).
pub const PROBE_COLUMNS: [(&str, &str); 4] = [
    ("probe/lin/top1", "lin"),
    ("probe/tran-1/top1", "tran-1"),
    ("probe/finetune/top1", "ft"),
    // the supervised baseline's own training of encoder + tran-1 head
    ("probe/supervised/top1", "supervised"),
];

/// The value at a dotted path of a JSON config.
pub fn json_path<'a>(cfg: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(cfg, |v, k| v.get(k))
}

/// The runs table; `tag` keeps the runs that carry it. Tags are a column when a listed run has
/// one (always in JSON, with the notes).
pub fn runs(
    store: &Store,
    sweep: Option<&str>,
    status: Option<Status>,
    tag: Option<&str>,
    format: Format,
) -> Result<String> {
    let tags = store.all_tags(Target::Run)?;
    let notes = store.all_notes(Target::Run)?;
    let mut rows = store.runs(sweep, status)?;
    if let Some(t) = tag {
        rows.retain(|r| tags.get(&r.id).is_some_and(|v| v.iter().any(|x| x == t)));
    }
    let json = format == Format::Json;
    let show_tags = json || rows.iter().any(|r| tags.contains_key(&r.id));
    let metrics: Vec<_> = METRIC_COLUMNS
        .iter()
        .map(|(k, _, _)| store.latest_values(k))
        .collect::<Result<_>>()?;
    let probes: Vec<_> = PROBE_COLUMNS
        .iter()
        .map(|(k, _)| store.latest_values(k))
        .collect::<Result<_>>()?;
    let shown_probes: Vec<usize> = (0..PROBE_COLUMNS.len())
        .filter(|&i| rows.iter().any(|r| probes[i].contains_key(&r.id)))
        .collect();
    let mut header: Vec<String> = ["id", "sweep", "status"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(PARAM_COLUMNS.iter().map(|(_, h)| h.to_string()));
    header.extend(METRIC_COLUMNS.iter().map(|(_, h, _)| h.to_string()));
    header.extend(shown_probes.iter().map(|&i| PROBE_COLUMNS[i].1.to_string()));
    if show_tags {
        header.push("tags".into());
    }
    if json {
        header.push("notes".into());
    }
    header.push("error".into());
    let table: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let cfg: Value = serde_json::from_str(&r.config).unwrap_or_default();
            let mut line = vec![
                Cell::text(&r.id),
                Cell::text(&r.sweep),
                Cell::text(r.status.as_str()),
            ];
            line.extend(
                PARAM_COLUMNS
                    .iter()
                    .map(|(k, _)| Cell::from_json(json_path(&cfg, k), 4)),
            );
            line.extend(
                METRIC_COLUMNS
                    .iter()
                    .zip(&metrics)
                    .map(|((_, _, d), m)| Cell::opt_num(m.get(&r.id).copied(), *d)),
            );
            line.extend(
                shown_probes
                    .iter()
                    .map(|&i| Cell::opt_num(probes[i].get(&r.id).copied(), 4)),
            );
            if show_tags {
                line.push(Cell::List(tags.get(&r.id).cloned().unwrap_or_default()));
            }
            if json {
                let texts = notes
                    .get(&r.id)
                    .map(|n| n.iter().map(|n| n.text.clone()).collect());
                line.push(Cell::List(texts.unwrap_or_default()));
            }
            line.push(r.error.clone().map_or(Cell::Missing, Cell::Text));
            line
        })
        .collect();
    Ok(render(format, &header, &table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_typed_json() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ids) = crate::views::fixture::store(dir.path());
        let t = runs(&s, None, None, None, Format::Table).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("id"));
        // one number format per column: every img/s has one decimal
        assert!(
            t.contains("100.0") && t.contains("157.1") && t.contains("214.1"),
            "{t}"
        );
        assert!(t.contains("0.5000") && t.contains("0.5100"), "{t}");
        assert!(t.contains("loss became NaN"), "{t}");
        let j: Value =
            serde_json::from_str(&runs(&s, None, None, None, Format::Json).unwrap()).unwrap();
        let first = &j[0];
        assert_eq!(first["id"], Value::from(ids[0].clone()));
        assert_eq!(first["epochs"], Value::from(6));
        assert_eq!(first["models"], Value::from(2));
        assert!(first["img/s"].is_f64());
        assert_eq!(first["error"], Value::Null);
        assert_eq!(j[2]["status"], Value::from("failed"));
        let failed = runs(&s, None, Some(Status::Failed), None, Format::Csv).unwrap();
        assert_eq!(failed.lines().count(), 2, "{failed}");
    }

    #[test]
    fn a_huge_stored_error_is_clipped_in_tables_and_kept_whole_in_json() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ids) = crate::views::fixture::store(dir.path());
        // a 100 000-character data path in an error message, with a line break
        let error = format!("/data/{}\nis not an IDX file", "x".repeat(100_000));
        s.set_status(&ids[2], Status::Failed, Some(&error)).unwrap();
        let t = runs(&s, None, None, None, Format::Table).unwrap();
        assert_eq!(t.lines().count(), 4, "one line per run");
        assert!(t.lines().all(|l| l.chars().count() < 600), "{}", t.len());
        assert!(t.contains("/data/xxx") && t.contains('…'));
        let j: Value =
            serde_json::from_str(&runs(&s, None, None, None, Format::Json).unwrap()).unwrap();
        assert_eq!(j[2]["error"], Value::from(error));
    }
}
