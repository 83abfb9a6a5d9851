//! Fused operations with their own backward pass: a burn backend extension.
//!
//! [`Kernels`] has a default implementation for every backend, composed of burn's own tensor
//! operations; a backend overrides what it can do faster. The CPU backend (burn-flex) fuses
//! training-mode BatchNorm into one pass over the data per channel, in parallel over
//! channels, forward and backward, where burn's composition runs a dozen broadcast
//! element-wise operations (and their backward) through strided iterators. The autodiff
//! backend records the fused forward as one node whose backward is the fused backward.
//!
//! BatchNorm over `[n, c, h, w]` with m = n·h·w values per channel (training, batch statistics):
//!
//! ```text
//! μ = Σx / m,  σ² = Σ(x − μ)² / m,  x̂ = (x − μ)/√(σ² + ε),  y = γ x̂ + β
//! ∂β = Σ ∂y,   ∂γ = Σ ∂y·x̂,         ∂x = γ/√(σ² + ε) · (∂y − ∂β/m − x̂·∂γ/m)
//! ```

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

fn wrap<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn unwrap<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// Operations a backend may fuse. Every method has a composed default.
pub trait Kernels: Backend {
    /// Training-mode BatchNorm of `x [n, c, h, w]` with `gamma`, `beta` `[c]`: returns y and
    /// the batch mean and (biased) variance `[c]`.
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> [FloatTensor<Self>; 3] {
        composed::batch_norm_train::<Self>(x, gamma, beta, eps)
    }

    /// Gradients of [`Kernels::batch_norm_train`] for x, gamma and beta given ∂y.
    fn batch_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        eps: f64,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed::batch_norm_backward::<Self>(x, gamma, mean, var, eps, grad)
    }
}

/// The default implementations, from burn's tensor operations (any backend).
pub mod composed {
    use super::{unwrap, wrap};
    use burn::tensor::backend::Backend;
    use burn::tensor::ops::FloatTensor;

    pub fn batch_norm_train<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        eps: f64,
    ) -> [FloatTensor<B>; 3] {
        let x = wrap::<B, 4>(x);
        let c = x.dims()[1];
        let mean = x.clone().mean_dims(&[0, 2, 3]);
        let centred = x - mean.clone();
        let var = (centred.clone() * centred.clone()).mean_dims(&[0, 2, 3]);
        let scale = wrap::<B, 1>(gamma).reshape([1, c, 1, 1]) / (var.clone() + eps).sqrt();
        let y = centred * scale + wrap::<B, 1>(beta).reshape([1, c, 1, 1]);
        [
            unwrap(y),
            unwrap(mean.reshape([c])),
            unwrap(var.reshape([c])),
        ]
    }

    pub fn batch_norm_backward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        mean: FloatTensor<B>,
        var: FloatTensor<B>,
        eps: f64,
        grad: FloatTensor<B>,
    ) -> [FloatTensor<B>; 3] {
        let x = wrap::<B, 4>(x);
        let g = wrap::<B, 4>(grad);
        let [n, c, h, w] = x.dims();
        let m = (n * h * w) as f64;
        let inv = (wrap::<B, 1>(var) + eps)
            .sqrt()
            .recip()
            .reshape([1, c, 1, 1]);
        let xhat = (x - wrap::<B, 1>(mean).reshape([1, c, 1, 1])) * inv.clone();
        let d_beta = g.clone().sum_dims(&[0, 2, 3]);
        let d_gamma = (g.clone() * xhat.clone()).sum_dims(&[0, 2, 3]);
        let k = wrap::<B, 1>(gamma).reshape([1, c, 1, 1]) * inv;
        let dx = k * (g - d_beta.clone() / m - xhat * (d_gamma.clone() / m));
        [
            unwrap(dx),
            unwrap(d_gamma.reshape([c])),
            unwrap(d_beta.reshape([c])),
        ]
    }
}

/// Training-mode BatchNorm on any [`Kernels`] backend (see the module doc).
pub fn batch_norm_train<B: Kernels>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
    let [y, mean, var] = B::batch_norm_train(unwrap(x), unwrap(gamma), unwrap(beta), eps);
    (wrap(y), wrap(mean), wrap(var))
}

#[derive(Debug)]
struct BatchNormBackward;

