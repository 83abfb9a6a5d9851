//! One run of a sweep, executed in its own process (`workbench worker`): pre-train with metrics
//! streaming into the store, a heartbeat thread for the whole life of the process, graceful
//! stop on SIGINT/SIGTERM or on a stop request in the store, then the evaluation pipeline.

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::analysis::extract::spectra_of;
use crate::backend::{device_name, dispatch, OnBackend, TrainBackend};
use crate::config::RunConfig;
use crate::liveness;
use crate::model::features::Features;
use crate::model::predictor::HostGenerators;
use crate::probe::embedding::Pca2;
use crate::probe::{Interrupted, ProbeResult};
use crate::spec::Method;
use crate::store::{
    now, Claim, Decision, Embedding, Locator, Metric, Owner, RunRow, Status, Store,
};
use crate::sweep::binding::{self, Found};
use crate::train::checkpoint::{self, EpochStats};
use crate::train::pretrain::{pretrain, Observer, Outcome, PretrainOptions};
use crate::train::reconstruction::Reconstruction;

/// How often a worker writes its heartbeat (and reads stop requests).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Streams training progress into the store in batched transactions.
pub struct StoreObserver<'a> {
    pub store: &'a mut Store,
    pub claim: Claim,
    pub stop: Arc<AtomicBool>,
    spectrum_every: usize,
    pictures_every: usize,
    monitor_every: usize,
    epochs: usize,
    /// The run's sweep and config, for early stopping.
    sweep: String,
    config: RunConfig,
    /// The decision that pruned the run, once one has.
    pub pruned: Option<Decision>,
    buffer: Vec<Metric>,
    last_flush: Instant,
    last_step: usize,
    /// The first database error of a step; training stops on it and it is reported.
    pub error: Option<anyhow::Error>,
}

