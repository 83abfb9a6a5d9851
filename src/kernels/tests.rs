//! The fused kernels against burn's own operations (the composed defaults): forward and
//! gradients on random inputs, contiguous and strided.
use super::*;
use burn::tensor::Tensor;
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

/// The fused 1×1 convolution against burn's composition: forward, ∂W and ∂x, on a contiguous
/// input, a transposed view and a narrowed (non-flattenable) window like the predictor's.
#[test]
fn fused_pointwise_matches_burns_ops_forward_and_backward() {
    for layout in ["contiguous", "transposed", "window"] {
        let x = match layout {
            "contiguous" => input([3, 5, 4, 2], 2),
            "transposed" => input([5, 3, 4, 2], 2).swap_dims(0, 1),
            _ => input([3, 5, 6, 5], 2).narrow(2, 1, 4).narrow(3, 2, 2),
        };
        let x = x.detach().require_grad();
        let w = input([1, 1, 7, 5], 3)
            .reshape([7, 5])
            .detach()
            .require_grad();
        let weights = input([3, 7, 4, 2], 4);
        let y = pointwise(w.clone(), x.clone());
        let ry: Tensor<CpuTrain, 4> = wrap(composed::pointwise::<CpuTrain>(
            unwrap(w.clone()),
            unwrap(x.clone()),
        ));
        assert_eq!(y.dims(), [3, 7, 4, 2]);
        let d = max_diff(y.clone().inner(), ry.clone().inner());
        assert!(d < 1e-4, "forward, {layout}: {d}");
        let ours = (y * weights.clone()).sum().backward();
        let theirs = (ry * weights).sum().backward();
        let flat = |g: &<CpuTrain as burn::tensor::backend::AutodiffBackend>::Gradients| {
            (
                x.grad(g).map(|t| t.reshape([-1])).expect("∂x"),
                w.grad(g).map(|t| t.reshape([-1])).expect("∂W"),
            )
        };
        let ((ax, aw), (bx, bw)) = (flat(&ours), flat(&theirs));
        for (name, a, b) in [("x", ax, bx), ("W", aw, bw)] {
            let d = max_diff::<1>(a, b);
            assert!(d < 1e-3, "gradient of {name}, {layout}: {d}");
        }
    }
}

/// The fused attention against burn's composition (matmul, softmax, matmul): O and the
/// gradients of Q, K and V, for contiguous heads, the head views of one fused `[b, L, 3·d]`
/// projection (self-attention), channel-first pixel heads attending to 3 tokens (Former→Mobile,
/// Lq ≠ Lk, values wider than keys) and one tensor used as both keys and values
/// (Mobile→Former); and contiguous heads of 16 values (whole vectors), whose Q, K, V, O and
/// gradients the kernel reads and writes in place.
#[test]
fn fused_attention_matches_burns_ops_forward_and_backward() {
    use crate::model::layers::split_heads;
    let heads = |x: Tensor<CpuTrain, 4>| x.detach().require_grad();
    for case in ["contiguous", "self", "pixels", "shared", "in place"] {
        let (q, k, v) = match case {
            "contiguous" => (
                heads(input([2, 3, 5, 4], 11)),
                heads(input([2, 3, 7, 4], 12)),
                heads(input([2, 3, 7, 6], 13)),
            ),
            "in place" => (
                heads(input([2, 3, 5, 16], 11) * 0.3),
                heads(input([2, 3, 7, 16], 12) * 0.3),
                heads(input([2, 3, 7, 16], 13)),
            ),
            "self" => {
                let qkv = input([1, 2, 5, 12], 14).reshape([2, 5, 12]);
                let part = |i: usize| split_heads(qkv.clone().narrow(2, 4 * i, 4), 2);
                (heads(part(0)), heads(part(1)), heads(part(2)))
            }
            "pixels" => {
                // [n, c, h, w] = [2, 4, 3, 3] as [n, 2 heads, 9 pixels, 2]
                let map = input([2, 4, 3, 3], 15)
                    .reshape([2, 2, 2, 9])
                    .swap_dims(2, 3);
                (
                    heads(map),
                    heads(input([2, 2, 3, 2], 16)),
                    heads(input([2, 2, 3, 5], 17)),
                )
            }
            _ => {
                let kv = heads(input([2, 2, 6, 3], 18));
                (heads(input([2, 2, 4, 3], 19)), kv.clone(), kv)
            }
        };
        let o = attention(q.clone(), k.clone(), v.clone());
        let [ro, _] = composed::attention::<CpuTrain>(
            unwrap(q.clone()),
            unwrap(k.clone()),
            unwrap(v.clone()),
        );
        let ro: Tensor<CpuTrain, 4> = wrap(ro);
        assert_eq!(o.dims(), ro.dims(), "{case}");
        let d = max_diff(o.clone().inner(), ro.clone().inner());
        assert!(d < 1e-5, "forward, {case}: {d}");
        let weights = input(o.dims(), 20);
        let ours = (o * weights.clone()).sum().backward();
        let theirs = (ro * weights).sum().backward();
        for (name, t) in [("Q", &q), ("K", &k), ("V", &v)] {
            let a = t.grad(&ours).expect("ours").reshape([-1]);
            let b = t.grad(&theirs).expect("burn's").reshape([-1]);
            let d = max_diff::<1>(a, b);
            assert!(d < 1e-4, "gradient of {name}, {case}: {d}");
        }
    }
}

