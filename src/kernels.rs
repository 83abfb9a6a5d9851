//! Fused operations with their own backward pass: a burn backend extension.
//!
//! [`Kernels`] has a default implementation for every backend, composed of burn's own tensor
//! operations ([`composed`]); a backend overrides what it can do faster. The CPU backend
//! (burn-flex, [`flex`]) runs each of these as host loops and GEMMs over the tensors' own
//! layout, in parallel, where burn's composition runs many small broadcast element-wise
//! operations, strided copies and their backward. The autodiff backend ([`autodiff`]) records
//! each fused forward as one node whose backward is the fused backward.
//!
//! The operations:
//! - training-mode BatchNorm over `[n, c, h, w]` with m = n·h·w values per channel
//!   (Ioffe & Szegedy 2015, Alg. 1 and its gradient):
//!
//!   ```text
//!   μ = Σx / m,  σ² = Σ(x − μ)² / m,  x̂ = (x − μ)/√(σ² + ε),  y = γ x̂ + β
//!   ∂β = Σ ∂y,   ∂γ = Σ ∂y·x̂,         ∂x = γ/√(σ² + ε) · (∂y − ∂β/m − x̂·∂γ/m)
//!   ```
//! - LayerNorm over the last dimension (d values per row, Ba et al. 2016, Eq. 4), with
//!   r = 1/√(σ² + ε) per row:
//!
//!   ```text
//!   x̂ = (x − μ)·r,  y = γ x̂ + β,  ∂β = Σ_rows ∂y,  ∂γ = Σ_rows ∂y·x̂,
//!   ∂x = r · (γ∂y − mean(γ∂y) − x̂ · mean(γ∂y · x̂))
//!   ```
//! - the exact GELU y = x·Φ(x) = ½x(1 + erf(x/√2)) (Hendrycks & Gimpel 2016), with
//!   ∂x = ∂y·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π);
//! - the fully connected layer y = xW + b on the last dimension of `x [n, L, d]`:
//!   `∂x = ∂y Wᵀ`, `∂W = Σ xᵀ∂y`, `∂b = Σ_rows ∂y`;
//! - the dense k×k convolution (one group, zero padding p = k/2, stride s)
//!   `y[n, o, i, j] = Σ_{c,a,b} w[o, c, a, b] · x[n, c, i·s + a − p, j·s + b − p]`, i.e.
//!   `Y = W X` over the unfolded input X (im2col): `∂W = ∂Y Xᵀ`, `∂X = Wᵀ ∂Y` folded back;
//! - the depthwise k×k convolution (zero padding k/2, stride s, m output channels per input
//!   channel) `y[n, o, i, j] = Σ_{a,b} w[o, a, b] · x[n, o/m, i·s + a − k/2, j·s + b − k/2]`,
//!   whose gradients are the same sums with ∂y in place of y;
//! - the dynamic ReLU (DY-ReLU-B, Chen et al. 2020) `y = max(a₁x + b₁, a₂x + b₂)` with
//!   a₁ = 1 + Δa₁, b₁ = ½Δb₁, a₂ = Δa₂, b₂ = ½Δb₂ per sample and channel, each Δ = 2σ(ℓ) − 1
//!   = tanh(ℓ/2) ∈ (−1, 1) of a logit ℓ in `coef [n, 8c]` (two sets of four c-wide blocks):
//!   ∂x = ∂y·a of the winning line, ∂Δa = Σ ∂y·x and ∂Δb = ½Σ ∂y over the positions where
//!   that line wins, and ∂ℓ = ∂Δ · ½(1 − Δ²);
//! - the 1×1 convolution `y[n, :, p] = W x[n, :, p]` for `W [c', c]`:
//!   `∂W = Σₙ,ₚ ∂y[n, :, p] x[n, :, p]ᵀ`, `∂x[n, :, p] = Wᵀ ∂y[n, :, p]`;
//! - scaled dot-product attention per batch entry and head, `S = QKᵀ·s`, `P = softmax(S)`,
//!   `O = PV`:
//!
//!   ```text
//!   ∂V = Pᵀ∂O,  ∂P = ∂O Vᵀ,  ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)),  ∂Q = s·∂S K,  ∂K = s·∂Sᵀ Q
//!   ```
//! - the masked reconstruction loss (paper Sec. 3: MSE on the masked quarters) over
//!   predictions and targets `[n, L, p]` with a mask `[n, L]` and M masked cells,
//!   `loss = Σ mask·mean_p (x − t)² / M`, `∂x = ∂loss · mask · 2(x − t) / (p·M)`;
//! - the sum `y = lhs + rhs` where rhs is lhs's shape in any layout, or one tile of t trailing
//!   values repeated over the leading dimensions, `y[r·t + j] = lhs[r·t + j] + rhs[j]`:
//!   `∂lhs = ∂y`, `∂rhs[j] = Σ_r ∂y[r·t + j]`;
//! - the product of two matrices `C = A B` (the generators' products of Appendix A Eq. 12),
//!   `∂A = ∂C Bᵀ`, `∂B = Aᵀ ∂C`;
//! - the heat-equation prediction of a batch (paper Eq. 5, [`heat::HeatPlan`]): every token of
//!   the full grid is a kept cell of z_q or `M_k z_q[src]`, so with the source rows of matrix
//!   k stacked in X_k, `Y_k = X_k M_kᵀ`, `∂X_k = ∂Y_k M_k`, `∂M_k = ∂Y_kᵀ X_k`;
//! - one AdamW step on a parameter (Loshchilov & Hutter 2019, Alg. 2, with burn's `AdamW`
//!   arithmetic element by element, [`AdamWStep`]); an optimiser step, so no backward.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, Tensor, TensorPrimitive};

