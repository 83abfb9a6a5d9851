//! What a pre-training method contributes to the shared loop of [`super::pretrain`]: its
//! model, the loss of a step, what happens after the optimiser step, and its per-epoch
//! evaluations. QB-Heat and MoCo-v2 are the two objectives.

use burn::module::AutodiffModule;
use burn::tensor::{ElementConversion, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::monitor::MonitorSets;
use super::reconstruction::{reconstruct, Reconstruction};
use super::seeds::step_seed;
use crate::backend::TrainBackend;
use crate::config::RunConfig;
use crate::data::batch::{BatchMaker, PretrainBatch};
use crate::data::views::ViewMaker;
use crate::data::ImageSet;
use crate::model::features::Features;
use crate::model::moco::MoCo;
use crate::model::predictor::HostGenerators;
use crate::model::qbheat::QbHeat;

/// A pre-training method, for the shared loop.
pub trait Objective<B: TrainBackend> {
    type Model: AutodiffModule<B> + Clone;
    /// What a step leaves for [`Objective::after_step`] (MoCo-v2: the step's keys).
    type Carry;
    /// A fresh model drawn from the run's seed.
    fn model(&self, device: &B::Device) -> Self::Model;
    /// The model just loaded from a checkpoint, ready to train.
    fn loaded(&self, model: Self::Model) -> Self::Model {
        model
    }
    /// The loss of the images `indices` of `set`, all randomness drawn from `seed`.
    fn loss(
        &self,
        model: &Self::Model,
        set: &ImageSet,
        indices: &[usize],
        seed: u64,
        device: &B::Device,
    ) -> (Tensor<B, 1>, Self::Carry);
    /// After the optimiser step `step` (0-based, over the whole run).
    fn after_step(&self, model: Self::Model, _carry: Self::Carry, _step: usize) -> Self::Model {
        model
    }
    /// The validation loss after an epoch.
    fn validation_loss(&self, model: &Self::Model, val: &ImageSet, device: &B::Device) -> f64;
    /// The learned generators (QB-Heat only).
    fn generators(&self, _model: &Self::Model) -> Option<Vec<HostGenerators>> {
        None
    }
    /// Reconstructions of the fixed validation batch (QB-Heat only).
    fn reconstructions(
        &self,
        _model: &Self::Model,
        _val: &ImageSet,
        _device: &B::Device,
    ) -> Option<Vec<Reconstruction>> {
        None
    }
    /// The feature monitor's pooled features of the frozen encoder.
    fn monitor(
        &self,
        model: &Self::Model,
        sets: &MonitorSets,
        device: &B::Device,
    ) -> (Features, Features);
}

/// QB-Heat (DESIGN §1): masked reconstruction from one quarter.
pub struct QbHeatObjective {
    pub cfg: RunConfig,
    pub channels: usize,
    pub maker: BatchMaker,
}

impl<B: TrainBackend> Objective<B> for QbHeatObjective {
    type Model = QbHeat<B>;
    type Carry = ();

    fn model(&self, device: &B::Device) -> QbHeat<B> {
        QbHeat::new(&self.cfg, self.channels, device)
    }

    fn loss(
        &self,
        model: &QbHeat<B>,
        set: &ImageSet,
        indices: &[usize],
        seed: u64,
        device: &B::Device,
    ) -> (Tensor<B, 1>, ()) {
        let b = self.maker.make(set, indices, seed);
        (model.loss(&b, device), ())
    }

    fn validation_loss(&self, model: &QbHeat<B>, val: &ImageSet, device: &B::Device) -> f64 {
        validation_loss(&model.valid(), &self.maker, val, &self.cfg, device)
    }

    fn generators(&self, model: &QbHeat<B>) -> Option<Vec<HostGenerators>> {
        Some(model.predictor.host_generators())
    }

    fn reconstructions(
        &self,
        model: &QbHeat<B>,
        val: &ImageSet,
        device: &B::Device,
    ) -> Option<Vec<Reconstruction>> {
        Some(reconstruct(&model.valid(), &self.maker, val, device))
    }

    fn monitor(
        &self,
        model: &QbHeat<B>,
        sets: &MonitorSets,
        device: &B::Device,
    ) -> (Features, Features) {
        sets.features(&model.valid().encoder, device)
    }
}

/// MoCo-v2 (`model::moco`): InfoNCE between two views, momentum encoder, queue.
pub struct MocoObjective {
    pub cfg: RunConfig,
    pub channels: usize,
    pub maker: ViewMaker,
    /// Images per step (the ring slot of the queue).
    pub batch: usize,
}

impl MocoObjective {
    /// The order the key batch goes through the momentum encoder (shuffling BN).
    fn shuffle(n: usize, seed: u64) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5bf1_e5ee_d000_0001));
        perm
    }
}

