//! The exact GELU and its derivative on the host, element-wise in parallel chunks.
//!
//! Φ(x) = ½(1 + erf(x/√2)) uses Abramowitz & Stegun 7.1.26 (|error of erf| ≤ 1.5·10⁻⁷), whose
//! factor e^(−z²) with z = x/√2 is e^(−x²/2), the same exponential as φ(x): one branch-free
//! exponential per element serves both, and the loops vectorise (libm's `erff`, which burn
//! calls, is a branchy scalar routine and was a tenth of a training step).

use burn::backend::flex::FlexTensor;
use std::mem::MaybeUninit;

use super::matmul::contiguous;
use super::{filled, tensor};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// e^x for x ≤ 0 (clamped at −87), branch-free: x = n·ln 2 + r with n rounded by the
/// 1.5·2²³ trick, e^r by Cephes' degree-6 polynomial on |r| ≤ ½ln 2, 2ⁿ from the exponent bits.
#[inline(always)]
pub(super) fn exp_nonpositive(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((ni + 127) << 23) as u32)
}

/// (Φ(x), φ(x)): the standard normal CDF and density.
#[inline(always)]
fn cdf_pdf(x: f32) -> (f32, f32) {
    let e = exp_nonpositive(-0.5 * x * x);
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let erf = (1.0 - poly * e).copysign(x);
    (0.5 * (1.0 + erf), FRAC_1_SQRT_2PI * e)
}

crate::multiversion! {
    /// `out[i] = x[i]·Φ(x[i])`.
    fn forward_chunk(out: &mut [MaybeUninit<f32>], xs: &[f32]) {
        for (o, &v) in out.iter_mut().zip(xs) {
            *o = MaybeUninit::new(v * cdf_pdf(v).0);
        }
    }
}

crate::multiversion! {
    /// `out[i] = g[i]·(Φ(x[i]) + x[i]·φ(x[i]))`.
    fn backward_chunk(out: &mut [MaybeUninit<f32>], xs: &[f32], gs: &[f32]) {
        for ((o, &v), &g) in out.iter_mut().zip(xs).zip(gs) {
            let (cdf, pdf) = cdf_pdf(v);
            *o = MaybeUninit::new(g * (cdf + v * pdf));
        }
    }
}

/// y = x·Φ(x); `None` for other element types.
pub fn forward(x: &FlexTensor) -> Option<FlexTensor> {
    let x = contiguous(x)?;
    let xs = x.storage::<f32>();
    let y = filled(xs.len(), CHUNK, |start, out| {
        forward_chunk(out, &xs[start..])
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
    let dx = filled(xs.len(), CHUNK, |start, out| {
        backward_chunk(out, &xs[start..], &gs[start..])
    });
    Some(tensor(dx, x.layout().shape().iter().copied().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free exponential and Φ, φ against libm (f64) over [−10, 10] (and exp to −100):
    /// Φ within 5·10⁻⁷ (A&S 7.1.26 plus f32 rounding), φ within 10⁻⁷, e^x within 4·10⁻⁷ relative.
    #[test]
    fn exp_cdf_pdf_match_libm() {
        for i in 0..=20_000 {
            let x = -10.0 + i as f32 * 1e-3;
            let (cdf, pdf) = cdf_pdf(x);
            let want_cdf = 0.5 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2));
            let want_pdf = (-0.5 * (x as f64).powi(2)).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (cdf as f64 - want_cdf).abs() < 5e-7,
                "Φ({x}) = {cdf} vs {want_cdf}"
            );
            assert!(
                (pdf as f64 - want_pdf).abs() < 1e-7,
                "φ({x}) = {pdf} vs {want_pdf}"
            );
            let y = x * 10.0 - 0.5;
            if y <= 0.0 {
                let want = (y as f64).exp();
                let got = exp_nonpositive(y) as f64;
                assert!(
                    (got - want).abs() <= 4e-7 * want + 1e-37,
                    "exp({y}) = {got} vs {want}"
                );
            }
        }
    }
}
