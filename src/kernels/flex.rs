//! The CPU backend's fused kernels: host loops and GEMMs over the tensors' own layout (no
//! strided iterator, no broadcast temporaries), in parallel with rayon. Anything the loops do
//! not handle (another element type or rank) falls back to burn's composition.

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{Shape, TensorData};

use std::sync::Arc;

use super::heat::HeatPlan;
use super::{composed, Kernels};

mod adamw;
mod add;
mod attention;
mod batch_norm;
mod conv;
mod dense;
mod depthwise;
mod dyrelu;
mod gelu;
mod geometry;
mod heat;
mod layer_norm;
mod masked_mse;
mod matmul;
mod ordered;
mod pointwise;
mod view;

pub use matmul::{matmul_strided, Operand, Strided};

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Planes of `hw` values per parallel task in the per-plane kernels (the encoder's planes
/// hold 4 to 64 values: one task each would cost more to schedule than to compute).
fn planes_per_task(hw: usize) -> usize {
    (4096 / hw.max(1)).max(1)
}

/// A `[n, c, h, w]` tensor from values laid out channel-major (`[c, n, h, w]` in memory).
fn channel_major(values: Vec<f32>, [n, c, h, w]: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, vec![c, n, h, w])).permute(&[1, 0, 2, 3])
}

/// A buffer of `len` values written by `fill(start, chunk)` in parallel chunks of `chunk`
/// values (the last may be shorter), `start` being the chunk's first index. The chunks are
/// written straight into the allocation: no zeroing pass first. `fill` must write every
/// slot of the chunk it is given.
fn filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut v: Vec<f32> = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, c)| fill(i * chunk.max(1), c));
    // SAFETY: every chunk of the first `len` elements was handed to `fill`, which writes all
    // of its chunk (the contract above; each caller's loop runs over its whole chunk).
    unsafe { v.set_len(len) };
    v
}

/// The output slots `chunk` set to zero, as values to accumulate into: zeroing each chunk in
/// the task that then fills it keeps the zeros in cache (a separate zeroing pass first is
/// one more trip through memory for the whole buffer).
fn zeroed(chunk: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    chunk.fill(std::mem::MaybeUninit::new(0.0));
    // SAFETY: every element was just initialised, and MaybeUninit<f32> has f32's layout.
    unsafe { &mut *(chunk as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) }
}

/// `len` output slots without values yet, for a kernel that writes every one of them (a
/// GEMM that does not accumulate, a per-head copy): no zeroing pass that the kernel would
/// overwrite. At batch 256 that pass was 220 MB per step, 7 % of the step's samples.
fn unwritten(len: usize) -> Vec<std::mem::MaybeUninit<f32>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: MaybeUninit needs no initialisation, and the capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// The values of a buffer from [`unwritten`].
///
/// # Safety
/// Every slot must have been written.
unsafe fn assume_written(v: Vec<std::mem::MaybeUninit<f32>>) -> Vec<f32> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: MaybeUninit<f32> has f32's size and alignment, so the allocation is the same;
    // every slot is initialised (the caller's promise).
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<f32>(), v.len(), v.capacity()) }
}

/// Copies `src` into the output slots `dst` (as many as both have).
fn put(dst: &mut [std::mem::MaybeUninit<f32>], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = std::mem::MaybeUninit::new(s);
    }
}

/// `len` zeros for an output buffer. Large buffers are zeroed in parallel chunks: a freshly
/// allocated buffer otherwise gets one serial `memset` on the thread that issues the kernel,
/// while the other cores wait (3.5 % of a batch-256 step's samples were that memset).
fn zeros(len: usize) -> Vec<f32> {
    const CHUNK: usize = 1 << 15;
    if len <= CHUNK {
        return vec![0.0; len];
    }
    filled(len, CHUNK, |_, c| {
        zeroed(c);
    })
}

fn vector(t: &FlexTensor) -> Vec<f32> {
    t.clone().into_data().iter::<f32>().collect()
}