/// Self-attention from a fused `[b, L, 3·h·d]` projection against burn's composition (slice,
/// split heads, attention, merge heads): O and ∂qkv, on a contiguous projection and on a
/// transposed view of one, with heads of 2 values (gathered, padded) and of 16 (a whole
/// vector: read and written in place when contiguous).
#[test]
fn fused_self_attention_matches_burns_ops_forward_and_backward() {
    for (d, transposed) in [(2, false), (2, true), (16, false), (16, true)] {
        let width = 3 * 2 * d;
        let qkv = if transposed {
            input([1, 2, width, 5], 21)
                .reshape([2, width, 5])
                .swap_dims(1, 2)
        } else {
            input([1, 2, 5, width], 21).reshape([2, 5, width])
        } * 0.3;
        let qkv = qkv.detach().require_grad();
        let o = self_attention(qkv.clone(), 2);
        let [ro, _] = composed::self_attention::<CpuTrain>(unwrap(qkv.clone()), 2);
        let ro: Tensor<CpuTrain, 3> = wrap(ro);
        assert_eq!(o.dims(), [2, 5, 2 * d]);
        let diff = max_diff(o.clone().inner(), ro.clone().inner());
        assert!(
            diff < 1e-5,
            "forward, d {d}, transposed {transposed}: {diff}"
        );
        let weights = input([1, 2, 5, 2 * d], 22).reshape([2, 5, 2 * d]);
        let ours = (o * weights.clone()).sum().backward();
        let theirs = (ro * weights).sum().backward();
        let a = qkv.grad(&ours).expect("ours").reshape([-1]);
        let b = qkv.grad(&theirs).expect("burn's").reshape([-1]);
        let diff = max_diff::<1>(a, b);
        assert!(
            diff < 1e-4,
            "gradient, d {d}, transposed {transposed}: {diff}"
        );
    }
}

/// Heads read and written in place (contiguous, 16 values wide) give the same bits as the
/// same values gathered from and scattered to a transposed layout: the products sum the same
/// terms in the same order either way. O and the input gradients, for self-attention (∂qkv)
/// and for separate Q, K, V (whose O and gradients follow Q's, K's and V's layouts).
#[test]
fn attention_in_place_gives_the_gathered_bits() {
    // the same values, stored with the last two dimensions swapped when `transposed`
    fn laid_out<const D: usize>(
        values: Tensor<CpuTrain, D>,
        transposed: bool,
    ) -> Tensor<CpuTrain, D> {
        let t = if transposed {
            let stored = values.swap_dims(D - 2, D - 1).into_data();
            Tensor::from_data(stored, &Default::default()).swap_dims(D - 2, D - 1)
        } else {
            values
        };
        t.detach().require_grad()
    }
    let run = |transposed: bool| {
        let qkv = laid_out(
            input([1, 2, 5, 96], 23).reshape([2, 5, 96]) * 0.3,
            transposed,
        );
        let o = self_attention(qkv.clone(), 2);
        let grads = (o.clone() * input([1, 2, 5, 32], 24).reshape([2, 5, 32]))
            .sum()
            .backward();
        let mut out = vec![bits(o.inner()), bits(qkv.grad(&grads).expect("∂qkv"))];
        let [q, k, v] =
            [25, 26, 27].map(|seed| laid_out(input([2, 2, 6, 16], seed) * 0.3, transposed));
        let o = attention(q.clone(), k.clone(), v.clone());
        let grads = (o.clone() * input([2, 2, 6, 16], 28)).sum().backward();
        out.push(bits(o.inner()));
        for t in [q, k, v] {
            out.push(bits(t.grad(&grads).expect("gradient")));
        }
        out
    };
    let (in_place, gathered) = (run(false), run(true));
    for (name, (a, b)) in ["O (self)", "∂qkv", "O", "∂Q", "∂K", "∂V"]
        .iter()
        .zip(in_place.iter().zip(&gathered))
    {
        assert_eq!(a, b, "{name}");
    }
}

/// The fused LayerNorm against burn's composition: y, ∂x, ∂γ, ∂β over 150 rows (more than one
/// block of the parameter-gradient sums) and on a transposed input.
#[test]
fn fused_layer_norm_matches_burns_ops_forward_and_backward() {
    for transposed in [false, true] {
        let x = if transposed {
            input([1, 1, 6, 150], 31).reshape([6, 150]).swap_dims(0, 1)
        } else {
            input([1, 1, 150, 6], 31).reshape([150, 6])
        };
        let x = x.detach().require_grad();
        let param = |seed| {
            input([1, 1, 1, 6], seed)
                .reshape([6])
                .detach()
                .require_grad()
        };
        let (gamma, beta) = (param(32), param(33));
        let y = layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-6);
        let [ry, _, _] = composed::layer_norm_rows::<CpuTrain>(
            unwrap(x.clone()),
            unwrap(gamma.clone()),
            unwrap(beta.clone()),
            1e-6,
        );
        let ry: Tensor<CpuTrain, 2> = wrap(ry);
        let d = max_diff(y.clone().inner(), ry.clone().inner());
        assert!(d < 1e-5, "forward, transposed {transposed}: {d}");
        let weights = input([1, 1, 150, 6], 34).reshape([150, 6]);
        let ours = (y * weights.clone()).sum().backward();
        let theirs = (ry * weights).sum().backward();
        let flat = |t: &Tensor<CpuTrain, 2>, g| t.grad(g).map(|t| t.reshape([-1]));
        let d = max_diff::<1>(flat(&x, &ours).unwrap(), flat(&x, &theirs).unwrap());
        assert!(d < 1e-4, "gradient of x, transposed {transposed}: {d}");
        for (name, p) in [("gamma", &gamma), ("beta", &beta)] {
            let d = max_diff::<1>(p.grad(&ours).unwrap(), p.grad(&theirs).unwrap());
            assert!(d < 1e-3, "gradient of {name}, transposed {transposed}: {d}");
        }
    }
}

