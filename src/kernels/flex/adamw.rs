//! One AdamW step (Loshchilov & Hutter 2019, Alg. 2; the formulas are on
//! [`crate::kernels::AdamWStep`]) in a single parallel pass that reads each element's θ, g, m
//! and v once and writes θ', m', v' over θ, m and v, with burn's `AdamW` arithmetic in its
//! order, so the result has the same bits. burn composes the step from about a dozen
//! element-wise operations, each a serial pass through memory.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorMetadata};
use rayon::prelude::*;

use super::tensor;
use crate::kernels::AdamWStep;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// Whether [`step`] handles these tensors: f32, all of θ's size.
pub fn applies(param: &FlexTensor, grad: &FlexTensor, moments: Option<&[FlexTensor; 2]>) -> bool {
    let n = param.shape().num_elements();
    let fits = |t: &FlexTensor| t.dtype() == DType::F32 && t.shape().num_elements() == n;
    fits(param) && fits(grad) && moments.is_none_or(|[m, v]| fits(m) && fits(v))
}

/// `t` contiguous, with its own buffer to write into: the buffer itself when no other
/// tensor shares it (the optimiser's moments, and θ once the step's graph is gone), else
/// a copy.
fn owned(t: FlexTensor) -> FlexTensor {
    let c = t.to_contiguous();
    drop(t);
    c
}

/// `[θ', m', v']`, written over θ, m and v where they are not shared (see [`applies`]).
pub fn step(
    param: FlexTensor,
    grad: &FlexTensor,
    moments: Option<[FlexTensor; 2]>,
    step: &AdamWStep,
) -> [FlexTensor; 3] {
    let g = grad.to_contiguous();
    let g = g.storage::<f32>();
    let n = g.len();
    let shape: Vec<usize> = param.shape().iter().copied().collect();
    let first = moments.is_none();
    let [mut theta, mut m, mut v] = match moments {
        Some([m, v]) => [owned(param), owned(m), owned(v)],
        None => [
            owned(param),
            tensor(vec![0.0; n], shape.clone()),
            tensor(vec![0.0; n], shape),
        ],
    };
    let [f1, f2, c1, c2] = step.factors();
    let (b1, b2, eps, lr) = (step.beta_1, step.beta_2, step.epsilon, step.lr as f32);
    let decay = step.decay();
    theta.storage_mut::<f32>()[..n]
        .par_chunks_mut(CHUNK)
        .zip(m.storage_mut::<f32>()[..n].par_chunks_mut(CHUNK))
        .zip(v.storage_mut::<f32>()[..n].par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((theta, m), v), g)| {
            for i in 0..g.len() {
                let gi = g[i];
                // burn's first step starts from (1 − β)·g, not from β·0 + (1 − β)·g
                let (mi, vi) = if first {
                    (gi * f1, (gi * gi) * f2)
                } else {
                    (m[i] * b1 + gi * f1, v[i] * b2 + (gi * gi) * f2)
                };
                let delta = (mi / c1) / ((vi / c2).sqrt() + eps);
                let x = match decay {
                    Some(k) => theta[i] * k,
                    None => theta[i],
                };
                theta[i] = x - delta * lr;
                m[i] = mi;
                v[i] = vi;
            }
        });
    [theta, m, v]
}
