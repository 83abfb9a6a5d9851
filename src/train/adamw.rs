//! AdamW (Loshchilov & Hutter 2019, Alg. 2) on the fused [`Kernels::adamw_step`]: per
//! element the arithmetic of burn's `AdamW` (see [`AdamWStep`]), in one pass where burn
//! runs about a dozen serial element-wise operations per parameter. Its state is burn's
//! [`AdamWState`], so optimiser checkpoints read and write as burn's `AdamW` records.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use crate::kernels::{unwrap, wrap, AdamWStep, Kernels};

/// AdamW's constants; the defaults are burn's `AdamWConfig`'s (β₁ 0.9, β₂ 0.999, ε 1e-5,
/// λ 1e-4).
#[derive(Debug, Clone, Copy)]
pub struct FusedAdamW {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// λ (decoupled from the gradient).
    pub weight_decay: f32,
}

impl Default for FusedAdamW {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
            weight_decay: 1e-4,
        }
    }
}

impl FusedAdamW {
    pub fn with_beta_2(self, beta_2: f32) -> Self {
        Self { beta_2, ..self }
    }

    pub fn with_epsilon(self, epsilon: f32) -> Self {
        Self { epsilon, ..self }
    }

    pub fn with_weight_decay(self, weight_decay: f32) -> Self {
        Self {
            weight_decay,
            ..self
        }
    }

    /// The optimiser for module `M`'s parameters.
    pub fn init<B, M>(self) -> OptimizerAdaptor<Self, M, B>
    where
        B: AutodiffBackend<InnerBackend: Kernels>,
        M: AutodiffModule<B>,
    {
        OptimizerAdaptor::from(self)
    }
}

impl<B: Kernels> SimpleOptimizer<B> for FusedAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let (moments, time) = match state {
            Some(s) => (
                Some([unwrap(s.momentum.moment_1), unwrap(s.momentum.moment_2)]),
                s.momentum.time + 1,
            ),
            None => (None, 1),
        };
        let step = AdamWStep {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            time,
            lr,
            weight_decay: self.weight_decay as f64,
        };
        let [theta, m, v] = B::adamw_step(unwrap(tensor), unwrap(grad), moments, &step);
        let momentum = AdaptiveMomentumState::new(time, wrap(m), wrap(v));
        (wrap(theta), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
