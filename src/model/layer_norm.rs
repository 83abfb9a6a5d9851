//! LayerNorm over the last dimension: y = γ (x − μ)/√(σ² + ε) + β per vector (Ba et al. 2016,
//! Eq. 4). Same maths, parameters and record as burn's `LayerNorm`; forward and backward are
//! one fused operation each ([`crate::kernels::layer_norm`]) where burn's autodiff composes a
//! dozen element-wise operations and their gradients.

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};

use super::init::filled;
use crate::kernels::{layer_norm, Kernels};

#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    /// The scale γ.
    pub gamma: Param<Tensor<B, 1>>,
    /// The shift β.
    pub beta: Option<Param<Tensor<B, 1>>>,
    /// ε.
    epsilon: f64,
}

impl<B: Backend> LayerNorm<B> {
    /// γ = 1, β = 0.
    pub fn new(dim: usize, epsilon: f64, device: &B::Device) -> Self {
        Self {
            gamma: filled(1.0, [dim], device),
            beta: Some(filled(0.0, [dim], device)),
            epsilon,
        }
    }
}

impl<B: Kernels> LayerNorm<B> {
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let beta = match &self.beta {
            Some(b) => b.val(),
            None => Tensor::zeros(self.gamma.dims(), &self.gamma.device()),
        };
        layer_norm(x, self.gamma.val(), beta, self.epsilon)
    }
}
