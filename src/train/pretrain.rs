//! The pre-training loop of QB-Heat and MoCo-v2 (their parts in [`super::objective`]):
//! AdamW, lr = base × batch / 256, warmup + cosine, a checkpoint after every epoch, exact
//! resume. Every random choice of a step is drawn from [`super::seeds`], so a resumed run
//! replays the same batches as an uninterrupted one.

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::{GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::ElementConversion;
use std::path::PathBuf;
use std::time::Instant;

use super::seeds::{epoch_order, step_seed};

use super::adamw::FusedAdamW;
use super::checkpoint::{self, EpochStats, TrainState};
use super::monitor::MonitorSets;
use super::objective::{MocoObjective, Objective, QbHeatObjective};
use super::optim::{apply_weight_decay, decay_groups};
use super::reconstruction::Reconstruction;
use super::schedule::cosine_lr;
use crate::config::RunConfig;
use crate::data::batch::BatchMaker;
use crate::data::views::ViewMaker;
use crate::data::{self, ImageSet};
use crate::liveness;
use crate::model::features::Features;
use crate::model::predictor::HostGenerators;
use crate::spec::Method;

/// Where and how a pre-training runs.
#[derive(Debug, Clone)]
pub struct PretrainOptions {
    pub out: PathBuf,
    /// Continue from the newest checkpoint in `out` (start fresh if there is none).
    pub resume: bool,
    /// Draw a progress bar.
    pub progress: bool,
}

/// Receives progress during training (the run store and the progress bar implement it).
pub trait Observer {
    /// Called after every optimiser step; return `false` to stop: the run checkpoints where it
    /// is and [`pretrain`] returns with `finished = false`.
    fn on_step(&mut self, _epoch: usize, _step: usize, _loss: f64, _lr: f64) -> bool {
        true
    }
    /// Called after every epoch, before its checkpoint; an error fails the run.
    fn on_epoch(&mut self, _stats: &EpochStats) -> Result<()> {
        Ok(())
    }
    /// Whether [`Observer::on_generators`] wants the generators after `epoch` epochs.
    fn wants_generators(&self, _epoch: usize) -> bool {
        false
    }
    /// The learned generators after `epoch` epochs, before that epoch's checkpoint (the
    /// store observer turns them into spectra); an error fails the run.
    fn on_generators(&mut self, _epoch: usize, _generators: &[HostGenerators]) -> Result<()> {
        Ok(())
    }
    /// Whether [`Observer::on_reconstructions`] wants the fixed batch's reconstructions after
    /// `epoch` epochs.
    fn wants_reconstructions(&self, _epoch: usize) -> bool {
        false
    }
    /// The reconstructions of the fixed validation batch after `epoch` epochs (computed in
    /// `seconds`), before that epoch's checkpoint (the store observer turns them into
    /// pictures); an error fails the run.
    fn on_reconstructions(
        &mut self,
        _epoch: usize,
        _recs: &[Reconstruction],
        _seconds: f64,
    ) -> Result<()> {
        Ok(())
    }
    /// Whether [`Observer::on_monitor`] wants the monitor's features after `epoch` epochs.
    fn wants_monitor(&self, _epoch: usize) -> bool {
        false
    }
    /// The pooled features of the monitor's fixed training and validation subsets after
    /// `epoch` epochs (extracted in `seconds`), before that epoch's checkpoint; an error fails
    /// the run.
    fn on_monitor(
        &mut self,
        _epoch: usize,
        _train: &Features,
        _val: &Features,
        _seconds: f64,
    ) -> Result<()> {
        Ok(())
    }
    /// Whether the run goes on after `epoch` epochs (called once the epoch is checkpointed,
    /// and with the epochs already done when a run starts or resumes); `false` ends the
    /// run here, checkpointed (early stopping).
    fn keep_going(&mut self, _epoch: usize) -> Result<bool> {
        Ok(true)
    }
}

/// How a call of [`pretrain`] ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub state: TrainState,
    /// All epochs done (false: stopped early by the observer; resume continues).
    pub finished: bool,
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// Batch size and optimiser steps of one epoch.
pub fn steps_per_epoch(cfg: &RunConfig, n: usize) -> (usize, usize) {
    let batch = cfg.train.batch_size.min(n);
    let mut steps = (n / batch).max(1);
    if cfg.train.max_steps_per_epoch > 0 {
        steps = steps.min(cfg.train.max_steps_per_epoch);
    }
    (batch, steps)
}

type Rec = BinFileRecorder<FullPrecisionSettings>;

/// Runs (or resumes) pre-training with the run's method (QB-Heat or MoCo-v2); returns the
/// final training state.
pub fn pretrain<B: crate::backend::TrainBackend>(
    cfg: &RunConfig,
    opts: &PretrainOptions,
    device: &B::Device,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    crate::train::resources::check_memory(cfg)?;
    let (train_set, val_set) = data::load(cfg)?;
    let channels = train_set.channels;
    let sets = (&train_set, &val_set);
    match cfg.method {
        Method::MocoV2 => {
            let objective = MocoObjective {
                cfg: cfg.clone(),
                channels,
                maker: ViewMaker::for_config(cfg, &train_set),
                batch: steps_per_epoch(cfg, train_set.len()).0,
            };
            train_loop::<B, _>(&objective, cfg, opts, sets, device, observer)
        }
        _ => {
            let objective = QbHeatObjective {
                cfg: cfg.clone(),
                channels,
                maker: BatchMaker::for_config(cfg, &train_set),
            };
            train_loop::<B, _>(&objective, cfg, opts, sets, device, observer)
        }
    }
}

/// The loop every pre-training method shares: AdamW, warm-up + cosine, checkpoints, resume,
/// the observer's analyses.
fn train_loop<B: crate::backend::TrainBackend, O: Objective<B>>(
    objective: &O,
    cfg: &RunConfig,
    opts: &PretrainOptions,
    (train_set, val_set): (&ImageSet, &ImageSet),
    device: &B::Device,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let _hot = crate::threads::HotPool::start();
    let mut model = objective.model(device);
    // weight decay is applied by `apply_weight_decay` to the decayed group only
    let mut optim = FusedAdamW::default()
        .with_beta_2(cfg.train.beta2 as f32)
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init::<B, O::Model>();

    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("{}: cannot create output folder", opts.out.display()))?;
    let config_path = opts.out.join("config.toml");
    let mut state = TrainState::default();
    match checkpoint::latest(&opts.out)? {
        Some((dir, saved)) if opts.resume => {
            // the same run: the same id (probe settings may differ: they are evaluations)
            let stored = std::fs::read_to_string(&config_path).unwrap_or_default();
            let same = RunConfig::parse("stored", &stored)
                .is_ok_and(|s| crate::config::identity::run_id(&s) == crate::config::identity::run_id(cfg));
            if !same {
                bail!(
                    "{}: holds a run with a different config; resume with the same config or use another --out",
                    opts.out.display()
                );
            }
            let rec = Rec::new();
            model = objective.loaded(
                model
                    .load_file(dir.join("model"), &rec, device)
                    .with_context(|| {
                        format!("{}: cannot load model checkpoint", dir.display())
                    })?,
            );
            let optim_record = rec
                .load(dir.join("optim"), device)
                .with_context(|| format!("{}: cannot load optimiser checkpoint", dir.display()))?;
            optim = optim.load_record(optim_record);
            state = saved;
        }
        Some((dir, _)) => bail!(
            "{}: already holds checkpoints (newest {}); pass --resume to continue or choose another --out",
            opts.out.display(),
            dir.display()
        ),
        None => {}
    }
    checkpoint::write_atomic(&config_path, cfg.to_toml().as_bytes())?;
    let groups = decay_groups(&model, cfg.train.decay_all);

    let monitor = MonitorSets::new(cfg, train_set, val_set);
    if !observer.keep_going(state.epochs_done)? {
        return Ok(Outcome {
            state,
            finished: false,
        });
    }
    let (batch, steps) = steps_per_epoch(cfg, train_set.len());
    state.steps_per_epoch = steps;
    let total = steps * cfg.train.epochs;
    let warmup = (cfg.train.warmup_epochs * steps as f64).round() as usize;
    let peak = cfg.peak_lr();
    let bar = opts
        .progress
        .then(|| progress_bar(total as u64, state.step as u64));

    let save = |model: &O::Model, optim_record, state: &TrainState| {
        let snapshot = model.clone();
        checkpoint::save(&opts.out, state, |dir| {
            // encoded in memory (the same bytes as BinFileRecorder) so that a failed write is
            // a plain I/O error ("No space left on device"), not a recorder's debug dump
            let bytes = BinBytesRecorder::<FullPrecisionSettings>::new();
            let model_bytes = bytes
                .record(snapshot.into_record(), ())
                .map_err(|e| anyhow::anyhow!("cannot encode the model: {e}"))?;
            let optim_bytes = bytes
                .record(optim_record, ())
                .map_err(|e| anyhow::anyhow!("cannot encode the optimiser: {e}"))?;
            for (name, data) in [("model.bin", model_bytes), ("optim.bin", optim_bytes)] {
                let path = dir.join(name);
                std::fs::write(&path, data)
                    .with_context(|| format!("{}: cannot write", path.display()))?;
            }
            Ok(())
        })
    };
    for epoch in state.epochs_done..cfg.train.epochs {
        let started = Instant::now();
        let order = epoch_order(cfg.seed, epoch, train_set.len());
        // a checkpoint taken mid-epoch resumes at the next step of that epoch
        let first = state.step - epoch * steps;
        let mut lr = 0.0;
        let mut stop = false;
        for s in first..steps {
            let indices = &order[s * batch..(s + 1) * batch];
            let seed = step_seed(cfg.seed, epoch, s);
            lr = cosine_lr(state.step, total, warmup, peak, cfg.train.min_lr);
            let (loss, carry) = objective.loss(&model, train_set, indices, seed, device);
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                bail!(
                    "loss became {value} at epoch {} step {} (lr {lr:.3e}); lower train.base_lr or check the data",
                    epoch + 1,
                    s + 1
                );
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = apply_weight_decay(model, &groups, lr, cfg.train.weight_decay);
            model = optim.step(lr, model, grads);
            model = objective.after_step(model, carry, state.step);
            liveness::tick();
            state.step += 1;
            state.step_losses.push(value as f32);
            state.epoch_loss_sum += value;
            let go_on = observer.on_step(epoch, state.step, value, lr);
            if let Some(bar) = &bar {
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "epoch {}/{} loss {value:.4} {:.0} img/s",
                    epoch + 1,
                    cfg.train.epochs,
                    ((s + 1 - first) * batch) as f64 / secs
                ));
                bar.inc(1);
            }
            stop = !go_on;
            if stop && s + 1 < steps {
                save(&model, optim.to_record(), &state)?;
                return Ok(Outcome {
                    state,
                    finished: false,
                });
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let val_loss = objective.validation_loss(&model, val_set, device);
        if !val_loss.is_finite() {
            bail!(
                "validation loss became {val_loss} after epoch {} (the weights diverged on the \
                 epoch's last steps, lr {lr:.3e}); lower train.base_lr or check the data",
                epoch + 1
            );
        }
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: state.epoch_loss_sum / steps as f64,
            val_loss,
            lr,
            img_per_s: ((steps - first) * batch) as f64 / seconds.max(1e-9),
            seconds,
        };
        state.epochs_done = epoch + 1;
        state.epoch_loss_sum = 0.0;
        state.epochs.push(stats.clone());
        // observers record the epoch before the checkpoint marks it done: a crash in between
        // replays the epoch and its rows are replaced, never lost
        observer.on_epoch(&stats)?;
        if observer.wants_generators(epoch + 1) {
            if let Some(generators) = objective.generators(&model) {
                observer.on_generators(epoch + 1, &generators)?;
            }
        }
        if observer.wants_reconstructions(epoch + 1) {
            let t = Instant::now();
            if let Some(recs) = objective.reconstructions(&model, val_set, device) {
                observer.on_reconstructions(epoch + 1, &recs, t.elapsed().as_secs_f64())?;
            }
        }
        if let Some(sets) = monitor
            .as_ref()
            .filter(|_| observer.wants_monitor(epoch + 1))
        {
            let t = Instant::now();
            let (train_features, val_features) = objective.monitor(&model, sets, device);
            let seconds = t.elapsed().as_secs_f64();
            observer.on_monitor(epoch + 1, &train_features, &val_features, seconds)?;
        }
        save(&model, optim.to_record(), &state)?;
        if stop || !observer.keep_going(epoch + 1)? {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let finished = state.epochs_done == cfg.train.epochs;
    Ok(Outcome { state, finished })
}

fn progress_bar(total: u64, done: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} steps {elapsed_precise} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_position(done);
    bar
}
