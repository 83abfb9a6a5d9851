//! Ablation tables in the paper's shape (Tab. 2): runs grouped by the value of one swept
//! setting, every final metric as mean ± sample std over the group's runs (seeds), the best
//! group per column marked. Shared by the TUI's Compare tab and the report.

use std::collections::{BTreeSet, HashMap};

use crate::curve::mean_std;
use crate::store::{Metric, RunRow, Status};

/// Whether a larger or a smaller value of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A metric column of an ablation table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub better: Better,
    /// Shown ×100 (accuracies as %).
    pub percent: bool,
}

/// The final metrics of the paper's tables: probe top-1 (lin, tran-1, ft), the feature
/// monitor's last kNN top-1 and effective rank, then losses.
pub const COLUMNS: [Column; 7] = [
    Column {
        key: "probe/lin/top1",
        label: "lin",
        better: Better::Higher,
        percent: true,
    },
    Column {
        key: "probe/tran-1/top1",
        label: "tran-1",
        better: Better::Higher,
        percent: true,
    },
    Column {
        key: "probe/finetune/top1",
        label: "ft",
        better: Better::Higher,
        percent: true,
    },
    Column {
        key: "monitor/knn/top1",
        label: "kNN",
        better: Better::Higher,
        percent: true,
    },
    Column {
        key: "monitor/erank",
        label: "eff. rank",
        better: Better::Higher,
        percent: false,
    },
    Column {
        key: "epoch/train_loss",
        label: "train loss",
        better: Better::Lower,
        percent: false,
    },
    Column {
        key: "epoch/val_loss",
        label: "val loss",
        better: Better::Lower,
        percent: false,
    },
];

/// Mean ± std over `n` runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for a single run.
    pub std: Option<f64>,
    pub n: usize,
}

impl Summary {
    /// `78.6 ± 0.3` (or `78.6` for one run), ×100 when `percent`.
    pub fn shown(&self, percent: bool, decimals: usize) -> String {
        let k = if percent { 100.0 } else { 1.0 };
        match self.std {
            Some(s) => format!("{:.d$} ± {:.d$}", self.mean * k, s * k, d = decimals),
            None => format!("{:.d$}", self.mean * k, d = decimals),
        }
    }
}

/// One group (value of the grouping setting).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub value: String,
    /// Runs in the group.
    pub runs: Vec<String>,
    /// One entry per column of the table.
    pub cells: Vec<Option<Summary>>,
}

/// An ablation table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub key: String,
    pub columns: Vec<Column>,
    pub groups: Vec<Group>,
    /// Per column, the index of the best group (`None` when the column is empty).
    pub best: Vec<Option<usize>>,
}

impl Table {
    /// The header (the setting, n, each column's header) and the body cells of the table:
    /// text, and whether it is the best of its column (marked only with two or more groups).
    pub fn cells(&self) -> (Vec<String>, Vec<Vec<(String, bool)>>) {
        let mut header = vec![self.key.clone(), "n".to_string()];
        header.extend(self.columns.iter().map(|c| c.header()));
        let rows = self
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let mut row = vec![(g.value.clone(), false), (g.runs.len().to_string(), false)];
                for (ci, c) in self.columns.iter().enumerate() {
                    row.push((
                        g.cell_text(ci, c),
                        self.best[ci] == Some(gi) && self.groups.len() > 1,
                    ));
                }
                row
            })
            .collect();
        (header, rows)
    }
}

impl Group {
    /// The text of column `ci` (`column` its definition): "mean ± std" (accuracies in %, one
    /// decimal; losses four), "(n=k)" when fewer runs than the group's have the value, "–"
    /// when none has.
    pub fn cell_text(&self, ci: usize, column: &Column) -> String {
        self.cells[ci].map_or("–".to_string(), |s| {
            let shown = s.shown(column.percent, if column.percent { 1 } else { 4 });
            if s.n != self.runs.len() {
                format!("{shown} (n={})", s.n)
            } else {
                shown
            }
        })
    }
}

impl Column {
    /// The column's header: "lin top-1 (%)" for accuracies, the label for losses.
    pub fn header(&self) -> String {
        if self.percent {
            format!("{} top-1 (%)", self.label)
        } else {
            self.label.to_string()
        }
    }
}

/// Params of one run as a map.
pub type Params = HashMap<String, String>;

/// The caption of `table`, the study of `axis` (`held` the settings it keeps at their base
/// values): how its cells are summarised and what it holds fixed.
pub fn caption(axis: &str, table: &Table, held: &[String]) -> String {
    let spread = if table.groups.iter().any(|g| g.runs.len() > 1) {
        "mean ± std over seeds (n runs)"
    } else {
        "one run per value"
    };
    let held = if held.is_empty() {
        String::new()
    } else {
        format!("; other settings at {}", held.join(", "))
    };
    format!("{axis}: {spread}, best per column in bold{held}")
}