pub mod autodiff;
pub mod composed;
pub mod flex;
pub mod heat;
#[cfg(test)]
mod tests;

pub(crate) fn wrap<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

pub(crate) fn unwrap<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
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

    /// Inference-mode BatchNorm of `x [n, c, h, w]` with the running `mean` and `var` `[c]`:
    /// y = γ (x − μ) / √(σ² + ε) + β.
    fn batch_norm_inference(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        composed::batch_norm_inference::<Self>(x, gamma, beta, mean, var, eps)
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

    /// LayerNorm of the rows of `x [rows, d]` with `gamma`, `beta` `[d]`: returns y and the
    /// per-row mean and reciprocal standard deviation `[rows]`.
    fn layer_norm_rows(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> [FloatTensor<Self>; 3] {
        composed::layer_norm_rows::<Self>(x, gamma, beta, eps)
    }

    /// Gradients of [`Kernels::layer_norm_rows`] for x, gamma and beta given ∂y.
    fn layer_norm_rows_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed::layer_norm_rows_backward::<Self>(x, gamma, mean, rstd, grad)
    }

    /// The exact (erf) GELU of every element.
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as burn::tensor::ops::ActivationOps<Self>>::gelu(x)
    }

    /// Gradient of [`Kernels::gelu_exact`] given ∂y.
    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as burn::tensor::ops::ActivationOps<Self>>::gelu_backward(x, grad)
    }

    /// `x [n, L, d] · weight [d, out] + bias [out]` → `[n, L, out]`.
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed::dense::<Self>(x, weight, bias)
    }

    /// Gradients of [`Kernels::dense`] for x, weight and bias given ∂y.
    fn dense_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed::dense_backward::<Self>(x, weight, grad)
    }

    /// Dense convolution of `x [n, c, h, w]` by `weight [c', c, k, k]` (one group, zero
    /// padding k/2, stride s; see the module doc): `[n, c', ⌈h/s⌉, ⌈w/s⌉]`.
    fn conv(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        composed::conv::<Self>(x, weight, stride)
    }

    /// Gradients of [`Kernels::conv`] for x and weight given ∂y, each only where `wanted`
    /// says (the stem's input is the image, which tracks no gradient: its ∂x, a product and a
    /// fold as large as ∂W's, is not computed).
    fn conv_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        grad: FloatTensor<Self>,
        wanted: [bool; 2],
    ) -> [Option<FloatTensor<Self>>; 2] {
        composed::conv_backward::<Self>(x, weight, stride, grad, wanted)
    }

    /// Depthwise convolution of `x [n, c, h, w]` by `weight [m·c, 1, k, k]` (see the module
    /// doc): `[n, m·c, ⌈h/s⌉, ⌈w/s⌉]`.
    fn depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        composed::depthwise::<Self>(x, weight, stride)
    }

    /// Gradients of [`Kernels::depthwise`] for x and weight given ∂y.
    fn depthwise_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        composed::depthwise_backward::<Self>(x, weight, stride, grad)
    }

    /// Dynamic ReLU of `x [n, c, h, w]` with coefficient set `set` (0 or 1) of the logits
    /// `coef [n, 8c]`.
    fn dynamic_relu(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        set: usize,
    ) -> FloatTensor<Self> {
        composed::dynamic_relu::<Self>(x, coef, set)
    }

    /// Gradients of [`Kernels::dynamic_relu`] for x and coef given ∂y.
    fn dynamic_relu_backward(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        set: usize,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        composed::dynamic_relu_backward::<Self>(x, coef, set, grad)
    }

    /// 1×1 convolution of `x [n, c, h, w]` by `weight [c', c]`: `[n, c', h, w]`.
    fn pointwise(weight: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::pointwise::<Self>(weight, x)
    }

    /// Gradients of [`Kernels::pointwise`] for weight and x given ∂y.
    fn pointwise_backward(
        weight: FloatTensor<Self>,
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        composed::pointwise_backward::<Self>(weight, x, grad)
    }

    /// Scaled dot-product attention softmax(QKᵀ/√d)V of `q [b, h, Lq, d]`, `k [b, h, Lk, d]`
    /// and `v [b, h, Lk, d']`: returns O `[b, h, Lq, d']` and the probabilities P
    /// `[b, h, Lq, Lk]` (kept for the backward pass).
    fn sdpa(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        composed::attention::<Self>(q, k, v)
    }

    /// Gradients of [`Kernels::sdpa`] for q, k and v given P and ∂O.
    fn sdpa_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probs: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed::attention_backward::<Self>(q, k, v, probs, grad)
    }

    /// Multi-head self-attention from the fused projection `qkv [b, L, 3·h·d]` (Q, K, V side
    /// by side, each `h` heads of width d): returns O `[b, L, h·d]` (heads merged) and P.
    fn self_attention(qkv: FloatTensor<Self>, heads: usize) -> [FloatTensor<Self>; 2] {
        composed::self_attention::<Self>(qkv, heads)
    }

    /// Gradient of [`Kernels::self_attention`] for qkv given P and ∂O.
    fn self_attention_backward(
        qkv: FloatTensor<Self>,
        heads: usize,
        probs: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed::self_attention_backward::<Self>(qkv, heads, probs, grad)
    }

    /// The masked mean squared error `[1]` of `pred` against `target` `[n, L, p]` under
    /// `mask [n, L]` (1 where a cell is masked) over `masked` masked cells.
    fn masked_mse(
        pred: FloatTensor<Self>,
        target: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        masked: usize,
    ) -> FloatTensor<Self> {
        composed::masked_mse::<Self>(pred, target, mask, masked)
    }

    /// Gradient of [`Kernels::masked_mse`] for pred given ∂loss.
    fn masked_mse_backward(
        pred: FloatTensor<Self>,
        target: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        masked: usize,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed::masked_mse_backward::<Self>(pred, target, mask, masked, grad)
    }

    /// The matrix product `a [m, k] · b [k, n]`.
    fn matrix_product(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(a, b)
    }

    /// Gradients of [`Kernels::matrix_product`] for a and b given ∂C, each only where
    /// `wanted` says (the predictor's coefficients `[steps, terms]` are constants: their
    /// gradient would be a product as large as the terms' own).
    fn matrix_product_backward(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        wanted: [bool; 2],
    ) -> [Option<FloatTensor<Self>>; 2] {
        composed::matrix_product_backward::<Self>(a, b, grad, wanted)
    }

    /// `lhs + rhs` where `rhs` has `lhs`'s shape (any layout) or its trailing shape, one tile
    /// repeated over the leading dimensions; the result has `lhs`'s shape.
    fn add(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::add::<Self>(lhs, rhs)
    }

    /// Gradients of [`Kernels::add`] for lhs and rhs (of shape `rhs_shape`) given ∂y.
    fn add_backward(rhs_shape: Shape, grad: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        composed::add_backward::<Self>(rhs_shape, grad)
    }

    /// The predicted grids as tokens `[n, h·w, D]` from the encoded quarters
    /// `z [n, D, h/2, w/2]` and the matrices `mats [K, D, D]` of `plan`.
    fn heat_predict(
        z: FloatTensor<Self>,
        mats: FloatTensor<Self>,
        plan: Arc<heat::HeatPlan>,
    ) -> FloatTensor<Self> {
        composed::heat_predict::<Self>(z, mats, &plan)
    }

    /// One AdamW step on parameter θ with gradient g and moments `[m, v]` (none on the
    /// first step): returns `[θ', m', v']` ([`AdamWStep`] has the formulas).
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moments: Option<[FloatTensor<Self>; 2]>,
        step: &AdamWStep,
    ) -> [FloatTensor<Self>; 3] {
        composed::adamw_step::<Self>(param, grad, moments, step)
    }

    /// Gradients of [`Kernels::heat_predict`] for z and mats given ∂tokens.
    fn heat_predict_backward(
        z: FloatTensor<Self>,
        mats: FloatTensor<Self>,
        plan: Arc<heat::HeatPlan>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        composed::heat_predict_backward::<Self>(z, mats, &plan, grad)
    }
}