impl<'a> StoreObserver<'a> {
    /// An observer storing what `cfg.analysis` asks for, and judging the run at the rungs of
    /// its `[early_stop]` against the other runs of `sweep`.
    pub fn new(
        store: &'a mut Store,
        claim: &Claim,
        cfg: &RunConfig,
        sweep: &str,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Self {
            store,
            claim: claim.clone(),
            stop,
            spectrum_every: cfg.analysis.spectrum_every,
            pictures_every: cfg.analysis.pictures_every,
            monitor_every: cfg.analysis.monitor_every,
            epochs: cfg.train.epochs,
            sweep: sweep.to_string(),
            config: cfg.clone(),
            pruned: None,
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

    pub fn flush(&mut self) -> Result<()> {
        let rows = std::mem::take(&mut self.buffer);
        self.last_flush = Instant::now();
        self.store.log_metrics_held(&self.claim, &rows)
    }
}

impl Observer for StoreObserver<'_> {
    fn on_step(&mut self, epoch: usize, step: usize, loss: f64, lr: f64) -> bool {
        self.last_step = step;
        self.push("train/loss", step, epoch + 1, loss);
        self.push("train/lr", step, epoch + 1, lr);
        if self.last_flush.elapsed().as_secs_f64() > 2.0 || self.buffer.len() >= 1000 {
            if let Err(e) = self.flush() {
                self.error.get_or_insert(e);
            }
        }
        !self.stop.load(Ordering::SeqCst) && self.error.is_none()
    }

    fn on_epoch(&mut self, s: &EpochStats) -> Result<()> {
        let step = self.last_step;
        for (key, value) in s.metrics() {
            self.push(key, step, s.epoch, value);
        }
        self.flush()
    }

    fn wants_generators(&self, epoch: usize) -> bool {
        self.spectrum_every > 0 && epoch.is_multiple_of(self.spectrum_every)
    }

    fn on_generators(&mut self, epoch: usize, generators: &[HostGenerators]) -> Result<()> {
        let started = Instant::now();
        let spectra = spectra_of(generators)
            .with_context(|| format!("spectrum analysis after epoch {epoch}"))?;
        let step = self.last_step;
        for s in &spectra {
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
        self.push(
            "spectrum/seconds",
            step,
            epoch,
            started.elapsed().as_secs_f64(),
        );
        self.store
            .log_spectra_held(&self.claim, epoch as i64, &spectra)?;
        self.flush()
    }

    /// Every `pictures_every` epochs and after the last one.
    fn wants_reconstructions(&self, epoch: usize) -> bool {
        self.pictures_every > 0
            && (epoch.is_multiple_of(self.pictures_every) || epoch == self.epochs)
    }

    /// Stores the strips and, as `pictures/seconds`, what they cost (the forward pass, the
    /// drawing, the PNGs and the write).
    fn on_reconstructions(
        &mut self,
        epoch: usize,
        recs: &[Reconstruction],
        seconds: f64,
    ) -> Result<()> {
        let started = Instant::now();
        let pictures = crate::analysis::reconstruction::pictures(epoch, recs)
            .with_context(|| format!("reconstruction pictures after epoch {epoch}"))?;
        self.store
            .log_pictures(&self.claim.run, Some(&self.claim), &pictures)?;
        let step = self.last_step;
        let total = seconds + started.elapsed().as_secs_f64();
        self.push("pictures/seconds", step, epoch, total);
        self.flush()
    }

    /// Every `monitor_every` epochs and after the last one.
    fn wants_monitor(&self, epoch: usize) -> bool {
        self.monitor_every > 0 && (epoch.is_multiple_of(self.monitor_every) || epoch == self.epochs)
    }

    /// Stores `monitor/knn/top1`, `monitor/erank`, `monitor/feature_std` and, as
    /// `monitor/seconds`, what they cost (the extraction and the figures).
    fn on_monitor(
        &mut self,
        epoch: usize,
        train: &Features,
        val: &Features,
        seconds: f64,
    ) -> Result<()> {
        let started = Instant::now();
        let classes = train.labels.iter().max().map_or(0, |&c| c as usize + 1);
        use crate::analysis::monitor::{measure, Labelled};
        let m = measure(
            Labelled {
                rows: &train.pooled,
                labels: &train.labels,
            },
            Labelled {
                rows: &val.pooled,
                labels: &val.labels,
            },
            train.dim,
            classes,
        );
        let step = self.last_step;
        self.push("monitor/knn/top1", step, epoch, m.knn_top1);
        self.push("monitor/erank", step, epoch, m.erank);
        self.push("monitor/feature_std", step, epoch, m.feature_std);
        let total = seconds + started.elapsed().as_secs_f64();
        self.push("monitor/seconds", step, epoch, total);
        self.flush()
    }

    /// Early stopping: the run stops here when its setting is pruned (now or before).
    fn keep_going(&mut self, epoch: usize) -> Result<bool> {
        if self.config.early_stop.is_none() {
            return Ok(true);
        }
        let verdict = crate::sweep::early_stop::verdict(
            self.store,
            &self.claim,
            &self.sweep,
            &self.config,
            epoch,
        )?;
        if let Some(d) = verdict {
            println!("{}", d.reason());
            self.pruned = Some(d);
            return Ok(false);
        }
        Ok(true)
    }
}

/// Output folder of a run: `RUNS/<id>`.
pub fn run_dir(runs_root: &Path, id: &str) -> PathBuf {
    runs_root.join(id)
}

/// Writes the worker's heartbeat (its last progress, see [`liveness`]) every
/// [`HEARTBEAT_EVERY`] on its own connection, and turns a stop request found in the store
/// into the stop flag. A heartbeat refused because the claim was lost raises the stop flag
/// too: the run belongs to someone else now. Ends when `done` is set.
fn heartbeat_thread(
    db: Locator,
    claim: Claim,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(store) = Store::open_existing(&db) else {
            return;
        };
        while !done.load(Ordering::SeqCst) {
            // how long ago this process last made progress, by its own clock; the store
            // stamps the beat with the database's
            let age = liveness::last_tick().map_or(0.0, |t| now() - t);
            if let Ok(false) = store.heartbeat(&claim, age) {
                stop.store(true, Ordering::SeqCst);
            }
            if store.run(&claim.run).is_ok_and(|r| r.stop_requested) {
                stop.store(true, Ordering::SeqCst);
            }
            let mut slept = Duration::ZERO;
            while slept < HEARTBEAT_EVERY && !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                slept += Duration::from_millis(50);
            }
        }
    })
}

