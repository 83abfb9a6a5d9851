//! Random search in a sweep file: `[search]` with `trials`, an optional `seed` and, per dotted
//! config key, a list of choices or a range `{ min, max, log = true }` (integers when both ends
//! are integers). The trials are drawn from a ChaCha8 generator seeded by `seed`, key by key in
//! name order, so the same file always gives the same trials and resuming a sweep draws nothing
//! new. Sampled floats keep 4 significant digits (readable ids and tables).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use toml::{Spanned, Value};

/// How one key is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Draw {
    Choice(Vec<Value>),
    Int { min: i64, max: i64, log: bool },
    Float { min: f64, max: f64, log: bool },
}

/// A parsed `[search]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub trials: usize,
    pub seed: u64,
    /// (dotted key, how it is drawn, where it is written)
    pub keys: Vec<(String, Draw, usize)>,
}

/// An error at a byte offset of the sweep file.
pub type Located = (usize, String);

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Reads one key's distribution.
fn draw_of(key: &str, value: &Value) -> Result<Draw, String> {
    match value {
        Value::Array(choices) if choices.is_empty() => {
            Err(format!("search key `{key}` has no choices"))
        }
        Value::Array(choices) => Ok(Draw::Choice(choices.clone())),
        Value::Table(t) => {
            if let Some(bad) = t
                .keys()
                .find(|k| !matches!(k.as_str(), "min" | "max" | "log"))
            {
                return Err(format!(
                    "search key `{key}`: unknown field `{bad}` (a range has min, max and log)"
                ));
            }
            let (Some(lo), Some(hi)) = (t.get("min"), t.get("max")) else {
                return Err(format!(
                    "search key `{key}`: a range needs both min and max"
                ));
            };
            let log = match t.get("log") {
                None => false,
                Some(Value::Boolean(b)) => *b,
                Some(_) => return Err(format!("search key `{key}`: log must be true or false")),
            };
            let (Some(a), Some(b)) = (number(lo), number(hi)) else {
                return Err(format!("search key `{key}`: min and max must be numbers"));
            };
            if !(a.is_finite() && b.is_finite()) {
                return Err(format!("search key `{key}`: min and max must be finite"));
            }
            if a > b {
                return Err(format!("search key `{key}`: min {a} > max {b}"));
            }
            if log && a <= 0.0 {
                return Err(format!(
                    "search key `{key}`: log = true needs min > 0 (got {a})"
                ));
            }
            Ok(match (lo, hi) {
                (Value::Integer(a), Value::Integer(b)) => Draw::Int {
                    min: *a,
                    max: *b,
                    log,
                },
                _ => Draw::Float {
                    min: a,
                    max: b,
                    log,
                },
            })
        }
        _ => Err(format!(
            "search key `{key}`: give a list of choices or a range {{ min = …, max = …, log = … }}"
        )),
    }
}

