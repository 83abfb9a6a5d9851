//! Frozen-encoder features of a whole image set, computed once (no augmentation).

use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::time::Instant;

use crate::data::ImageSet;
use crate::model::mobile_former::MobileFormer;

/// Cached features of a set.
#[derive(Debug, Clone)]
pub struct Features {
    /// `n × dim` classifier features: concat(avgpool(map), token 0).
    pub pooled: Vec<f32>,
    pub dim: usize,
    /// `n × positions × wide` feature-map tokens (position-major), when requested.
    pub tokens: Option<Vec<f32>>,
    pub wide: usize,
    pub grid: (usize, usize),
    pub labels: Vec<u32>,
    /// Images per second of the extraction.
    pub img_per_s: f64,
}

/// Normalises images `range` of `set` with per-channel `stats` into a `[n, C, S, S]` tensor.
pub fn image_batch<B: Backend>(
    set: &ImageSet,
    indices: &[usize],
    stats: &[(f32, f32)],
    device: &B::Device,
) -> Tensor<B, 4> {
    let (c, s) = (set.channels, set.size);
    let plane = s * s;
    let mut pixels = Vec::with_capacity(indices.len() * c * plane);
    for &i in indices {
        for (ch, &(mean, std)) in stats.iter().enumerate() {
            pixels.extend(
                set.image(i)[ch * plane..(ch + 1) * plane]
                    .iter()
                    .map(|v| (v - mean) / std),
            );
        }
    }
    Tensor::from_data(TensorData::new(pixels, [indices.len(), c, s, s]), device)
}

/// Runs the encoder on every image of `set` (full image, batches of 256).
pub fn extract<B: crate::model::kernels::Kernels>(
    encoder: &MobileFormer<B>,
    set: &ImageSet,
    stats: &[(f32, f32)],
    with_tokens: bool,
    device: &B::Device,
) -> Features {
    let started = Instant::now();
    let n = set.len();
    let mut pooled = Vec::new();
    let mut tokens = with_tokens.then(Vec::new);
    let (mut dim, mut wide, mut grid) = (0, 0, (0, 0));
    for start in (0..n).step_by(256) {
        let idx: Vec<usize> = (start..(start + 256).min(n)).collect();
        let out = encoder.forward(image_batch(set, &idx, stats, device));
        crate::liveness::tick();
        let p = out.pooled();
        dim = p.dims()[1];
        pooled.extend(p.into_data().iter::<f32>());
        let [b, k, h, w] = out.features.dims();
        (wide, grid) = (k, (h, w));
        if let Some(t) = tokens.as_mut() {
            let seq = out.features.reshape([b, k, h * w]).swap_dims(1, 2);
            t.extend(seq.into_data().iter::<f32>());
        }
    }
    Features {
        pooled,
        dim,
        tokens,
        wide,
        grid,
        labels: set.labels.clone(),
        img_per_s: n as f64 / started.elapsed().as_secs_f64().max(1e-9),
    }
}
