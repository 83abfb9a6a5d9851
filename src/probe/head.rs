//! Classifier heads and the loss/accuracy shared by the probes.

use crate::model::layer_norm::LayerNorm;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::decoder::sincos_2d;
use crate::model::init::Init;
use crate::model::layers::{layer_norm, Dense, PreNormBlock};

/// Cross-entropy with label smoothing ε: targets (1 − ε)·onehot + ε/K.
pub fn cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    labels: &[u32],
    smoothing: f64,
) -> Tensor<B, 1> {
    let [n, k] = logits.dims();
    let off = (smoothing / k as f64) as f32;
    let on = (1.0 - smoothing) as f32 + off;
    let mut t = vec![off; n * k];
    for (i, &l) in labels.iter().enumerate() {
        t[i * k + l as usize] = on;
    }
    let target = Tensor::<B, 2>::from_data(TensorData::new(t, [n, k]), &logits.device());
    (log_softmax(logits, 1) * target).sum().neg() / n as f32
}

/// Number of rows whose arg-max equals the label.
pub fn correct<B: Backend>(logits: Tensor<B, 2>, labels: &[u32]) -> usize {
    let k = logits.dims()[1];
    let v: Vec<f32> = logits.into_data().iter::<f32>().collect();
    v.chunks(k)
        .zip(labels)
        .filter(|(row, &l)| {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            best == l as usize
        })
        .count()
}

/// Top-1 accuracy over all `labels`, scored `chunk` samples at a time by `logits`.
pub fn top1<B: Backend>(
    labels: &[u32],
    chunk: usize,
    logits: impl Fn(&[usize]) -> Tensor<B, 2>,
) -> f64 {
    let idx: Vec<usize> = (0..labels.len()).collect();
    let hits: usize = idx
        .chunks(chunk)
        .map(|c| {
            let l: Vec<u32> = c.iter().map(|&i| labels[i]).collect();
            correct(logits(c), &l)
        })
        .sum();
    hits as f64 / labels.len().max(1) as f64
}

/// tran-1 head (paper Sec. 5, Tab. 11): lin's decoder with "a single transformer block before
/// global pooling". Feature-map tokens → per-channel standardisation (frozen) → linear to
/// width W (+ fixed 2-D sin-cos positions) → one pre-norm transformer block → LayerNorm → mean
/// pool, concatenated with the standardised global token 0 (Mobile-Former's classifier input,
/// the same features lin reads) → linear to the classes; dropout after the position embedding,
/// in the block and before the classifier.
///
/// The standardisation `(t − μ_c) / σ_c` uses the training set's per-channel statistics: it is
/// what lin's BatchNorm without affine (Tab. 10, MAE's practice) converges to. It is not
/// trained and travels with the head into fine-tuning (Tab. 12).
#[derive(Module, Debug)]
pub struct Tran1Head<B: Backend> {
    /// μ_c of the tokens (not trained).
    pub token_mean: Param<Tensor<B, 1>>,
    /// 1 / σ_c of the tokens (not trained).
    pub token_scale: Param<Tensor<B, 1>>,
    /// μ_c of the global token 0 (not trained).
    pub global_mean: Param<Tensor<B, 1>>,
    /// 1 / σ_c of the global token 0 (not trained).
    pub global_scale: Param<Tensor<B, 1>>,
    pub embed: Dense<B>,
    /// One block for tran-1, `probe.tran_depth` of them for tran-k (Tab. 15).
    pub blocks: Vec<PreNormBlock<B>>,
    pub norm: LayerNorm<B>,
    pub fc: Dense<B>,
    pub drop: Dropout,
}

