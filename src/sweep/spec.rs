//! Sweep files: a `[base]` run config, a `[grid]` (or several `[[grids]]`) of dotted config
//! paths with lists of values, a random `[search]` (see [`super::search`]), `seeds = [...]`
//! and optional explicit `[[runs]]`. Expansion is the cartesian product of each grid (the union
//! over grids, the search's trials and the explicit runs), times the seeds. An
//! `[early_stop]` section is copied into every run's config. Every error names FILE:LINE:COL
//! before anything runs.

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use toml::{Spanned, Table, Value};

use super::search::Search;
use crate::config::early_stop::{EarlyStopConfig, Mode, METRICS};
use crate::config::error::locate_in_array;
use crate::config::identity::{display, flatten_table, run_id};
use crate::config::{locate_key, read_source, toml_error, ConfigError, RunConfig};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: Option<Spanned<String>>,
    seeds: Option<Spanned<Vec<u64>>>,
    base: Option<RunConfig>,
    grid: Option<BTreeMap<String, Spanned<Vec<Value>>>>,
    grids: Option<Vec<BTreeMap<String, Spanned<Vec<Value>>>>>,
    search: Option<Spanned<BTreeMap<String, Spanned<Value>>>>,
    early_stop: Option<Spanned<EarlyStopSpec>>,
    runs: Option<Vec<Spanned<Table>>>,
}

/// `[early_stop]` as written: the mode may be left out (max for the monitor's figures, min
/// for losses).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EarlyStopSpec {
    metric: Spanned<String>,
    mode: Option<Mode>,
    rungs: Vec<usize>,
    keep: usize,
}

impl EarlyStopSpec {
    /// The section every run gets; an unknown metric is an error at its value.
    fn resolve(&self) -> Result<EarlyStopConfig, (usize, String)> {
        let metric = EarlyStopConfig::metric_key(self.metric.get_ref());
        if !METRICS.contains(&metric.as_str()) {
            return Err((
                self.metric.span().start,
                format!(
                    "early_stop.metric: the runs never write `{}`; one of: {}, val_loss, train_loss",
                    self.metric.get_ref(),
                    METRICS.join(", ")
                ),
            ));
        }
        let mode = self.mode.unwrap_or(if metric.starts_with("epoch/") {
            Mode::Min
        } else {
            Mode::Max
        });
        Ok(EarlyStopConfig {
            metric,
            mode,
            rungs: self.rungs.clone(),
            keep: self.keep,
        })
    }
}

/// One expanded run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub id: String,
    pub config: RunConfig,
    /// The grid / explicit values that made this point (dotted key, value), plus the seed.
    pub overrides: Vec<(String, String)>,
}

/// A parsed and expanded sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub runs: Vec<PlannedRun>,
    /// The swept keys and their values in file order (grid axes, then keys of `[[runs]]`).
    pub axes: Vec<(String, Vec<String>)>,
    pub seeds: Vec<u64>,
    /// The keys of a `[search]` (empty without one).
    pub searched: Vec<String>,
}

/// The config as a TOML tree with every default filled in.
fn tree(cfg: &RunConfig) -> Table {
    match Value::try_from(cfg) {
        Ok(Value::Table(t)) => t,
        _ => Table::new(),
    }
}

/// Sets a dotted path in a config tree; the path must already exist there.
fn set_path(t: &mut Table, dotted: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut cur = t;
    for (i, p) in parts.iter().enumerate() {
        let keys = cur_keys(cur);
        let last = i + 1 == parts.len();
        if last {
            return match cur.get_mut(*p) {
                Some(Value::Table(_)) => Err(format!("`{dotted}` is a table, not a setting")),
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                // an optional setting left unset is absent from the tree
                None if optional_key(dotted) => {
                    cur.insert(p.to_string(), value);
                    Ok(())
                }
                None => Err(format!(
                    "unknown config path `{dotted}`; valid here: {keys}"
                )),
            };
        }
        match cur.get_mut(*p) {
            Some(Value::Table(inner)) => cur = inner,
            _ => {
                return Err(format!(
                    "unknown config path `{dotted}`; valid here: {keys}"
                ))
            }
        }
    }
    Err(format!("empty config path `{dotted}`"))
}

