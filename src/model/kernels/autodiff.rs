//! [`Kernels`] on the autodiff backend: each fused forward is one graph node whose backward
//! is the inner backend's fused backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::FloatTensor;

use super::Kernels;

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
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, rstd) = ops.state;
        let [dx, dgamma, dbeta] = B::layer_norm_rows_backward(x, gamma, mean, rstd, grad);
        let [px, pgamma, pbeta] = ops.parents;
        for (parent, g) in [(px, dx), (pgamma, dgamma), (pbeta, dbeta)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct DenseBackward;

impl<B: Kernels> Backward<B, 3> for DenseBackward {
    /// x, weight.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        let [dx, dw, db] = B::dense_backward(x, weight, grad);
        let [px, pw, pb] = ops.parents;
        for (parent, g) in [(px, dx), (pw, dw), (pb, db)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct DepthwiseBackward;

impl<B: Kernels> Backward<B, 2> for DepthwiseBackward {
    /// x, weight, stride.
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, stride) = ops.state;
        let [dx, dw] = B::depthwise_backward(x, weight, stride, grad);
        let [px, pw] = ops.parents;
        for (parent, g) in [(px, dx), (pw, dw)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct DynamicReluBackward;

impl<B: Kernels> Backward<B, 2> for DynamicReluBackward {
    /// x, coef, set.
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, coef, set) = ops.state;
        let [dx, dcoef] = B::dynamic_relu_backward(x, coef, set, grad);
        let [px, pc] = ops.parents;
        for (parent, g) in [(px, dx), (pc, dcoef)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<B: Kernels> Backward<B, 1> for GeluBackward {
    /// x.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<B>(node.id, B::gelu_exact_backward(ops.state, grad));
        }
    }
}

#[derive(Debug)]
struct PointwiseBackward;

impl<B: Kernels> Backward<B, 2> for PointwiseBackward {
    /// weight, x.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (weight, x) = ops.state;
        let [dw, dx] = B::pointwise_backward(weight, x, grad);
        let [pw, px] = ops.parents;
        for (parent, g) in [(pw, dw), (px, dx)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
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
        let grad = grads.consume::<B>(&ops.node);
        let (q, k, v, probs) = ops.state;
        let [dq, dk, dv] = B::sdpa_backward(q, k, v, probs, grad);
        let [pq, pk, pv] = ops.parents;
        for (parent, g) in [(pq, dq), (pk, dk), (pv, dv)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct SelfAttentionBackward;

impl<B: Kernels> Backward<B, 1> for SelfAttentionBackward {
    /// qkv, heads, probabilities.
    type State = (FloatTensor<B>, usize, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (qkv, heads, probs) = ops.state;
        let [parent] = ops.parents;
        if let Some(node) = parent {
            let d = B::self_attention_backward(qkv, heads, probs, grad);
            grads.register::<B>(node.id, d);
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

    fn pointwise(weight: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        let y = B::pointwise(weight.primitive.clone(), x.primitive.clone());
        match PointwiseBackward
            .prepare::<C>([weight.node.clone(), x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((weight.primitive, x.primitive), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn sdpa(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        let [o, probs] = B::sdpa(
            q.primitive.clone(),
            k.primitive.clone(),
            v.primitive.clone(),
        );
        let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
        let out = match AttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((q.primitive, k.primitive, v.primitive, probs.clone()), o)
            }
            OpsKind::UnTracked(prep) => prep.finish(o),
        };
        [out, Self::from_inner(probs)]
    }

    fn self_attention(qkv: FloatTensor<Self>, heads: usize) -> [FloatTensor<Self>; 2] {
        let [o, probs] = B::self_attention(qkv.primitive.clone(), heads);
        let out = match SelfAttentionBackward
            .prepare::<C>([qkv.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((qkv.primitive, heads, probs.clone()), o),
            OpsKind::UnTracked(prep) => prep.finish(o),
        };
        [out, Self::from_inner(probs)]
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
        let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
        let out = match LayerNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (x.primitive, gamma.primitive, mean.clone(), rstd.clone()),
                y,
            ),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        [out, Self::from_inner(mean), Self::from_inner(rstd)]
    }

    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let y = B::gelu_exact(x.primitive.clone());
        match GeluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(x.primitive, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let y = B::dense(
            x.primitive.clone(),
            weight.primitive.clone(),
            bias.primitive.clone(),
        );
        let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
        match DenseBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, weight.primitive), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let y = B::depthwise(x.primitive.clone(), weight.primitive.clone(), stride);
        let nodes = [x.node.clone(), weight.node.clone()];
        match DepthwiseBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, weight.primitive, stride), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn dynamic_relu(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        set: usize,
    ) -> FloatTensor<Self> {
        let y = B::dynamic_relu(x.primitive.clone(), coef.primitive.clone(), set);
        let nodes = [x.node.clone(), coef.node.clone()];
        match DynamicReluBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, coef.primitive, set), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}
