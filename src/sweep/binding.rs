//! A run folder's binding to the store that watched it train: `OUT/run.json`.
//!
//! A worker writes the binding (store id, run id, attempt) when it takes a run. A checkpoint
//! is resumed only by the store it is bound to, or, in a folder written before bindings
//! existed, by a store that holds the history up to that checkpoint. Any other checkpoint is
//! foreign: the sweep refuses to run on it, or with `--adopt` takes it over and copies the
//! history the checkpoint holds into the store ([`adopt`]), recording what it cannot recover.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::store::{now, Claim, Metric, Store};
use crate::train::checkpoint::{write_atomic, TrainState};

/// The binding file's name inside a run folder.
pub const FILE: &str = "run.json";

/// What `OUT/run.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub store_id: String,
    pub run: String,
    pub attempt: i64,
    /// Seconds since the Unix epoch.
    pub bound_at: f64,
}

/// A run folder as the store that is about to run it sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// No checkpoint: the run starts from scratch.
    Empty,
    /// This store watched the checkpoint's history.
    Ours,
    /// A checkpoint this store did not watch train: bound to the store `other`, or not bound
    /// (`None`) and the store lacks its history.
    Foreign { other: Option<String> },
}

/// Reads `OUT/run.json`; a missing file is `None`, an unreadable one is treated as bound to
/// no store we know (`Some` with an empty id).
pub fn read(out: &Path) -> Option<Binding> {
    let bytes = std::fs::read(out.join(FILE)).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap_or(Binding {
        store_id: String::new(),
        run: String::new(),
        attempt: 0,
        bound_at: 0.0,
    }))
}

/// Binds `out` to the store `store_id` for the attempt `claim` holds.
pub fn write(out: &Path, store_id: &str, claim: &Claim) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let binding = Binding {
        store_id: store_id.to_string(),
        run: claim.run.clone(),
        attempt: claim.attempt,
        bound_at: now(),
    };
    write_atomic(&out.join(FILE), &serde_json::to_vec_pretty(&binding)?)
}

/// Whether the store (whose id is `store_id`) may resume run `run` from the checkpoint
/// `state` found in `out`.
pub fn inspect(
    store: &Store,
    store_id: &str,
    run: &str,
    out: &Path,
    state: Option<&TrainState>,
) -> Result<Found> {
    let Some(state) = state else {
        return Ok(Found::Empty);
    };
    match read(out) {
        Some(b) if b.store_id == store_id => Ok(Found::Ours),
        Some(b) => Ok(Found::Foreign {
            other: Some(b.store_id),
        }),
        None if holds_history(store, run, state)? => Ok(Found::Ours),
        None => Ok(Found::Foreign { other: None }),
    }
}

/// Does the store hold run `run`'s history up to the checkpoint (every finished epoch and
/// the last step)? Decides for folders written before bindings existed.
fn holds_history(store: &Store, run: &str, state: &TrainState) -> Result<bool> {
    if state.step == 0 {
        return Ok(true);
    }
    let epochs = store.series(run, "epoch/train_loss", None)?.len();
    let last_step = store
        .latest_metrics(run)?
        .into_iter()
        .find(|m| m.key == "train/loss")
        .map_or(0, |m| m.step);
    Ok(epochs >= state.epochs_done && last_step >= state.step as i64)
}

/// Optimiser steps per epoch of a checkpoint's run: recorded in newer checkpoints; in older
/// ones derived from the finished epochs, or from the first epoch's mean loss when the
/// checkpoint was taken mid-epoch. `None` when it cannot be told.
fn steps_per_epoch(state: &TrainState) -> Option<usize> {
    if state.steps_per_epoch > 0 {
        return Some(state.steps_per_epoch);
    }
    if state.epochs_done == 0 {
        // every step so far belongs to the first epoch
        return Some(state.step.max(1));
    }
    if state.epoch_loss_sum == 0.0 && state.step.is_multiple_of(state.epochs_done) {
        return Some(state.step / state.epochs_done);
    }
    let first = state.epochs.first()?.train_loss;
    let mut sum = 0.0;
    for (k, loss) in state.step_losses.iter().enumerate() {
        sum += *loss as f64;
        let mean = sum / (k + 1) as f64;
        if (mean - first).abs() <= 1e-5 * first.abs().max(1e-12) {
            return Some(k + 1);
        }
    }
    None
}