/// Settings that are absent from a serialised config while unset.
fn optional_key(dotted: &str) -> bool {
    matches!(
        dotted,
        "data.path"
            | "data.train_size"
            | "data.val_size"
            | "probe.train_size"
            | "probe.tran_width"
            | "probe.tran_dropout"
            | "probe.layer_decay"
    )
}

fn cur_keys(t: &Table) -> String {
    t.keys().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

/// Why a point of the sweep does not resolve: the setting at fault (when known) and why.
struct Unresolved {
    key: Option<String>,
    message: String,
}

/// Resolves `base` with `overrides` into a validated config.
fn resolve(base: &Table, overrides: &[(String, Value)]) -> Result<RunConfig, Unresolved> {
    let mut t = base.clone();
    for (k, v) in overrides {
        set_path(&mut t, k, v.clone()).map_err(|message| Unresolved {
            key: Some(k.clone()),
            message,
        })?;
    }
    let cfg: RunConfig = Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| Unresolved {
            key: None,
            message: e.message().replace('\n', " ").trim().to_string(),
        })?;
    cfg.validate().map_err(|(key, m)| Unresolved {
        message: format!("{key}: {m}"),
        key: Some(key),
    })?;
    Ok(cfg)
}

/// Adds `value` to the values of axis `key` (a new axis at the end), once.
fn add_to_axis(axes: &mut Vec<(String, Vec<String>)>, key: &str, value: &Value) {
    let v = display(value);
    match axes.iter_mut().find(|(a, _)| a == key) {
        Some((_, vals)) if !vals.contains(&v) => vals.push(v),
        Some(_) => {}
        None => axes.push((key.to_string(), vec![v])),
    }
}

/// A sweep name becomes a folder under `runs/`: letters, digits, `.`, `_` and `-` only.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sweep name {name:?} must be letters, digits, '.', '_' or '-' (it names the folder runs/<name>)"
        ))
    }
}

impl Sweep {
    /// The same points without early stopping, as the sweep `<name>-full`: every run goes to
    /// its last epoch (their ids differ from the early-stopped runs', whose configs hold the
    /// `[early_stop]`).
    pub fn without_early_stop(mut self) -> Sweep {
        if self.runs.iter().all(|r| r.config.early_stop.is_none()) {
            return self;
        }
        self.name = format!("{}-full", self.name);
        for r in &mut self.runs {
            r.config.early_stop = None;
            r.id = run_id(&r.config);
        }
        self
    }

    /// Reads and expands a sweep file.
    pub fn load(path: &Path) -> anyhow::Result<Sweep> {
        let source = read_source(path, "sweep file")?;
        let stem = path
            .file_stem()
            .map_or("sweep".to_string(), |s| s.to_string_lossy().to_string());
        Ok(Sweep::parse(&path.display().to_string(), &source, &stem)?)
    }

