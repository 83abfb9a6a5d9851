//! Pre-training batches: augmented images cut into the visible quarter, pixel-patch targets
//! and the loss mask of the three masked quarters.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::augment::{resized_crop, sample_box, CropBox};
use super::ImageSet;
use crate::config::TrainConfig;
use crate::masking::{assign_quarters, masked_cells, Quarter};
use crate::spec::Position;

/// Host-side tensors of one pre-training step.
#[derive(Debug, Clone)]
pub struct PretrainBatch {
    /// `n × C × S/2 × S/2` visible quarters (normalised).
    pub quarters: Vec<f32>,
    /// `n × (h·w) × (s·s·C)` target patches, row-major grid, (py, px, c) inside a patch.
    pub targets: Vec<f32>,
    /// `n × (h·w)`: 1 on masked cells.
    pub mask: Vec<f32>,
    /// Quarter of each sample; equal quarters are contiguous.
    pub kept: Vec<Quarter>,
    pub grid: (usize, usize),
    pub image_size: usize,
}

impl PretrainBatch {
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Contiguous runs of samples keeping the same quarter: (quarter, start, length).
    pub fn groups(&self) -> Vec<(Quarter, usize, usize)> {
        let mut out: Vec<(Quarter, usize, usize)> = Vec::new();
        for (i, q) in self.kept.iter().enumerate() {
            match out.last_mut() {
                Some((last, _, len)) if last == q => *len += 1,
                _ => out.push((*q, i, 1)),
            }
        }
        out
    }
}

/// Everything needed to turn images into batches.
#[derive(Debug, Clone)]
pub struct BatchMaker {
    pub position: Position,
    pub patch: usize,
    pub norm_pix: bool,
    pub crop_scale: [f64; 2],
    pub flip: bool,
    /// Random crops and flips on (training) or off (validation: the whole image).
    pub augment: bool,
    /// Per-channel (mean, std) used to normalise inputs.
    pub stats: Vec<(f32, f32)>,
}

impl BatchMaker {
    pub fn new(
        position: Position,
        patch: usize,
        norm_pix: bool,
        train: &TrainConfig,
        set: &ImageSet,
    ) -> Self {
        Self {
            position,
            patch,
            norm_pix,
            crop_scale: train.crop_scale,
            flip: train.flip,
            augment: true,
            stats: set.channel_stats(),
        }
    }

    /// The batch maker of a run config: its masking, the encoder stride as patch size, its
    /// loss and augmentation settings, and `set`'s channel statistics.
    pub fn for_config(cfg: &crate::config::RunConfig, set: &ImageSet) -> Self {
        let stride = cfg.model.preset.spec().stride;
        Self::new(
            cfg.masking.position,
            stride,
            cfg.loss.norm_pix,
            &cfg.train,
            set,
        )
    }