/// The metric rows a checkpoint's state holds: the loss of every step and the statistics of
/// every finished epoch, at the steps the worker logs them at. The wall time of each row is
/// `wall` (the original times are not in the checkpoint).
pub fn history_rows(state: &TrainState, wall: f64) -> Vec<Metric> {
    let spe = steps_per_epoch(state);
    let epoch_of = |step: usize| spe.map_or(0, |n| ((step - 1) / n + 1) as i64);
    let row = |key: &str, step: usize, epoch: i64, value: f64| Metric {
        key: key.to_string(),
        step: step as i64,
        epoch,
        value,
        wall,
    };
    let mut rows: Vec<Metric> = state
        .step_losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, l)| row("train/loss", i + 1, epoch_of(i + 1), *l as f64))
        .collect();
    for e in &state.epochs {
        let step = spe.map_or(state.step, |n| e.epoch * n);
        for (key, value) in e.metrics() {
            if value.is_finite() {
                rows.push(row(key, step, e.epoch as i64, value));
            }
        }
    }
    rows
}

/// Takes over a foreign checkpoint for the run `claim` holds: replaces the run's history in
/// the store by what the checkpoint holds and records the provenance (the other store, what
/// was recovered, what is missing). Returns a line for the log.
pub fn adopt(
    store: &mut Store,
    claim: &Claim,
    checkpoint: &Path,
    state: &TrainState,
    other: Option<&str>,
) -> Result<String> {
    let at = now();
    let rows = history_rows(state, at);
    let mut missing = vec![
        "train/lr of each step".to_string(),
        "spectra of the adopted epochs".to_string(),
        "the wall-clock time of each adopted row (set to the adoption time)".to_string(),
    ];
    if steps_per_epoch(state).is_none() {
        missing.push("the epoch of each adopted step loss (stored as epoch 0)".to_string());
    }
    let provenance = serde_json::json!({
        "adopted_from_store": other,
        "adopted_at": at,
        "checkpoint": checkpoint.display().to_string(),
        "checkpoint_step": state.step,
        "epochs_done": state.epochs_done,
        "recovered": [
            format!("train/loss of {} steps", state.step_losses.len()),
            format!("epoch/* statistics of {} epochs", state.epochs.len()),
        ],
        "missing": missing,
    });
    store.replace_history(claim, &rows, &provenance.to_string())?;
    Ok(format!(
        "adopted {}: checkpoint at step {} (epoch {}) from store {}; {} history rows copied",
        claim.run,
        state.step,
        state.epochs_done,
        other.unwrap_or("unknown"),
        rows.len()
    ))
}

