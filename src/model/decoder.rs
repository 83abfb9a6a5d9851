//! MAE-style transformer decoder over all h×w grid positions (DESIGN §3).
//!
//! Linear to the decoder width, fixed 2-D sin-cos position embeddings, L pre-norm blocks,
//! LayerNorm (eps 1e-6), linear to an s×s×C pixel patch per grid cell.

use super::layer_norm::LayerNorm;
use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::init::Init;
use super::layers::{layer_norm, Dense, PreNormBlock};
use crate::config::DecoderConfig;
use crate::kernels::{add, Kernels};

#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    pub embed: Dense<B>,
    pub blocks: Vec<PreNormBlock<B>>,
    pub norm: LayerNorm<B>,
    pub pred: Dense<B>,
}

impl<B: Kernels> Decoder<B> {
    pub fn new(
        init: &mut Init,
        cfg: &DecoderConfig,
        in_dim: usize,
        patch_dim: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            embed: Dense::new(init, in_dim, cfg.dim, true, device),
            blocks: (0..cfg.depth)
                .map(|_| PreNormBlock::new(init, cfg.dim, cfg.heads, cfg.mlp_ratio, device))
                .collect(),
            norm: layer_norm(cfg.dim, device),
            pred: Dense::new(init, cfg.dim, patch_dim, true, device),
        }
    }

    /// `tokens [n, h·w, D]` (row-major grid) → pixel patches `[n, h·w, patch_dim]`.
    pub fn forward(&self, tokens: Tensor<B, 3>, h: usize, w: usize) -> Tensor<B, 3> {
        let dim = self.embed.weight.dims()[1];
        let pos = Tensor::<B, 2>::from_data(
            TensorData::new(sincos_2d(dim, h, w), [h * w, dim]),
            &tokens.device(),
        );
        let mut x = add(self.embed.forward(tokens), pos);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.pred.forward(self.norm.forward(x))
    }

    pub fn macs(&self, n: usize, len: usize) -> u64 {
        self.embed.macs(n * len)
            + self.blocks.iter().map(|b| b.macs(n, len)).sum::<u64>()
            + self.pred.macs(n * len)
    }
}

/// MAE's fixed 2-D sin-cos embedding: the first half of the width encodes the row, the second
/// the column; each half is [sin(p·ω_k), cos(p·ω_k)] with ω_k = 10000^(−k/(dim/4)).
pub fn sincos_2d(dim: usize, h: usize, w: usize) -> Vec<f32> {
    assert!(
        dim.is_multiple_of(4),
        "decoder width must be divisible by 4"
    );
    let quarter = dim / 4;
    let omega: Vec<f64> = (0..quarter)
        .map(|k| 1.0 / 10000f64.powf(k as f64 / quarter as f64))
        .collect();
    let mut out = Vec::with_capacity(h * w * dim);
    for r in 0..h {
        for c in 0..w {
            for pos in [r as f64, c as f64] {
                out.extend(omega.iter().map(|o| (pos * o).sin() as f32));
                out.extend(omega.iter().map(|o| (pos * o).cos() as f32));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sincos_rows_are_distinct_and_bounded() {
        let (d, h, w) = (16, 4, 4);
        let e = sincos_2d(d, h, w);
        assert_eq!(e.len(), d * h * w);
        assert!(e.iter().all(|v| v.abs() <= 1.0));
        // position (0,0): sin(0)=0 and cos(0)=1 in both halves
        assert!(e[..4].iter().all(|&v| v == 0.0) && e[4..8].iter().all(|&v| v == 1.0));
        for i in 0..h * w {
            for j in 0..i {
                assert_ne!(e[i * d..(i + 1) * d], e[j * d..(j + 1) * d]);
            }
        }
    }
}