/// The constants of one AdamW step t (Loshchilov & Hutter 2019, Alg. 2) in f32 as burn's
/// `AdamW` uses them, every operation rounded to f32 in this order:
///
/// ```text
/// m = β₁·m + (1 − β₁)·g          (m = (1 − β₁)·g on the first step, likewise v)
/// v = β₂·v + (1 − β₂)·(g·g)
/// δ = (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
/// θ' = θ·(1 − lr·λ) − lr·δ        (θ not multiplied when lr·λ = 0)
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// The step number t, from 1.
    pub time: usize,
    pub lr: f64,
    /// λ, decoupled from the gradient.
    pub weight_decay: f64,
}

impl AdamWStep {
    /// `[1 − β₁, 1 − β₂, 1 − β₁ᵗ, 1 − β₂ᵗ]`, rounded as burn's `AdamW` rounds them.
    pub fn factors(&self) -> [f32; 4] {
        let t = self.time as i32;
        [
            1.0 - self.beta_1,
            1.0 - self.beta_2,
            1.0 - self.beta_1.powi(t),
            1.0 - self.beta_2.powi(t),
        ]
    }

    /// The factor θ is multiplied by, `1 − lr·λ`, or `None` when lr·λ = 0 (burn's `AdamW`
    /// then leaves θ as it is).
    pub fn decay(&self) -> Option<f32> {
        let rate = self.lr * self.weight_decay;
        (rate != 0.0).then_some((1.0 - rate) as f32)
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

/// Inference-mode BatchNorm with running statistics, one fused operation (no backward: the
/// autodiff backend composes it from burn's ops).
pub fn batch_norm_inference<B: Kernels>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, 4> {
    wrap(B::batch_norm_inference(
        unwrap(x),
        unwrap(gamma),
        unwrap(beta),
        unwrap(mean),
        unwrap(var),
        eps,
    ))
}

/// LayerNorm over the last dimension of `x` (see the module doc), one fused operation with its
/// own backward.
pub fn layer_norm<B: Kernels, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    let dims = x.dims();
    let rows = x.reshape([-1, dims[D - 1] as i32]);
    let [y, _, _] = B::layer_norm_rows(unwrap(rows), unwrap(gamma), unwrap(beta), eps);
    wrap::<B, 2>(y).reshape(dims)
}

/// `y = x W + b` on the last dimension of `x [n, L, d]` (see the module doc), one fused
/// operation with its own backward.
pub fn dense<B: Kernels>(
    x: Tensor<B, 3>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
) -> Tensor<B, 3> {
    wrap(B::dense(unwrap(x), unwrap(weight), unwrap(bias)))
}

/// Dense k×k convolution, one group (see the module doc), one operation with its own backward.
pub fn conv<B: Kernels>(x: Tensor<B, 4>, weight: Tensor<B, 4>, stride: usize) -> Tensor<B, 4> {
    wrap(B::conv(unwrap(x), unwrap(weight), stride))
}

/// Depthwise convolution (see the module doc), one fused operation with its own backward.
pub fn depthwise<B: Kernels>(x: Tensor<B, 4>, weight: Tensor<B, 4>, stride: usize) -> Tensor<B, 4> {
    wrap(B::depthwise(unwrap(x), unwrap(weight), stride))
}

/// The dynamic ReLU (see the module doc), one fused operation with its own backward.
pub fn dynamic_relu<B: Kernels>(x: Tensor<B, 4>, coef: Tensor<B, 2>, set: usize) -> Tensor<B, 4> {
    wrap(B::dynamic_relu(unwrap(x), unwrap(coef), set))
}

/// The exact GELU (see the module doc), one fused operation with its own backward.
pub fn gelu<B: Kernels, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    wrap(B::gelu_exact(unwrap(x)))
}

