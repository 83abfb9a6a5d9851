//! The QB-Heat pre-training model (DESIGN §1): encode one unmasked quarter, project to D,
//! predict the three masked quarters with the heat-equation linear models, decode pixels,
//! MSE on the masked 75 %.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::decoder::Decoder;
use super::init::Init;
use super::layers::Pointwise;
use super::mobile_former::MobileFormer;
use super::predictor::Predictor;
use crate::config::RunConfig;
use crate::data::batch::PretrainBatch;
use crate::kernels::{self, Kernels};
use crate::masking::Quarter;
use crate::spec::Position;

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

impl<B: Kernels> QbHeat<B> {
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
                cfg.masking.position.scales(),
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

    /// Step 1 of the forward pass: the encoder's feature map of the visible quarters,
    /// `[n, wide, h/2, w/2]`.
    pub fn encode(&self, batch: &PretrainBatch, device: &B::Device) -> Tensor<B, 4> {
        let side = batch.image_size / 2;
        let quarters = Tensor::<B, 4>::from_data(
            TensorData::new(
                batch.quarters.clone(),
                [batch.len(), self.channels, side, side],
            ),
            device,
        );
        self.encoder.forward(quarters).features
    }

    /// Step 2: project to D (z_q) and fill the masked quarters with the heat-equation
    /// predictions z(x + sxΔx, y + syΔy) = M(sx, sy) z(x, y); the full grid as tokens
    /// `[n, h·w, D]` in row-major order.
    pub fn predict(&self, batch: &PretrainBatch, features: Tensor<B, 4>) -> Tensor<B, 3> {
        let (h, w) = batch.grid;
        let z_q = self.projector.forward(features);
        self.predictor.predict_tokens(&batch.groups(), z_q, h, w)
    }

    /// Step 3: the decoder's pixel patches `[n, h·w, s·s·C]`.
    pub fn decode(&self, batch: &PretrainBatch, tokens: Tensor<B, 3>) -> Tensor<B, 3> {
        let (h, w) = batch.grid;
        self.decoder.forward(tokens, h, w)
    }

    /// Step 4: masked MSE — mean over masked cells of the per-patch squared error (norm_pix
    /// targets are prepared by the batch).
    pub fn masked_loss(
        &self,
        batch: &PretrainBatch,
        pred: Tensor<B, 3>,
        device: &B::Device,
    ) -> Tensor<B, 1> {
        let [n, l, p] = pred.dims();
        let target =
            Tensor::<B, 3>::from_data(TensorData::new(batch.targets.clone(), [n, l, p]), device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(batch.mask.clone(), [n, l]), device);
        let masked = batch.mask.iter().filter(|&&m| m > 0.0).count();
        kernels::masked_mse(pred, target, mask, masked)
    }

    /// Predicted pixel patches `[n, h·w, s·s·C]` for a batch of quarter crops.
    pub fn reconstruct(&self, batch: &PretrainBatch, device: &B::Device) -> Tensor<B, 3> {
        let features = self.encode(batch, device);
        self.decode(batch, self.predict(batch, features))
    }

    /// The training loss of a batch (steps 1–4).
    pub fn loss(&self, batch: &PretrainBatch, device: &B::Device) -> Tensor<B, 1> {
        let pred = self.reconstruct(batch, device);
        self.masked_loss(batch, pred, device)
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

    /// Trained parameters (BatchNorm running statistics excluded).
    pub fn num_params(&self) -> usize {
        super::trainable_params(self)
    }
}
