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

impl Features {
    /// Per-channel `(μ_c, σ_c)` of the feature-map tokens over every image and position
    /// (`None` without tokens).
    pub fn token_stats(&self) -> Option<Vec<(f32, f32)>> {
        let tokens = self.tokens.as_ref()?;
        Some(channel_stats(
            tokens.chunks_exact(self.wide.max(1)),
            self.wide,
        ))
    }

    /// Channels of the global token 0 (the pooled features' tail; 0 when the pooled features
    /// are only the feature map's average).
    pub fn global_dim(&self) -> usize {
        if self.pooled.len() == self.labels.len() * self.dim {
            self.dim.saturating_sub(self.wide)
        } else {
            0
        }
    }

    /// Per-channel `(μ_c, σ_c)` of the global token 0 over every image.
    pub fn global_stats(&self) -> Vec<(f32, f32)> {
        let (dim, global) = (self.dim.max(1), self.global_dim());
        channel_stats(
            self.pooled
                .chunks_exact(dim)
                .map(|row| &row[dim - global..]),
            global,
        )
    }

    /// Token 0 of images `idx`, `[idx.len(), global_dim]` row-major.
    pub fn global_rows(&self, idx: &[usize]) -> Vec<f32> {
        let (dim, global) = (self.dim, self.global_dim());
        idx.iter()
            .flat_map(|&i| &self.pooled[(i + 1) * dim - global..(i + 1) * dim])
            .copied()
            .collect()
    }
}

/// Mean and standard deviation per channel of `rows` (σ has 1e-6 added under the root so a
/// dead channel stays finite).
fn channel_stats<'a>(rows: impl Iterator<Item = &'a [f32]>, channels: usize) -> Vec<(f32, f32)> {
    let mut sums = vec![(0f64, 0f64); channels];
    let mut n = 0usize;
    for row in rows {
        n += 1;
        for (s, &v) in sums.iter_mut().zip(row) {
            s.0 += f64::from(v);
            s.1 += f64::from(v) * f64::from(v);
        }
    }
    let n = n.max(1) as f64;
    sums.iter()
        .map(|&(s, s2)| {
            let m = s / n;
            (m as f32, ((s2 / n - m * m).max(0.0) + 1e-6).sqrt() as f32)
        })
        .collect()
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
pub fn extract<B: crate::kernels::Kernels>(
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
