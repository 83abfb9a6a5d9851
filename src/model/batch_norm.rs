//! BatchNorm over `[n, C, h, w]` maps: y = γ (x − μ) / √(σ² + ε) + β, with batch statistics in
//! training (autodiff) and running statistics (momentum 0.1) otherwise.
//!
//! Same maths as burn's `BatchNorm`. In training it is one fused operation with its own
//! backward ([`crate::kernels::batch_norm_train`]): one pass over each channel on the CPU
//! instead of a dozen broadcast element-wise operations and their gradients; in inference
//! one parallel pass ([`crate::kernels::batch_norm_inference`]) instead of three serial
//! broadcast operations.

use burn::module::{Module, Param, RunningState};
use burn::tensor::{backend::Backend, Tensor};

use super::init::filled;
use crate::kernels::{batch_norm_inference, batch_norm_train, Kernels};

const MOMENTUM: f64 = 0.1;
const EPSILON: f64 = 1e-5;

#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
    pub running_mean: RunningState<Tensor<B, 1>>,
    pub running_var: RunningState<Tensor<B, 1>>,
}

impl<B: Backend> BatchNorm2d<B> {
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            gamma: filled(1.0, [channels], device),
            beta: filled(0.0, [channels], device),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
        }
    }
}

impl<B: Kernels> BatchNorm2d<B> {
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if B::ad_enabled(&x.device()) {
            let (y, mean, var) = batch_norm_train(x, self.gamma.val(), self.beta.val(), EPSILON);
            let blend = |state: &RunningState<Tensor<B, 1>>, batch: Tensor<B, 1>| {
                let old = state.value_sync().to_device(&batch.device());
                state.update((old * (1.0 - MOMENTUM) + batch.detach() * MOMENTUM).detach());
            };
            blend(&self.running_mean, mean);
            blend(&self.running_var, var);
            return y;
        }
        let dev = x.device();
        batch_norm_inference(
            x,
            self.gamma.val(),
            self.beta.val(),
            self.running_mean.value().to_device(&dev),
            self.running_var.value().to_device(&dev),
            EPSILON,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type Cpu = burn::backend::Flex;
    type CpuTrain = burn::backend::Autodiff<Cpu>;
    use burn::module::AutodiffModule;
    use burn::nn::BatchNormConfig;
    use burn::tensor::TensorData;

    #[test]
    fn matches_burns_batch_norm_in_training_and_inference() {
        let dev = Default::default();
        let vals: Vec<f32> = (0..2 * 3 * 4 * 5)
            .map(|i| ((i * 37) % 23) as f32 * 0.3 - 2.0)
            .collect();
        let x = Tensor::<CpuTrain, 4>::from_data(TensorData::new(vals, [2, 3, 4, 5]), &dev);
        let ours = BatchNorm2d::<CpuTrain>::new(3, &dev);
        let theirs = BatchNormConfig::new(3).init::<CpuTrain>(&dev);
        for _ in 0..3 {
            let d = (ours.forward(x.clone()) - theirs.forward(x.clone()))
                .abs()
                .max()
                .into_scalar();
            assert!(d < 1e-4, "{d}");
        }
        let xi: Tensor<Cpu, 4> = x.inner();
        let d = (ours.valid().forward(xi.clone()) - theirs.valid().forward(xi.clone()))
            .abs()
            .max()
            .into_scalar();
        assert!(d < 1e-4, "{d}");
        // the fused inference kernel reads a strided (non-contiguous) input too
        let strided = xi.swap_dims(2, 3);
        let d = (ours.valid().forward(strided.clone()) - theirs.valid().forward(strided))
            .abs()
            .max()
            .into_scalar();
        assert!(d < 1e-4, "{d}");
    }
}