    /// Parses and expands sweep text; `file` names it in errors, `default_name` is used when
    /// the file sets no `name`.
    pub fn parse(file: &str, source: &str, default_name: &str) -> Result<Sweep, ConfigError> {
        let err_at =
            |offset: usize, message: String| ConfigError::at(file, source, offset, message);
        let spec: SweepFile = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
        let name = match &spec.name {
            Some(n) => {
                check_name(n.get_ref()).map_err(|m| err_at(n.span().start, m))?;
                n.get_ref().clone()
            }
            None => {
                check_name(default_name).map_err(|m| err_at(0, format!("{m}; set `name`")))?;
                default_name.to_string()
            }
        };
        let base_cfg = spec.base.unwrap_or_default();
        let mut base = tree(&base_cfg);
        if let Some(es) = &spec.early_stop {
            let cfg = es.get_ref().resolve().map_err(|(at, m)| err_at(at, m))?;
            if let Ok(Value::Table(t)) = Value::try_from(&cfg) {
                base.insert("early_stop".into(), Value::Table(t));
            }
        }
        let seeds: Vec<u64> = match &spec.seeds {
            Some(s) if s.get_ref().is_empty() => {
                return Err(err_at(s.span().start, "`seeds` is empty".into()));
            }
            Some(s) => s.get_ref().clone(),
            None => vec![base_cfg.seed],
        };
        let mut grids: Vec<BTreeMap<String, Spanned<Vec<Value>>>> = spec.grid.into_iter().collect();
        grids.extend(spec.grids.unwrap_or_default());
        let explicit = spec.runs.unwrap_or_default();
        let search = match &spec.search {
            Some(s) => Some(Search::parse(s).map_err(|(at, m)| err_at(at, m))?),
            None => None,
        };
        if grids.is_empty() && explicit.is_empty() && search.is_none() {
            return Err(err_at(
                0,
                "the sweep has no [grid], [[grids]], [search] or [[runs]]: nothing to run".into(),
            ));
        }
        // a point's error is shown where the offending value is written: at the axis or
        // [[runs]] entry that set it, else at the [base] setting, else at the point itself
        let located = |u: Unresolved, at: usize, set_here: &[(String, Value)], what: &str| {
            let here = u
                .key
                .as_ref()
                .is_some_and(|k| set_here.iter().any(|(o, _)| o == k));
            let offset = match &u.key {
                // the [early_stop] section every run shares
                Some(k) if k.starts_with("early_stop.") => match locate_key(source, "", k) {
                    0 => at,
                    found => found,
                },
                Some(k) if !here => {
                    let in_base = locate_key(source, "base", k);
                    if in_base > 0 {
                        in_base
                    } else {
                        at
                    }
                }
                _ => at,
            };
            // the shared [early_stop] is not the fault of the point that revealed it
            let what = if u.key.as_ref().is_some_and(|k| k.starts_with("early_stop.")) {
                ""
            } else {
                what
            };
            err_at(offset, format!("{what}{}", u.message))
        };
        let seed_rule = "set seeds with `seeds = [...]` at the top of the sweep file";

        // every point before seeds: the list of (dotted key, value) overrides, with where
        // it was written
        let mut points: Vec<(Vec<(String, Value)>, usize)> = Vec::new();
        let mut axes: Vec<(String, Vec<String>)> = Vec::new();
        for grid in &grids {
            if grid.is_empty() {
                return Err(err_at(0, "a grid has no axes".into()));
            }
            let first = grid.values().map(|v| v.span().start).min().unwrap_or(0);
            let mut product: Vec<Vec<(String, Value)>> = vec![Vec::new()];
            for (key, values) in grid {
                let at = values.span().start;
                if key == "seed" {
                    return Err(err_at(
                        at,
                        format!("`seed` cannot be a grid axis: {seed_rule}"),
                    ));
                }
                if values.get_ref().is_empty() {
                    return Err(err_at(at, format!("grid axis `{key}` is empty")));
                }
                for v in values.get_ref() {
                    let ov = [(key.clone(), v.clone())];
                    resolve(&base, &ov)
                        .map_err(|u| located(u, at, &ov, &format!("grid axis `{key}`: ")))?;
                }
                for v in values.get_ref() {
                    add_to_axis(&mut axes, key, v);
                }
                product = product
                    .into_iter()
                    .flat_map(|p| {
                        values.get_ref().iter().map(move |v| {
                            let mut q = p.clone();
                            q.push((key.clone(), v.clone()));
                            q
                        })
                    })
                    .collect();
            }
            points.extend(product.into_iter().map(|p| (p, first)));
        }
        let mut searched = Vec::new();
        if let Some(search) = &search {
            for (key, _, at) in &search.keys {
                if key == "seed" {
                    return Err(err_at(
                        *at,
                        format!("`seed` cannot be searched: {seed_rule}"),
                    ));
                }
                searched.push(key.clone());
            }
            for trial in search.trials() {
                for (key, value) in &trial {
                    let at = search
                        .keys
                        .iter()
                        .find(|(k, _, _)| k == key)
                        .map_or(0, |(_, _, at)| *at);
                    let ov = [(key.clone(), value.clone())];
                    resolve(&base, &ov)
                        .map_err(|u| located(u, at, &ov, &format!("search key `{key}`: ")))?;
                    add_to_axis(&mut axes, key, value);
                }
                let at = spec.search.as_ref().map_or(0, |s| s.span().start);
                points.push((trial, at));
            }
        }
        for (index, run) in explicit.iter().enumerate() {
            let mut ov = Vec::new();
            flatten_table("", run.get_ref(), &mut ov);
            let at = run.span().start;
            let at_key = |k: &str| locate_in_array(source, "runs", index, k).unwrap_or(at);
            if ov.iter().any(|(k, _)| k == "seed") {
                return Err(err_at(
                    at_key("seed"),
                    format!("[[runs]] cannot set `seed`: {seed_rule}"),
                ));
            }
            resolve(&base, &ov).map_err(|u| {
                let key_at = u.key.as_deref().map_or(at, at_key);
                located(u, key_at, &ov, "[[runs]]: ")
            })?;
            for (k, v) in &ov {
                add_to_axis(&mut axes, k, v);
            }
            points.push((ov, at));
        }

        let mut runs: Vec<PlannedRun> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (point, at) in &points {
            for &seed in &seeds {
                let mut ov = point.clone();
                ov.push(("seed".into(), Value::Integer(seed as i64)));
                let config = resolve(&base, &ov).map_err(|u| located(u, *at, point, ""))?;
                let id = run_id(&config);
                if !seen.insert(id.clone()) {
                    continue;
                }
                runs.push(PlannedRun {
                    id,
                    config,
                    overrides: ov.iter().map(|(k, v)| (k.clone(), display(v))).collect(),
                });
            }
        }
        Ok(Sweep {
            name,
            runs,
            axes,
            seeds,
            searched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWEEP: &str = r#"
name = "t"
seeds = [0, 1]
[base]
[base.train]
epochs = 2
[grid]
"masking.position" = ["corner", "center", "corner+center"]
"predictor.models" = [2, 4]
"#;

    #[test]
    fn cartesian_product_times_seeds() {
        let s = Sweep::parse("s.toml", SWEEP, "x").unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.runs.len(), 3 * 2 * 2);
        let ids: std::collections::HashSet<_> = s.runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 12);
        assert!(s.runs.iter().all(|r| r.config.train.epochs == 2));
        let centre_4 = s
            .runs
            .iter()
            .filter(|r| {
                r.config.masking.position == crate::spec::Position::Center
                    && r.config.predictor.models.count() == 4
            })
            .count();
        assert_eq!(centre_4, 2);
    }

    #[test]
    fn ids_are_stable_and_change_with_any_value() {
        let a = Sweep::parse("s.toml", SWEEP, "x").unwrap();
        let b = Sweep::parse("s.toml", SWEEP, "x").unwrap();
        let ids_a: Vec<_> = a.runs.iter().map(|r| &r.id).collect();
        let ids_b: Vec<_> = b.runs.iter().map(|r| &r.id).collect();
        assert_eq!(ids_a, ids_b);
        let changed =
            Sweep::parse("s.toml", &SWEEP.replace("epochs = 2", "epochs = 3"), "x").unwrap();
        for r in &changed.runs {
            assert!(!ids_a.contains(&&r.id));
        }
        let mut cfg = a.runs[0].config.clone();
        let id = run_id(&cfg);
        cfg.train.base_lr *= 1.0000001;
        assert_ne!(run_id(&cfg), id);
        // the same point listed twice is one run
        let dup = SWEEP.replace("[2, 4]", "[2, 2]");
        assert_eq!(Sweep::parse("s.toml", &dup, "x").unwrap().runs.len(), 6);
    }

    #[test]
    fn several_grids_and_explicit_runs_union() {
        let src = r#"
seeds = [7]
[[grids]]
"masking.position" = ["corner", "center"]
[[grids]]
"predictor.models" = [2, 4, 8]
[[runs]]
train.epochs = 5
decoder = { depth = 3 }
"#;
        let s = Sweep::parse("s.toml", src, "name-from-file").unwrap();
        assert_eq!(s.name, "name-from-file");
        // corner/models=2 appears in both grids: deduplicated
        assert_eq!(s.runs.len(), 2 + 3 - 1 + 1);
        let last = s.runs.last().unwrap();
        assert_eq!(last.config.train.epochs, 5);
        assert_eq!(last.config.decoder.depth, 3);
        assert!(s.runs.iter().all(|r| r.config.seed == 7));
    }

    fn error(src: &str) -> ConfigError {
        Sweep::parse("bad.toml", src, "x").unwrap_err()
    }

    #[test]
    fn bad_sweeps_are_located() {
        let e = error("[grid]\n\"masking.postion\" = [\"corner\"]\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(
            e.message.contains("masking.postion") && e.message.contains("position"),
            "{e}"
        );
        let e = error("[grid]\n\"predictor.models\" = []\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("empty"), "{e}");
        let e = error("[grid]\n\"train.epochs\" = [1, \"two\"]\n");
        assert_eq!(e.line, 2, "{e}");
        let e = error("[grid]\n\"predictor.models\" = [3]\n");
        assert!(e.message.contains("2, 4, 8"), "{e}");
        let e = error("seeds = [1]\n[base.train]\nepocs = 1\n[grid]\nseed = [1]\n");
        assert_eq!((e.line, e.col), (3, 1), "{e}");
        let e = error("seeds = [1]\n");
        assert!(e.message.contains("nothing to run"), "{e}");
        let e = error("[grid\n");
        assert_eq!(e.line, 1, "{e}");
        let e = error("seeds = []\n[grid]\nseed = [1]\n");
        assert!(e.message.contains("seeds"), "{e}");
        let e = error("[grid]\n\"train\" = [1]\n");
        assert!(e.message.contains("table"), "{e}");
    }

    #[test]
    fn errors_point_where_the_value_is_written() {
        // a bad [base] value: at the base setting, not at the grid
        let e = error(
            "[base.train]\nepochs = 2\nmin_lr = -1\n[grid]\n\"masking.position\" = [\"corner\"]\n",
        );
        assert_eq!((e.line, e.col), (3, 1), "{e}");
        assert!(e.message.contains("train.min_lr"), "{e}");
        let e = error("[base.train]\nweight_decay = nan\n[[runs]]\ntrain.epochs = 2\n");
        assert_eq!(e.line, 2, "{e}");
        // a bad value set by [[runs]]: at that entry
        let e = error("[base.train]\nepochs = 2\n[[runs]]\ntrain.min_lr = -3\n");
        assert_eq!(e.line, 4, "{e}");
        // a bad axis value: at the axis
        let e = error("[grid]\n\"train.warmup_epochs\" = [1.0, -2.0]\n");
        assert_eq!(e.line, 2, "{e}");
        // a base that only works with the grid's values is fine
        let ok = "[base.model]\npreset = \"mf-285m\"\n[grid]\n\"data.image_size\" = [128, 256]\n";
        assert_eq!(Sweep::parse("s.toml", ok, "x").unwrap().runs.len(), 2);
    }

    #[test]
    fn seeds_only_come_from_seeds() {
        let e = error("seeds = [0, 1]\n[grid]\nseed = [1, 2]\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("seeds = [...]"), "{e}");
        let e = error("seeds = [0, 1]\n[[runs]]\nseed = 5\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("seed"), "{e}");
    }

    #[test]
    fn names_cannot_leave_the_runs_folder() {
        for bad in ["../../x", "a/b", "", ".."] {
            let src = format!("name = {bad:?}\n[grid]\n\"train.epochs\" = [1]\n");
            let e = error(&src);
            assert_eq!(e.line, 1, "{bad}: {e}");
            assert!(e.message.contains("runs/<name>"), "{e}");
        }
        let src = "[grid]\n\"train.epochs\" = [1]\n";
        assert!(Sweep::parse("s.toml", src, "bad name").is_err());
        assert!(Sweep::parse("s.toml", src, "ok-name_1.2").is_ok());
    }

    #[test]
    fn axes_and_seeds_are_reported() {
        let s = Sweep::parse("s.toml", SWEEP, "x").unwrap();
        assert_eq!(s.seeds, vec![0, 1]);
        let names: Vec<&str> = s.axes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["masking.position", "predictor.models"]);
        assert_eq!(s.axes[0].1, ["corner", "center", "corner+center"]);
    }
}
