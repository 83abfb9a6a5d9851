//! The exact GELU and its derivative on the host, element-wise in parallel chunks, with the same
//! erf (libm's `erff`) as burn-flex's own single-threaded GELU.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::matmul::contiguous;
use super::tensor;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// Φ(x), the standard normal CDF.
#[inline]
fn cdf(x: f32) -> f32 {
    0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// y = x·Φ(x); `None` for other element types.
pub fn forward(x: &FlexTensor) -> Option<FlexTensor> {
    let x = contiguous(x)?;
    let xs = x.storage::<f32>();
    let mut y = vec![0f32; xs.len()];
    y.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .for_each(|(out, src)| {
            for (o, &v) in out.iter_mut().zip(src) {
                *o = v * cdf(v);
            }
        });
    Some(tensor(y, x.layout().shape().iter().copied().collect()))
}

/// ∂x = ∂y·(Φ(x) + x·φ(x)).
pub fn backward(x: &FlexTensor, grad: &FlexTensor) -> Option<FlexTensor> {
    let (x, grad) = (contiguous(x)?, contiguous(grad)?);
    let (xs, gs) = (x.storage::<f32>(), grad.storage::<f32>());
    if xs.len() != gs.len() {
        return None;
    }
    let mut dx = vec![0f32; xs.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
        .for_each(|(out, (src, g))| {
            for ((o, &v), &g) in out.iter_mut().zip(src).zip(g) {
                let pdf = FRAC_1_SQRT_2PI * (-0.5 * v * v).exp();
                *o = g * (cdf(v) + v * pdf);
            }
        });
    Some(tensor(dx, x.layout().shape().iter().copied().collect()))
}
