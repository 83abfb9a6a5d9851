//! The default implementations of [`super::Kernels`], from burn's tensor operations (any
//! backend). They are also the reference the fused kernels are tested against.

use super::heat::{destination as dst, source as src, HeatPlan};
use super::{unwrap, wrap};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{IndexingUpdateOp, Int, Shape, Tensor, TensorData};

/// `∂A = ∂C Bᵀ`, `∂B = Aᵀ ∂C`.
pub fn matrix_product_backward<B: Backend>(
    a: FloatTensor<B>,
    b: FloatTensor<B>,
    grad: FloatTensor<B>,
    [want_a, want_b]: [bool; 2],
) -> [Option<FloatTensor<B>>; 2] {
    let (a, b, g) = (wrap::<B, 2>(a), wrap::<B, 2>(b), wrap::<B, 2>(grad));
    [
        want_a.then(|| unwrap(g.clone().matmul(b.transpose()))),
        want_b.then(|| unwrap(a.transpose().matmul(g))),
    ]
}

/// `lhs + rhs` as burn's broadcast sum of `[reps, t]` and `[1, t]`.
pub fn add<B: Backend>(lhs: FloatTensor<B>, rhs: FloatTensor<B>) -> FloatTensor<B> {
    use burn::tensor::TensorMetadata;
    let shape = lhs.shape();
    let tile = rhs.shape().num_elements();
    let reps = shape.num_elements() / tile.max(1);
    let a = wrap::<B, 2>(B::float_reshape(lhs, Shape::new([reps, tile])));
    let b = wrap::<B, 2>(B::float_reshape(rhs, Shape::new([1, tile])));
    B::float_reshape(unwrap(a + b), shape)
}

pub fn add_backward<B: Backend>(rhs_shape: Shape, grad: FloatTensor<B>) -> [FloatTensor<B>; 2] {
    use burn::tensor::TensorMetadata;
    let tile = rhs_shape.num_elements();
    let reps = grad.shape().num_elements() / tile.max(1);
    let g = wrap::<B, 2>(B::float_reshape(grad.clone(), Shape::new([reps, tile])));
    [grad, B::float_reshape(unwrap(g.sum_dim(0)), rhs_shape)]
}

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

pub fn batch_norm_inference<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    mean: FloatTensor<B>,
    var: FloatTensor<B>,
    eps: f64,
) -> FloatTensor<B> {
    let x = wrap::<B, 4>(x);
    let c = x.dims()[1];
    let channel = |t: FloatTensor<B>| wrap::<B, 1>(t).reshape([1, c, 1, 1]);
    let scale = channel(gamma) / (channel(var) + eps).sqrt();
    unwrap((x - channel(mean)) * scale + channel(beta))
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

/// The 1×1 convolution channel-major: one GEMM `W (c', c) @ X (c, n·h·w)`.
pub fn pointwise<B: Backend>(weight: FloatTensor<B>, x: FloatTensor<B>) -> FloatTensor<B> {
    let w = wrap::<B, 2>(weight);
    let x = wrap::<B, 4>(x);
    let [n, c, h, wd] = x.dims();
    let c_out = w.dims()[0];
    let cols = x.swap_dims(0, 1).reshape([c, n * h * wd]);
    unwrap(w.matmul(cols).reshape([c_out, n, h, wd]).swap_dims(0, 1))
}

pub fn pointwise_backward<B: Backend>(
    weight: FloatTensor<B>,
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 2] {
    let w = wrap::<B, 2>(weight);
    let x = wrap::<B, 4>(x);
    let [n, c, h, wd] = x.dims();
    let c_out = w.dims()[0];
    let cols = x.swap_dims(0, 1).reshape([c, n * h * wd]);
    let g = wrap::<B, 4>(grad)
        .swap_dims(0, 1)
        .reshape([c_out, n * h * wd]);
    let dw = g.clone().matmul(cols.transpose());
    let dx = w
        .transpose()
        .matmul(g)
        .reshape([c, n, h, wd])
        .swap_dims(0, 1);
    [unwrap(dw), unwrap(dx)]
}

/// softmax(QKᵀ/√d)V: `[O, P]`.
pub fn attention<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
) -> [FloatTensor<B>; 2] {
    let q = wrap::<B, 4>(q);
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let p = softmax(q.matmul(wrap::<B, 4>(k).swap_dims(2, 3)) * scale, 3);
    [unwrap(p.clone().matmul(wrap::<B, 4>(v))), unwrap(p)]
}