/// `y[n, :, p] = W x[n, :, p]` for every position p: a 1×1 convolution without bias (see the
/// module doc for its gradients).
pub fn pointwise<B: Kernels>(weight: Tensor<B, 2>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    wrap(B::pointwise(unwrap(weight), unwrap(x)))
}

/// softmax(QKᵀ/√d)V per batch entry and head, as one fused operation with its own backward
/// (see the module doc).
pub fn attention<B: Kernels>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [o, _] = B::sdpa(unwrap(q), unwrap(k), unwrap(v));
    wrap(o)
}

/// Multi-head self-attention of the fused projection `qkv [b, L, 3·h·d]` → `[b, L, h·d]`, one
/// fused operation with its own backward (no slicing of Q, K, V, no head split or merge).
pub fn self_attention<B: Kernels>(qkv: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    let [o, _] = B::self_attention(unwrap(qkv), heads);
    wrap(o)
}

/// The masked reconstruction loss (see the module doc), one fused operation with its own
/// backward; `target` and `mask` receive no gradient.
pub fn masked_mse<B: Kernels>(
    pred: Tensor<B, 3>,
    target: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    masked: usize,
) -> Tensor<B, 1> {
    wrap(B::masked_mse(
        unwrap(pred),
        unwrap(target),
        unwrap(mask),
        masked,
    ))
}