/// `x` rounded to 4 significant digits.
fn four_digits(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

impl Draw {
    fn sample(&self, rng: &mut ChaCha8Rng) -> Value {
        match self {
            Draw::Choice(c) => c[rng.random_range(0..c.len())].clone(),
            Draw::Int { min, max, log } => {
                let v = if *log {
                    // log-uniform over [min, max + 1), floored: each integer gets the mass of
                    // its [v, v + 1) interval
                    let (a, b) = ((*min as f64).ln(), ((*max + 1) as f64).ln());
                    (rng.random_range(a..b).exp().floor() as i64).clamp(*min, *max)
                } else {
                    rng.random_range(*min..=*max)
                };
                Value::Integer(v)
            }
            Draw::Float { min, max, log } => {
                let v = if min == max {
                    *min
                } else if *log {
                    rng.random_range(min.ln()..max.ln()).exp()
                } else {
                    rng.random_range(*min..*max)
                };
                Value::Float(four_digits(v).clamp(*min, *max))
            }
        }
    }
}

impl Search {
    /// Reads a `[search]` table; errors are located at the offending entry.
    pub fn parse(table: &Spanned<BTreeMap<String, Spanned<Value>>>) -> Result<Search, Located> {
        let at = table.span().start;
        let entries = table.get_ref();
        let trials = match entries.get("trials") {
            None => return Err((at, "[search] needs `trials = N`".into())),
            Some(v) => match v.get_ref() {
                Value::Integer(n) if *n >= 1 => *n as usize,
                _ => {
                    return Err((
                        v.span().start,
                        "`trials` must be a whole number of at least 1".into(),
                    ))
                }
            },
        };
        let seed = match entries.get("seed") {
            None => 0,
            Some(v) => match v.get_ref() {
                Value::Integer(n) if *n >= 0 => *n as u64,
                _ => return Err((v.span().start, "`seed` must be a whole number ≥ 0".into())),
            },
        };
        let mut keys = Vec::new();
        for (key, value) in entries {
            if key == "trials" || key == "seed" {
                continue;
            }
            let draw = draw_of(key, value.get_ref()).map_err(|m| (value.span().start, m))?;
            keys.push((key.clone(), draw, value.span().start));
        }
        if keys.is_empty() {
            return Err((at, "[search] has no keys to search".into()));
        }
        Ok(Search { trials, seed, keys })
    }

    /// The trials: for each, one value per key, in key order.
    pub fn trials(&self) -> Vec<Vec<(String, Value)>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        (0..self.trials)
            .map(|_| {
                self.keys
                    .iter()
                    .map(|(k, d, _)| (k.clone(), d.sample(&mut rng)))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Search, Located> {
        #[derive(serde::Deserialize)]
        struct F {
            search: Spanned<BTreeMap<String, Spanned<Value>>>,
        }
        let f: F = toml::from_str(src).unwrap();
        Search::parse(&f.search)
    }

    const SRC: &str = r#"
[search]
trials = 200
seed = 3
"train.base_lr" = { min = 1e-4, max = 1e-2, log = true }
"predictor.dim" = [64, 128, 256]
"decoder.depth" = { min = 1, max = 3 }
"#;

    #[test]
    fn trials_are_reproducible_and_in_range() {
        let s = parse(SRC).unwrap();
        let a = s.trials();
        assert_eq!(a, parse(SRC).unwrap().trials());
        assert_eq!(a.len(), 200);
        let other = parse(&SRC.replace("seed = 3", "seed = 4"))
            .unwrap()
            .trials();
        assert_ne!(a, other);
        let mut depths = [0usize; 4];
        let mut below_1e3 = 0;
        for t in &a {
            let lr = t
                .iter()
                .find(|(k, _)| k == "train.base_lr")
                .unwrap()
                .1
                .as_float()
                .unwrap();
            assert!((1e-4..=1e-2).contains(&lr), "{lr}");
            assert_eq!(lr, four_digits(lr));
            below_1e3 += usize::from(lr < 1e-3);
            let d = t
                .iter()
                .find(|(k, _)| k == "decoder.depth")
                .unwrap()
                .1
                .as_integer()
                .unwrap();
            depths[d as usize] += 1;
            let dim = t
                .iter()
                .find(|(k, _)| k == "predictor.dim")
                .unwrap()
                .1
                .as_integer()
                .unwrap();
            assert!([64, 128, 256].contains(&dim));
        }
        // log-uniform: half the mass below the geometric mean 1e-3
        assert!((70..=130).contains(&below_1e3), "{below_1e3}");
        assert_eq!(depths[0], 0);
        assert!(depths[1..].iter().all(|&c| c > 40), "{depths:?}");
    }

    #[test]
    fn bad_searches_are_refused_where_written() {
        let line = |src: &str| {
            let (at, msg) = parse(src).unwrap_err();
            (src[..at].matches('\n').count() + 1, msg)
        };
        let (l, m) = line("[search]\ntrials = 2\nx = { min = 2, max = 1 }\n");
        assert_eq!(l, 3);
        assert!(m.contains("min 2 > max 1"), "{m}");
        let (l, m) = line("[search]\ntrials = 2\nx = { min = 0.0, max = 1.0, log = true }\n");
        assert_eq!(l, 3);
        assert!(m.contains("log"), "{m}");
        let (l, m) = line("[search]\ntrials = 0\nx = [1]\n");
        assert_eq!(l, 2);
        assert!(m.contains("trials"), "{m}");
        let (_, m) = line("[search]\nx = [1]\n");
        assert!(m.contains("trials"), "{m}");
        let (l, _) = line("[search]\ntrials = 1\nx = []\n");
        assert_eq!(l, 3);
        let (l, m) = line("[search]\ntrials = 1\nx = { min = 1, max = 2, step = 1 }\n");
        assert_eq!(l, 3);
        assert!(m.contains("step"), "{m}");
        let (_, m) = line("[search]\ntrials = 1\n");
        assert!(m.contains("no keys"), "{m}");
    }
}