pub fn attention_backward<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    probs: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let (q, k, v) = (wrap::<B, 4>(q), wrap::<B, 4>(k), wrap::<B, 4>(v));
    let (p, g) = (wrap::<B, 4>(probs), wrap::<B, 4>(grad));
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let dv = p.clone().swap_dims(2, 3).matmul(g.clone());
    let dp = g.matmul(v.swap_dims(2, 3));
    let ds = p.clone() * (dp.clone() - (dp * p).sum_dim(3)) * scale;
    let dq = ds.clone().matmul(k);
    let dk = ds.swap_dims(2, 3).matmul(q);
    [unwrap(dq), unwrap(dk), unwrap(dv)]
}

/// Q, K, V of the fused projection `[b, L, 3·h·d]` as `[b, h, L, d]` heads.
fn split_qkv<B: Backend>(
    qkv: burn::tensor::Tensor<B, 3>,
    heads: usize,
) -> [burn::tensor::Tensor<B, 4>; 3] {
    let [b, l, width] = qkv.dims();
    let d = width / 3 / heads;
    [0, 1, 2].map(|i| {
        qkv.clone()
            .narrow(2, i * heads * d, heads * d)
            .reshape([b, l, heads, d])
            .swap_dims(1, 2)
    })
}

pub fn self_attention<B: Backend>(qkv: FloatTensor<B>, heads: usize) -> [FloatTensor<B>; 2] {
    let [q, k, v] = split_qkv(wrap::<B, 3>(qkv), heads);
    let [b, h, l, d] = q.dims();
    let [o, p] = attention::<B>(unwrap(q), unwrap(k), unwrap(v));
    let o = wrap::<B, 4>(o).swap_dims(1, 2).reshape([b, l, h * d]);
    [unwrap(o), p]
}

pub fn self_attention_backward<B: Backend>(
    qkv: FloatTensor<B>,
    heads: usize,
    probs: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let [q, k, v] = split_qkv(wrap::<B, 3>(qkv), heads);
    let [b, h, l, d] = q.dims();
    let g = wrap::<B, 3>(grad).reshape([b, l, h, d]).swap_dims(1, 2);
    let grads = attention_backward::<B>(unwrap(q), unwrap(k), unwrap(v), probs, unwrap(g));
    let merged = grads
        .into_iter()
        .map(|t| wrap::<B, 4>(t).swap_dims(1, 2).reshape([b, l, h * d]))
        .collect();
    unwrap(burn::tensor::Tensor::cat(merged, 2))
}

pub fn layer_norm_rows<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    eps: f64,
) -> [FloatTensor<B>; 3] {
    let x = wrap::<B, 2>(x);
    let rows = x.dims()[0];
    let mean = x.clone().mean_dim(1);
    let centred = x - mean.clone();
    let rstd = (centred.clone() * centred.clone())
        .mean_dim(1)
        .add_scalar(eps)
        .sqrt()
        .recip();
    let y = centred * rstd.clone() * wrap::<B, 1>(gamma).unsqueeze::<2>()
        + wrap::<B, 1>(beta).unsqueeze::<2>();
    [
        unwrap(y),
        unwrap(mean.reshape([rows])),
        unwrap(rstd.reshape([rows])),
    ]
}

pub fn layer_norm_rows_backward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    rstd: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let x = wrap::<B, 2>(x);
    let g = wrap::<B, 2>(grad);
    let [rows, _] = x.dims();
    let rstd = wrap::<B, 1>(rstd).reshape([rows, 1]);
    let xhat = (x - wrap::<B, 1>(mean).reshape([rows, 1])) * rstd.clone();
    let d_beta = g.clone().sum_dim(0).reshape([-1]);
    let d_gamma = (g.clone() * xhat.clone()).sum_dim(0).reshape([-1]);
    let gg = g * wrap::<B, 1>(gamma).unsqueeze::<2>();
    let dx = rstd * (gg.clone() - gg.clone().mean_dim(1) - xhat.clone() * (gg * xhat).mean_dim(1));
    [unwrap(dx), unwrap(d_gamma), unwrap(d_beta)]
}

