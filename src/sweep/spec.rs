//! Sweep files: a `[base]` run config, a `[grid]` (or several `[[grids]]`) of dotted config
//! paths with lists of values, `seeds = [...]` and optional explicit `[[runs]]`. Expansion is
//! the cartesian product of each grid (the union over grids), times the seeds. Every error
//! names FILE:LINE:COL before anything runs.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use toml::{Spanned, Table, Value};

use crate::config::{line_col, toml_error, ConfigError, RunConfig};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: Option<String>,
    seeds: Option<Spanned<Vec<u64>>>,
    base: Option<RunConfig>,
    grid: Option<BTreeMap<String, Spanned<Vec<Value>>>>,
    grids: Option<Vec<BTreeMap<String, Spanned<Vec<Value>>>>>,
    runs: Option<Vec<Spanned<Table>>>,
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
}

/// FNV-1a 64-bit: a hash that is stable across Rust versions and platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Stable id of a resolved config (the seed is part of it): 12 hex digits.
pub fn run_id(cfg: &RunConfig) -> String {
    let json = serde_json::to_string(cfg).expect("config serialises");
    format!("{:012x}", fnv1a(json.as_bytes()) >> 16)
}

/// The config as a TOML tree with every default filled in.
fn tree(cfg: &RunConfig) -> Table {
    match Value::try_from(cfg).expect("config serialises") {
        Value::Table(t) => t,
        _ => unreachable!("a struct serialises to a table"),
    }
}

/// `key = value` pairs of every leaf of a config, dotted.
pub fn flatten(cfg: &RunConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    flatten_table("", &tree(cfg), &mut out);
    out.into_iter().map(|(k, v)| (k, display(&v))).collect()
}

/// Sets a dotted path in a config tree; the path must already exist there.
fn set_path(t: &mut Table, dotted: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut cur = t;
    for (i, p) in parts.iter().enumerate() {
        let keys = cur_keys(cur);
        if i + 1 == parts.len() {
            match cur.get_mut(*p) {
                Some(Value::Table(_)) => {
                    return Err(format!("`{dotted}` is a table, not a setting"))
                }
                Some(slot) => {
                    *slot = value;
                    return Ok(());
                }
                None => {
                    return Err(format!(
                        "unknown config path `{dotted}`; valid here: {keys}"
                    ))
                }
            }
        }
        cur = match cur.get_mut(*p) {
            Some(Value::Table(inner)) => inner,
            _ => {
                return Err(format!(
                    "unknown config path `{dotted}`; valid here: {keys}"
                ))
            }
        };
    }
    unreachable!("split yields at least one part")
}

fn cur_keys(t: &Table) -> String {
    t.keys().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

/// Resolves `base` with `overrides` into a validated config.
fn resolve(base: &Table, overrides: &[(String, Value)]) -> Result<RunConfig, String> {
    let mut t = base.clone();
    for (k, v) in overrides {
        set_path(&mut t, k, v.clone())?;
    }
    let cfg: RunConfig = Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().replace('\n', " ").trim().to_string())?;
    cfg.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
    Ok(cfg)
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Flattens a `[[runs]]` table (nested tables or quoted dotted keys) into dotted overrides.
fn flatten_table(prefix: &str, t: &Table, out: &mut Vec<(String, Value)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(inner) => flatten_table(&key, inner, out),
            other => out.push((key, other.clone())),
        }
    }
}

impl Sweep {
    /// Reads and expands a sweep file.
    pub fn load(path: &Path) -> anyhow::Result<Sweep> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read sweep file: {e}", path.display()))?;
        let stem = path
            .file_stem()
            .map_or("sweep".to_string(), |s| s.to_string_lossy().to_string());
        Ok(Sweep::parse(&path.display().to_string(), &source, &stem)?)
    }

    /// Parses and expands sweep text; `file` names it in errors, `default_name` is used when
    /// the file sets no `name`.
    pub fn parse(file: &str, source: &str, default_name: &str) -> Result<Sweep, ConfigError> {
        let err_at = |offset: usize, message: String| {
            let (line, col) = line_col(source, offset);
            ConfigError {
                file: file.to_string(),
                line,
                col,
                message,
            }
        };
        let spec: SweepFile = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
        let base_cfg = spec.base.unwrap_or_default();
        let base = tree(&base_cfg);
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
        if grids.is_empty() && explicit.is_empty() {
            return Err(err_at(
                0,
                "the sweep has no [grid], [[grids]] or [[runs]]: nothing to run".into(),
            ));
        }

        // every point before seeds: the list of (dotted key, value) overrides
        let mut points: Vec<Vec<(String, Value)>> = Vec::new();
        for grid in &grids {
            if grid.is_empty() {
                return Err(err_at(0, "a grid has no axes".into()));
            }
            let mut product: Vec<Vec<(String, Value)>> = vec![Vec::new()];
            for (key, values) in grid {
                let at = values.span().start;
                if values.get_ref().is_empty() {
                    return Err(err_at(at, format!("grid axis `{key}` is empty")));
                }
                for v in values.get_ref() {
                    resolve(&base, &[(key.clone(), v.clone())])
                        .map_err(|m| err_at(at, format!("grid axis `{key}`: {m}")))?;
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
            points.extend(product);
        }
        for run in &explicit {
            let mut ov = Vec::new();
            flatten_table("", run.get_ref(), &mut ov);
            resolve(&base, &ov).map_err(|m| err_at(run.span().start, format!("[[runs]]: {m}")))?;
            points.push(ov);
        }

        let mut runs: Vec<PlannedRun> = Vec::new();
        for point in &points {
            for &seed in &seeds {
                let mut ov = point.clone();
                ov.push(("seed".into(), Value::Integer(seed as i64)));
                let config = resolve(&base, &ov).map_err(|m| err_at(0, m))?;
                let id = run_id(&config);
                if runs.iter().any(|r| r.id == id) {
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
            name: spec.name.unwrap_or_else(|| default_name.to_string()),
            runs,
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
                r.config.masking.position == crate::config::Position::Center
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
    fn flatten_lists_every_leaf() {
        let flat = flatten(&RunConfig::default());
        assert!(flat.contains(&("masking.position".into(), "corner".into())));
        assert!(flat.contains(&("predictor.models".into(), "2".into())));
        assert!(flat.iter().any(|(k, _)| k == "train.base_lr"));
    }
}
