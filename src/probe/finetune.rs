//! `finetune` (Tab. 12): encoder + tran-1 head trained end to end on augmented images, AdamW
//! with layer-wise lr decay — group g of L + 2 (stem/bneck-lite/tokens, each block, final
//! 1×1 conv + head) gets lr × decay^(L + 1 − g). The head starts from the tran-1 probe's
//! (Tab. 12) when one is given. With a random-init encoder, a fresh head and decay 1 this is
//! the supervised baseline.

use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::head::{self, cross_entropy, Tran1Head};
use super::{ProbeKind, ProbeResult, Recipe};
use crate::backend::TrainBackend;
use crate::data::augment::{resized_crop, sample_box};
use crate::data::ImageSet;
use crate::kernels::Kernels;
use crate::model::features::image_batch;
use crate::model::init::Init;
use crate::model::mobile_former::MobileFormer;
use crate::train::schedule::cosine_lr;
use crate::train::seeds::{epoch_order, step_seed};

#[derive(Module, Debug)]
pub struct Finetuner<B: Backend> {
    pub encoder: MobileFormer<B>,
    pub head: Tran1Head<B>,
}

impl<B: Kernels> Finetuner<B> {
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let out = self.encoder.forward(images);
        let [n, c, h, w] = out.features.dims();
        let [_, _, d] = out.tokens.dims();
        let global = out.tokens.narrow(1, 0, 1).reshape([n, d]);
        self.head.forward(
            out.features.reshape([n, c, h * w]).swap_dims(1, 2),
            Some(global),
            (h, w),
        )
    }
}

/// Augmented, normalised batch of `indices` (RandomResizedCrop + flip).
fn augmented<B: Backend>(
    set: &ImageSet,
    indices: &[usize],
    stats: &[(f32, f32)],
    seed: u64,
    device: &B::Device,
) -> Tensor<B, 4> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (c, s) = (set.channels, set.size);
    let plane = s * s;
    let mut pixels = vec![0f32; indices.len() * c * plane];
    for (k, &i) in indices.iter().enumerate() {
        let out = &mut pixels[k * c * plane..(k + 1) * c * plane];
        let crop = sample_box(&mut rng, s, [0.35, 1.0]);
        resized_crop(set.image(i), c, s, crop, rng.random::<bool>(), out);
        for (ch, &(m, sd)) in stats.iter().enumerate() {
            for v in &mut out[ch * plane..(ch + 1) * plane] {
                *v = (*v - m) / sd;
            }
        }
    }
    Tensor::from_data(TensorData::new(pixels, [indices.len(), c, s, s]), device)
}

/// What a fine-tuning reads: the images, their normalisation, and the flag that ends it
/// early (Ctrl-C, SIGTERM, a stop request in the store).
pub struct Data<'a> {
    pub train: &'a ImageSet,
    pub val: &'a ImageSet,
    pub stats: &'a [(f32, f32)],
    pub stop: &'a AtomicBool,
}

/// Fine-tunes `encoder` with `head` (the tran-1 probe's) or a fresh tran-1 head;
/// `layer_decay` 1.0 = one lr for all. Returns the result and the fine-tuned model.
pub fn run<B: TrainBackend>(
    encoder: MobileFormer<B>,
    head: Option<Tran1Head<B>>,
    data: &Data,
    recipe: &Recipe,
    layer_decay: f64,
    seed: u64,
    device: &B::Device,
) -> (ProbeResult, Finetuner<B>) {
    let started = Instant::now();
    let cfg = &recipe.cfg;
    let (train, val, stats) = (data.train, data.val, data.stats);
    B::seed(device, seed ^ 0xf1);
    let (wide, dim) = encoder.widths();
    let head = head
        .unwrap_or_else(|| {
            Tran1Head::new(
                &mut Init::new(seed ^ 0xf1),
                wide,
                dim - wide,
                recipe.tran_width,
                recipe.tran_depth,
                train.classes,
                cfg.finetune_dropout,
                device,
            )
        })
        .with_dropout(cfg.finetune_dropout);
    let mut model = Finetuner { encoder, head };
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.finetune_weight_decay as f32)
        .init::<B, Finetuner<B>>();
    let n = train.len();
    let batch = cfg.batch_size.min(n).max(1);
    let steps = n.div_ceil(batch);
    let total = steps * cfg.finetune_epochs;
    let peak = cfg.finetune_base_lr * batch as f64 / 256.0;
    let warmup = ((cfg.finetune_warmup_epochs * steps as f64).round() as usize).min(total);
    let depth = model.encoder.blocks.len() + 1;
    let (mut top1, mut losses) = (Vec::new(), Vec::new());
    let (mut step, mut train_secs) = (0, 0.0);
    let _hot = crate::threads::HotPool::start();
    'epochs: for epoch in 0..cfg.finetune_epochs {
        let t = Instant::now();
        let mut sum = 0.0;
        for (k, chunk) in epoch_order(seed ^ 0xf1, epoch, n).chunks(batch).enumerate() {
            if data.stop.load(Ordering::SeqCst) {
                break 'epochs;
            }
            let labels: Vec<u32> = chunk.iter().map(|&i| train.labels[i]).collect();
            let x = augmented::<B>(
                train,
                chunk,
                stats,
                step_seed(seed ^ 0xf1, epoch, k),
                device,
            );
            let loss = cross_entropy(model.forward(x), &labels, cfg.label_smoothing);
            let v: f64 = loss.clone().into_scalar().elem();
            sum += v * chunk.len() as f64;
            let lr = cosine_lr(step, total, warmup, peak, 0.0);
            let mut grads = loss.backward();
            let group_lr = |g: usize| lr * layer_decay.powi((depth - g) as i32);
            // one optimiser step per parameter group, each with its decayed lr
            let mut parts = vec![
                (
                    group_lr(0),
                    GradientsParams::from_module(&mut grads, &model.encoder.stem),
                ),
                (
                    group_lr(0),
                    GradientsParams::from_module(&mut grads, &model.encoder.lite_dw),
                ),
                (
                    group_lr(0),
                    GradientsParams::from_module(&mut grads, &model.encoder.lite_pw),
                ),
                (
                    group_lr(0),
                    GradientsParams::from_module(&mut grads, &model.encoder.tokens),
                ),
            ];
            for (i, block) in model.encoder.blocks.iter().enumerate() {
                parts.push((
                    group_lr(i + 1),
                    GradientsParams::from_module(&mut grads, block),
                ));
            }
            parts.push((
                group_lr(depth),
                GradientsParams::from_module(&mut grads, &model.encoder.head),
            ));
            parts.push((
                group_lr(depth),
                GradientsParams::from_module(&mut grads, &model.head),
            ));
            for (lr, g) in parts {
                model = optim.step(lr, model, g);
            }
            crate::liveness::tick();
            step += 1;
        }
        train_secs += t.elapsed().as_secs_f64();
        losses.push(sum / n as f64);
        let eval = model.valid();
        top1.push(head::top1(&val.labels, 256, |c| {
            eval.forward(image_batch::<B::InnerBackend>(val, c, stats, device))
        }));
    }
    let result = ProbeResult {
        kind: ProbeKind::Finetune,
        top1_per_epoch: top1,
        train_loss_per_epoch: losses,
        train_img_per_s: (n * cfg.finetune_epochs) as f64 / train_secs.max(1e-9),
        extract_img_per_s: 0.0,
        seconds: started.elapsed().as_secs_f64(),
    };
    (result, model)
}
