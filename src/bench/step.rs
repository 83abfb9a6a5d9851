//! `workbench bench`: times pre-training steps of a model on built-in data.

use anyhow::Result;
use burn::optim::{GradientsParams, Optimizer};

use crate::train::adamw::FusedAdamW;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use std::time::Instant;

use super::{peak_rss_mb, Usage};
use crate::backend::{OnBackend, TrainBackend};
use crate::config::RunConfig;
use crate::data::batch::{BatchMaker, PretrainBatch};
use crate::data::procedural;
use crate::model::qbheat::QbHeat;
use crate::train::seeds::step_seed;

/// Result of a benchmark.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub img_per_s: f64,
    pub step_ms: f64,
    pub peak_rss_mb: f64,
    pub gflop_per_s: f64,
    /// Forward multiply-adds of one batch.
    pub forward_macs: u64,
    /// CPU time over wall time of the timed steps (cores kept busy; with the hot pool, see
    /// [`crate::threads::HotPool`], this includes the workers' polling).
    pub cores_busy: f64,
    /// Share of the CPU time spent in the kernel (page faults, allocation).
    pub system_share: f64,
    /// Minor + major page faults per timed step.
    pub page_faults_per_step: f64,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bench: img_per_s={:.1} step_ms={:.2} peak_rss_mb={:.1} gflop_per_s={:.2} \
             cores_busy={:.2} system_share={:.2} page_faults_per_step={:.0} hot_pool={} {}",
            self.img_per_s,
            self.step_ms,
            self.peak_rss_mb,
            self.gflop_per_s,
            self.cores_busy,
            self.system_share,
            self.page_faults_per_step,
            if crate::threads::hot_pool_enabled() {
                "on"
            } else {
                "off"
            },
            crate::simd::describe()
        )
    }
}

/// Model, optimiser and the four batches the benchmark cycles through.
fn setup<B: TrainBackend>(cfg: &RunConfig, device: &B::Device) -> (QbHeat<B>, Vec<PretrainBatch>) {
    let batch = cfg.train.batch_size;
    let set = procedural::generate(batch * 4, cfg.data.image_size, 3, cfg.seed);
    let maker = BatchMaker::for_config(cfg, &set);
    let model = QbHeat::<B>::new(cfg, 3, device);
    let batches = (0..4)
        .map(|k| {
            let idx: Vec<usize> = (k * batch..(k + 1) * batch).collect();
            maker.make(&set, &idx, step_seed(cfg.seed, 0, k))
        })
        .collect();
    (model, batches)
}

/// Reading a value back synchronises asynchronous backends.
fn sync<B: Backend, const D: usize>(t: &Tensor<B, D>) -> f64 {
    t.clone().sum().into_scalar().elem()
}

/// `warmup` untimed and `steps` timed optimiser steps of `cfg`'s model on built-in data.
/// FLOPs = 2 × multiply-adds × 3 (forward + backward ≈ 3× forward). AdamW with weight decay
/// 0.05 on every parameter: the PyTorch twin (`../shared/bench/torch_mftiny.py`) mirrors it.
pub struct Step<'a> {
    pub cfg: &'a RunConfig,
    pub warmup: usize,
    pub steps: usize,
}

impl OnBackend for Step<'_> {
    type Output = BenchResult;

    fn run<B: TrainBackend>(self, device: B::Device) -> Result<BenchResult> {
        let Step { cfg, warmup, steps } = self;
        anyhow::ensure!(steps >= 1, "--steps must be at least 1");
        if cfg.method == crate::spec::Method::MocoV2 {
            return moco_steps::<B>(cfg, warmup, steps, &device);
        }
        let (model, batches) = setup::<B>(cfg, &device);
        let forward_macs = model.macs(cfg, cfg.train.batch_size);
        let mut optim = FusedAdamW::default()
            .with_weight_decay(0.05)
            .init::<B, QbHeat<B>>();
        let mut model = Some(model);
        timed_steps(
            cfg.train.batch_size,
            warmup,
            steps,
            forward_macs,
            6.0,
            |i| {
                let m = model
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("the model was not put back after a step"))?;
                let loss = m.loss(&batches[i % batches.len()], &device);
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                let m = optim.step(1e-4, m, grads);
                let finite = sync(&m.projector.weight.val()).is_finite();
                model = Some(m);
                anyhow::ensure!(finite, "benchmark diverged");
                Ok(())
            },
        )
    }
}