/// Our LayerNorm module computes what burn's `LayerNorm` computes (eps 1e-6, γ and β set).
#[test]
fn layer_norm_module_matches_burns() {
    use burn::module::Param;
    let dev = Default::default();
    let x = input([1, 2, 7, 10], 35).reshape([2, 7, 10]).inner();
    let g = input([1, 1, 1, 10], 36).reshape([10]).inner();
    let b = input([1, 1, 1, 10], 37).reshape([10]).inner();
    let mut ours = crate::model::layer_norm::LayerNorm::<Cpu>::new(10, 1e-6, &dev);
    ours.gamma = Param::from_tensor(g.clone());
    ours.beta = Some(Param::from_tensor(b.clone()));
    let mut theirs = burn::nn::LayerNormConfig::new(10)
        .with_epsilon(1e-6)
        .init::<Cpu>(&dev);
    theirs.gamma = Param::from_tensor(g);
    theirs.beta = Some(Param::from_tensor(b));
    let d = max_diff(ours.forward(x.clone()), theirs.forward(x));
    assert!(d < 1e-5, "{d}");
}

/// The parallel GELU against burn's: y and ∂x, over more elements than one parallel chunk and
/// on a transposed input.
#[test]
fn fused_gelu_matches_burns_forward_and_backward() {
    for transposed in [false, true] {
        let x = if transposed {
            input([1, 1, 300, 70], 41)
                .reshape([300, 70])
                .swap_dims(0, 1)
        } else {
            input([1, 1, 70, 300], 41).reshape([70, 300])
        };
        let x = x.detach().require_grad();
        let y = gelu(x.clone());
        let ry = burn::tensor::activation::gelu(x.clone());
        let d = max_diff(y.clone().inner(), ry.clone().inner());
        assert!(d < 1e-6, "forward, transposed {transposed}: {d}");
        let weights = input([1, 1, 70, 300], 42).reshape([70, 300]);
        let ours = (y * weights.clone()).sum().backward();
        let theirs = (ry * weights).sum().backward();
        let a = x.grad(&ours).unwrap().reshape([-1]);
        let b = x.grad(&theirs).unwrap().reshape([-1]);
        let d = max_diff::<1>(a, b);
        assert!(d < 1e-5, "gradient, transposed {transposed}: {d}");
    }
}

/// The fused fully connected layer against burn's composition (matmul + bias): y, ∂x, ∂W, ∂b
/// for a contiguous input, the decoder's case (tokens read off a channel-first grid, rows not
/// evenly spaced) and a single row.
#[test]
fn fused_dense_matches_burns_ops_forward_and_backward() {
    for case in ["contiguous", "grid", "single"] {
        let x = match case {
            "contiguous" => input([1, 3, 5, 6], 51).reshape([3, 5, 6]),
            // [n, c, h·w] feature grid seen as [n, h·w tokens, c]
            "grid" => input([3, 6, 5, 1], 51).reshape([3, 6, 5]).swap_dims(1, 2),
            _ => input([1, 1, 1, 6], 51).reshape([1, 1, 6]),
        };
        let x = x.detach().require_grad();
        let rows = x.dims()[0] * x.dims()[1];
        let w = input([1, 1, 6, 4], 52)
            .reshape([6, 4])
            .detach()
            .require_grad();
        let b = input([1, 1, 1, 4], 53).reshape([4]).detach().require_grad();
        let y = dense(x.clone(), w.clone(), b.clone());
        let ry: Tensor<CpuTrain, 3> = wrap(composed::dense::<CpuTrain>(
            unwrap(x.clone()),
            unwrap(w.clone()),
            unwrap(b.clone()),
        ));
        let d = max_diff(y.clone().inner(), ry.clone().inner());
        assert!(d < 1e-5, "forward, {case}: {d}");
        let weights = input([1, 1, rows, 4], 54).reshape(y.dims());
        let ours = (y * weights.clone()).sum().backward();
        let theirs = (ry * weights).sum().backward();
        let gx = |g| x.grad(g).unwrap().reshape([-1]);
        let d = max_diff::<1>(gx(&ours), gx(&theirs));
        assert!(d < 1e-4, "gradient of x, {case}: {d}");
        let gw = |g| w.grad(g).unwrap().reshape([-1]);
        let d = max_diff::<1>(gw(&ours), gw(&theirs));
        assert!(d < 1e-4, "gradient of W, {case}: {d}");
        let d = max_diff::<1>(b.grad(&ours).unwrap(), b.grad(&theirs).unwrap());
        assert!(d < 1e-4, "gradient of b, {case}: {d}");
    }
}

