//! The reconstructions a run stores as pictures (issue 28): a fixed validation batch (the
//! same images and the same visible quarter every epoch) run through the model, kept in the
//! loss's own space so that their masked mean error is the model's masked loss on them.

use burn::tensor::{ElementConversion, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::batch::{BatchMaker, PretrainBatch};
use crate::data::ImageSet;
use crate::kernels::Kernels;
use crate::masking::Quarter;
use crate::model::qbheat::QbHeat;
use crate::spec::Position;

/// Images in the fixed picture batch.
pub const PICTURE_IMAGES: usize = 8;

/// One image's reconstruction, in the loss's space.
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// Index of the image in the validation set.
    pub image: usize,
    pub quarter: Quarter,
    pub channels: usize,
    /// Image side S and pixel patch side s (the encoder stride); the grid is S/s × S/s.
    pub size: usize,
    pub patch: usize,
    /// `C × S × S` the image as the model saw it, in [0, 1] (before channel normalisation).
    pub pixels: Vec<f32>,
    /// `(h·w) × (s·s·C)` the decoder's patches, (py, px, c) inside a patch.
    pub prediction: Vec<f32>,
    /// The loss's targets in the same layout (norm-pix: each patch normalised by its own
    /// mean and standard deviation).
    pub target: Vec<f32>,
    /// `h·w`: 1 on masked cells.
    pub mask: Vec<f32>,
    pub norm_pix: bool,
    /// Per-channel (mean, std) the inputs were normalised with.
    pub stats: Vec<(f32, f32)>,
}

impl Reconstruction {
    /// Grid side h = w = S / s.
    pub fn grid(&self) -> usize {
        self.size / self.patch
    }

    /// Values per patch, s·s·C.
    pub fn patch_len(&self) -> usize {
        self.patch * self.patch * self.channels
    }

    /// Masked error in the loss's space: the mean over masked cells of the per-patch mean
    /// squared error — the same quantity as the training loss (DESIGN §1, step 4).
    pub fn masked_error(&self) -> f64 {
        let p = self.patch_len();
        let (mut sum, mut cells) = (0.0f64, 0usize);
        for (cell, &m) in self.mask.iter().enumerate() {
            if m > 0.0 {
                let range = cell * p..(cell + 1) * p;
                let se: f64 = self.prediction[range.clone()]
                    .iter()
                    .zip(&self.target[range])
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum();
                sum += se / p as f64;
                cells += 1;
            }
        }
        sum / cells.max(1) as f64
    }
}

/// The visible quarter of picture image `k` of `n`: corners cycle TL, TR, BL, BR; centre
/// mode keeps the centre; corner+center gives the first half corners, the rest the centre.
pub fn picture_quarter(position: Position, k: usize, n: usize) -> Quarter {
    match position {
        Position::Corner => Quarter::CORNERS[k % 4],
        Position::Center => Quarter::Center,
        Position::CornerCenter if k < n / 2 => Quarter::CORNERS[k % 4],
        Position::CornerCenter => Quarter::Center,
    }
}

/// The fixed picture batch: the first [`PICTURE_IMAGES`] validation images, un-augmented,
/// with the quarters of [`picture_quarter`]; and the un-augmenting maker that made it.
pub fn picture_batch(maker: &BatchMaker, val: &ImageSet) -> (PretrainBatch, BatchMaker) {
    let n = val.len().min(PICTURE_IMAGES);
    let mut maker = maker.clone();
    maker.augment = false;
    let indices: Vec<usize> = (0..n).collect();
    let kept: Vec<Quarter> = (0..n)
        .map(|k| picture_quarter(maker.position, k, n))
        .collect();
    let batch = maker.make_kept(val, &indices, kept, &mut ChaCha8Rng::seed_from_u64(0));
    (batch, maker)
}

/// Reconstructions of the first [`PICTURE_IMAGES`] validation images, un-augmented, with
/// the quarters of [`picture_quarter`], through the model in evaluation mode.
pub fn reconstruct<B: Kernels>(
    model: &QbHeat<B>,
    maker: &BatchMaker,
    val: &ImageSet,
    device: &B::Device,
) -> Vec<Reconstruction> {
    let n = val.len().min(PICTURE_IMAGES);
    if n == 0 {
        return Vec::new();
    }
    let (batch, maker) = picture_batch(maker, val);
    let kept = batch.kept.clone();
    let pred = model.reconstruct(&batch, device);
    let [_, cells, p] = pred.dims();
    let prediction: Vec<f32> = to_vec(pred);
    let (h, _) = batch.grid;
    (0..n)
        .map(|k| Reconstruction {
            image: k,
            quarter: kept[k],
            channels: val.channels,
            size: val.size,
            patch: val.size / h,
            pixels: val.image(k).to_vec(),
            prediction: prediction[k * cells * p..(k + 1) * cells * p].to_vec(),
            target: batch.targets[k * cells * p..(k + 1) * cells * p].to_vec(),
            mask: batch.mask[k * cells..(k + 1) * cells].to_vec(),
            norm_pix: maker.norm_pix,
            stats: maker.stats.clone(),
        })
        .collect()
}

fn to_vec<B: Kernels>(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.elem())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::data::procedural::generate;

    type Cpu = burn::backend::Flex;

    #[test]
    fn the_stored_error_is_the_models_masked_loss_on_the_picture_batch() {
        for (position, norm_pix) in [
            (Position::Corner, true),
            (Position::Center, false),
            (Position::CornerCenter, true),
        ] {
            let mut cfg = RunConfig::default();
            cfg.model.preset = crate::spec::Preset::MfMicro;
            cfg.data.image_size = 32;
            cfg.predictor.dim = 32;
            cfg.decoder.dim = 32;
            cfg.decoder.heads = 2;
            cfg.masking.position = position;
            cfg.loss.norm_pix = norm_pix;
            let set = generate(10, 32, 3, 4);
            let dev = Default::default();
            let model = QbHeat::<Cpu>::new(&cfg, 3, &dev);
            let maker = BatchMaker::for_config(&cfg, &set);
            let recs = reconstruct(&model, &maker, &set, &dev);
            assert_eq!(recs.len(), PICTURE_IMAGES);
            for (k, r) in recs.iter().enumerate() {
                assert_eq!(r.quarter, picture_quarter(position, k, PICTURE_IMAGES));
                assert_eq!(r.pixels, set.image(k));
            }
            // every image masks the same number of cells, so the loss is the mean of theirs
            let mean =
                recs.iter().map(Reconstruction::masked_error).sum::<f64>() / recs.len() as f64;
            let (batch, _) = picture_batch(&maker, &set);
            let loss: f64 = model.loss(&batch, &dev).into_scalar().elem();
            assert!(
                (mean - loss).abs() < 1e-5 * loss.max(1.0),
                "{position:?}: {mean} vs {loss}"
            );
        }
    }
}