/// The flags a worker's signal handlers raise.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Stop at the next step, with a checkpoint.
    pub stop: Arc<AtomicBool>,
    /// The stop is a preemption (or a time limit): the run goes back to the queue, counted as
    /// a preemption, not as a stopped run.
    pub preempt: Arc<AtomicBool>,
    /// SLURM's warning signal (SIGUSR2) arrived: after the checkpoint, the worker requeues its
    /// own SLURM job (`scontrol requeue`; SLURM never requeues a TIMEOUT itself).
    pub warned: Arc<AtomicBool>,
}

/// What a sweep hands its worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub claim: Claim,
    pub out: PathBuf,
    /// GPU assigned by the sweep (`--devices`); it replaces the config's device and is
    /// recorded.
    pub device: Option<usize>,
    /// Take over a checkpoint another store watched (`sweep --adopt`).
    pub adopt: bool,
}

/// Executes the run `job.claim` holds from the store at `db`; the run's status tells how it
/// ended. A worker whose claim does not hold (the run is not `running` at that attempt)
/// refuses before it trains or writes anything.
pub fn work(db: &Locator, job: &Job, signals: &Signals) -> Result<()> {
    let stop = signals.stop.clone();
    liveness::tick();
    let mut store = Store::open_existing(db)?;
    store
        .verify_claim(&job.claim)
        .context("refusing to train")?;
    let row = store.run(&job.claim.run)?;
    let done = Arc::new(AtomicBool::new(false));
    let beat = heartbeat_thread(db.clone(), job.claim.clone(), stop.clone(), done.clone());
    let result = work_on(&mut store, job, &row, signals);
    done.store(true, Ordering::SeqCst);
    let _ = beat.join();
    result
}

fn work_on(store: &mut Store, job: &Job, row: &RunRow, signals: &Signals) -> Result<()> {
    let stop = signals.stop.clone();
    let claim = &job.claim;
    let id = claim.run.as_str();
    let out = job.out.as_path();
    let fail = |store: &Store, e: anyhow::Error| -> Result<()> {
        let msg = format!("{e:#}").replace('\n', " ");
        store.finish(claim, Status::Failed, Some(&msg))?;
        Err(e)
    };
    let mut cfg: RunConfig = match serde_json::from_str(&row.config) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                store,
                anyhow::anyhow!("run {id}: stored config is not valid: {e}"),
            )
        }
    };
    if let Some(d) = job.device {
        cfg.device = d;
    }
    store.mark_worker(
        claim,
        &Owner::this_process(),
        cfg.backend.name(),
        &device_name(cfg.backend, cfg.device),
        &out.display().to_string(),
    )?;
    // metrics logged after the checkpoint we resume from are replayed: drop them first. A
    // checkpoint that cannot be read fails the run and keeps every row.
    let latest = match checkpoint::latest(out) {
        Ok(found) => found,
        Err(e) => {
            return fail(
                store,
                e.context("cannot read the checkpoint to resume from (metrics kept)"),
            )
        }
    };
    // only a checkpoint this store watched train is resumed silently
    let store_id = store.store_id()?;
    let state = latest.as_ref().map(|(_, s)| s);
    let found = binding::inspect(store, &store_id, id, out, state)?;
    if let (Found::Foreign { other }, Some((dir, state))) = (found, latest.as_ref()) {
        if !job.adopt {
            let why = binding::refusal(&[(out.to_path_buf(), other, state.clone())], &store_id);
            return fail(store, anyhow::anyhow!(why));
        }
        println!(
            "{}",
            binding::adopt(store, claim, dir, state, other.as_deref())?
        );
    }
    binding::write(out, &store_id, claim)?;
    let resume_step = state.map_or(0, |s| s.step);
    store.truncate_metrics(claim, resume_step as i64)?;

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pipeline = Pipeline {
            cfg: &cfg,
            out,
            store: &mut *store,
            claim,
            sweep: &row.sweep,
            stop: stop.clone(),
        };
        dispatch(cfg.backend, cfg.device, pipeline)
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
        Ok((_, Some(pruned))) => {
            register_checkpoint(store, claim, out)?;
            store.finish(claim, Status::Pruned, Some(&pruned.reason()))
        }
        Ok((outcome, None)) => {
            register_checkpoint(store, claim, out)?;
            if outcome.finished {
                store.finish(claim, Status::Finished, None)
            } else if signals.preempt.load(Ordering::SeqCst) {
                store.preempted(claim)?;
                println!(
                    "preempted: checkpointed at step {}, run back in the queue",
                    outcome.state.step
                );
                if signals.warned.load(Ordering::SeqCst) {
                    requeue_own_slurm_job();
                }
                Ok(())
            } else {
                store.finish(claim, Status::Stopped, None)
            }
        }
        // a worker that lost its claim writes nothing more: the run is someone else's
        Err(e) if e.downcast_ref::<crate::store::LostClaim>().is_some() => Err(e),
        Err(e) => fail(store, e),
    }
}

