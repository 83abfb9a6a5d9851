//! One run of a sweep, executed in its own process (`workbench worker`): pre-train with metrics
//! streaming into the store, heartbeats, graceful stop on SIGINT/SIGTERM, then the evaluation
//! pipeline.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::analysis::spectrum::ScaleSpectrum;
use crate::backend::CpuTrain;
use crate::config::{BackendKind, RunConfig};
use crate::probe::pipeline::Method;
use crate::store::{now, Metric, Status, Store};
use crate::train::checkpoint::{self, EpochStats};
use crate::train::pretrain::{pretrain, Observer, Outcome, PretrainOptions};

/// Streams training progress into the store in batched transactions.
pub struct StoreObserver<'a> {
    pub store: &'a mut Store,
    pub run: String,
    pub stop: Arc<AtomicBool>,
    buffer: Vec<Metric>,
    last_flush: Instant,
    last_step: usize,
    /// The first database error; training stops on it and it is reported.
    pub error: Option<anyhow::Error>,
}

impl<'a> StoreObserver<'a> {
    pub fn new(store: &'a mut Store, run: &str, stop: Arc<AtomicBool>) -> Self {
        Self {
            store,
            run: run.to_string(),
            stop,
            buffer: Vec::new(),
            last_flush: Instant::now(),
            last_step: 0,
            error: None,
        }
    }

    fn push(&mut self, key: &str, step: usize, epoch: usize, value: f64) {
        self.buffer.push(Metric {
            key: key.to_string(),
            step: step as i64,
            epoch: epoch as i64,
            value,
            wall: now(),
        });
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.store.log_metrics(&self.run, &self.buffer) {
            self.error.get_or_insert(e);
        }
        self.buffer.clear();
        self.last_flush = Instant::now();
    }
}

impl Observer for StoreObserver<'_> {
    fn on_step(&mut self, epoch: usize, step: usize, loss: f64, lr: f64) -> bool {
        self.last_step = step;
        self.push("train/loss", step, epoch + 1, loss);
        self.push("train/lr", step, epoch + 1, lr);
        if self.last_flush.elapsed().as_secs_f64() > 2.0 || self.buffer.len() >= 1000 {
            self.flush();
        }
        !self.stop.load(Ordering::SeqCst) && self.error.is_none()
    }

    fn on_epoch(&mut self, s: &EpochStats) {
        let step = self.last_step;
        for (key, value) in [
            ("epoch/train_loss", s.train_loss),
            ("epoch/val_loss", s.val_loss),
            ("epoch/lr", s.lr),
            ("epoch/img_per_s", s.img_per_s),
            ("epoch/seconds", s.seconds),
        ] {
            self.push(key, step, s.epoch, value);
        }
        self.flush();
    }

    fn on_spectrum(&mut self, epoch: usize, spectra: &[ScaleSpectrum], seconds: f64) {
        let step = self.last_step;
        for s in spectra {
            let prefix = format!("spectrum/{}", s.scale);
            self.push(
                &format!("{prefix}/energy_ratio"),
                step,
                epoch,
                s.energy_ratio,
            );
            self.push(&format!("{prefix}/commutator"), step, epoch, s.commutator);
            for m in &s.matrices {
                self.push(
                    &format!("{prefix}/energy/{}", m.name),
                    step,
                    epoch,
                    m.energy,
                );
            }
        }
        self.push("spectrum/seconds", step, epoch, seconds);
        if let Err(e) = self.store.log_spectra(&self.run, epoch as i64, spectra) {
            self.error.get_or_insert(e);
        }
        self.flush();
    }
}

/// Output folder of a run: `RUNS/<id>`.
pub fn run_dir(runs_root: &Path, id: &str) -> PathBuf {
    runs_root.join(id)
}