pub fn dense<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
) -> FloatTensor<B> {
    let x = wrap::<B, 3>(x);
    let y = x.matmul(wrap::<B, 2>(weight).unsqueeze::<3>());
    unwrap(y + wrap::<B, 1>(bias).unsqueeze::<3>())
}

pub fn dense_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let x = wrap::<B, 3>(x);
    let [n, l, d] = x.dims();
    let w = wrap::<B, 2>(weight);
    let g = wrap::<B, 3>(grad);
    let out = g.dims()[2];
    let dx = g.clone().matmul(w.transpose().unsqueeze::<3>());
    let g2 = g.reshape([n * l, out]);
    let dw = x.reshape([n * l, d]).transpose().matmul(g2.clone());
    let db = g2.sum_dim(0).reshape([out]);
    [unwrap(dx), unwrap(dw), unwrap(db)]
}

/// Zero padding k/2 and stride s, with `groups`.
fn conv_options(k: usize, stride: usize, groups: usize) -> ConvOptions<2> {
    ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], groups)
}

/// burn's convolution (one group).
pub fn conv<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    stride: usize,
) -> FloatTensor<B> {
    let w = wrap::<B, 4>(weight);
    let opts = conv_options(w.dims()[2], stride, 1);
    unwrap(conv2d(wrap::<B, 4>(x), w, None, opts))
}

/// burn's own backward of its convolution (one group).
pub fn conv_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    stride: usize,
    grad: FloatTensor<B>,
    [want_x, want_w]: [bool; 2],
) -> [Option<FloatTensor<B>>; 2] {
    use burn::tensor::TensorMetadata;
    let opts = conv_options(weight.shape().dims::<4>()[2], stride, 1);
    let dx =
        want_x.then(|| B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), opts.clone()));
    let dw = want_w.then(|| B::conv2d_weight_backward(x, weight, grad, opts));
    [dx, dw]
}

/// burn's grouped convolution.
pub fn depthwise<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    stride: usize,
) -> FloatTensor<B> {
    let x = wrap::<B, 4>(x);
    let w = wrap::<B, 4>(weight);
    let opts = conv_options(w.dims()[2], stride, x.dims()[1]);
    unwrap(conv2d(x, w, None, opts))
}

/// burn's own backward of its grouped convolution.
pub fn depthwise_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    stride: usize,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 2] {
    use burn::tensor::TensorMetadata;
    let c_in = x.shape().dims::<4>()[1];
    let k = weight.shape().dims::<4>()[2];
    let opts = conv_options(k, stride, c_in);
    let dx = B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), opts.clone());
    let dw = B::conv2d_weight_backward(x, weight, grad, opts);
    [dx, dw]
}

/// Δ = 2σ(ℓ) − 1 of the dynamic ReLU's coefficient logits.
fn dynamic_relu_deltas<B: Backend>(
    logits: burn::tensor::Tensor<B, 2>,
) -> burn::tensor::Tensor<B, 2> {
    burn::tensor::activation::sigmoid(logits) * 2.0 - 1.0
}

/// The four `[n, c, 1, 1]` coefficient maps (a₁, b₁, a₂, b₂) of `set` from the deltas.
fn dynamic_relu_lines<B: Backend>(
    coef: burn::tensor::Tensor<B, 2>,
    c: usize,
    set: usize,
) -> [burn::tensor::Tensor<B, 4>; 4] {
    let n = coef.dims()[0];
    let part = |k: usize| {
        coef.clone()
            .narrow(1, (set * 4 + k) * c, c)
            .reshape([n, c, 1, 1])
    };
    [part(0) + 1.0, part(1) * 0.5, part(2), part(3) * 0.5]
}

pub fn dynamic_relu<B: Backend>(
    x: FloatTensor<B>,
    coef: FloatTensor<B>,
    set: usize,
) -> FloatTensor<B> {
    let x = wrap::<B, 4>(x);
    let deltas = dynamic_relu_deltas(wrap::<B, 2>(coef));
    let [a1, b1, a2, b2] = dynamic_relu_lines(deltas, x.dims()[1], set);
    unwrap((x.clone() * a1 + b1).max_pair(x * a2 + b2))
}