/// The latest metrics of each run, by run id.
pub type Latest = HashMap<String, Vec<Metric>>;

/// The params and the latest metrics of `runs`, by run id: what an ablation table is built
/// from (the report and `workbench table`).
pub fn params_and_latest(
    store: &crate::store::Store,
    runs: &[RunRow],
) -> anyhow::Result<(HashMap<String, Params>, Latest)> {
    let all = store.all_params()?;
    let params = runs
        .iter()
        .map(|r| {
            let p = all
                .get(&r.id)
                .map(|v| v.iter().cloned().collect())
                .unwrap_or_default();
            (r.id.clone(), p)
        })
        .collect();
    let mut latest = HashMap::new();
    for r in runs {
        latest.insert(r.id.clone(), store.latest_metrics(&r.id)?);
    }
    Ok((params, latest))
}

/// Settings whose values differ among `runs` (sorted), optionally leaving out the seed.
pub fn differing_keys(
    params: &HashMap<String, Params>,
    runs: &[&RunRow],
    with_seed: bool,
) -> Vec<String> {
    let keys: BTreeSet<&String> = runs
        .iter()
        .filter_map(|r| params.get(&r.id))
        .flat_map(|p| p.keys())
        .collect();
    keys.into_iter()
        .filter(|k| with_seed || k.as_str() != "seed")
        .filter(|k| {
            let vals: BTreeSet<Option<&String>> = runs
                .iter()
                .map(|r| params.get(&r.id).and_then(|p| p.get(*k)))
                .collect();
            vals.len() > 1
        })
        .cloned()
        .collect()
}

/// The shortest dotted suffix of each of `keys` (whole components) that no other key ends
/// with: titles that tell settings apart in little room. `decoder.dim` and `predictor.dim`
/// stay whole, `masking.position` alone is `position`; a key that is all of another key's
/// tail (`dim` beside `x.dim`) stays whole.
pub fn unique_suffixes(keys: &[String]) -> Vec<String> {
    let parts: Vec<Vec<&str>> = keys.iter().map(|k| k.split('.').collect()).collect();
    // the last `n` components of a key (all of them when it has fewer)
    let tail = |p: &[&str], n: usize| p[p.len().saturating_sub(n)..].join(".");
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (1..p.len())
                .find(|&n| {
                    let mine = tail(p, n);
                    parts
                        .iter()
                        .enumerate()
                        .all(|(j, q)| j == i || tail(q, n) != mine)
                })
                .map_or_else(|| keys[i].clone(), |n| tail(p, n))
        })
        .collect()
}

/// The most common value of each of `keys` among `runs` (ties: the value that appears
/// last): the base point of one-factor studies, where every study varies one setting and
/// keeps the others at the base.
pub fn base_values(
    keys: &[String],
    runs: &[&RunRow],
    params: &HashMap<String, Params>,
) -> HashMap<String, String> {
    let value = |r: &RunRow, k: &str| params.get(&r.id).and_then(|p| p.get(k)).cloned();
    keys.iter()
        .filter_map(|k| {
            let mut counts: Vec<(String, usize)> = Vec::new();
            for v in runs.iter().filter_map(|r| value(r, k)) {
                match counts.iter_mut().find(|(seen, _)| *seen == v) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((v, 1)),
                }
            }
            let (best, _) = counts.into_iter().max_by_key(|(_, n)| *n)?;
            Some((k.clone(), best))
        })
        .collect()
}

/// One study of a sweep that unions one-factor studies (paper Tab. 2a, 2b, Fig. 6): the
/// runs that vary `axis` with every other swept setting at its base value, and those settings.
pub struct Study<'a> {
    pub runs: Vec<&'a RunRow>,
    /// "k = v" for every other swept setting, at its base value.
    pub held: Vec<String>,
}

/// The study of `axis` among `runs` swept over `keys` (base values from [`base_values`]), so
/// a group of its table does not pool runs of other studies.
pub fn one_factor<'a>(
    axis: &str,
    keys: &[String],
    runs: &[&'a RunRow],
    params: &HashMap<String, Params>,
) -> Study<'a> {
    let base = base_values(keys, runs, params);
    let others: Vec<&String> = keys.iter().filter(|k| k.as_str() != axis).collect();
    let runs = runs
        .iter()
        .copied()
        .filter(|r| {
            others.iter().all(|k| {
                params
                    .get(&r.id)
                    .and_then(|p| p.get(*k))
                    .map(|s| s.as_str())
                    == base.get(*k).map(|s| s.as_str())
            })
        })
        .collect();
    let held = others
        .iter()
        .filter_map(|k| base.get(*k).map(|v| format!("{k} = {v}")))
        .collect();
    Study { runs, held }
}