impl<B: TrainBackend> Objective<B> for MocoObjective {
    type Model = MoCo<B>;
    type Carry = Tensor<B, 2>;

    fn model(&self, device: &B::Device) -> MoCo<B> {
        MoCo::new(&self.cfg, self.channels, device)
    }

    fn loaded(&self, model: MoCo<B>) -> MoCo<B> {
        model.frozen_keys()
    }

    fn loss(
        &self,
        model: &MoCo<B>,
        set: &ImageSet,
        indices: &[usize],
        seed: u64,
        device: &B::Device,
    ) -> (Tensor<B, 1>, Tensor<B, 2>) {
        let views = self.maker.make(set, indices, seed);
        let perm = Self::shuffle(views.n, seed);
        model.loss(&views, &perm, &self.cfg, device)
    }

    /// θ_k ← m θ_k + (1 − m) θ_q, then the step's keys replace the queue's oldest slot
    /// (`step · batch mod K`: every step has the same batch, so the slot follows from the
    /// step count and a resumed run continues the ring exactly).
    fn after_step(&self, model: MoCo<B>, keys: Tensor<B, 2>, step: usize) -> MoCo<B> {
        let slot = (step * self.batch) % self.cfg.moco.queue;
        model
            .momentum_update(self.cfg.moco.momentum)
            .enqueue(keys, slot)
    }

    /// Mean InfoNCE of (at most 256) validation images' view pairs, drawn from fixed seeds,
    /// against the current queue (nothing enqueued).
    fn validation_loss(&self, model: &MoCo<B>, val: &ImageSet, device: &B::Device) -> f64 {
        let eval = model.valid();
        let n = val.len().min(256);
        let batch = self.batch.min(n).max(1);
        let (mut total, mut count) = (0.0, 0);
        for (k, start) in (0..n).step_by(batch).enumerate() {
            let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
            let seed = step_seed(self.cfg.seed, usize::MAX, k);
            let views = self.maker.make(val, &idx, seed);
            let perm: Vec<usize> = (0..idx.len()).collect();
            let (loss, _) = eval.loss(&views, &perm, &self.cfg, device);
            let v: f64 = loss.into_scalar().elem();
            crate::liveness::tick();
            total += v * idx.len() as f64;
            count += idx.len();
        }
        total / count.max(1) as f64
    }

    fn monitor(
        &self,
        model: &MoCo<B>,
        sets: &MonitorSets,
        device: &B::Device,
    ) -> (Features, Features) {
        sets.features(&model.valid().encoder, device)
    }
}

/// Mean masked loss on (at most 256) un-augmented validation images with fixed quarters.
pub fn validation_loss<B: crate::kernels::Kernels>(
    model: &QbHeat<B>,
    maker: &BatchMaker,
    val: &ImageSet,
    cfg: &RunConfig,
    device: &B::Device,
) -> f64 {
    let mut maker = maker.clone();
    maker.augment = false;
    let n = val.len().min(256);
    let batch = cfg.train.batch_size.min(n).max(1);
    let mut total = 0.0;
    let mut count = 0;
    for (k, start) in (0..n).step_by(batch).enumerate() {
        let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
        let b: PretrainBatch = maker.make(val, &idx, step_seed(cfg.seed, usize::MAX, k));
        let v: f64 = model.loss(&b, device).into_scalar().elem();
        crate::liveness::tick();
        total += v * idx.len() as f64;
        count += idx.len();
    }
    total / count.max(1) as f64
}