pub fn dynamic_relu_backward<B: Backend>(
    x: FloatTensor<B>,
    coef: FloatTensor<B>,
    set: usize,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 2] {
    let x = wrap::<B, 4>(x);
    let g = wrap::<B, 4>(grad);
    let [n, c, _, _] = x.dims();
    let deltas = dynamic_relu_deltas(wrap::<B, 2>(coef));
    let [a1, b1, a2, b2] = dynamic_relu_lines(deltas.clone(), c, set);
    let first = (x.clone() * a1.clone() + b1)
        .greater_equal(x.clone() * a2.clone() + b2)
        .float();
    let second = first.clone().neg() + 1.0;
    let dx = g.clone() * (first.clone() * a1 + second.clone() * a2);
    let sum = |t: burn::tensor::Tensor<B, 4>| t.sum_dims(&[2, 3]).reshape([n, c]);
    let blocks = [
        sum(g.clone() * x.clone() * first.clone()),
        sum(g.clone() * first) * 0.5,
        sum(g.clone() * x * second.clone()),
        sum(g * second) * 0.5,
    ];
    let zeros = || burn::tensor::Tensor::<B, 2>::zeros([n, 4 * c], &blocks[0].device());
    // through Δ = 2σ(ℓ) − 1: ∂ℓ = ∂Δ · ½(1 − Δ²)
    let delta = deltas.narrow(1, set * 4 * c, 4 * c);
    let slope = (delta.clone() * delta).neg().add_scalar(1.0) * 0.5;
    let own = burn::tensor::Tensor::cat(blocks.to_vec(), 1) * slope;
    let dcoef = if set == 0 {
        burn::tensor::Tensor::cat(vec![own, zeros()], 1)
    } else {
        burn::tensor::Tensor::cat(vec![zeros(), own], 1)
    };
    [unwrap(dx), unwrap(dcoef)]
}

/// Row indices as an integer tensor.
fn rows<B: Backend>(
    pairs: &[(usize, usize)],
    pick: fn(&(usize, usize)) -> usize,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let idx: Vec<i64> = pairs.iter().map(|p| pick(p) as i64).collect();
    Tensor::from_data(TensorData::new(idx, [pairs.len()]), device)
}

/// z_q `[n, d, h, w]` as token rows `[n·h·w, d]`.
fn token_rows<B: Backend>(z: FloatTensor<B>) -> (Tensor<B, 2>, [usize; 4]) {
    let z = wrap::<B, 4>(z);
    let [n, d, h, w] = z.dims();
    (
        z.reshape([n, d, h * w])
            .swap_dims(1, 2)
            .reshape([n * h * w, d]),
        [n, d, h, w],
    )
}

/// The heat-equation prediction of a batch as row selections, products and indexed adds.
pub fn heat_predict<B: Backend>(
    z: FloatTensor<B>,
    mats: FloatTensor<B>,
    plan: &HeatPlan,
) -> FloatTensor<B> {
    let (zt, [n, d, _, _]) = token_rows::<B>(z);
    let mats = wrap::<B, 3>(mats);
    let device = zt.device();
    let mut out = Tensor::<B, 2>::zeros([n * plan.grid_cells, d], &device);
    let kept = zt.clone().select(0, rows::<B>(&plan.kept, src, &device));
    out = out.select_assign(
        0,
        rows::<B>(&plan.kept, dst, &device),
        kept,
        IndexingUpdateOp::Add,
    );
    for (k, pairs) in plan.moved.iter().enumerate() {
        let m = mats.clone().narrow(0, k, 1).reshape([d, d]);
        let y = zt
            .clone()
            .select(0, rows::<B>(pairs, src, &device))
            .matmul(m.transpose());
        out = out.select_assign(0, rows::<B>(pairs, dst, &device), y, IndexingUpdateOp::Add);
    }
    unwrap(out.reshape([n, plan.grid_cells, d]))
}