impl<B: crate::kernels::Kernels> Tran1Head<B> {
    /// `in_dim` channels per feature-map token, `global_dim` channels of token 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        init: &mut Init,
        in_dim: usize,
        global_dim: usize,
        width: usize,
        depth: usize,
        classes: usize,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        let frozen = |t: Tensor<B, 1>| Param::from_tensor(t).set_require_grad(false);
        Self {
            token_mean: frozen(Tensor::zeros([in_dim], device)),
            token_scale: frozen(Tensor::ones([in_dim], device)),
            // a head without token 0 keeps a 1-wide placeholder (a tensor cannot be empty)
            global_mean: frozen(Tensor::zeros([global_dim.max(1)], device)),
            global_scale: frozen(Tensor::ones([global_dim.max(1)], device)),
            embed: Dense::new(init, in_dim, width, true, device),
            blocks: (0..depth.max(1))
                .map(|_| {
                    PreNormBlock::new(init, width, heads_for(width), 4, device)
                        .with_dropout(dropout)
                })
                .collect(),
            norm: layer_norm(width, device),
            fc: Dense::new(init, width + global_dim, classes, true, device),
            drop: DropoutConfig::new(dropout).init(),
        }
    }

    /// The same head standardising the feature-map tokens and token 0 with per-channel
    /// `(μ_c, σ_c)`.
    pub fn with_stats(
        mut self,
        tokens: &[(f32, f32)],
        global: &[(f32, f32)],
        device: &B::Device,
    ) -> Self {
        let frozen = |v: Vec<f32>| {
            let n = v.len();
            Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), device))
                .set_require_grad(false)
        };
        self.token_mean = frozen(tokens.iter().map(|s| s.0).collect());
        self.token_scale = frozen(tokens.iter().map(|s| 1.0 / s.1).collect());
        if !global.is_empty() {
            self.global_mean = frozen(global.iter().map(|s| s.0).collect());
            self.global_scale = frozen(global.iter().map(|s| 1.0 / s.1).collect());
        }
        self
    }

    /// The same head with dropout rate `p` everywhere (fine-tuning uses its own rate).
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.blocks = self.blocks.into_iter().map(|b| b.with_dropout(p)).collect();
        self.drop = DropoutConfig::new(p).init();
        self
    }

    /// `tokens [n, h·w, in_dim]`, `global [n, global_dim]` (token 0; `None` for a head built
    /// with `global_dim` 0) → logits `[n, classes]`.
    pub fn forward(
        &self,
        tokens: Tensor<B, 3>,
        global: Option<Tensor<B, 2>>,
        grid: (usize, usize),
    ) -> Tensor<B, 2> {
        let width = self.embed.weight.dims()[1];
        let pos = Tensor::<B, 2>::from_data(
            TensorData::new(sincos_2d(width, grid.0, grid.1), [grid.0 * grid.1, width]),
            &tokens.device(),
        );
        let tokens = (tokens - self.token_mean.val().unsqueeze::<3>())
            * self.token_scale.val().unsqueeze::<3>();
        let x = self
            .drop
            .forward(self.embed.forward(tokens) + pos.unsqueeze::<3>());
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        let [n, _, w] = x.dims();
        let pooled = self.norm.forward(x).mean_dim(1).reshape([n, w]);
        let features = match global {
            Some(g) => {
                let g = (g - self.global_mean.val().unsqueeze::<2>())
                    * self.global_scale.val().unsqueeze::<2>();
                Tensor::cat(vec![pooled, g], 1)
            }
            None => pooled,
        };
        self.fc.forward(self.drop.forward(features))
    }
}

/// Attention heads of a tran-1 block of `width` (64 channels per head, at least one).
pub fn heads_for(width: usize) -> usize {
    let mut h = (width / 64).max(1);
    while !width.is_multiple_of(h) {
        h -= 1;
    }
    h
}

/// Schedule and sampling of one head training: `epochs` over `n` samples in shuffled batches,
/// lr = peak after `warmup_epochs` of linear warm-up, then cosine decay (Tab. 10–11).
pub struct Fit<'a> {
    pub epochs: usize,
    pub batch: usize,
    pub peak_lr: f64,
    pub warmup_epochs: f64,
    pub seed: u64,
    pub labels: &'a [u32],
    pub smoothing: f64,
    /// Raised (Ctrl-C, SIGTERM, a stop request in the store): training ends before its next
    /// step and the fit is incomplete.
    pub stop: Option<&'a AtomicBool>,
}

/// A trained head, its validation top-1 and mean training loss per epoch, and the seconds its
/// training took.
pub struct Fitted<M> {
    pub model: M,
    pub top1: Vec<f64>,
    pub losses: Vec<f64>,
    pub seconds: f64,
}

