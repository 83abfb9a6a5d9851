//! `lin` probe (Tab. 10): BatchNorm without affine + linear classifier on cached features,
//! SGD (momentum 0.9, weight decay 0), lr = base × batch / 256, warmup + cosine.

use burn::module::AutodiffModule;
use burn::optim::{decay::WeightDecayConfig, momentum::MomentumConfig, SgdConfig};
use burn::tensor::{Tensor, TensorData};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::head::{top1, Fit};
use super::{ProbeConfig, ProbeKind, ProbeResult};
use crate::model::features::Features;
use crate::model::init::Init;
use crate::model::layers::Dense;

/// Per-dimension mean and std of `n × dim` rows (the statistics BN's running averages reach).
pub fn standardiser(x: &[f32], dim: usize) -> Vec<(f32, f32)> {
    let n = (x.len() / dim).max(1) as f64;
    (0..dim)
        .map(|j| {
            let (mut s, mut s2) = (0f64, 0f64);
            for row in x.chunks(dim) {
                s += row[j] as f64;
                s2 += (row[j] as f64).powi(2);
            }
            let mean = s / n;
            let var = (s2 / n - mean * mean).max(0.0);
            (mean as f32, (var + 1e-6).sqrt() as f32)
        })
        .collect()
}

fn standardise(x: &[f32], dim: usize, stats: &[(f32, f32)]) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let (m, s) = stats[i % dim];
            (v - m) / s
        })
        .collect()
}

fn rows<B: burn::tensor::backend::Backend>(
    x: &[f32],
    dim: usize,
    idx: &[usize],
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut v = Vec::with_capacity(idx.len() * dim);
    for &i in idx {
        v.extend_from_slice(&x[i * dim..(i + 1) * dim]);
    }
    Tensor::from_data(TensorData::new(v, [idx.len(), dim]), device)
}

/// Trains and evaluates the linear probe; a raised `stop` ends the training early (the
/// result then holds the epochs done).
pub fn run<B: crate::backend::TrainBackend>(
    train: &Features,
    val: &Features,
    classes: usize,
    cfg: &ProbeConfig,
    seed: u64,
    device: &B::Device,
    stop: &AtomicBool,
) -> ProbeResult {
    let started = Instant::now();
    let dim = train.dim;
    let stats = standardiser(&train.pooled, dim);
    let xt = standardise(&train.pooled, dim, &stats);
    let xv = standardise(&val.pooled, dim, &stats);
    let head = Dense::<B>::new(&mut Init::new(seed ^ 0x11), dim, classes, true, device);
    let decay =
        (cfg.lin_weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.lin_weight_decay as f32));
    let optim = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .with_weight_decay(decay)
        .init::<B, Dense<B>>();
    let fit = Fit::new(
        &train.labels,
        cfg.batch_size,
        cfg.lin_epochs,
        cfg.lin_base_lr,
        cfg.lin_warmup_epochs,
        seed ^ 0x11,
        0.0,
    )
    .stoppable(stop);
    let fitted = fit.run(
        head,
        optim,
        |h: &Dense<B>, idx| h.forward(rows::<B>(&xt, dim, idx, device)),
        |h| evaluate(&h.valid(), &xv, dim, &val.labels, device),
    );
    fit.result(ProbeKind::Lin, &fitted, train.img_per_s, started)
}

fn evaluate<B: crate::kernels::Kernels>(
    head: &Dense<B>,
    x: &[f32],
    dim: usize,
    labels: &[u32],
    device: &B::Device,
) -> f64 {
    top1(labels, 1024, |c| head.forward(rows::<B>(x, dim, c, device)))
}
