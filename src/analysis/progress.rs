//! Where a run stands: epoch and step out of the planned totals, its latest loss, speed and
//! estimated time left. Computed from a run row, its config and its latest metrics, so the
//! sweep's progress lines and the TUI agree.

use crate::config::{DataConfig, DataSource, RunConfig};
use crate::store::{Metric, RunRow, Status};

/// Progress of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunProgress {
    /// Epochs finished.
    pub epoch: i64,
    pub epochs: i64,
    /// Optimiser steps done.
    pub step: i64,
    /// Planned optimiser steps, when known (built-in data, or after the first epoch).
    pub total_steps: Option<i64>,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub img_per_s: Option<f64>,
    /// Seconds of compute so far.
    pub elapsed: Option<f64>,
    /// Estimated seconds left (running runs with a known total).
    pub eta: Option<f64>,
}

fn latest<'a>(metrics: &'a [Metric], key: &str) -> Option<&'a Metric> {
    metrics.iter().find(|m| m.key == key)
}

/// Steps per epoch when the data set size is known from the config alone.
fn planned_steps_per_epoch(cfg: &RunConfig) -> Option<i64> {
    let n = match cfg.data.source {
        DataSource::Builtin => cfg.data.train_size.unwrap_or(DataConfig::BUILTIN_TRAIN),
        _ => return None,
    };
    let batch = cfg.train.batch_size.min(n).max(1);
    let mut steps = (n / batch).max(1);
    if cfg.train.max_steps_per_epoch > 0 {
        steps = steps.min(cfg.train.max_steps_per_epoch);
    }
    Some(steps as i64)
}

/// The progress of `row` given its parsed config and its latest metrics, at time `now`.
pub fn run_progress(
    row: &RunRow,
    cfg: Option<&RunConfig>,
    metrics: &[Metric],
    now: f64,
) -> RunProgress {
    let step_row = latest(metrics, "train/loss");
    let epoch_row = latest(metrics, "epoch/train_loss");
    let epoch = epoch_row.map_or(0, |m| m.epoch);
    let step = step_row.map_or(0, |m| m.step);
    let epochs = cfg.map_or(0, |c| {
        if c.method.pretrains() {
            c.train.epochs as i64
        } else {
            0
        }
    });
    let per_epoch = cfg.and_then(planned_steps_per_epoch).or_else(|| {
        epoch_row
            .filter(|m| m.epoch > 0 && m.step > 0)
            .map(|m| m.step / m.epoch)
    });
    let total_steps = per_epoch.map(|p| p * epochs);
    let img_per_s = latest(metrics, "epoch/img_per_s").map(|m| m.value);
    let elapsed = row.elapsed(now);
    let batch = cfg.map_or(1.0, |c| c.train.batch_size as f64);
    let steps_per_s = img_per_s.map(|v| v / batch).or_else(|| {
        let (s, e) = (step_row?, elapsed?);
        (e > 0.0 && s.step > 0).then(|| s.step as f64 / e)
    });
    let eta = match (row.status, total_steps, steps_per_s) {
        (Status::Running, Some(total), Some(rate)) if rate > 0.0 => {
            Some(((total - step).max(0)) as f64 / rate)
        }
        _ => None,
    };
    RunProgress {
        epoch,
        epochs,
        step,
        total_steps,
        train_loss: step_row.map(|m| m.value),
        val_loss: latest(metrics, "epoch/val_loss").map(|m| m.value),
        img_per_s,
        elapsed,
        eta,
    }
}

/// `1h02m`, `3m05s`, `42s`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `YYYY-MM-DD HH:MM UTC` of seconds since the Unix epoch.
pub fn format_date(secs: f64) -> String {
    let s = secs.max(0.0) as i64;
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    // civil date from days since 1970-01-01 (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: Status) -> RunRow {
        RunRow::example("r", status)
    }

    fn m(key: &str, step: i64, epoch: i64, value: f64) -> Metric {
        Metric {
            key: key.into(),
            step,
            epoch,
            value,
            wall: 0.0,
        }
    }

    #[test]
    fn eta_from_planned_steps_and_speed() {
        let mut cfg = RunConfig::default();
        cfg.data.train_size = Some(640);
        cfg.train.batch_size = 64;
        cfg.train.epochs = 4;
        let metrics = [
            m("train/loss", 15, 2, 0.5),
            m("epoch/train_loss", 10, 1, 0.6),
            m("epoch/img_per_s", 10, 1, 128.0),
        ];
        let p = run_progress(&row(Status::Running), Some(&cfg), &metrics, 110.0);
        assert_eq!(
            (p.epoch, p.epochs, p.step, p.total_steps),
            (1, 4, 15, Some(40))
        );
        // 25 steps left at 128 / 64 = 2 steps/s
        assert_eq!(p.eta, Some(12.5));
        assert_eq!(p.elapsed, Some(10.0));
        let done = run_progress(&row(Status::Finished), Some(&cfg), &metrics, 110.0);
        assert_eq!(done.eta, None);
        assert_eq!(format_duration(3725.0), "1h02m");
        assert_eq!(format_duration(185.0), "3m05s");
    }
}