/// The CPU backend's tensor.
type Ft = burn::tensor::ops::FloatTensor<Cpu>;

/// `ours(x, w, stride)` against burn's `conv2d` with `groups` and its autodiff: y, ∂x and ∂w;
/// and `composed` (the default the GPU backend runs, from burn's conv backward ops) against the
/// same autodiff.
fn check_convolution(
    [x, w]: [Tensor<CpuTrain, 4>; 2],
    stride: usize,
    groups: usize,
    ours: impl Fn(Tensor<CpuTrain, 4>, Tensor<CpuTrain, 4>, usize) -> Tensor<CpuTrain, 4>,
    composed: impl Fn(Ft, Ft, usize, Ft) -> [Ft; 2],
    case: &str,
) {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    let (x, w) = (x.detach().require_grad(), w.detach().require_grad());
    let k = w.dims()[2];
    let y = ours(x.clone(), w.clone(), stride);
    let opts = ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], groups);
    let ry = conv2d(x.clone(), w.clone(), None, opts);
    assert_eq!(y.dims(), ry.dims(), "{case}");
    let d = max_diff(y.clone().inner(), ry.clone().inner());
    assert!(d < 1e-4, "forward, {case}: {d}");
    let weights = input(y.dims(), 63);
    let [cdx, cdw] = composed(
        unwrap(x.clone().inner()),
        unwrap(w.clone().inner()),
        stride,
        unwrap(weights.clone().inner()),
    );
    let mine = (y * weights.clone()).sum().backward();
    let theirs = (ry * weights).sum().backward();
    for (name, t, c) in [("x", &x, cdx), ("w", &w, cdw)] {
        let b = t.grad(&theirs).unwrap().reshape([-1]);
        let d = max_diff::<1>(t.grad(&mine).unwrap().reshape([-1]), b.clone());
        assert!(d < 1e-3, "gradient of {name}, {case}: {d}");
        let d = max_diff::<1>(wrap::<Cpu, 4>(c).reshape([-1]), b);
        assert!(d < 1e-3, "composed gradient of {name}, {case}: {d}");
    }
}

/// An input `[2, 3, 5, 7]`, or the same shape as a transposed view.
fn conv_input(transposed: bool, seed: u64) -> Tensor<CpuTrain, 4> {
    if transposed {
        input([3, 2, 5, 7], seed).swap_dims(0, 1)
    } else {
        input([2, 3, 5, 7], seed)
    }
}

/// The dense convolution (im2col + GEMM) for stride 1 and 2, 3×3 and 5×5 kernels, odd map
/// sizes and a transposed input.
#[test]
fn fused_conv_matches_burns_conv2d_forward_and_backward() {
    for (stride, k, transposed) in [(2, 3, false), (1, 3, true), (2, 5, false), (1, 5, false)] {
        let (x, w) = (conv_input(transposed, 64), input([4, 3, k, k], 65));
        let case = format!("stride {stride}, {k}×{k}, transposed {transposed}");
        check_convolution(
            [x, w],
            stride,
            1,
            conv,
            |x, w, s, g| composed::conv_backward::<Cpu>(x, w, s, g, [true; 2]).map(Option::unwrap),
            &case,
        );
    }
}

/// The fused depthwise convolution for stride 1 and 2, one and two output channels per input
/// channel, odd map sizes, 3×3 and 5×5 kernels and a transposed input.
#[test]
fn fused_depthwise_matches_burns_conv2d_forward_and_backward() {
    for (stride, mult, k, transposed) in [
        (1, 1, 3, false),
        (2, 1, 3, false),
        (2, 2, 3, true),
        (1, 2, 5, false),
        (2, 1, 5, true),
    ] {
        let (x, w) = (conv_input(transposed, 61), input([3 * mult, 1, k, k], 62));
        let case = format!("stride {stride}, ×{mult}, {k}×{k}, transposed {transposed}");
        let composed = composed::depthwise_backward::<Cpu>;
        check_convolution([x, w], stride, 3, depthwise, composed, &case);
    }
}

/// The fused dynamic ReLU against burn's composition (narrow, scale, shift, max_pair and their
/// autodiff): y, ∂x and ∂coef for both coefficient sets and a transposed input; the composed
/// backward (the GPU's default) against the same autodiff.
#[test]
fn fused_dynamic_relu_matches_burns_ops_forward_and_backward() {
    for (set, transposed) in [(0, false), (1, true)] {
        let x = if transposed {
            input([3, 2, 4, 5], 71).swap_dims(0, 1)
        } else {
            input([2, 3, 4, 5], 71)
        };
        let x = x.detach().require_grad();
        let coef = (input([1, 1, 2, 24], 72).reshape([2, 24]) * 0.3)
            .detach()
            .require_grad();
        let y = dynamic_relu(x.clone(), coef.clone(), set);
        let ry: Tensor<CpuTrain, 4> = wrap(composed::dynamic_relu::<CpuTrain>(
            unwrap(x.clone()),
            unwrap(coef.clone()),
            set,
        ));
        let case = format!("set {set}, transposed {transposed}");
        let d = max_diff(y.clone().inner(), ry.clone().inner());
        assert!(d < 1e-5, "forward, {case}: {d}");
        let weights = input([2, 3, 4, 5], 73);
        let [cdx, cdc] = composed::dynamic_relu_backward::<Cpu>(
            unwrap(x.clone().inner()),
            unwrap(coef.clone().inner()),
            set,
            unwrap(weights.clone().inner()),
        );
        let ours = (y * weights.clone()).sum().backward();
        let theirs = (ry * weights).sum().backward();
        let flat = |t: Tensor<Cpu, 4>| t.reshape([-1]);
        for (name, a, b) in [
            (
                "x",
                flat(x.grad(&ours).unwrap()),
                flat(x.grad(&theirs).unwrap()),
            ),
            (
                "x composed",
                flat(wrap(cdx)),
                flat(x.grad(&theirs).unwrap()),
            ),
            (
                "coef",
                coef.grad(&ours).unwrap().reshape([-1]),
                coef.grad(&theirs).unwrap().reshape([-1]),
            ),
            (
                "coef composed",
                wrap::<Cpu, 2>(cdc).reshape([-1]),
                coef.grad(&theirs).unwrap().reshape([-1]),
            ),
        ] {
            let d = max_diff::<1>(a, b);
            assert!(d < 1e-4, "gradient of {name}, {case}: {d}");
        }
    }
}