/// The one line a sweep prints when run folders hold checkpoints its store did not watch.
pub fn refusal(foreign: &[(PathBuf, Option<String>, TrainState)], store_id: &str) -> String {
    let (dir, other, state) = &foreign[0];
    let whose = match other.as_deref() {
        Some("") => "with an unreadable run.json".to_string(),
        Some(id) => format!("written under store {id}"),
        None => "written before run folders were bound to a store, and not in this store's history"
            .to_string(),
    };
    format!(
        "{n} run folder(s) hold checkpoints this store (id {store_id}) did not watch train, e.g. \
         {dir}: step {step}, {epochs} epoch(s) done, {whose}. Pass --adopt to take them over \
         (their loss history is copied from the checkpoints), or --runs-dir DIR to train them \
         afresh elsewhere",
        n = foreign.len(),
        dir = dir.display(),
        step = state.step,
        epochs = state.epochs_done,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::checkpoint::EpochStats;

    fn stats(epoch: usize, train_loss: f64) -> EpochStats {
        EpochStats {
            epoch,
            train_loss,
            val_loss: 0.5,
            lr: 1e-3,
            img_per_s: 100.0,
            seconds: 2.0,
        }
    }

    /// Two epochs of 3 steps, then 2 steps of the third.
    fn mid_epoch(recorded: bool) -> TrainState {
        let losses = [1.0f32, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2];
        TrainState {
            epochs_done: 2,
            step: 8,
            step_losses: losses.to_vec(),
            epoch_loss_sum: 0.45,
            epochs: vec![stats(1, 0.8), stats(2, 0.4)],
            steps_per_epoch: if recorded { 3 } else { 0 },
        }
    }

    #[test]
    fn history_rows_put_each_step_and_epoch_where_the_worker_logs_them() {
        for recorded in [true, false] {
            let rows = history_rows(&mid_epoch(recorded), 7.0);
            let losses: Vec<(i64, i64)> = rows
                .iter()
                .filter(|m| m.key == "train/loss")
                .map(|m| (m.step, m.epoch))
                .collect();
            assert_eq!(
                losses,
                [
                    (1, 1),
                    (2, 1),
                    (3, 1),
                    (4, 2),
                    (5, 2),
                    (6, 2),
                    (7, 3),
                    (8, 3)
                ],
                "recorded: {recorded}"
            );
            let ends: Vec<(i64, i64, f64)> = rows
                .iter()
                .filter(|m| m.key == "epoch/train_loss")
                .map(|m| (m.step, m.epoch, m.value))
                .collect();
            assert_eq!(ends, [(3, 1, 0.8), (6, 2, 0.4)]);
            assert_eq!(rows.len(), 8 + 2 * 5);
            assert!(rows.iter().all(|m| m.wall == 7.0));
        }
    }

    #[test]
    fn an_epoch_length_that_cannot_be_told_is_epoch_zero() {
        let mut s = mid_epoch(false);
        s.epochs[0].train_loss = 0.123; // matches no prefix mean
        assert_eq!(steps_per_epoch(&s), None);
        assert!(history_rows(&s, 0.0)
            .iter()
            .filter(|m| m.key == "train/loss")
            .all(|m| m.epoch == 0));
        // finished epochs only: the length is the steps over the epochs
        let done = TrainState {
            epochs_done: 2,
            step: 6,
            step_losses: vec![1.0; 6],
            epochs: vec![stats(1, 1.0), stats(2, 1.0)],
            ..Default::default()
        };
        assert_eq!(steps_per_epoch(&done), Some(3));
    }

    #[test]
    fn a_checkpoint_is_ours_only_when_bound_to_us_or_when_we_hold_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.db")).unwrap();
        let run = crate::store::NewRun::from_config(&crate::config::RunConfig::default());
        store
            .register_sweep("sw", "sw.toml", std::slice::from_ref(&run))
            .unwrap();
        let claim = store
            .claim(&run.id, &crate::store::claim::Owner::local(1), false)
            .unwrap()
            .unwrap();
        let us = store.store_id().unwrap();
        assert_eq!(us.len(), 32);
        let out = dir.path().join("out");
        let one_epoch = TrainState {
            epochs_done: 1,
            step: 3,
            step_losses: vec![1.0, 0.9, 0.8],
            epochs: vec![stats(1, 0.9)],
            steps_per_epoch: 3,
            ..Default::default()
        };
        let found = |store: &Store, state: &TrainState| {
            inspect(store, &us, &run.id, &out, Some(state)).unwrap()
        };
        assert_eq!(
            inspect(&store, &us, &run.id, &out, None).unwrap(),
            Found::Empty
        );
        // an unbound folder (written before bindings) whose history the store lacks
        assert_eq!(found(&store, &one_epoch), Found::Foreign { other: None });
        store
            .log_metrics_held(&claim, &history_rows(&one_epoch, 1.0))
            .unwrap();
        assert_eq!(found(&store, &one_epoch), Found::Ours);
        // a later checkpoint than the history the store holds is not ours
        let two_epochs = TrainState {
            epochs_done: 2,
            step: 6,
            step_losses: vec![1.0; 6],
            epochs: vec![stats(1, 1.0), stats(2, 1.0)],
            steps_per_epoch: 3,
            ..Default::default()
        };
        assert_eq!(found(&store, &two_epochs), Found::Foreign { other: None });
        // a binding decides over history
        write(&out, "0123", &claim).unwrap();
        assert_eq!(
            found(&store, &one_epoch),
            Found::Foreign {
                other: Some("0123".into())
            }
        );
        write(&out, &us, &claim).unwrap();
        assert_eq!(found(&store, &two_epochs), Found::Ours);
    }

    #[test]
    fn an_unreadable_binding_is_bound_to_no_store() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        assert_eq!(read(dir.path()).unwrap().store_id, "");
        let claim = Claim {
            run: "r".into(),
            attempt: 2,
        };
        write(dir.path(), "abc", &claim).unwrap();
        let b = read(dir.path()).unwrap();
        assert_eq!(
            (b.store_id.as_str(), b.run.as_str(), b.attempt),
            ("abc", "r", 2)
        );
    }
}
