//! The QB-Heat pre-training model (DESIGN §1): encode one unmasked quarter, project to D,
//! predict the three masked quarters with the heat-equation linear models, decode pixels,
//! MSE on the masked 75 %.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::decoder::Decoder;
use super::init::Init;
use super::layers::Pointwise;
use super::masking::Quarter;
use super::mobile_former::MobileFormer;
use super::predictor::{MatrixCache, Predictor};
use crate::config::{Position, RunConfig};
use crate::data::batch::PretrainBatch;

#[derive(Module, Debug)]
pub struct QbHeat<B: Backend> {
    pub encoder: MobileFormer<B>,
    /// 1×1 conv from the encoder width to D.
    pub projector: Pointwise<B>,
    pub predictor: Predictor<B>,
    pub decoder: Decoder<B>,
    /// Encoder stride s = pixel patch side per grid cell.
    pub patch: usize,
    pub channels: usize,
}

/// Scales that a masking position uses (0 = corner, 1 = centre).
pub fn scales_used(position: Position) -> Vec<usize> {
    match position {
        Position::Corner => vec![0],
        Position::Center => vec![1],
        Position::CornerCenter => vec![0, 1],
    }
}

impl<B: Backend> QbHeat<B> {
    /// Builds the model with weights drawn from `cfg.seed`.
    pub fn new(cfg: &RunConfig, channels: usize, device: &B::Device) -> Self {
        let spec = cfg.model.preset.spec();
        let mut init = Init::new(cfg.seed);
        let encoder = MobileFormer::new(&spec, channels, &mut init, device);
        let dim = cfg.predictor.dim;
        Self {
            projector: Pointwise::new(&mut init, spec.wide, dim, device),
            predictor: Predictor::new(
                &mut init,
                dim,
                cfg.predictor.models,
                cfg.predictor.init_std,
                &scales_used(cfg.masking.position),
                device,
            ),
            decoder: Decoder::new(
                &mut init,
                &cfg.decoder,
                dim,
                spec.stride * spec.stride * channels,
                device,
            ),
            encoder,
            patch: spec.stride,
            channels,
        }
    }

    /// Predicted pixel patches `[n, h·w, s·s·C]` for a batch of quarter crops.
    pub fn reconstruct(&self, batch: &PretrainBatch, device: &B::Device) -> Tensor<B, 3> {
        let n = batch.len();
        let (h, w) = batch.grid;
        let side = batch.image_size / 2;
        let quarters = Tensor::<B, 4>::from_data(
            TensorData::new(batch.quarters.clone(), [n, self.channels, side, side]),
            device,
        );
        let z_q = self
            .projector
            .forward(self.encoder.forward(quarters).features);
        let mut cache = MatrixCache::default();
        let grids: Vec<Tensor<B, 4>> = batch
            .groups()
            .into_iter()
            .map(|(q, start, len)| {
                self.predictor.assemble_cached(
                    q,
                    z_q.clone().narrow(0, start, len),
                    h,
                    w,
                    &mut cache,
                )
            })
            .collect();
        let grid = Tensor::cat(grids, 0);
        let d = grid.dims()[1];
        let tokens = grid.reshape([n, d, h * w]).swap_dims(1, 2);
        self.decoder.forward(tokens, h, w)
    }

    /// Masked MSE: mean over masked cells of the per-patch squared error (norm_pix targets are
    /// prepared by the batch).
    pub fn loss(&self, batch: &PretrainBatch, device: &B::Device) -> Tensor<B, 1> {
        let pred = self.reconstruct(batch, device);
        let [n, l, p] = pred.dims();
        let target =
            Tensor::<B, 3>::from_data(TensorData::new(batch.targets.clone(), [n, l, p]), device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(batch.mask.clone(), [n, l]), device);
        let per_patch = (pred - target).square().mean_dim(2).reshape([n, l]);
        let masked = batch.mask.iter().filter(|&&m| m > 0.0).count().max(1);
        (per_patch * mask).sum() / masked as f32
    }

    /// Multiply-adds of one forward pass of a pre-training batch of `n` samples.
    pub fn macs(&self, cfg: &RunConfig, n: usize) -> u64 {
        let size = cfg.data.image_size;
        let (h, w) = (size / self.patch, size / self.patch);
        let half = size / 2;
        let (wide, _) = self.encoder.widths();
        let dim = cfg.predictor.dim;
        let n_center = match cfg.masking.position {
            Position::Corner => 0,
            Position::Center => n,
            Position::CornerCenter => n - n / 2,
        };
        self.encoder.macs(n, half, half)
            + (n * (h / 2) * (w / 2) * wide * dim) as u64
            + Predictor::<B>::macs(Quarter::Corner { row: 0, col: 0 }, n - n_center, dim, h, w)
            + Predictor::<B>::macs(Quarter::Center, n_center, dim, h, w)
            + self.decoder.macs(n, h * w)
    }

    pub fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}