/// The fused heat-equation prediction against burn's row selections, products and indexed
/// adds: forward, ∂z and ∂M on a random plan (sources read by several moves, three matrices),
/// with z contiguous and as a transposed view.
#[test]
fn fused_heat_predict_matches_burns_ops_forward_and_backward() {
    let (n, d, hq, wq, cells, k) = (3, 5, 2, 3, 10, 3);
    let mut plan = heat::HeatPlan {
        grid_cells: cells,
        kept: Vec::new(),
        moved: vec![Vec::new(); k],
    };
    let mut rng = Init::new(21);
    for i in 0..n {
        for c in 0..cells {
            let r = rng.normal_vec(2, 1.0);
            let src = i * hq * wq + (r[0].abs() * 7.0) as usize % (hq * wq);
            match (r[1].abs() * 5.0) as usize % (k + 1) {
                0 => plan.kept.push((src, i * cells + c)),
                m => plan.moved[m - 1].push((src, i * cells + c)),
            }
        }
    }
    assert!(plan.covers(n, hq * wq));
    for strided in [false, true] {
        let z = if strided {
            input([d, n, hq, wq], 5).swap_dims(0, 1)
        } else {
            input([n, d, hq, wq], 5)
        };
        let z = z.detach().require_grad();
        let mats = input([1, k, d, d], 6)
            .reshape([k, d, d])
            .detach()
            .require_grad();
        let weights = input([1, n, cells, d], 7).reshape([n, cells, d]);
        let y = heat_predict(z.clone(), mats.clone(), plan.clone());
        let ry: Tensor<CpuTrain, 3> = wrap(composed::heat_predict::<CpuTrain>(
            unwrap(z.clone()),
            unwrap(mats.clone()),
            &plan,
        ));
        assert_eq!(y.dims(), [n, cells, d]);
        let diff = max_diff(y.clone().inner(), ry.clone().inner());
        assert!(diff < 1e-5, "forward, strided {strided}: {diff}");
        let ours = (y * weights.clone()).sum().backward();
        let theirs = (ry * weights).sum().backward();
        let flat = |g: &<CpuTrain as burn::tensor::backend::AutodiffBackend>::Gradients| {
            (
                z.grad(g).map(|t| t.reshape([-1])).expect("∂z"),
                mats.grad(g).map(|t| t.reshape([-1])).expect("∂M"),
            )
        };
        let ((az, am), (bz, bm)) = (flat(&ours), flat(&theirs));
        for (name, a, b) in [("z", az, bz), ("M", am, bm)] {
            let diff = max_diff::<1>(a, b);
            assert!(diff < 1e-4, "gradient of {name}, strided {strided}: {diff}");
        }
    }
}

/// The fused masked MSE against burn's composition: the loss and ∂pred, with a mask that
/// keeps about half of 150 patches (more rows than one summation block), pred contiguous and
/// as a transposed view.
#[test]
fn fused_masked_mse_matches_burns_ops_forward_and_backward() {
    let (n, l, p) = (3, 50, 12);
    let dev = Default::default();
    let signs = Init::new(8).normal_vec(n * l, 1.0);
    let mask: Vec<f32> = signs
        .iter()
        .map(|&s| if s > 0.0 { 1.0 } else { 0.0 })
        .collect();
    let masked = mask.iter().filter(|&&m| m > 0.0).count();
    let mask = Tensor::<CpuTrain, 2>::from_data(TensorData::new(mask, [n, l]), &dev);
    let target = input([1, n, l, p], 9).reshape([n, l, p]);
    for strided in [false, true] {
        let pred = if strided {
            input([1, n, p, l], 10).reshape([n, p, l]).swap_dims(1, 2)
        } else {
            input([1, n, l, p], 10).reshape([n, l, p])
        };
        let pred = pred.detach().require_grad();
        let loss = masked_mse(pred.clone(), target.clone(), mask.clone(), masked);
        let reference: Tensor<CpuTrain, 1> = wrap(composed::masked_mse::<CpuTrain>(
            unwrap(pred.clone()),
            unwrap(target.clone()),
            unwrap(mask.clone()),
            masked,
        ));
        let (a, b): (f32, f32) = (loss.clone().into_scalar(), reference.clone().into_scalar());
        assert!(
            (a - b).abs() < 1e-5 * b.abs(),
            "loss, strided {strided}: {a} vs {b}"
        );
        let ours = (loss * 3.0).backward();
        let theirs = (reference * 3.0).backward();
        let diff = max_diff(
            pred.grad(&ours).expect("∂pred"),
            pred.grad(&theirs).expect("∂pred"),
        );
        assert!(diff < 1e-6, "∂pred, strided {strided}: {diff}");
    }
}

