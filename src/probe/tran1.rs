//! `tran-1` probe (Tab. 11): one transformer block over the cached feature-map tokens of the
//! frozen encoder, mean pool, linear; AdamW (wd 0.1), label smoothing, warmup + cosine.

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Tensor, TensorData};
use std::time::Instant;

use super::features::Features;
use super::head::{correct, cross_entropy, Tran1Head};
use super::{ProbeConfig, ProbeKind, ProbeResult};
use crate::model::init::Init;
use crate::train::pretrain::epoch_order;
use crate::train::schedule::cosine_lr;

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
    let mut head = Tran1Head::<B>::new(
        &mut Init::new(seed ^ 0x77),
        train.wide,
        cfg.tran_width,
        classes,
        device,
    );
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.1)
        .init::<B, Tran1Head<B>>();
    let n = train.labels.len();
    let batch = cfg.batch_size.min(n).max(1);
    let steps = n.div_ceil(batch);
    let total = steps * cfg.tran_epochs;
    let peak = cfg.tran_base_lr * batch as f64 / 256.0;
    let (mut top1, mut losses) = (Vec::new(), Vec::new());
    let (mut step, mut train_secs) = (0, 0.0);
    for epoch in 0..cfg.tran_epochs {
        let t = Instant::now();
        let mut sum = 0.0;
        for chunk in epoch_order(seed ^ 0x77, epoch, n).chunks(batch) {
            let labels: Vec<u32> = chunk.iter().map(|&i| train.labels[i]).collect();
            let logits = head.forward(tokens::<B>(train, chunk, device), train.grid);
            let loss = cross_entropy(logits, &labels, cfg.label_smoothing);
            let v: f64 = loss.clone().into_scalar().elem();
            sum += v * chunk.len() as f64;
            let lr = cosine_lr(step, total, steps, peak, 0.0);
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optim.step(lr, head, grads);
            step += 1;
        }
        train_secs += t.elapsed().as_secs_f64();
        losses.push(sum / n as f64);
        let eval = head.valid();
        let idx: Vec<usize> = (0..val.labels.len()).collect();
        let hits: usize = idx
            .chunks(512)
            .map(|c| {
                let l: Vec<u32> = c.iter().map(|&i| val.labels[i]).collect();
                correct(
                    eval.forward(tokens::<B::InnerBackend>(val, c, device), val.grid),
                    &l,
                )
            })
            .sum();
        top1.push(hits as f64 / val.labels.len().max(1) as f64);
    }
    ProbeResult {
        kind: ProbeKind::Tran1,
        top1_per_epoch: top1,
        train_loss_per_epoch: losses,
        train_img_per_s: (n * cfg.tran_epochs) as f64 / train_secs.max(1e-9),
        extract_img_per_s: train.img_per_s,
        seconds: started.elapsed().as_secs_f64(),
    }
}
