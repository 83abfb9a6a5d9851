//! `tran-1` probe (Tab. 11): one transformer block over the cached feature-map tokens of the
//! frozen encoder, mean pool, linear; AdamW (wd 0.1), label smoothing, warmup + cosine.

use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Tensor, TensorData};
use std::time::Instant;

use super::features::Features;
use super::head::{top1, Fit, Tran1Head};
use super::{ProbeConfig, ProbeKind, ProbeResult};
use crate::model::init::Init;

fn tokens<B: Backend>(f: &Features, idx: &[usize], device: &B::Device) -> Tensor<B, 3> {
    let all = f.tokens.as_ref().expect("tran-1 needs feature-map tokens");
    let per = f.grid.0 * f.grid.1 * f.wide;
    let mut v = Vec::with_capacity(idx.len() * per);
    for &i in idx {
        v.extend_from_slice(&all[i * per..(i + 1) * per]);
    }
    Tensor::from_data(
        TensorData::new(v, [idx.len(), f.grid.0 * f.grid.1, f.wide]),
        device,
    )
}

pub fn run<B: AutodiffBackend>(
    train: &Features,
    val: &Features,
    classes: usize,
    cfg: &ProbeConfig,
    seed: u64,
    device: &B::Device,
) -> ProbeResult {
    let started = Instant::now();
    let head = Tran1Head::<B>::new(
        &mut Init::new(seed ^ 0x77),
        train.wide,
        cfg.tran_width,
        classes,
        device,
    );
    let optim = AdamWConfig::new()
        .with_weight_decay(0.1)
        .init::<B, Tran1Head<B>>();
    let n = train.labels.len();
    let batch = cfg.batch_size.min(n).max(1);
    let fit = Fit {
        epochs: cfg.tran_epochs,
        batch,
        peak_lr: cfg.tran_base_lr * batch as f64 / 256.0,
        seed: seed ^ 0x77,
        labels: &train.labels,
        smoothing: cfg.label_smoothing,
    };
    let (_, top1, losses, train_secs) = fit.run(
        head,
        optim,
        |h: &Tran1Head<B>, idx| h.forward(tokens::<B>(train, idx, device), train.grid),
        |h| {
            let eval = h.valid();
            top1(&val.labels, 512, |c| {
                eval.forward(tokens::<B::InnerBackend>(val, c, device), val.grid)
            })
        },
    );
    ProbeResult {
        kind: ProbeKind::Tran1,
        top1_per_epoch: top1,
        train_loss_per_epoch: losses,
        train_img_per_s: (n * cfg.tran_epochs) as f64 / train_secs.max(1e-9),
        extract_img_per_s: train.img_per_s,
        seconds: started.elapsed().as_secs_f64(),
    }
}