/// The parallel sum against burn's `+`: y and the gradients of both operands, for tensors of
/// the same shape (contiguous; the bridge's case of a head-major view read through its
/// strides) and for a tile repeated over the batch (the decoder's position embedding), each
/// large enough to span several parallel chunks.
#[test]
fn fused_add_matches_burns_add_forward_and_backward() {
    let check = |lhs: Tensor<CpuTrain, 4>, rhs: Tensor<CpuTrain, 4>, case: &str| {
        let (lhs, rhs) = (lhs.detach().require_grad(), rhs.detach().require_grad());
        let y = add(lhs.clone(), rhs.clone());
        let ry = lhs.clone() + rhs.clone();
        let d = max_diff(y.clone().inner(), ry.clone().inner());
        assert!(d == 0.0, "forward, {case}: {d}");
        let weights = input(y.dims(), 77);
        let ours = (y * weights.clone()).sum().backward();
        let theirs = (ry * weights).sum().backward();
        for (name, t) in [("lhs", &lhs), ("rhs", &rhs)] {
            let d = max_diff(
                t.grad(&ours).expect("ours"),
                t.grad(&theirs).expect("theirs"),
            );
            assert!(d < 1e-4, "∂{name}, {case}: {d}");
        }
    };
    check(
        input([4, 6, 30, 31], 70),
        input([4, 6, 30, 31], 71),
        "same shape",
    );
    let heads = input([4, 2, 961, 12], 72).swap_dims(2, 3);
    check(input([4, 2, 12, 961], 73), heads, "strided rhs");
    let strided_lhs = input([4, 12, 2, 961], 78).swap_dims(1, 2);
    check(strided_lhs, input([4, 2, 12, 961], 79), "strided lhs");
    // two gradients of one head view (attention's K = V): summed in that layout, which a
    // reshape back to the map then reads without a copy
    let a = input([4, 2, 12, 961], 80).swap_dims(2, 3);
    let b = input([4, 2, 12, 961], 81).swap_dims(2, 3);
    let sum = add(a.clone(), b.clone()).inner();
    let strides = unwrap(sum.clone()).layout().strides().to_vec();
    assert_eq!(
        strides,
        [2 * 12 * 961, 12 * 961, 1, 961],
        "same layout as the operands"
    );
    check(a, b, "same strided layout");
    // a tile of [65, 32] repeated over 40 samples: written through the 3-D path
    let lhs = input([1, 40, 65, 32], 74)
        .reshape([40, 65, 32])
        .detach()
        .require_grad();
    let tile = input([1, 1, 65, 32], 75)
        .reshape([65, 32])
        .detach()
        .require_grad();
    let y = add(lhs.clone(), tile.clone());
    let ry = lhs.clone() + tile.clone().unsqueeze::<3>();
    assert!(
        max_diff(y.clone().inner(), ry.clone().inner()) == 0.0,
        "tile forward"
    );
    let weights = input([1, 40, 65, 32], 76).reshape([40, 65, 32]);
    let ours = (y * weights.clone()).sum().backward();
    let theirs = (ry * weights).sum().backward();
    let d = max_diff(
        tile.grad(&ours).expect("∂tile"),
        tile.grad(&theirs).expect("∂tile"),
    );
    assert!(d < 1e-4, "∂tile: {d}");
    let d = max_diff(
        lhs.grad(&ours).expect("∂lhs"),
        lhs.grad(&theirs).expect("∂lhs"),
    );
    assert!(d == 0.0, "∂lhs: {d}");
}

/// The parallel matrix product against burn's matmul: C, ∂A and ∂B for a product above the
/// parallel threshold (160 × 150 · 150 × 170) and for one below it with a transposed operand.
#[test]
fn matrix_product_matches_burns_matmul_forward_and_backward() {
    for (m, k, n, transposed) in [(160, 150, 170, false), (9, 13, 7, true)] {
        let a = input([1, 1, m, k], 80)
            .reshape([m, k])
            .detach()
            .require_grad();
        let b = if transposed {
            input([1, 1, n, k], 81).reshape([n, k]).transpose()
        } else {
            input([1, 1, k, n], 81).reshape([k, n])
        };
        let b = b.detach().require_grad();
        let c = matrix_product(a.clone(), b.clone());
        let rc = a.clone().matmul(b.clone());
        let case = format!("{m}x{k}x{n}");
        let d = max_diff(c.clone().inner(), rc.clone().inner());
        assert!(d < 1e-3, "forward, {case}: {d}");
        let weights = input([1, 1, m, n], 82).reshape([m, n]);
        let ours = (c * weights.clone()).sum().backward();
        let theirs = (rc * weights).sum().backward();
        for (name, t) in [("A", &a), ("B", &b)] {
            let d = max_diff(
                t.grad(&ours).expect("ours"),
                t.grad(&theirs).expect("theirs"),
            );
            assert!(d < 1e-3, "∂{name}, {case}: {d}");
        }
    }
}