impl<'a> Fit<'a> {
    /// A fit over `labels` in batches of at most `batch_size`, lr = `base_lr` × batch / 256.
    pub fn new(
        labels: &'a [u32],
        batch_size: usize,
        epochs: usize,
        base_lr: f64,
        warmup_epochs: f64,
        seed: u64,
        smoothing: f64,
    ) -> Fit<'a> {
        let batch = batch_size.min(labels.len()).max(1);
        Fit {
            epochs,
            batch,
            peak_lr: base_lr * batch as f64 / 256.0,
            warmup_epochs,
            seed,
            labels,
            smoothing,
            stop: None,
        }
    }

    /// The same fit, ending early once `stop` is raised.
    pub fn stoppable(self, stop: &'a AtomicBool) -> Fit<'a> {
        Fit {
            stop: Some(stop),
            ..self
        }
    }

    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }

    /// Trains `model` (logits of a batch of sample indices from `forward`), scoring
    /// `evaluate` after each epoch; a raised stop flag ends it between two steps, with the
    /// curves of the epochs completed so far.
    pub fn run<B, M, O>(
        &self,
        mut model: M,
        mut optim: O,
        forward: impl Fn(&M, &[usize]) -> Tensor<B, 2>,
        evaluate: impl Fn(&M) -> f64,
    ) -> Fitted<M>
    where
        B: burn::tensor::backend::AutodiffBackend,
        M: burn::module::AutodiffModule<B>,
        O: burn::optim::Optimizer<M, B>,
    {
        use burn::tensor::ElementConversion;
        let n = self.labels.len();
        let steps = n.div_ceil(self.batch);
        let total = steps * self.epochs;
        let warmup = ((self.warmup_epochs * steps as f64).round() as usize).min(total);
        let (mut top1, mut losses, mut secs) = (Vec::new(), Vec::new(), 0.0);
        let mut step = 0;
        let _hot = crate::threads::HotPool::start();
        'epochs: for epoch in 0..self.epochs {
            let t = std::time::Instant::now();
            let mut sum = 0.0;
            for chunk in crate::train::seeds::epoch_order(self.seed, epoch, n).chunks(self.batch) {
                if self.stopped() {
                    break 'epochs;
                }
                let labels: Vec<u32> = chunk.iter().map(|&i| self.labels[i]).collect();
                let loss = cross_entropy(forward(&model, chunk), &labels, self.smoothing);
                let v: f64 = loss.clone().into_scalar().elem();
                sum += v * chunk.len() as f64;
                let lr = crate::train::schedule::cosine_lr(step, total, warmup, self.peak_lr, 0.0);
                let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(lr, model, grads);
                crate::liveness::tick();
                step += 1;
            }
            secs += t.elapsed().as_secs_f64();
            losses.push(sum / n as f64);
            top1.push(evaluate(&model));
        }
        Fitted {
            model,
            top1,
            losses,
            seconds: secs,
        }
    }

    /// The probe result of a fit: curves, training speed, the extraction speed of the cached
    /// features and the wall time since `started`.
    pub fn result<M>(
        &self,
        kind: super::ProbeKind,
        fitted: &Fitted<M>,
        extract_img_per_s: f64,
        started: std::time::Instant,
    ) -> super::ProbeResult {
        super::ProbeResult {
            kind,
            top1_per_epoch: fitted.top1.clone(),
            train_loss_per_epoch: fitted.losses.clone(),
            train_img_per_s: (self.labels.len() * self.epochs) as f64 / fitted.seconds.max(1e-9),
            extract_img_per_s,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    #[test]
    fn smoothed_cross_entropy_by_hand() {
        let dev = Default::default();
        let logits =
            Tensor::<Cpu, 2>::from_data(TensorData::new(vec![0.0f32, 0.0, 2.0, 0.0], [2, 2]), &dev);
        // row 0: uniform → −log ½ for any target; row 1: p = (e²/(e²+1), 1/(e²+1)), label 0
        let p0 = (2f64.exp() / (2f64.exp() + 1.0)).ln();
        let expect = (2f64.ln() - p0) / 2.0;
        let got: f32 = cross_entropy(logits.clone(), &[1, 0], 0.0).into_scalar();
        assert!((got as f64 - expect).abs() < 1e-5);
        let smooth: f32 = cross_entropy(logits.clone(), &[1, 0], 0.2).into_scalar();
        let p1 = (1.0 / (2f64.exp() + 1.0)).ln();
        let expect_s = (2f64.ln() - (0.9 * p0 + 0.1 * p1)) / 2.0;
        assert!((smooth as f64 - expect_s).abs() < 1e-5);
        let clear =
            Tensor::<Cpu, 2>::from_data(TensorData::new(vec![1.0f32, 3.0, 2.0, 0.0], [2, 2]), &dev);
        assert_eq!(correct(clear, &[1, 1]), 1);
    }
}
