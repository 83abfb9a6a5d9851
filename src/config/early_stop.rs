//! Early stopping of a sweep's runs (asynchronous successive halving, ASHA: Li et al. 2020,
//! "A System for Massively Parallel Hyperparameter Tuning", Alg. 2, in its stopping form).
//!
//! A sweep file's `[early_stop]` is copied into every run's config, so a run trained under early
//! stopping has its own id (it may end `pruned`; the same setting without early stopping is a
//! different run, never mixed up with it).

use serde::{Deserialize, Serialize};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Max,
    Min,
}

impl Mode {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Mode::Max => a > b,
            Mode::Min => a < b,
        }
    }
}

/// The metrics a decision can be made on, as the worker stores them (the short names
/// `val_loss` and `train_loss` are accepted too).
pub const METRICS: [&str; 5] = [
    "monitor/knn/top1",
    "monitor/erank",
    "monitor/feature_std",
    "epoch/val_loss",
    "epoch/train_loss",
];

/// `[early_stop]`: at each rung (an epoch), a run whose setting's value of `metric` is not in
/// the top 1/`keep` of the settings that reached that rung is stopped with status `pruned`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopConfig {
    /// A stored metric key ([`METRICS`]).
    pub metric: String,
    /// max | min
    pub mode: Mode,
    /// Epochs after which runs are judged, increasing.
    pub rungs: Vec<usize>,
    /// ASHA's reduction factor η: the top ⌈n / keep⌉ of n settings go on (≥ 2).
    pub keep: usize,
}

impl EarlyStopConfig {
    /// The stored key of `metric` (`val_loss` → `epoch/val_loss`).
    pub fn metric_key(name: &str) -> String {
        match name {
            "val_loss" | "train_loss" => format!("epoch/{name}"),
            other => other.to_string(),
        }
    }

    /// Checks the section against a run of `epochs` epochs that runs its monitor every
    /// `monitor_every` epochs (0: never). Returns the field at fault and the problem.
    pub fn check(&self, epochs: usize, monitor_every: usize) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((format!("early_stop.{k}"), m));
        if !METRICS.contains(&self.metric.as_str()) {
            return err(
                "metric",
                format!(
                    "the runs never write `{}`; one of: {}, val_loss, train_loss",
                    self.metric,
                    METRICS.join(", ")
                ),
            );
        }
        if self.keep < 2 {
            return err(
                "keep",
                format!(
                    "keep = {} keeps every run; use 2 or more (3 is ASHA's usual factor)",
                    self.keep
                ),
            );
        }
        if self.rungs.is_empty() {
            return err("rungs", "no rungs: list the epochs to judge at".into());
        }
        for (i, &r) in self.rungs.iter().enumerate() {
            if r == 0 {
                return err("rungs", "rung 0: rungs are epochs, from 1".into());
            }
            if i > 0 && r <= self.rungs[i - 1] {
                return err("rungs", "rungs must increase".into());
            }
            if r > epochs {
                return err(
                    "rungs",
                    format!("rung {r} is past the last epoch ({epochs}, train.epochs)"),
                );
            }
            if self.metric.starts_with("monitor/")
                && (monitor_every == 0 || !(r.is_multiple_of(monitor_every) || r == epochs))
            {
                return err(
                    "rungs",
                    format!(
                        "rung {r}: the runs write {} only every analysis.monitor_every = {monitor_every} epochs",
                        self.metric
                    ),
                );
            }
        }
        Ok(())
    }
}

/// How a setting fared at a rung.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// 1 = best; settings with the same value share a rank.
    pub rank: usize,
    /// Settings that reached the rung, the judged one included.
    pub peers: usize,
    /// How many go on: ⌈peers / keep⌉, at least 1.
    pub keep_top: usize,
}

impl Judgement {
    pub fn continues(&self) -> bool {
        self.rank <= self.keep_top
    }
}

/// Judges `own` against the values of the other settings that reached the rung: it goes on when
/// its rank is within the top ⌈n / keep⌉ (at least 1) of the n settings, itself included. The
/// first setting to reach a rung always goes on; with n < keep only the best so far does.
pub fn judge(own: f64, others: &[f64], keep: usize, mode: Mode) -> Judgement {
    let peers = others.len() + 1;
    let rank = 1 + others
        .iter()
        .filter(|&&v| v.is_finite() && (!own.is_finite() || mode.better(v, own)))
        .count();
    Judgement {
        rank,
        peers,
        keep_top: peers.div_ceil(keep.max(1)).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(rungs: &[usize], metric: &str, keep: usize) -> EarlyStopConfig {
        EarlyStopConfig {
            metric: metric.into(),
            mode: Mode::Max,
            rungs: rungs.to_vec(),
            keep,
        }
    }

    #[test]
    fn the_top_third_goes_on() {
        // first to arrive: always on
        assert!(judge(0.1, &[], 3, Mode::Max).continues());
        // two settings, keep 3: only the better one
        assert!(!judge(0.1, &[0.5], 3, Mode::Max).continues());
        assert!(judge(0.6, &[0.5], 3, Mode::Max).continues());
        // six settings: the top two go on
        let others = [0.1, 0.2, 0.3, 0.4, 0.5];
        let j = judge(0.45, &others, 3, Mode::Max);
        assert_eq!((j.rank, j.peers, j.keep_top), (2, 6, 2));
        assert!(j.continues());
        assert!(!judge(0.35, &others, 3, Mode::Max).continues());
        // min mode: lower is better
        assert!(judge(0.15, &others, 3, Mode::Min).continues());
        assert!(!judge(0.25, &others, 3, Mode::Min).continues());
        // ties share a rank
        assert_eq!(judge(0.5, &[0.5, 0.5], 2, Mode::Max).rank, 1);
        // a NaN value ranks last
        assert_eq!(judge(f64::NAN, &[0.1, 0.2], 2, Mode::Max).rank, 3);
    }

    #[test]
    fn bad_sections_name_the_field() {
        assert!(es(&[2, 4], "monitor/knn/top1", 3).check(6, 1).is_ok());
        let field = |c: EarlyStopConfig, epochs, every| c.check(epochs, every).unwrap_err().0;
        assert_eq!(field(es(&[2], "knn", 3), 6, 1), "early_stop.metric");
        assert_eq!(
            field(es(&[2], "epoch/val_loss", 1), 6, 1),
            "early_stop.keep"
        );
        assert_eq!(
            field(es(&[7], "epoch/val_loss", 2), 6, 1),
            "early_stop.rungs"
        );
        assert_eq!(
            field(es(&[3, 2], "epoch/val_loss", 2), 6, 1),
            "early_stop.rungs"
        );
        assert_eq!(
            field(es(&[], "epoch/val_loss", 2), 6, 1),
            "early_stop.rungs"
        );
        // the monitor must run at every rung
        assert_eq!(
            field(es(&[3], "monitor/erank", 2), 6, 2),
            "early_stop.rungs"
        );
        assert_eq!(
            field(es(&[2], "monitor/erank", 2), 6, 0),
            "early_stop.rungs"
        );
        assert!(es(&[2, 6], "monitor/erank", 4).check(6, 4).is_err());
        assert!(es(&[4, 6], "monitor/erank", 4).check(6, 4).is_ok());
    }
}