/// Puts `items` in numeric order of `value` when every value is a number (epochs 2, 6, 12
/// rather than the sweep file's 6, 2, 12); otherwise leaves their order (of first appearance)
/// alone.
pub fn sort_numeric<T>(items: &mut [T], value: impl Fn(&T) -> &str) {
    let number = |t: &T| value(t).trim().parse::<f64>().ok();
    if items.iter().all(|t| number(t).is_some()) {
        items.sort_by(|a, b| {
            number(a)
                .unwrap_or(0.0)
                .total_cmp(&number(b).unwrap_or(0.0))
        });
    }
}

/// Groups `runs` by their value of `key` (numbers in numeric order, other values in order of
/// first appearance) and summarises every column that some run has. With `only_finished`,
/// runs that did not finish are left out.
pub fn table(
    key: &str,
    runs: &[&RunRow],
    params: &HashMap<String, Params>,
    latest: &HashMap<String, Vec<Metric>>,
    only_finished: bool,
) -> Table {
    let mut groups: Vec<Group> = Vec::new();
    for r in runs {
        if only_finished && r.status != Status::Finished {
            continue;
        }
        let value = params
            .get(&r.id)
            .and_then(|p| p.get(key))
            .cloned()
            .unwrap_or_else(|| "-".into());
        match groups.iter_mut().find(|g| g.value == value) {
            Some(g) => g.runs.push(r.id.clone()),
            None => groups.push(Group {
                value,
                runs: vec![r.id.clone()],
                cells: Vec::new(),
            }),
        }
    }
    sort_numeric(&mut groups, |g| &g.value);
    let value_of = |run: &str, metric: &str| -> Option<f64> {
        latest
            .get(run)?
            .iter()
            .find(|m| m.key == metric)
            .map(|m| m.value)
    };
    let columns: Vec<Column> = COLUMNS
        .into_iter()
        .filter(|c| {
            groups
                .iter()
                .any(|g| g.runs.iter().any(|r| value_of(r, c.key).is_some()))
        })
        .collect();
    for g in &mut groups {
        g.cells = columns
            .iter()
            .map(|c| {
                let vals: Vec<f64> = g.runs.iter().filter_map(|r| value_of(r, c.key)).collect();
                mean_std(&vals).map(|(mean, std)| Summary {
                    mean,
                    std,
                    n: vals.iter().filter(|v| v.is_finite()).count(),
                })
            })
            .collect();
    }
    let best = (0..columns.len())
        .map(|ci| {
            let scored = groups
                .iter()
                .enumerate()
                .filter_map(|(gi, g)| g.cells[ci].map(|s| (gi, s.mean)));
            match columns[ci].better {
                Better::Higher => scored.max_by(|a, b| a.1.total_cmp(&b.1)),
                Better::Lower => scored.min_by(|a, b| a.1.total_cmp(&b.1)),
            }
            .map(|(gi, _)| gi)
        })
        .collect();
    Table {
        key: key.to_string(),
        columns,
        groups,
        best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: Status) -> RunRow {
        RunRow::example(id, status)
    }

    fn metric(key: &str, value: f64) -> Metric {
        Metric {
            key: key.into(),
            step: 1,
            epoch: 1,
            value,
            wall: 0.0,
        }
    }

    #[test]
    fn mean_and_std_over_three_seeds_by_hand() {
        let rows: Vec<RunRow> = ["a0", "a1", "a2", "b0", "b1", "b2", "c0"]
            .iter()
            .map(|id| {
                row(
                    id,
                    if *id == "c0" {
                        Status::Failed
                    } else {
                        Status::Finished
                    },
                )
            })
            .collect();
        let refs: Vec<&RunRow> = rows.iter().collect();
        let mut params = HashMap::new();
        let mut latest = HashMap::new();
        let lin = [0.60, 0.62, 0.64, 0.70, 0.71, 0.75, 0.99];
        for (r, v) in rows.iter().zip(lin) {
            let group = &r.id[..1];
            params.insert(
                r.id.clone(),
                Params::from([
                    ("masking.position".to_string(), group.to_string()),
                    ("seed".to_string(), r.id[1..].to_string()),
                ]),
            );
            latest.insert(
                r.id.clone(),
                vec![
                    metric("probe/lin/top1", v),
                    metric("epoch/val_loss", 1.0 - v),
                ],
            );
        }
        let t = table("masking.position", &refs, &params, &latest, true);
        assert_eq!(t.groups.len(), 2, "the failed run's group is left out");
        assert_eq!(
            t.columns.iter().map(|c| c.label).collect::<Vec<_>>(),
            ["lin", "val loss"]
        );
        let a = t.groups[0].cells[0].unwrap();
        // mean 0.62; sample std sqrt(((−.02)² + 0 + .02²) / 2) = 0.02
        assert!((a.mean - 0.62).abs() < 1e-12 && (a.std.unwrap() - 0.02).abs() < 1e-12);
        assert_eq!(a.n, 3);
        let b = t.groups[1].cells[0].unwrap();
        let mean_b = (0.70 + 0.71 + 0.75) / 3.0;
        let var_b = [0.70, 0.71, 0.75]
            .iter()
            .map(|v: &f64| (v - mean_b).powi(2))
            .sum::<f64>()
            / 2.0;
        assert!((b.mean - mean_b).abs() < 1e-12 && (b.std.unwrap() - var_b.sqrt()).abs() < 1e-12);
        assert_eq!(t.best, vec![Some(1), Some(1)], "higher lin, lower loss");
        assert_eq!(a.shown(true, 1), "62.0 ± 2.0");
        let one = Summary {
            mean: 0.5,
            std: None,
            n: 1,
        };
        assert_eq!(one.shown(false, 3), "0.500");
        let keys = differing_keys(&params, &refs, false);
        assert_eq!(keys, ["masking.position"]);
        assert_eq!(differing_keys(&params, &refs, true).len(), 2);
    }

    #[test]
    fn one_factor_studies_hold_the_other_settings_at_their_base() {
        // Tab. 2a (position at 6 epochs) unioned with Fig. 6 (epochs at corner+center)
        let runs = [
            ("p1", "corner", "6"),
            ("p2", "center", "6"),
            ("p3", "corner+center", "6"),
            ("e1", "corner+center", "2"),
            ("e2", "corner+center", "12"),
        ];
        let rows: Vec<RunRow> = runs
            .iter()
            .map(|(id, _, _)| row(id, Status::Finished))
            .collect();
        let refs: Vec<&RunRow> = rows.iter().collect();
        let params: HashMap<String, Params> = runs
            .iter()
            .map(|(id, pos, ep)| {
                (
                    id.to_string(),
                    Params::from([
                        ("masking.position".to_string(), pos.to_string()),
                        ("train.epochs".to_string(), ep.to_string()),
                    ]),
                )
            })
            .collect();
        let keys = differing_keys(&params, &refs, false);
        let base = base_values(&keys, &refs, &params);
        assert_eq!(base["masking.position"], "corner+center");
        assert_eq!(base["train.epochs"], "6");
        let ids = |axis: &str| -> Vec<String> {
            one_factor(axis, &keys, &refs, &params)
                .runs
                .iter()
                .map(|r| r.id.clone())
                .collect()
        };
        assert_eq!(ids("masking.position"), ["p1", "p2", "p3"]);
        assert_eq!(ids("train.epochs"), ["p3", "e1", "e2"]);
        assert_eq!(
            one_factor("train.epochs", &keys, &refs, &params).held,
            ["masking.position = corner+center"]
        );
    }

    #[test]
    fn numbers_sort_numerically_and_names_keep_their_order() {
        let mut epochs = vec!["6", "2", "12"];
        sort_numeric(&mut epochs, |v| v);
        assert_eq!(epochs, ["2", "6", "12"]);
        let mut rates = vec!["1e-3", "5e-4", "0.002"];
        sort_numeric(&mut rates, |v| v);
        assert_eq!(rates, ["5e-4", "1e-3", "0.002"]);
        let mut positions = vec!["corner", "center", "corner+center"];
        sort_numeric(&mut positions, |v| v);
        assert_eq!(positions, ["corner", "center", "corner+center"]);
        let mut mixed = vec!["8", "-", "2"];
        sort_numeric(&mut mixed, |v| v);
        assert_eq!(
            mixed,
            ["8", "-", "2"],
            "not every value a number: order kept"
        );
    }

    #[test]
    fn unique_suffixes_are_the_shortest_tails_no_other_key_has() {
        let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let short = |ks: &[&str]| unique_suffixes(&keys(ks));
        assert_eq!(
            short(&["masking.position", "seed", "train.base_lr"]),
            keys(&["position", "seed", "base_lr"]),
            "distinct leaves"
        );
        assert_eq!(
            short(&["decoder.dim", "masking.position", "predictor.dim"]),
            keys(&["decoder.dim", "position", "predictor.dim"]),
            "a shared leaf"
        );
        assert_eq!(
            short(&["a.x.dim", "b.x.dim", "c.dim"]),
            keys(&["a.x.dim", "b.x.dim", "c.dim"]),
            "two trailing components shared"
        );
        assert_eq!(short(&["dim", "x.dim"]), keys(&["dim", "x.dim"]));
        assert_eq!(short(&[]), Vec::<String>::new());
    }
}