/// The matrix product `a · b` (see the module doc), one operation with its own backward that
/// uses every core (burn-flex runs products of this size, and their backward, on one thread).
pub fn matrix_product<B: Kernels>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    wrap(B::matrix_product(unwrap(a), unwrap(b)))
}

/// `lhs + rhs`, `rhs` being `lhs`'s shape or its trailing dimensions (one tile repeated over
/// the leading ones; see the module doc), one parallel operation with its own backward.
pub fn add<B: Kernels, const D: usize, const E: usize>(
    lhs: Tensor<B, D>,
    rhs: Tensor<B, E>,
) -> Tensor<B, D> {
    debug_assert_eq!(
        rhs.dims()[..],
        lhs.dims()[D - E..],
        "add: rhs must be lhs's trailing shape"
    );
    wrap(B::add(unwrap(lhs), unwrap(rhs)))
}

/// The heat-equation predictions of a batch as the full grids' tokens `[n, h·w, D]` (see
/// [`heat::HeatPlan`]), one fused operation with its own backward.
pub fn heat_predict<B: Kernels>(
    z: Tensor<B, 4>,
    mats: Tensor<B, 3>,
    plan: heat::HeatPlan,
) -> Tensor<B, 3> {
    wrap(B::heat_predict(unwrap(z), unwrap(mats), Arc::new(plan)))
}

#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Cuda {}
