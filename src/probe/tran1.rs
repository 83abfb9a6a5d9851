//! `tran-1` probe (Tab. 11): one transformer block over the cached feature-map tokens of the
//! frozen encoder, mean pool, concat token 0, linear; AdamW, dropout, label smoothing, warm-up
//! + cosine.

use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::head::{top1, Fit, Tran1Head};
use super::{ProbeKind, ProbeResult, Recipe};
use crate::model::features::Features;
use crate::model::init::Init;

/// The feature-map tokens and token 0 (when the features have one) of images `idx`.
fn inputs<B: Backend>(
    f: &Features,
    idx: &[usize],
    device: &B::Device,
) -> (Tensor<B, 3>, Option<Tensor<B, 2>>) {
    let global = (f.global_dim() > 0).then(|| {
        Tensor::from_data(
            TensorData::new(f.global_rows(idx), [idx.len(), f.global_dim()]),
            device,
        )
    });
    (tokens(f, idx, device), global)
}

fn tokens<B: Backend>(f: &Features, idx: &[usize], device: &B::Device) -> Tensor<B, 3> {
    let per = f.grid.0 * f.grid.1 * f.wide;
    let mut v = Vec::with_capacity(idx.len() * per);
    if let Some(all) = f.tokens.as_ref() {
        for &i in idx {
            v.extend_from_slice(&all[i * per..(i + 1) * per]);
        }
    }
    Tensor::from_data(
        TensorData::new(v, [idx.len(), f.grid.0 * f.grid.1, f.wide]),
        device,
    )
}

/// Trains the tran-1 head on cached tokens; returns its result and the trained head (the
/// fine-tuning decoder starts from it, Tab. 12). A raised `stop` ends the training early.
pub fn run<B: crate::backend::TrainBackend>(
    train: &Features,
    val: &Features,
    classes: usize,
    recipe: &Recipe,
    seed: u64,
    device: &B::Device,
    stop: &AtomicBool,
) -> (ProbeResult, Tran1Head<B>) {
    let started = Instant::now();
    let cfg = &recipe.cfg;
    B::seed(device, seed ^ 0x77);
    let mut head = Tran1Head::<B>::new(
        &mut Init::new(seed ^ 0x77),
        train.wide,
        train.global_dim(),
        recipe.tran_width,
        recipe.tran_depth,
        classes,
        recipe.tran_dropout,
        device,
    );
    if cfg.tran_standardise {
        if let Some(stats) = train.token_stats() {
            head = head.with_stats(&stats, &train.global_stats(), device);
        }
    }
    let optim = AdamWConfig::new()
        .with_weight_decay(cfg.tran_weight_decay as f32)
        .init::<B, Tran1Head<B>>();
    let fit = Fit::new(
        &train.labels,
        cfg.batch_size,
        cfg.tran_epochs,
        cfg.tran_base_lr,
        cfg.tran_warmup_epochs,
        seed ^ 0x77,
        cfg.label_smoothing,
    )
    .stoppable(stop);
    let fitted = fit.run(
        head,
        optim,
        |h: &Tran1Head<B>, idx| {
            let (t, g) = inputs::<B>(train, idx, device);
            h.forward(t, g, train.grid)
        },
        |h| {
            let eval = h.valid();
            top1(&val.labels, 512, |c| {
                let (t, g) = inputs::<B::InnerBackend>(val, c, device);
                eval.forward(t, g, val.grid)
            })
        },
    );
    let result = fit.result(ProbeKind::Tran1, &fitted, train.img_per_s, started);
    (result, fitted.model)
}