/// The bits of a tensor's values.
fn bits<const D: usize>(t: Tensor<Cpu, D>) -> Vec<u32> {
    let v = t.into_data().to_vec::<f32>().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

/// Backward passes asked for one gradient only (the other input tracks none: the image into
/// the stem, the predictor's constant coefficients) compute that one and give it the bits of
/// the full backward, in our kernels and in burn's composition; through autodiff, the tracked
/// input's gradient keeps its bits and the untracked one gets none.
#[test]
fn backward_computes_only_the_gradients_of_tracked_inputs() {
    type Backward = fn(Ft, Ft, Ft, [bool; 2]) -> [Option<Ft>; 2];
    let conv_flex: Backward = |x, w, g, wanted| Cpu::conv_backward(x, w, 2, g, wanted);
    let conv_composed: Backward =
        |x, w, g, wanted| composed::conv_backward::<Cpu>(x, w, 2, g, wanted);
    let mm_flex: Backward = |a, b, g, wanted| Cpu::matrix_product_backward(a, b, g, wanted);
    let mm_composed: Backward =
        |a, b, g, wanted| composed::matrix_product_backward::<Cpu>(a, b, g, wanted);
    let conv_args = [
        conv_input(false, 90).inner(),
        input([4, 3, 3, 3], 91).inner(),
        input([2, 4, 3, 4], 93).inner(),
    ]
    .map(unwrap);
    let product_args = [([8, 4], 94), ([4, 300], 95), ([8, 300], 96)]
        .map(|([r, c], seed)| unwrap(input([1, 1, r, c], seed).inner().reshape([r, c])));
    let cases: [(&str, Backward, [Ft; 3]); 4] = [
        ("conv, ours", conv_flex, conv_args.clone()),
        ("conv, composed", conv_composed, conv_args),
        ("product, ours", mm_flex, product_args.clone()),
        ("product, composed", mm_composed, product_args),
    ];
    for (case, backward, [p, q, g]) in cases {
        let full = backward(p.clone(), q.clone(), g.clone(), [true; 2]);
        let [Some(dp), Some(dq)] = full else {
            panic!("{case}: the full backward gives both gradients")
        };
        let [none, Some(only_q)] = backward(p.clone(), q.clone(), g.clone(), [false, true]) else {
            panic!("{case}: ∂q asked for")
        };
        assert!(none.is_none(), "{case}: ∂p computed though not asked for");
        let [Some(only_p), none] = backward(p, q, g, [true, false]) else {
            panic!("{case}: ∂p asked for")
        };
        assert!(none.is_none(), "{case}: ∂q computed though not asked for");
        let flat = |t: Ft| {
            use burn::tensor::{ops::FloatTensorOps, TensorMetadata};
            let len = t.shape().num_elements();
            wrap::<Cpu, 1>(Cpu::float_reshape(t, burn::tensor::Shape::new([len])))
        };
        assert_eq!(bits(flat(only_q)), bits(flat(dq)), "{case}: ∂q");
        assert_eq!(bits(flat(only_p)), bits(flat(dp)), "{case}: ∂p");
    }

    // through autodiff: the stem's weight gradient with and without a tracked image, and the
    // product's right-hand gradient with a constant left-hand side
    let (x, w) = (conv_input(false, 97), input([4, 3, 3, 3], 98));
    let weights = input([2, 4, 3, 4], 99);
    let grad_w = |x: Tensor<CpuTrain, 4>| {
        let w = w.clone().detach().require_grad();
        let g = (conv(x.clone(), w.clone(), 2) * weights.clone())
            .sum()
            .backward();
        (w.grad(&g).unwrap(), x.grad(&g))
    };
    let (tracked, dx) = grad_w(x.clone().detach().require_grad());
    let (untracked, none) = grad_w(x.detach());
    assert!(dx.is_some() && none.is_none());
    assert_eq!(bits(tracked.reshape([-1])), bits(untracked.reshape([-1])));
    let (a, b) = (
        input([1, 1, 8, 4], 100).reshape([8, 4]),
        input([1, 1, 4, 300], 101),
    );
    let b = b.reshape([4, 300]).detach().require_grad();
    let grad_b = |a: Tensor<CpuTrain, 2>| {
        let g = matrix_product(a.clone(), b.clone()).sum().backward();
        (b.grad(&g).unwrap(), a.grad(&g))
    };
    let (tracked, da) = grad_b(a.clone().detach().require_grad());
    let (untracked, none) = grad_b(a.detach());
    assert!(da.is_some() && none.is_none());
    assert_eq!(bits(tracked.reshape([-1])), bits(untracked.reshape([-1])));
}

/// The kernels with run-time SIMD dispatch, forward and gradients, give the same bits at every
/// level this CPU runs (their reductions use fixed lanes in a fixed order and no level fuses a
/// multiply and an add): the encoder's depthwise convolution (stride 1 and 2), BatchNorm and
/// dynamic ReLU, and the transformer's LayerNorm, dense layer, GELU, self-attention and
/// attention with K = V (the bridge), with a residual add. Planes of 17×19 values and rows
/// of 40 exercise full lanes and remainders.
#[test]
fn fused_kernels_give_the_same_bits_at_every_simd_level() {
    use crate::simd::{self, Level};
    let run = || -> Vec<u32> {
        let mut bits = Vec::new();
        let mut push = |t: Tensor<Cpu, 1>| {
            bits.extend(
                t.into_data()
                    .to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits()),
            )
        };
        for (name, b) in [("conv", conv_chain()), ("transformer", transformer_chain())] {
            eprintln!("{name}: {} tensors", b.len());
            b.into_iter().for_each(&mut push);
        }
        bits
    };
    simd::force(Some(Level::Scalar)).unwrap();
    let scalar = run();
    let mut levels = vec!["scalar"];
    for level in [Level::Avx2, Level::Avx512] {
        if simd::force(Some(level)).is_err() {
            continue;
        }
        let bits = run();
        levels.push(level.name());
        let differ = bits.iter().zip(&scalar).filter(|(a, b)| a != b).count();
        simd::force(None).unwrap();
        assert_eq!(
            differ,
            0,
            "{} of {} values differ at {}",
            differ,
            bits.len(),
            level.name()
        );
    }
    simd::force(None).unwrap();
    eprintln!("same bits at {levels:?}");
}