/// Runs `warmup` untimed and `steps` timed calls of `step` (its index) and turns the timed
/// ones into a [`BenchResult`] of `batch` images per step; `flop_per_mac` × `forward_macs`
/// FLOPs per step.
fn timed_steps(
    batch: usize,
    warmup: usize,
    steps: usize,
    forward_macs: u64,
    flop_per_mac: f64,
    mut step: impl FnMut(usize) -> Result<()>,
) -> Result<BenchResult> {
    let mut timed = 0.0;
    let mut usage = Usage::default();
    let _hot = crate::threads::HotPool::start();
    for i in 0..warmup + steps {
        if i == warmup {
            usage = Usage::now();
        }
        let t = Instant::now();
        step(i)?;
        if i >= warmup {
            timed += t.elapsed().as_secs_f64();
        }
    }
    let used = Usage::now().since(&usage);
    let step_s = timed / steps as f64;
    let cpu = used.user + used.system;
    Ok(BenchResult {
        img_per_s: batch as f64 / step_s,
        step_ms: step_s * 1e3,
        peak_rss_mb: peak_rss_mb(),
        gflop_per_s: flop_per_mac * forward_macs as f64 / step_s / 1e9,
        forward_macs,
        cores_busy: cpu / timed.max(1e-9),
        system_share: used.system / cpu.max(1e-9),
        page_faults_per_step: used.page_faults as f64 / steps as f64,
    })
}

/// [`Step`] for MoCo-v2: two views per image through the query encoder (forward and
/// backward) and the momentum encoder (forward only), the momentum update and the enqueue.
/// FLOPs = 2 × (3 × query multiply-adds + key multiply-adds).
fn moco_steps<B: TrainBackend>(
    cfg: &RunConfig,
    warmup: usize,
    steps: usize,
    device: &B::Device,
) -> Result<BenchResult> {
    use crate::data::views::ViewMaker;
    use crate::model::moco::MoCo;
    let batch = cfg.train.batch_size;
    let set = procedural::generate(batch * 4, cfg.data.image_size, 3, cfg.seed);
    let maker = ViewMaker::for_config(cfg, &set);
    let views: Vec<_> = (0..4)
        .map(|k| {
            let idx: Vec<usize> = (k * batch..(k + 1) * batch).collect();
            maker.make(&set, &idx, step_seed(cfg.seed, 0, k))
        })
        .collect();
    let perm: Vec<usize> = (0..batch).rev().collect();
    let model = MoCo::<B>::new(cfg, 3, device);
    let forward_macs = model.macs(batch, cfg.data.image_size);
    let mut optim = FusedAdamW::default()
        .with_weight_decay(0.05)
        .init::<B, MoCo<B>>();
    let mut model = Some(model);
    // the forward multiply-adds are half query, half key: 3× for the query (forward and
    // backward), 1× for the key, 2 FLOPs each
    timed_steps(batch, warmup, steps, forward_macs, 4.0, |i| {
        let m = model
            .take()
            .ok_or_else(|| anyhow::anyhow!("the model was not put back after a step"))?;
        let (loss, keys) = m.loss(&views[i % views.len()], &perm, cfg, device);
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = optim.step(1e-4, m, grads);
        let slot = (i * batch) % cfg.moco.queue;
        let m = m.momentum_update(cfg.moco.momentum).enqueue(keys, slot);
        let finite = sync(&m.queue.val()).is_finite();
        model = Some(m);
        anyhow::ensure!(finite, "benchmark diverged");
        Ok(())
    })
}

/// Milliseconds per phase of one pre-training step (mean over `steps` after one warm-up):
/// encoder, projector + heat predictor + assembly, decoder + loss (forward, autodiff graph
/// recorded), backward, optimiser. The phases are [`QbHeat`]'s own forward steps.
pub struct Breakdown<'a> {
    pub cfg: &'a RunConfig,
    pub steps: usize,
}

impl OnBackend for Breakdown<'_> {
    type Output = Vec<(&'static str, f64)>;

    fn run<B: TrainBackend>(self, device: B::Device) -> Result<Self::Output> {
        let Breakdown { cfg, steps } = self;
        anyhow::ensure!(steps >= 1, "--steps must be at least 1");
        let (mut model, batches) = setup::<B>(cfg, &device);
        let b = &batches[0];
        let mut optim = FusedAdamW::default()
            .with_weight_decay(0.05)
            .init::<B, QbHeat<B>>();
        let names = [
            "encoder fwd",
            "projector+predictor fwd",
            "decoder+loss fwd",
            "backward",
            "optimizer",
        ];
        let mut acc = [0.0f64; 5];
        let _hot = crate::threads::HotPool::start();
        for i in 0..steps + 1 {
            let mut t = Instant::now();
            let mut lap = |k: usize, t: &mut Instant| {
                if i > 0 {
                    acc[k] += t.elapsed().as_secs_f64() * 1e3;
                }
                *t = Instant::now();
            };
            let feats = model.encode(b, &device);
            sync(&feats);
            lap(0, &mut t);
            let tokens = model.predict(b, feats);
            sync(&tokens);
            lap(1, &mut t);
            let pred = model.decode(b, tokens);
            let loss = model.masked_loss(b, pred, &device);
            sync(&loss);
            lap(2, &mut t);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lap(3, &mut t);
            model = optim.step(1e-4, model, grads);
            sync(&model.projector.weight.val());
            lap(4, &mut t);
        }
        Ok(names
            .iter()
            .zip(acc)
            .map(|(n, a)| (*n, a / steps as f64))
            .collect())
    }
}
