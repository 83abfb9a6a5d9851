//! Classifier heads and the loss/accuracy shared by the probes.

use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::activation::log_softmax;
use burn::tensor::{backend::Backend, Tensor, TensorData};

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
    let v: Vec<f32> = logits.into_data().to_vec().expect("f32 logits");
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

/// tran-1 head: tokens → linear to width W (+ fixed 2-D sin-cos positions) → one pre-norm
/// transformer block → LayerNorm → mean pool → linear to the classes.
#[derive(Module, Debug)]
pub struct Tran1Head<B: Backend> {
    pub embed: Dense<B>,
    pub block: PreNormBlock<B>,
    pub norm: LayerNorm<B>,
    pub fc: Dense<B>,
}

impl<B: Backend> Tran1Head<B> {
    pub fn new(
        init: &mut Init,
        in_dim: usize,
        width: usize,
        classes: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            embed: Dense::new(init, in_dim, width, true, device),
            block: PreNormBlock::new(init, width, (width / 64).max(1), 4, device),
            norm: layer_norm(width, device),
            fc: Dense::new(init, width, classes, true, device),
        }
    }

    /// `tokens [n, h·w, in_dim]` → logits `[n, classes]`.
    pub fn forward(&self, tokens: Tensor<B, 3>, grid: (usize, usize)) -> Tensor<B, 2> {
        let width = self.embed.weight.dims()[1];
        let pos = Tensor::<B, 2>::from_data(
            TensorData::new(sincos_2d(width, grid.0, grid.1), [grid.0 * grid.1, width]),
            &tokens.device(),
        );
        let x = self
            .block
            .forward(self.embed.forward(tokens) + pos.unsqueeze::<3>());
        let [n, _, w] = x.dims();
        self.fc
            .forward(self.norm.forward(x).mean_dim(1).reshape([n, w]))
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