/// Executes run `id` from the store at `db`; the run's status tells how it ended.
pub fn work(db: &Path, id: &str, out: &Path, stop: Arc<AtomicBool>) -> Result<()> {
    let mut store = Store::open_existing(db)?;
    let row = store.run(id)?;
    let cfg: RunConfig = serde_json::from_str(&row.config)
        .with_context(|| format!("run {id}: stored config is not valid"))?;
    let backend = match cfg.backend {
        BackendKind::Cpu => "cpu",
        BackendKind::Cuda => "cuda",
    };
    store.mark_worker(
        id,
        std::process::id(),
        backend,
        &device_name(cfg.backend),
        &out.display().to_string(),
    )?;
    // metrics logged after the checkpoint we resume from are replayed: drop them first
    let resume_step = checkpoint::latest(out)
        .ok()
        .flatten()
        .map_or(0, |(_, s)| s.step);
    store.truncate_metrics(id, resume_step as i64)?;

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_pipeline(&cfg, out, &mut store, id, stop.clone())
    }))
    .unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(anyhow::anyhow!("internal error (panic): {msg}"))
    });
    match result {
        Ok(outcome) if outcome.finished => {
            register_checkpoints(&store, id, out)?;
            store.set_status(id, Status::Finished, None)
        }
        Ok(_) => {
            register_checkpoints(&store, id, out)?;
            store.set_status(id, Status::Stopped, None)
        }
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            store.set_status(id, Status::Failed, Some(&msg))?;
            Err(e)
        }
    }
}

/// Pre-training, then the evaluations the config lists (the probing step plugs in here).
fn run_pipeline(
    cfg: &RunConfig,
    out: &Path,
    store: &mut Store,
    id: &str,
    stop: Arc<AtomicBool>,
) -> Result<Outcome> {
    let opts = PretrainOptions {
        out: out.to_path_buf(),
        resume: true,
        progress: false,
    };
    if cfg.method != Method::QbHeat {
        // baselines have no pre-training: nothing to checkpoint, straight to evaluation
        let results = crate::probe::pipeline::evaluate(cfg, out, &cfg.probe.kinds)?;
        store.log_metrics(id, &crate::probe::pipeline::metrics(&results))?;
        return Ok(Outcome {
            state: Default::default(),
            finished: true,
        });
    }
    let mut observer = StoreObserver::new(store, id, stop);
    let outcome = match cfg.backend {
        BackendKind::Cpu => pretrain::<CpuTrain>(cfg, &opts, &Default::default(), &mut observer),
        BackendKind::Cuda => pretrain_cuda(cfg, &opts, &mut observer),
    };
    observer.flush();
    if let Some(e) = observer.error.take() {
        return Err(e.context("cannot write metrics to the store"));
    }
    let outcome = outcome?;
    if outcome.finished && (!cfg.probe.kinds.is_empty() || cfg.method == Method::Supervised) {
        let results = crate::probe::pipeline::evaluate(cfg, out, &cfg.probe.kinds)?;
        store.log_metrics(id, &crate::probe::pipeline::metrics(&results))?;
    }
    Ok(outcome)
}

#[cfg(feature = "cuda")]
fn pretrain_cuda(
    cfg: &RunConfig,
    opts: &PretrainOptions,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    pretrain::<crate::backend::GpuTrain>(cfg, opts, &Default::default(), obs)
}

#[cfg(not(feature = "cuda"))]
fn pretrain_cuda(_: &RunConfig, _: &PretrainOptions, _: &mut dyn Observer) -> Result<Outcome> {
    anyhow::bail!(crate::backend::NO_CUDA)
}

fn device_name(backend: BackendKind) -> String {
    match backend {
        BackendKind::Cpu => format!(
            "cpu x{}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        BackendKind::Cuda => "cuda:0".into(),
    }
}

/// Records the run's newest checkpoint folder as an artifact.
fn register_checkpoints(store: &Store, id: &str, out: &Path) -> Result<()> {
    if let Some((dir, state)) = checkpoint::latest(out)? {
        store.remove_artifacts_like(id, "checkpoint")?;
        store.add_artifact(
            id,
            "checkpoint",
            &dir.display().to_string(),
            Some(state.epochs_done as i64),
        )?;
    }
    Ok(())
}
