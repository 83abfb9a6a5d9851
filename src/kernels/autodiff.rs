//! [`Kernels`] on the autodiff backend: each fused forward is one graph node whose backward
//! is the inner backend's fused backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, TensorMetadata};

use std::sync::Arc;

use super::heat::HeatPlan;
use super::Kernels;

type Ad<B, C> = Autodiff<B, C>;

/// Registers the gradients `f(state, ∂out)` with the parents that track one. A tensor that is
/// several inputs of one operation (attention's K = V = the feature map) gets the sum of its
/// gradients from [`Kernels::add`] and is registered once: burn's own accumulation of two
/// strided gradients walks them element by element on one thread.
fn propagate<B: Kernels, S, const N: usize>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
    f: impl FnOnce(S, FloatTensor<B>) -> [FloatTensor<B>; N],
) {
    propagate_wanted::<B, S, N>(ops, grads, |state, grad, _| f(state, grad).map(Some));
}

/// [`propagate`] for a backward that computes only the gradients asked for:
/// `f(state, ∂out, wanted)`, `wanted[i]` being whether input i tracks a gradient, gives
/// `Some` gradient for (at least) every wanted input.
fn propagate_wanted<B: Kernels, S, const N: usize>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
    f: impl FnOnce(S, FloatTensor<B>, [bool; N]) -> [Option<FloatTensor<B>>; N],
) {
    let grad = grads.consume::<B>(&ops.node);
    let Ops { parents, state, .. } = ops;
    let wanted = std::array::from_fn(|i| parents[i].is_some());
    let mut pending: Vec<(NodeId, FloatTensor<B>)> = Vec::with_capacity(N);
    for (parent, g) in parents.into_iter().zip(f(state, grad, wanted)) {
        if let (Some(node), Some(g)) = (parent, g) {
            match pending.iter_mut().find(|(id, _)| *id == node.id) {
                Some((_, sum)) => *sum = B::add(sum.clone(), g),
                None => pending.push((node.id, g)),
            }
        }
    }
    for (id, g) in pending {
        grads.register::<B>(id, g);
    }
}

/// The output `out` of the fused operation `op` on `inputs`, recorded with its backward state
/// when any input is tracked.
fn record<B: Kernels, C: CheckpointStrategy, T: Backward<B, N>, const N: usize>(
    op: T,
    inputs: [&FloatTensor<Ad<B, C>>; N],
    state: impl FnOnce() -> T::State,
    out: FloatTensor<B>,
) -> FloatTensor<Ad<B, C>> {
    let nodes = inputs.map(|t| t.node.clone());
    match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state(), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
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
        propagate::<B, _, _>(ops, grads, |(x, gamma, mean, var, eps), g| {
            B::batch_norm_backward(x, gamma, mean, var, eps, g)
        });
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: Kernels> Backward<B, 3> for LayerNormBackward {
    /// x, gamma, row means, row reciprocal standard deviations.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(x, gamma, mean, rstd), g| {
            B::layer_norm_rows_backward(x, gamma, mean, rstd, g)
        });
    }
}

#[derive(Debug)]
struct DenseBackward;

impl<B: Kernels> Backward<B, 3> for DenseBackward {
    /// x, weight.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(x, w), g| B::dense_backward(x, w, g));
    }
}

#[derive(Debug)]
struct PointwiseBackward;

impl<B: Kernels> Backward<B, 2> for PointwiseBackward {
    /// weight, x.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(w, x), g| B::pointwise_backward(w, x, g));
    }
}

#[derive(Debug)]
struct DepthwiseBackward;

impl<B: Kernels> Backward<B, 2> for DepthwiseBackward {
    /// x, weight, stride.
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(x, w, s), g| B::depthwise_backward(x, w, s, g));
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Kernels> Backward<B, 2> for ConvBackward {
    /// x, weight, stride.
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate_wanted::<B, _, _>(ops, grads, |(x, w, s), g, wanted| {
            B::conv_backward(x, w, s, g, wanted)
        });
    }
}

#[derive(Debug)]
struct DynamicReluBackward;

impl<B: Kernels> Backward<B, 2> for DynamicReluBackward {
    /// x, coef, set.
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(x, c, set), g| {
            B::dynamic_relu_backward(x, c, set, g)
        });
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<B: Kernels> Backward<B, 1> for GeluBackward {
    /// x.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |x, g| [B::gelu_exact_backward(x, g)]);
    }
}

#[derive(Debug)]
struct AttentionBackward;

impl<B: Kernels> Backward<B, 3> for AttentionBackward {
    /// q, k, v, probabilities.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(q, k, v, p), g| {
            B::sdpa_backward(q, k, v, p, g)
        });
    }
}

#[derive(Debug)]
struct SelfAttentionBackward;

impl<B: Kernels> Backward<B, 1> for SelfAttentionBackward {
    /// qkv, heads, probabilities.
    type State = (FloatTensor<B>, usize, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(qkv, heads, p), g| {
            [B::self_attention_backward(qkv, heads, p, g)]
        });
    }
}

#[derive(Debug)]
struct MaskedMseBackward;

impl<B: Kernels> Backward<B, 1> for MaskedMseBackward {
    /// pred, target, mask, masked cells.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(x, t, m, masked), g| {
            [B::masked_mse_backward(x, t, m, masked, g)]
        });
    }
}

#[derive(Debug)]
struct MatrixProductBackward;

impl<B: Kernels> Backward<B, 2> for MatrixProductBackward {
    /// a, b.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate_wanted::<B, _, _>(ops, grads, |(a, b), g, wanted| {
            B::matrix_product_backward(a, b, g, wanted)
        });
    }
}