impl Kernels for Flex {
    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f64,
    ) -> [FlexTensor; 3] {
        batch_norm::forward(&x, &gamma, &beta, eps)
            .unwrap_or_else(|| composed::batch_norm_train::<Flex>(x, gamma, beta, eps))
    }

    fn batch_norm_inference(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        eps: f64,
    ) -> FlexTensor {
        batch_norm::inference(&x, &gamma, &beta, &mean, &var, eps).unwrap_or_else(|| {
            composed::batch_norm_inference::<Flex>(x, gamma, beta, mean, var, eps)
        })
    }

    fn batch_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        eps: f64,
        grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        batch_norm::backward(&x, &gamma, &mean, &var, eps, &grad).unwrap_or_else(|| {
            composed::batch_norm_backward::<Flex>(x, gamma, mean, var, eps, grad)
        })
    }

    fn masked_mse(
        pred: FlexTensor,
        target: FlexTensor,
        mask: FlexTensor,
        masked: usize,
    ) -> FlexTensor {
        masked_mse::forward(&pred, &target, &mask, masked)
            .unwrap_or_else(|| composed::masked_mse::<Flex>(pred, target, mask, masked))
    }

    fn masked_mse_backward(
        pred: FlexTensor,
        target: FlexTensor,
        mask: FlexTensor,
        masked: usize,
        grad: FlexTensor,
    ) -> FlexTensor {
        masked_mse::backward(&pred, &target, &mask, masked, &grad).unwrap_or_else(|| {
            composed::masked_mse_backward::<Flex>(pred, target, mask, masked, grad)
        })
    }

    fn matrix_product(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        matmul::product(&a, &b).unwrap_or_else(|| {
            <Flex as burn::tensor::ops::FloatTensorOps<Flex>>::float_matmul(a, b)
        })
    }

    fn matrix_product_backward(
        a: FlexTensor,
        b: FlexTensor,
        grad: FlexTensor,
        wanted: [bool; 2],
    ) -> [Option<FlexTensor>; 2] {
        matmul::product_backward(&a, &b, &grad, wanted)
            .unwrap_or_else(|| composed::matrix_product_backward::<Flex>(a, b, grad, wanted))
    }

    fn add(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
        add::forward(&lhs, &rhs).unwrap_or_else(|| composed::add::<Flex>(lhs, rhs))
    }

    fn add_backward(rhs_shape: Shape, grad: FlexTensor) -> [FlexTensor; 2] {
        add::backward(&rhs_shape, &grad)
            .unwrap_or_else(|| composed::add_backward::<Flex>(rhs_shape, grad))
    }

    fn adamw_step(
        param: FlexTensor,
        grad: FlexTensor,
        moments: Option<[FlexTensor; 2]>,
        step: &super::AdamWStep,
    ) -> [FlexTensor; 3] {
        if adamw::applies(&param, &grad, moments.as_ref()) {
            adamw::step(param, &grad, moments, step)
        } else {
            composed::adamw_step::<Flex>(param, grad, moments, step)
        }
    }

    fn heat_predict(z: FlexTensor, mats: FlexTensor, plan: Arc<HeatPlan>) -> FlexTensor {
        heat::forward(&z, &mats, &plan)
            .unwrap_or_else(|| composed::heat_predict::<Flex>(z, mats, &plan))
    }

    fn heat_predict_backward(
        z: FlexTensor,
        mats: FlexTensor,
        plan: Arc<HeatPlan>,
        grad: FlexTensor,
    ) -> [FlexTensor; 2] {
        heat::backward(&z, &mats, &plan, &grad)
            .unwrap_or_else(|| composed::heat_predict_backward::<Flex>(z, mats, &plan, grad))
    }

    fn pointwise(weight: FlexTensor, x: FlexTensor) -> FlexTensor {
        pointwise::forward(&weight, &x).unwrap_or_else(|| composed::pointwise::<Flex>(weight, x))
    }

    fn pointwise_backward(weight: FlexTensor, x: FlexTensor, grad: FlexTensor) -> [FlexTensor; 2] {
        pointwise::backward(&weight, &x, &grad)
            .unwrap_or_else(|| composed::pointwise_backward::<Flex>(weight, x, grad))
    }

    fn sdpa(q: FlexTensor, k: FlexTensor, v: FlexTensor) -> [FlexTensor; 2] {
        attention::forward(&q, &k, &v).unwrap_or_else(|| composed::attention::<Flex>(q, k, v))
    }

    fn sdpa_backward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        probs: FlexTensor,
        grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        attention::backward(&q, &k, &v, &probs, &grad)
            .unwrap_or_else(|| composed::attention_backward::<Flex>(q, k, v, probs, grad))
    }

    fn self_attention(qkv: FlexTensor, heads: usize) -> [FlexTensor; 2] {
        attention::self_forward(&qkv, heads)
            .unwrap_or_else(|| composed::self_attention::<Flex>(qkv, heads))
    }

    fn self_attention_backward(
        qkv: FlexTensor,
        heads: usize,
        probs: FlexTensor,
        grad: FlexTensor,
    ) -> FlexTensor {
        attention::self_backward(&qkv, heads, &probs, &grad)
            .unwrap_or_else(|| composed::self_attention_backward::<Flex>(qkv, heads, probs, grad))
    }

    fn layer_norm_rows(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f64,
    ) -> [FlexTensor; 3] {
        layer_norm::forward(&x, &gamma, &beta, eps)
            .unwrap_or_else(|| composed::layer_norm_rows::<Flex>(x, gamma, beta, eps))
    }

    fn layer_norm_rows_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        rstd: FlexTensor,
        grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        layer_norm::backward(&x, &gamma, &mean, &rstd, &grad).unwrap_or_else(|| {
            composed::layer_norm_rows_backward::<Flex>(x, gamma, mean, rstd, grad)
        })
    }

    fn gelu_exact(x: FlexTensor) -> FlexTensor {
        gelu::forward(&x)
            .unwrap_or_else(|| <Flex as burn::tensor::ops::ActivationOps<Flex>>::gelu(x))
    }

    fn gelu_exact_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        gelu::backward(&x, &grad).unwrap_or_else(|| {
            <Flex as burn::tensor::ops::ActivationOps<Flex>>::gelu_backward(x, grad)
        })
    }

    fn dense(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        dense::forward(&x, &weight, &bias)
            .unwrap_or_else(|| composed::dense::<Flex>(x, weight, bias))
    }

    fn dense_backward(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> [FlexTensor; 3] {
        dense::backward(&x, &weight, &grad)
            .unwrap_or_else(|| composed::dense_backward::<Flex>(x, weight, grad))
    }

    fn conv(x: FlexTensor, weight: FlexTensor, stride: usize) -> FlexTensor {
        conv::forward(&x, &weight, stride)
            .unwrap_or_else(|| composed::conv::<Flex>(x, weight, stride))
    }

    fn conv_backward(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        grad: FlexTensor,
        wanted: [bool; 2],
    ) -> [Option<FlexTensor>; 2] {
        conv::backward(&x, &weight, stride, &grad, wanted)
            .unwrap_or_else(|| composed::conv_backward::<Flex>(x, weight, stride, grad, wanted))
    }

    fn depthwise(x: FlexTensor, weight: FlexTensor, stride: usize) -> FlexTensor {
        depthwise::forward(&x, &weight, stride)
            .unwrap_or_else(|| composed::depthwise::<Flex>(x, weight, stride))
    }

    fn depthwise_backward(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        grad: FlexTensor,
    ) -> [FlexTensor; 2] {
        depthwise::backward(&x, &weight, stride, &grad)
            .unwrap_or_else(|| composed::depthwise_backward::<Flex>(x, weight, stride, grad))
    }

    fn dynamic_relu(x: FlexTensor, coef: FlexTensor, set: usize) -> FlexTensor {
        dyrelu::forward(&x, &coef, set)
            .unwrap_or_else(|| composed::dynamic_relu::<Flex>(x, coef, set))
    }

    fn dynamic_relu_backward(
        x: FlexTensor,
        coef: FlexTensor,
        set: usize,
        grad: FlexTensor,
    ) -> [FlexTensor; 2] {
        dyrelu::backward(&x, &coef, set, &grad)
            .unwrap_or_else(|| composed::dynamic_relu_backward::<Flex>(x, coef, set, grad))
    }
}