impl<B: Kernels> Backward<B, 3> for BatchNormBackward {
    /// x, gamma, batch mean, batch variance, eps.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f64,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, var, eps) = ops.state;
        let [dx, dgamma, dbeta] = B::batch_norm_backward(x, gamma, mean, var, eps, grad);
        let [px, pgamma, pbeta] = ops.parents;
        for (parent, g) in [(px, dx), (pgamma, dgamma), (pbeta, dbeta)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Kernels, C: CheckpointStrategy> Kernels for Autodiff<B, C> {
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> [FloatTensor<Self>; 3] {
        let [y, mean, var] = B::batch_norm_train(
            x.primitive.clone(),
            gamma.primitive.clone(),
            beta.primitive.clone(),
            eps,
        );
        let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
        let out = match BatchNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (x.primitive, gamma.primitive, mean.clone(), var.clone(), eps),
                y,
            ),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        // the statistics feed the running averages only: no gradient flows through them
        [out, Self::from_inner(mean), Self::from_inner(var)]
    }
}

#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Cuda {}

pub mod flex;

#[cfg(test)]
mod tests {
    use super::*;
    type Cpu = burn::backend::Flex;
    type CpuTrain = burn::backend::Autodiff<Cpu>;
    use crate::model::init::Init;
    use burn::tensor::TensorData;

    fn input(shape: [usize; 4], seed: u64) -> Tensor<CpuTrain, 4> {
        let n = shape.iter().product();
        let v = Init::new(seed).normal_vec(n, 1.5);
        let v: Vec<f32> = v
            .iter()
            .enumerate()
            .map(|(i, x)| x + (i % 7) as f32 * 0.3)
            .collect();
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn max_diff<const D: usize>(a: Tensor<Cpu, D>, b: Tensor<Cpu, D>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// The fused CPU kernel against burn's own operations (the composed default): forward
    /// and the gradients of x, γ and β, on a contiguous input and on a transposed view.
    #[test]
    fn fused_batch_norm_matches_burns_ops_forward_and_backward() {
        let dev = Default::default();
        for strided in [false, true] {
            let x = if strided {
                // [c, n, h, w] memory seen as [n, c, h, w] (what apply_pointwise returns)
                input([5, 3, 4, 2], 1).swap_dims(0, 1)
            } else {
                input([3, 5, 4, 2], 1)
            };
            let x = x.detach().require_grad();
            let gamma = Tensor::<CpuTrain, 1>::from_data(
                TensorData::new(vec![1.0f32, 0.5, -2.0, 1.5, 0.1], [5]),
                &dev,
            )
            .require_grad();
            let beta = Tensor::<CpuTrain, 1>::from_data(
                TensorData::new(vec![0.0f32, 1.0, -1.0, 0.3, 2.0], [5]),
                &dev,
            )
            .require_grad();
            let weights = input([3, 5, 4, 2], 7);
            // ours
            let (y, mean, var) = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
            let grads = (y.clone() * weights.clone()).sum().backward();
            // burn's ops
            let [ry, rmean, rvar] = composed::batch_norm_train::<CpuTrain>(
                unwrap(x.clone()),
                unwrap(gamma.clone()),
                unwrap(beta.clone()),
                1e-5,
            );
            let ry: Tensor<CpuTrain, 4> = wrap(ry);
            let rgrads = (ry.clone() * weights).sum().backward();
            assert!(
                max_diff(y.inner(), ry.inner()) < 1e-5,
                "forward, strided {strided}"
            );
            assert!(max_diff(mean.inner(), wrap::<CpuTrain, 1>(rmean).inner()) < 1e-6);
            assert!(max_diff(var.inner(), wrap::<CpuTrain, 1>(rvar).inner()) < 1e-5);
            for (name, a, b) in [
                (
                    "x",
                    x.grad(&grads).map(|g| g.reshape([-1])),
                    x.grad(&rgrads).map(|g| g.reshape([-1])),
                ),
                ("gamma", gamma.grad(&grads), gamma.grad(&rgrads)),
                ("beta", beta.grad(&grads), beta.grad(&rgrads)),
            ] {
                let d = max_diff::<1>(a.unwrap(), b.unwrap());
                assert!(d < 1e-4, "gradient of {name}, strided {strided}: {d}");
            }
        }
    }
}
