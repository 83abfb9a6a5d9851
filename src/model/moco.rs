//! MoCo-v2 (He et al. 2020; Chen et al. 2020) on the Mobile-Former encoder: the paper's
//! contrastive baseline. A query encoder f_q and a momentum (key) encoder f_k, each followed
//! by a 2-layer MLP head g; a queue of K negative keys.
//!
//! * InfoNCE (MoCo Eq. 1): L = −log exp(q·k₊/τ) / (exp(q·k₊/τ) + Σᵢ exp(q·kᵢ/τ)), q = g_q(f_q(x_q)),
//!   k₊ = g_k(f_k(x_k)) for two views of one image, both L2-normalised, kᵢ the queue.
//! * Momentum update (MoCo Eq. 2): θ_k ← m θ_k + (1 − m) θ_q after every optimiser step.
//! * Queue: the step's keys replace the oldest K-th of it (a ring of `batch`-row slots).
//!
//! The encoder features are the pooled classifier features (`EncoderOutput::pooled`: mean of
//! the last feature map and token 0), the same vector lin probes.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::init::Init;
use super::layers::Dense;
use super::mobile_former::MobileFormer;
use crate::config::RunConfig;
use crate::data::views::ViewBatch;
use crate::kernels::Kernels;

/// MoCo-v2's projection head: Linear → ReLU → Linear.
#[derive(Module, Debug)]
pub struct ProjectionHead<B: Backend> {
    pub fc1: Dense<B>,
    pub fc2: Dense<B>,
}