pub fn heat_predict_backward<B: Backend>(
    z: FloatTensor<B>,
    mats: FloatTensor<B>,
    plan: &HeatPlan,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 2] {
    let (zt, [n, d, h, w]) = token_rows::<B>(z);
    let mats = wrap::<B, 3>(mats);
    let device = zt.device();
    let g = wrap::<B, 3>(grad).reshape([n * plan.grid_cells, d]);
    let mut dz = Tensor::<B, 2>::zeros([n * h * w, d], &device);
    let kept = g.clone().select(0, rows::<B>(&plan.kept, dst, &device));
    dz = dz.select_assign(
        0,
        rows::<B>(&plan.kept, src, &device),
        kept,
        IndexingUpdateOp::Add,
    );
    let mut dm = Vec::with_capacity(plan.moved.len());
    for (k, pairs) in plan.moved.iter().enumerate() {
        let m = mats.clone().narrow(0, k, 1).reshape([d, d]);
        let gk = g.clone().select(0, rows::<B>(pairs, dst, &device));
        let xk = zt.clone().select(0, rows::<B>(pairs, src, &device));
        dm.push(gk.clone().transpose().matmul(xk));
        dz = dz.select_assign(
            0,
            rows::<B>(pairs, src, &device),
            gk.matmul(m),
            IndexingUpdateOp::Add,
        );
    }
    let dz = dz
        .reshape([n, h * w, d])
        .swap_dims(1, 2)
        .reshape([n, d, h, w]);
    [unwrap(dz), unwrap(Tensor::stack::<3>(dm, 0))]
}

/// The masked MSE as burn's difference, square, mean, masked product and sum.
pub fn masked_mse<B: Backend>(
    pred: FloatTensor<B>,
    target: FloatTensor<B>,
    mask: FloatTensor<B>,
    masked: usize,
) -> FloatTensor<B> {
    let pred = wrap::<B, 3>(pred);
    let [n, l, _] = pred.dims();
    let per_patch = (pred - wrap::<B, 3>(target))
        .square()
        .mean_dim(2)
        .reshape([n, l]);
    unwrap((per_patch * wrap::<B, 2>(mask)).sum() / masked.max(1) as f32)
}

pub fn masked_mse_backward<B: Backend>(
    pred: FloatTensor<B>,
    target: FloatTensor<B>,
    mask: FloatTensor<B>,
    masked: usize,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let pred = wrap::<B, 3>(pred);
    let [n, l, p] = pred.dims();
    let scale = wrap::<B, 1>(grad).reshape([1, 1, 1]) * (2.0 / (p * masked.max(1)) as f32);
    let weights = wrap::<B, 2>(mask).reshape([n, l, 1]) * scale;
    unwrap((pred - wrap::<B, 3>(target)) * weights)
}

/// One AdamW step as burn's `AdamW` composes it (the same tensor operations in the same
/// order), on the flattened tensors.
pub fn adamw_step<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    moments: Option<[FloatTensor<B>; 2]>,
    step: &super::AdamWStep,
) -> [FloatTensor<B>; 3] {
    use burn::tensor::TensorMetadata;
    let shape = param.shape();
    let flat =
        |t: FloatTensor<B>| wrap::<B, 1>(B::float_reshape(t, Shape::new([shape.num_elements()])));
    let back = |t: Tensor<B, 1>| B::float_reshape(unwrap(t), shape.clone());
    let (theta, g) = (flat(param), flat(grad));
    let [f1, f2, c1, c2] = step.factors();
    let (m, v) = match moments {
        Some([m, v]) => (
            flat(m)
                .mul_scalar(step.beta_1)
                .add(g.clone().mul_scalar(f1)),
            flat(v)
                .mul_scalar(step.beta_2)
                .add(g.square().mul_scalar(f2)),
        ),
        None => (g.clone().mul_scalar(f1), g.square().mul_scalar(f2)),
    };
    let delta = m
        .clone()
        .div_scalar(c1)
        .div(v.clone().div_scalar(c2).sqrt().add_scalar(step.epsilon));
    let decayed = match step.decay() {
        Some(k) => theta.mul_scalar(k),
        None => theta,
    };
    let theta = decayed - delta.mul_scalar(step.lr as f32);
    [back(theta), back(m), back(v)]
}