/// LayerNorm → dense (qkv) → self-attention → dense → GELU → attention of the tokens over a
/// map (K = V) → residual add: the outputs and every gradient, flattened.
fn transformer_chain() -> Vec<Tensor<Cpu, 1>> {
    let x = input([1, 3, 7, 40], 101)
        .reshape([3, 7, 40])
        .detach()
        .require_grad();
    let gamma = (input([1, 1, 1, 40], 102).reshape([40]) * 0.5)
        .detach()
        .require_grad();
    let beta = input([1, 1, 1, 40], 103)
        .reshape([40])
        .detach()
        .require_grad();
    let w_qkv = (input([1, 1, 40, 48], 104).reshape([40, 48]) * 0.2)
        .detach()
        .require_grad();
    let b_qkv = input([1, 1, 1, 48], 105)
        .reshape([48])
        .detach()
        .require_grad();
    let w_o = (input([1, 1, 16, 40], 106).reshape([16, 40]) * 0.2)
        .detach()
        .require_grad();
    let b_o = input([1, 1, 1, 40], 107)
        .reshape([40])
        .detach()
        .require_grad();
    let map = input([3, 40, 5, 3], 108).detach().require_grad();
    let h = layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-5);
    let qkv = dense(h, w_qkv.clone(), b_qkv.clone());
    let o = self_attention(qkv, 2); // [3, 7, 16]
    let y = gelu(dense(o, w_o.clone(), b_o.clone())); // [3, 7, 40]
                                                      // tokens attend to the map's pixels, K = V = the map seen as [3, 2 heads, 15, 20]
    let q = y.clone().reshape([3, 7, 2, 20]).swap_dims(1, 2);
    let kv = map.clone().reshape([3, 2, 20, 15]).swap_dims(2, 3);
    let a = attention(q, kv.clone(), kv)
        .swap_dims(1, 2)
        .reshape([3, 7, 40]);
    let out = add(y, a);
    let weights = input([1, 3, 7, 40], 109).reshape([3, 7, 40]);
    let grads = (out.clone() * weights).sum().backward();
    let flat = |t: Tensor<CpuTrain, 1>| t.inner();
    let mut values = vec![flat(out.reshape([-1]))];
    values.push(x.grad(&grads).unwrap().reshape([-1]));
    values.push(map.grad(&grads).unwrap().reshape([-1]));
    for p in [&gamma, &beta, &b_qkv, &b_o] {
        values.push(p.grad(&grads).unwrap());
    }
    for p in [&w_qkv, &w_o] {
        values.push(p.grad(&grads).unwrap().reshape([-1]));
    }
    values
}

/// Depthwise (stride 1) → BatchNorm → dynamic ReLU → depthwise (stride 2, two outputs per
/// channel): the outputs, the batch statistics and every gradient, flattened.
fn conv_chain() -> Vec<Tensor<Cpu, 1>> {
    let x = input([3, 4, 17, 19], 91).detach().require_grad();
    let w = input([8, 1, 3, 3], 92).detach().require_grad();
    let w2 = input([16, 1, 3, 3], 97).detach().require_grad();
    let gamma = (input([1, 1, 1, 8], 93).reshape([8]) * 0.5)
        .detach()
        .require_grad();
    let beta = input([1, 1, 1, 8], 94).reshape([8]).detach().require_grad();
    let coef = (input([1, 1, 3, 64], 95).reshape([3, 64]) * 0.3)
        .detach()
        .require_grad();
    let h = depthwise(x.clone(), w.clone(), 1);
    let (h, mean, var) = batch_norm_train(h, gamma.clone(), beta.clone(), 1e-5);
    let y = depthwise(dynamic_relu(h, coef.clone(), 1), w2.clone(), 2);
    let weights = input(y.dims(), 96);
    let grads = (y.clone() * weights).sum().backward();
    vec![
        y.inner().reshape([-1]),
        mean.inner(),
        var.inner(),
        x.grad(&grads).unwrap().reshape([-1]),
        w.grad(&grads).unwrap().reshape([-1]),
        w2.grad(&grads).unwrap().reshape([-1]),
        gamma.grad(&grads).unwrap(),
        beta.grad(&grads).unwrap(),
        coef.grad(&grads).unwrap().reshape([-1]),
    ]
}