/// `scontrol requeue $SLURM_JOB_ID`: a task warned of its time limit goes back to SLURM's
/// queue (a preempted one is requeued by SLURM itself; asking again is harmless).
fn requeue_own_slurm_job() {
    let Ok(job) = std::env::var("SLURM_JOB_ID") else {
        return;
    };
    match std::process::Command::new("scontrol")
        .args(["requeue", &job])
        .output()
    {
        Ok(o) if o.status.success() => println!("requeued SLURM job {job}"),
        Ok(o) => eprintln!(
            "scontrol requeue {job}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("scontrol requeue {job}: {e}"),
    }
}

/// Pre-training, then the evaluations the config lists.
struct Pipeline<'a> {
    cfg: &'a RunConfig,
    out: &'a Path,
    store: &'a mut Store,
    claim: &'a Claim,
    sweep: &'a str,
    stop: Arc<AtomicBool>,
}

impl OnBackend for Pipeline<'_> {
    /// How pre-training ended, and the decision that pruned the run if one did.
    type Output = (Outcome, Option<Decision>);

    fn run<B: TrainBackend>(self, device: B::Device) -> Result<(Outcome, Option<Decision>)> {
        let Pipeline {
            cfg,
            out,
            store,
            claim,
            sweep,
            stop,
        } = self;
        let opts = PretrainOptions {
            out: out.to_path_buf(),
            resume: true,
            progress: false,
        };
        if !cfg.method.pretrains() {
            // baselines have no pre-training: nothing to checkpoint, straight to evaluation
            if cfg.analysis.pictures_every > 0 {
                attention_into::<B>(store, claim, cfg, out, &device)?;
            }
            let finished = evaluate_into::<B>(store, claim, cfg, out, &device, &stop)?;
            let outcome = Outcome {
                state: Default::default(),
                finished,
            };
            return Ok((outcome, None));
        }
        let mut observer = StoreObserver::new(store, claim, cfg, sweep, stop.clone());
        let outcome = pretrain::<B>(cfg, &opts, &device, &mut observer);
        let flushed = observer.flush();
        if let Some(e) = observer.error.take() {
            return Err(e.context("cannot write metrics to the store"));
        }
        let mut outcome = outcome?;
        flushed?;
        if let Some(pruned) = observer.pruned.take() {
            return Ok((outcome, Some(pruned)));
        }
        if outcome.finished && cfg.analysis.pictures_every > 0 {
            attention_into::<B>(store, claim, cfg, out, &device)?;
        }
        if outcome.finished && !cfg.probe.kinds.is_empty() {
            outcome.finished = evaluate_into::<B>(store, claim, cfg, out, &device, &stop)?;
        }
        Ok((outcome, None))
    }
}