#[derive(Debug)]
struct AddBackward;

impl<B: Kernels> Backward<B, 2> for AddBackward {
    /// The shape of rhs.
    type State = Shape;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |shape, g| B::add_backward(shape, g));
    }
}

#[derive(Debug)]
struct HeatPredictBackward;

impl<B: Kernels> Backward<B, 2> for HeatPredictBackward {
    /// z, mats, plan.
    type State = (FloatTensor<B>, FloatTensor<B>, Arc<HeatPlan>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        propagate::<B, _, _>(ops, grads, |(z, m, plan), g| {
            B::heat_predict_backward(z, m, plan, g)
        });
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
        let state = || {
            let (m, v) = (mean.clone(), var.clone());
            (x.primitive.clone(), gamma.primitive.clone(), m, v, eps)
        };
        let out = record::<B, C, _, _>(BatchNormBackward, [&x, &gamma, &beta], state, y);
        // the statistics feed the running averages only: no gradient flows through them
        [out, Self::from_inner(mean), Self::from_inner(var)]
    }

    fn layer_norm_rows(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> [FloatTensor<Self>; 3] {
        let [y, mean, rstd] = B::layer_norm_rows(
            x.primitive.clone(),
            gamma.primitive.clone(),
            beta.primitive.clone(),
            eps,
        );
        let state = || {
            let (m, r) = (mean.clone(), rstd.clone());
            (x.primitive.clone(), gamma.primitive.clone(), m, r)
        };
        let out = record::<B, C, _, _>(LayerNormBackward, [&x, &gamma, &beta], state, y);
        [out, Self::from_inner(mean), Self::from_inner(rstd)]
    }

    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (xp, wp) = (x.primitive.clone(), weight.primitive.clone());
        let y = B::dense(xp.clone(), wp.clone(), bias.primitive.clone());
        record::<B, C, _, _>(DenseBackward, [&x, &weight, &bias], || (xp, wp), y)
    }

    fn pointwise(weight: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (wp, xp) = (weight.primitive.clone(), x.primitive.clone());
        let y = B::pointwise(wp.clone(), xp.clone());
        record::<B, C, _, _>(PointwiseBackward, [&weight, &x], || (wp, xp), y)
    }

    fn conv(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        let (xp, wp) = (x.primitive.clone(), weight.primitive.clone());
        let y = B::conv(xp.clone(), wp.clone(), stride);
        record::<B, C, _, _>(ConvBackward, [&x, &weight], || (xp, wp, stride), y)
    }

    fn depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let (xp, wp) = (x.primitive.clone(), weight.primitive.clone());
        let y = B::depthwise(xp.clone(), wp.clone(), stride);
        record::<B, C, _, _>(DepthwiseBackward, [&x, &weight], || (xp, wp, stride), y)
    }

    fn dynamic_relu(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        set: usize,
    ) -> FloatTensor<Self> {
        let (xp, cp) = (x.primitive.clone(), coef.primitive.clone());
        let y = B::dynamic_relu(xp.clone(), cp.clone(), set);
        record::<B, C, _, _>(DynamicReluBackward, [&x, &coef], || (xp, cp, set), y)
    }

    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let xp = x.primitive.clone();
        let y = B::gelu_exact(xp.clone());
        record::<B, C, _, _>(GeluBackward, [&x], || xp, y)
    }

    fn sdpa(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        let (qp, kp, vp) = (
            q.primitive.clone(),
            k.primitive.clone(),
            v.primitive.clone(),
        );
        let [o, probs] = B::sdpa(qp.clone(), kp.clone(), vp.clone());
        let p = probs.clone();
        let out = record::<B, C, _, _>(AttentionBackward, [&q, &k, &v], || (qp, kp, vp, p), o);
        [out, Self::from_inner(probs)]
    }

    fn self_attention(qkv: FloatTensor<Self>, heads: usize) -> [FloatTensor<Self>; 2] {
        let qp = qkv.primitive.clone();
        let [o, probs] = B::self_attention(qp.clone(), heads);
        let p = probs.clone();
        let out = record::<B, C, _, _>(SelfAttentionBackward, [&qkv], || (qp, heads, p), o);
        [out, Self::from_inner(probs)]
    }

    fn masked_mse(
        pred: FloatTensor<Self>,
        target: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        masked: usize,
    ) -> FloatTensor<Self> {
        let (xp, tp, mp) = (pred.primitive.clone(), target.primitive, mask.primitive);
        let y = B::masked_mse(xp.clone(), tp.clone(), mp.clone(), masked);
        record::<B, C, _, _>(MaskedMseBackward, [&pred], || (xp, tp, mp, masked), y)
    }

    fn matrix_product(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let (ap, bp) = (a.primitive.clone(), b.primitive.clone());
        let y = B::matrix_product(ap.clone(), bp.clone());
        record::<B, C, _, _>(MatrixProductBackward, [&a, &b], || (ap, bp), y)
    }

    fn add(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = rhs.primitive.shape();
        let y = B::add(lhs.primitive.clone(), rhs.primitive.clone());
        record::<B, C, _, _>(AddBackward, [&lhs, &rhs], || shape, y)
    }

    fn heat_predict(
        z: FloatTensor<Self>,
        mats: FloatTensor<Self>,
        plan: Arc<HeatPlan>,
    ) -> FloatTensor<Self> {
        let (zp, mp) = (z.primitive.clone(), mats.primitive.clone());
        let y = B::heat_predict(zp.clone(), mp.clone(), plan.clone());
        record::<B, C, _, _>(HeatPredictBackward, [&z, &mats], || (zp, mp, plan), y)
    }
}