impl<B: Kernels> ProjectionHead<B> {
    pub fn new(
        init: &mut Init,
        d_in: usize,
        hidden: usize,
        d_out: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            fc1: Dense::new(init, d_in, hidden, true, device),
            fc2: Dense::new(init, hidden, d_out, true, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

/// Rows scaled to unit L2 norm (ε = 1e-12 as in `F.normalize`).
pub fn l2_normalise<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}

/// InfoNCE of queries `q [n, d]` against their positive keys `k [n, d]` and the negatives
/// `queue [K, d]` at temperature `tau` (MoCo Eq. 1): the mean over the batch of the
/// cross-entropy of the logits `[q·k₊, q·k₁ … q·k_K] / τ` with class 0.
pub fn info_nce<B: Backend>(
    q: Tensor<B, 2>,
    k: Tensor<B, 2>,
    queue: Tensor<B, 2>,
    tau: f64,
) -> Tensor<B, 1> {
    let positive = (q.clone() * k).sum_dim(1);
    let negative = q.matmul(queue.transpose());
    let logits = Tensor::cat(vec![positive, negative], 1) / tau;
    log_softmax(logits, 1).narrow(1, 0, 1).mean().neg()
}

#[derive(Module, Debug)]
pub struct MoCo<B: Backend> {
    /// f_q: the encoder the probes read.
    pub encoder: MobileFormer<B>,
    pub head: ProjectionHead<B>,
    /// f_k: the momentum copy of `encoder` (not trained by gradients).
    pub momentum_encoder: MobileFormer<B>,
    pub momentum_head: ProjectionHead<B>,
    /// `[K, d]` negative keys, rows of unit norm (not trained).
    pub queue: Param<Tensor<B, 2>>,
    pub channels: usize,
}

impl<B: Kernels> MoCo<B> {
    /// Builds the model with weights drawn from `cfg.seed`; the momentum encoder starts as an
    /// exact copy of the query encoder (drawn again from the same seed: its own parameters,
    /// ids and BatchNorm statistics), the queue as random unit vectors.
    pub fn new(cfg: &RunConfig, channels: usize, device: &B::Device) -> Self {
        let spec = cfg.model.preset.spec();
        let build = || {
            let mut init = Init::new(cfg.seed);
            let encoder = MobileFormer::<B>::new(&spec, channels, &mut init, device);
            let dim = encoder.widths().1;
            let hidden = cfg.moco.proj_hidden.unwrap_or(dim);
            let head = ProjectionHead::new(&mut init, dim, hidden, cfg.moco.proj_dim, device);
            (encoder, head)
        };
        let (encoder, head) = build();
        let (momentum_encoder, momentum_head) = build();
        let (k, d) = (cfg.moco.queue, cfg.moco.proj_dim);
        let noise = Init::new(cfg.seed ^ 0x9e3e).normal_vec(k * d, 1.0);
        let queue = l2_normalise(Tensor::<B, 2>::from_data(
            TensorData::new(noise, [k, d]),
            device,
        ));
        Self {
            encoder,
            head,
            momentum_encoder: momentum_encoder.no_grad(),
            momentum_head: momentum_head.no_grad(),
            queue: Param::from_tensor(queue).set_require_grad(false),
            channels,
        }
    }

    /// The same model with the momentum side and the queue marked as not trained (after a
    /// checkpoint is loaded).
    pub fn frozen_keys(mut self) -> Self {
        self.momentum_encoder = self.momentum_encoder.no_grad();
        self.momentum_head = self.momentum_head.no_grad();
        self.queue = self.queue.set_require_grad(false);
        self
    }

    fn images(&self, pixels: Vec<f32>, views: &ViewBatch, device: &B::Device) -> Tensor<B, 4> {
        Tensor::from_data(
            TensorData::new(pixels, [views.n, views.channels, views.size, views.size]),
            device,
        )
    }

    /// q = normalise(g_q(f_q(query views))), `[n, d]`.
    pub fn queries(&self, views: &ViewBatch, device: &B::Device) -> Tensor<B, 2> {
        let x = self.images(views.query.clone(), views, device);
        l2_normalise(self.head.forward(self.encoder.forward(x).pooled()))
    }

    /// k₊ = normalise(g_k(f_k(key views))), `[n, d]`, detached. The key batch runs through
    /// the momentum encoder in the order `perm` (a permutation of 0..n), `groups` slices at
    /// a time, so each key's BatchNorm statistics come from a random part of the batch and
    /// not from the batch its query saw (MoCo's shuffling BN); rows come back in batch order.
    pub fn keys(
        &self,
        views: &ViewBatch,
        perm: &[usize],
        groups: usize,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let len = views.channels * views.size * views.size;
        let n = views.n;
        let chunk = n.div_ceil(groups.clamp(1, n.max(1)));
        let mut parts = Vec::new();
        for slots in perm.chunks(chunk) {
            let mut pixels = Vec::with_capacity(slots.len() * len);
            for &i in slots {
                pixels.extend_from_slice(&views.key[i * len..(i + 1) * len]);
            }
            let x = Tensor::<B, 4>::from_data(
                TensorData::new(
                    pixels,
                    [slots.len(), views.channels, views.size, views.size],
                ),
                device,
            );
            parts.push(
                self.momentum_head
                    .forward(self.momentum_encoder.forward(x).pooled()),
            );
        }
        let shuffled = l2_normalise(Tensor::cat(parts, 0)).detach();
        let mut inverse = vec![0i64; n];
        for (j, &i) in perm.iter().enumerate() {
            inverse[i] = j as i64;
        }
        let index =
            Tensor::<B, 1, burn::tensor::Int>::from_data(TensorData::new(inverse, [n]), device);
        shuffled.select(0, index)
    }

    /// The InfoNCE loss of a view batch and the batch's keys (for [`MoCo::enqueue`]).
    pub fn loss(
        &self,
        views: &ViewBatch,
        perm: &[usize],
        cfg: &RunConfig,
        device: &B::Device,
    ) -> (Tensor<B, 1>, Tensor<B, 2>) {
        let q = self.queries(views, device);
        let k = self.keys(views, perm, cfg.moco.key_bn_groups, device);
        let loss = info_nce(
            q,
            k.clone(),
            self.queue.val().detach(),
            cfg.moco.temperature,
        );
        (loss, k)
    }

    /// The queue with rows `slot..slot + n` replaced by `keys [n, d]` (the oldest keys: the
    /// ring's write position is `step · n mod K`).
    pub fn enqueue(mut self, keys: Tensor<B, 2>, slot: usize) -> Self {
        let [n, d] = keys.dims();
        self.queue = self.queue.map(|q| {
            q.slice_assign([slot..slot + n, 0..d], keys.detach())
                .detach()
        });
        self
    }

    /// θ_k ← m θ_k + (1 − m) θ_q for the encoder and the head (MoCo Eq. 2); BatchNorm running
    /// statistics are each encoder's own.
    pub fn momentum_update(mut self, m: f64) -> Self {
        let mut online = Collect::default();
        self.encoder.visit(&mut online);
        self.head.visit(&mut online);
        let mut blend = Blend {
            path: Vec::new(),
            online: online.values.into_iter(),
            m,
        };
        self.momentum_encoder = self.momentum_encoder.map(&mut blend);
        self.momentum_head = self.momentum_head.map(&mut blend);
        self
    }

    /// Multiply-adds of one step's forward passes for `n` images of side `size`: the query
    /// and key encoders on full images and both heads.
    pub fn macs(&self, n: usize, size: usize) -> u64 {
        let head = self.head.fc1.macs(n) + self.head.fc2.macs(n);
        2 * (self.encoder.macs(n, size, size) + head)
    }
}

/// Whether a visited float is a BatchNorm running statistic (not a parameter).
fn running(path: &[String]) -> bool {
    path.last().is_some_and(|n| n.starts_with("running_"))
}

/// The online parameters, flattened, in visiting order.
#[derive(Default)]
struct Collect<B: Backend> {
    path: Vec<String>,
    values: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !running(&self.path) {
            let v = param.val().detach();
            let n = v.shape().num_elements();
            self.values.push(v.reshape([n]));
        }
    }
}

/// Blends the momentum parameters towards the online ones, in the same visiting order.
struct Blend<B: Backend> {
    path: Vec<String>,
    online: std::vec::IntoIter<Tensor<B, 1>>,
    m: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if running(&self.path) {
            return param;
        }
        let Some(q) = self.online.next() else {
            return param;
        };
        let m = self.m;
        param.map(|k| {
            let shape = k.shape();
            (k.detach() * m + q.reshape(shape) * (1.0 - m))
                .detach()
                .set_require_grad(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type Cpu = burn::backend::Flex;

    fn t2(v: &[f32], shape: [usize; 2]) -> Tensor<Cpu, 2> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    }

    #[test]
    fn info_nce_matches_a_hand_computation() {
        // two queries, their keys, three negatives (all unit vectors in 2-D)
        let (s, c) = (0.6f64, 0.8f64);
        let q = [[1.0, 0.0], [0.0, 1.0]];
        let k = [[c, s], [s, c]];
        let queue = [[0.0, 1.0], [-1.0, 0.0], [s, -c]];
        let tau = 0.2;
        let mut expected = 0.0;
        for i in 0..2 {
            let dot = |a: [f64; 2], b: [f64; 2]| a[0] * b[0] + a[1] * b[1];
            let pos = dot(q[i], k[i]) / tau;
            let negs: Vec<f64> = queue.iter().map(|n| dot(q[i], *n) / tau).collect();
            let denom = pos.exp() + negs.iter().map(|x| x.exp()).sum::<f64>();
            expected += -(pos.exp() / denom).ln();
        }
        expected /= 2.0;
        let f = |m: &[[f64; 2]]| m.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>();
        let got: f32 = info_nce(
            t2(&f(&q), [2, 2]),
            t2(&f(&k), [2, 2]),
            t2(&f(&queue), [3, 2]),
            tau,
        )
        .into_scalar();
        assert!((got as f64 - expected).abs() < 1e-5, "{got} vs {expected}");
        // the loss falls as the positive gets closer to the query
        let closer: f32 = info_nce(
            t2(&f(&q), [2, 2]),
            t2(&f(&q), [2, 2]),
            t2(&f(&queue), [3, 2]),
            tau,
        )
        .into_scalar();
        assert!((closer as f64) < expected);
    }

    fn tiny() -> RunConfig {
        let mut cfg = RunConfig {
            method: crate::spec::Method::MocoV2,
            ..Default::default()
        };
        cfg.moco.queue = 8;
        cfg.moco.proj_dim = 4;
        cfg.moco.proj_hidden = Some(6);
        cfg
    }

    #[test]
    fn starts_as_a_copy_and_the_momentum_update_blends() {
        let dev = Default::default();
        let cfg = tiny();
        let model = MoCo::<Cpu>::new(&cfg, 3, &dev);
        let flat = |m: &ProjectionHead<Cpu>| -> Vec<f32> {
            let mut c = Collect::default();
            m.visit(&mut c);
            c.values
                .into_iter()
                .flat_map(|t| t.into_data().iter::<f32>().collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(flat(&model.head), flat(&model.momentum_head));
        // distinct parameter ids: the optimiser must never see the momentum side
        assert_ne!(model.head.fc1.weight.id, model.momentum_head.fc1.weight.id);
        // move the online head, then blend with m = 0.9
        let mut model = model;
        let old_key = flat(&model.momentum_head);
        model.head.fc1.weight = model.head.fc1.weight.clone().map(|w| w + 1.0);
        let online = flat(&model.head);
        let model = model.momentum_update(0.9);
        let new_key = flat(&model.momentum_head);
        for ((k, o), n) in old_key.iter().zip(&online).zip(&new_key) {
            let want = 0.9 * k + 0.1 * o;
            assert!((n - want).abs() < 1e-6, "{n} vs {want}");
        }
        // and the encoders blend too (equal before: stay equal when online did not move)
        let enc = |e: &MobileFormer<Cpu>| {
            let mut c = Collect::default();
            e.visit(&mut c);
            c.values.len()
        };
        assert_eq!(enc(&model.encoder), enc(&model.momentum_encoder));
    }

    #[test]
    fn only_the_query_side_is_trained() {
        let model = MoCo::<Cpu>::new(&tiny(), 3, &Default::default());
        let groups = crate::train::optim::decay_groups::<Cpu, _>(&model, true);
        let names = [groups.decayed_names, groups.exempt_names].concat();
        assert!(names.iter().any(|n| n.starts_with("encoder.")), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("head.")), "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with("momentum_") && n != "queue"),
            "{names:?}"
        );
    }

    #[test]
    fn enqueue_replaces_one_slot_of_the_ring() {
        let dev = Default::default();
        let model = MoCo::<Cpu>::new(&tiny(), 3, &dev);
        let before: Vec<f32> = model.queue.val().into_data().iter::<f32>().collect();
        let keys = t2(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [2, 4]);
        let after: Vec<f32> = model
            .enqueue(keys, 4)
            .queue
            .val()
            .into_data()
            .iter::<f32>()
            .collect();
        for row in 0..8 {
            let (a, b) = (&after[row * 4..row * 4 + 4], &before[row * 4..row * 4 + 4]);
            match row {
                4 => assert_eq!(a, &[1.0, 2.0, 3.0, 4.0]),
                5 => assert_eq!(a, &[5.0, 6.0, 7.0, 8.0]),
                _ => assert_eq!(a, b, "row {row} is not the step's slot"),
            }
        }
        // the initial queue holds unit vectors
        for row in before.chunks(4) {
            let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }
}