/// Runs the config's probes whose results the store lacks (all of them the first time; the
/// added widths when a sweep adds `probe.tran_widths` to a finished run) and stores each
/// probe's metrics when it ends, then the PCA of the validation features; `false` when
/// `stop` interrupted them (the probes that ended are kept: the resumed run, its
/// pre-training complete, runs only the rest).
fn evaluate_into<B: TrainBackend>(
    store: &mut Store,
    claim: &Claim,
    cfg: &RunConfig,
    out: &Path,
    device: &B::Device,
    stop: &AtomicBool,
) -> Result<bool> {
    let stored: std::collections::HashSet<String> = store
        .latest_metrics(&claim.run)?
        .into_iter()
        .map(|m| m.key)
        .collect();
    let pending = crate::probe::pending(cfg, |k| stored.contains(k));
    if pending.is_empty() {
        return Ok(true);
    }
    // each probe's rows are stored when it ends: a stopped evaluation keeps what finished
    let mut store_result = |name: &str, r: &ProbeResult| -> Result<()> {
        store.log_metrics_held(claim, &probe_metrics(&[(name.to_string(), r.clone())]))
    };
    let evaluated =
        crate::probe::pipeline::evaluate::<B>(cfg, out, &pending, device, stop, &mut store_result);
    match evaluated {
        Ok(eval) => {
            if let Some(pca) = &eval.embedding {
                store.log_embedding(
                    &claim.run,
                    Some(claim),
                    &pca_embedding(pca, encoder_epoch(cfg)),
                )?;
            }
            Ok(true)
        }
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The epoch of the encoder a finished run evaluates: its last for QB-Heat, 0 (no
/// pre-training) for the baselines.
fn encoder_epoch(cfg: &RunConfig) -> i64 {
    if cfg.method.pretrains() {
        cfg.train.epochs as i64
    } else {
        0
    }
}

/// The store's row of a PCA of probe features (`name` "pca").
pub fn pca_embedding(pca: &Pca2, epoch: i64) -> Embedding {
    Embedding {
        name: "pca".into(),
        epoch,
        classes: pca
            .points
            .iter()
            .map(|p| p.2 as usize + 1)
            .max()
            .unwrap_or(0),
        points: pca.points.clone(),
        variance_share: pca.variance_share,
        total: pca.total,
    }
}

/// Stores the cross-attention figures (Fig. 13–14) of validation image 0 for the encoder the
/// run evaluates (its newest checkpoint, or the random-init baseline's fresh encoder). The
/// supervised baseline trains its encoder inside its probe and keeps no checkpoint: none.
fn attention_into<B: TrainBackend>(
    store: &mut Store,
    claim: &Claim,
    cfg: &RunConfig,
    out: &Path,
    device: &B::Device,
) -> Result<()> {
    if cfg.method == Method::Supervised {
        return Ok(());
    }
    // a finished run probed again already holds the maps of its final encoder
    let epoch = encoder_epoch(cfg);
    if store
        .picture_epochs(&claim.run, crate::analysis::attention::M2F)?
        .contains(&epoch)
    {
        return Ok(());
    }
    let encoder = crate::probe::pipeline::encoder::<B>(cfg, out, device)?.valid();
    let (train, val) = crate::data::load(cfg)?;
    if val.is_empty() {
        return Ok(());
    }
    let maps = crate::analysis::attention::maps(&encoder, &val, 0, &train.channel_stats(), device);
    let pictures = crate::analysis::attention::pictures(&maps, &val, 0, epoch)?;
    store.log_pictures(&claim.run, Some(claim), &pictures)
}

/// Metric rows of probe results: per-epoch curves and final figures under `probe/<name>/…`.
pub fn probe_metrics(results: &[(String, ProbeResult)]) -> Vec<Metric> {
    let mut rows = Vec::new();
    let mut push = |key: String, step: usize, value: f64| {
        rows.push(Metric {
            key,
            step: step as i64,
            epoch: step as i64,
            value,
            wall: now(),
        })
    };
    for (name, r) in results {
        for (e, (top1, loss)) in r
            .top1_per_epoch
            .iter()
            .zip(&r.train_loss_per_epoch)
            .enumerate()
        {
            push(format!("probe/{name}/top1"), e + 1, *top1);
            push(format!("probe/{name}/train_loss"), e + 1, *loss);
        }
        let last = r.top1_per_epoch.len();
        push(
            format!("probe/{name}/train_img_per_s"),
            last,
            r.train_img_per_s,
        );
        push(
            format!("probe/{name}/extract_img_per_s"),
            last,
            r.extract_img_per_s,
        );
        push(format!("probe/{name}/seconds"), last, r.seconds);
    }
    rows
}

/// Records the run's newest checkpoint folder as an artifact.
fn register_checkpoint(store: &mut Store, claim: &Claim, out: &Path) -> Result<()> {
    if let Some((dir, state)) = checkpoint::latest(out)? {
        store.set_artifact(
            claim,
            "checkpoint",
            &dir.display().to_string(),
            Some(state.epochs_done as i64),
        )?;
    }
    Ok(())
}