    /// Builds the batch of images `indices`, all randomness drawn from `seed`.
    pub fn make(&self, set: &ImageSet, indices: &[usize], seed: u64) -> PretrainBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let kept = assign_quarters(self.position, indices.len(), || rng.random_range(0..4usize));
        self.make_kept(set, indices, kept, &mut rng)
    }

    /// Builds the batch of images `indices` keeping the quarters `kept` (equal quarters must be
    /// contiguous, see [`PretrainBatch::groups`]); crops and flips drawn from `rng`.
    pub fn make_kept(
        &self,
        set: &ImageSet,
        indices: &[usize],
        kept: Vec<Quarter>,
        rng: &mut ChaCha8Rng,
    ) -> PretrainBatch {
        let (c, size, p) = (set.channels, set.size, self.patch);
        let plane = size * size;
        let (h, w) = (size / p, size / p);
        let half = size / 2;
        let mut quarters = Vec::with_capacity(indices.len() * c * half * half);
        let mut targets = Vec::with_capacity(indices.len() * c * plane);
        let mut mask = Vec::with_capacity(indices.len() * h * w);
        let mut img = vec![0f32; c * plane];
        for (&idx, q) in indices.iter().zip(&kept) {
            let (crop, flip) = if self.augment {
                (
                    sample_box(rng, size, self.crop_scale),
                    self.flip && rng.random::<bool>(),
                )
            } else {
                (CropBox::full(size), false)
            };
            resized_crop(set.image(idx), c, size, crop, flip, &mut img);
            for (ch, &(mean, std)) in self.stats.iter().enumerate() {
                for v in &mut img[ch * plane..(ch + 1) * plane] {
                    *v = (*v - mean) / std;
                }
            }
            let r = q.kept(size, size);
            for ch in 0..c {
                for y in r.row..r.row + r.rows {
                    let start = ch * plane + y * size + r.col;
                    quarters.extend_from_slice(&img[start..start + r.cols]);
                }
            }
            for gy in 0..h {
                for gx in 0..w {
                    let first = targets.len();
                    for py in 0..p {
                        for px in 0..p {
                            for ch in 0..c {
                                targets.push(img[ch * plane + (gy * p + py) * size + gx * p + px]);
                            }
                        }
                    }
                    if self.norm_pix {
                        normalise_patch(&mut targets[first..]);
                    }
                }
            }
            mask.extend(masked_cells(*q, h, w).into_iter().map(|m| m as u8 as f32));
        }
        PretrainBatch {
            quarters,
            targets,
            mask,
            kept,
            grid: (h, w),
            image_size: size,
        }
    }
}

/// MAE's norm_pix_loss target: (x − mean) / sqrt(var + 1e-6) over one patch.
pub fn normalise_patch(patch: &mut [f32]) {
    let n = patch.len() as f32;
    let mean = patch.iter().sum::<f32>() / n;
    let var = patch.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + 1e-6).sqrt();
    for v in patch.iter_mut() {
        *v = (*v - mean) * inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::procedural::generate;

    #[test]
    fn batch_layout_and_mask() {
        let set = generate(6, 16, 3, 1);
        let train = TrainConfig::default();
        let mk = BatchMaker::new(Position::CornerCenter, 4, true, &train, &set);
        let b = mk.make(&set, &[0, 1, 2, 3, 4, 5], 9);
        assert_eq!(b.quarters.len(), 6 * 3 * 8 * 8);
        assert_eq!(b.targets.len(), 6 * 16 * 48);
        assert_eq!(b.mask.len(), 6 * 16);
        assert_eq!(b.kept.iter().filter(|q| **q == Quarter::Center).count(), 3);
        for i in 0..6 {
            let masked: f32 = b.mask[i * 16..(i + 1) * 16].iter().sum();
            assert_eq!(masked, 12.0);
        }
        let total: usize = b.groups().iter().map(|g| g.2).sum();
        assert_eq!(total, 6);
        // normalised patches: zero mean, unit variance
        let patch = &b.targets[..48];
        let mean: f32 = patch.iter().sum::<f32>() / 48.0;
        assert!(mean.abs() < 1e-4);
    }

    #[test]
    fn quarter_is_cut_from_the_kept_place() {
        // no augmentation: crop the whole image, no flip, no normalisation
        let mut set = generate(1, 8, 1, 3);
        set.pixels = (0..64).map(|i| i as f32).collect();
        let train = TrainConfig {
            crop_scale: [1.0, 1.0],
            flip: false,
            ..Default::default()
        };
        let mut mk = BatchMaker::new(Position::Center, 2, false, &train, &set);
        mk.stats = vec![(0.0, 1.0)];
        let b = mk.make(&set, &[0], 0);
        // centre quarter of an 8×8 ramp: rows 2..6, cols 2..6 (crop box may not be exactly
        // the full image, so allow interpolation error when the aspect ratio differs)
        let expect: Vec<f32> = (2..6)
            .flat_map(|r| (2..6).map(move |c| (r * 8 + c) as f32))
            .collect();
        let err = b
            .quarters
            .iter()
            .zip(&expect)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-4, "{err}");
    }
}
