//! Dynamic ReLU `y = max(a₁x + b₁, a₂x + b₂)` with coefficients per sample and channel, on the
//! host: planes in parallel forward and backward (each plane's four coefficient gradients are
//! sums over that plane only, so the result does not depend on threads).

use burn::backend::flex::FlexTensor;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gelu::exp_nonpositive;
use super::matmul::contiguous;
use super::view::View;
use super::{assume_written, filled, tensor, unwritten, zeroed};
use crate::simd::{self, LANES};

/// Δ = 2σ(ℓ) − 1 = sign(ℓ)·(1 − e)/(1 + e) with e = e^(−|ℓ|) (branch-free; libm's tanh per
/// channel plane was 4 % of a training step).
#[inline(always)]
fn delta(logit: f32) -> f32 {
    let e = exp_nonpositive(-logit.abs());
    ((1.0 - e) / (1.0 + e)).copysign(logit)
}

/// (Δa₁, Δb₁, Δa₂, Δb₂) of every sample and channel (row i·c + ch) from the logits
/// `coef [n, 8c]` of `set`.
fn deltas(coef: &[f32], n: usize, c: usize, set: usize) -> Vec<[f32; 4]> {
    (0..n * c)
        .into_par_iter()
        .with_min_len(1024)
        .map(|row| {
            let (i, ch) = (row / c, row % c);
            std::array::from_fn(|k| delta(coef[i * 8 * c + (set * 4 + k) * c + ch]))
        })
        .collect()
}

/// (a₁, b₁, a₂, b₂) from the deltas: a₁ = 1 + Δa₁, b₁ = ½Δb₁, a₂ = Δa₂, b₂ = ½Δb₂.
#[inline]
fn lines([da1, db1, da2, db2]: [f32; 4]) -> [f32; 4] {
    [1.0 + da1, 0.5 * db1, da2, 0.5 * db2]
}

crate::multiversion! {
    /// One plane of y = max(a₁x + b₁, a₂x + b₂).
    fn plane_forward(out: &mut [MaybeUninit<f32>], xs: &[f32], l: [f32; 4]) {
        let [a1, b1, a2, b2] = l;
        for (o, &v) in out.iter_mut().zip(xs) {
            *o = MaybeUninit::new((a1 * v + b1).max(a2 * v + b2));
        }
    }
}

/// ∂x of one value x with upstream gradient g, and its terms of [Σ g·x, Σ g] where the
/// first line wins, then where the second does (branch-free).
#[inline(always)]
fn value_backward(v: f32, g: f32, [a1, b1, a2, b2]: [f32; 4]) -> (f32, [f32; 4]) {
    let first = a1 * v + b1 >= a2 * v + b2;
    let dx = g * if first { a1 } else { a2 };
    let (gx, g1) = if first { (g * v, g) } else { (0.0, 0.0) };
    let (gx2, g2) = if first { (0.0, 0.0) } else { (g * v, g) };
    (dx, [gx, g1, gx2, g2])
}

crate::multiversion! {
    /// One plane of ∂x, and [Σ g·x, Σ g] where the first line wins, then where the second
    /// does (in [`LANES`] lanes).
    fn plane_backward(out: &mut [f32], xs: &[f32], gs: &[f32], l: [f32; 4]) -> [f32; 4] {
        let n = out.len().min(xs.len()).min(gs.len());
        let (out, xs, gs) = (&mut out[..n], &xs[..n], &gs[..n]);
        let mut s = [[0f32; LANES]; 4];
        let mut lanes = |out: &mut [f32], xs: &[f32], gs: &[f32]| {
            for lane in 0..LANES {
                let (dx, terms) = value_backward(xs[lane], gs[lane], l);
                out[lane] = dx;
                for (sum, t) in s.iter_mut().zip(terms) {
                    sum[lane] += t;
                }
            }
        };
        let full = n / LANES * LANES;
        for base in (0..full).step_by(LANES) {
            let end = base + LANES;
            lanes(&mut out[base..end], &xs[base..end], &gs[base..end]);
        }
        if full < n {
            // the ragged end (all of a plane smaller than the lanes: most planes here are 2×2
            // or 4×4) as one zero-padded vector; the padding adds 0 to the sums
            let rest = n - full;
            let (mut xv, mut gv, mut ov) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
            xv[..rest].copy_from_slice(&xs[full..]);
            gv[..rest].copy_from_slice(&gs[full..]);
            lanes(&mut ov, &xv, &gv);
            out[full..].copy_from_slice(&ov[..rest]);
        }
        s.map(simd::fold)
    }
}

/// `y`; `None` for other element types or shapes.
pub fn forward(x: &FlexTensor, coef: &FlexTensor, set: usize) -> Option<FlexTensor> {
    let xv = View::of(x)?;
    let [n, c, h, w] = xv.shape;
    let coef = contiguous(coef)?;
    let coef = coef.storage::<f32>();
    if coef.len() != n * 8 * c || set > 1 {
        return None;
    }
    let hw = h * w;
    let table = deltas(coef, n, c, set);
    let per_task = super::planes_per_task(hw);
    let y = filled(n * c * hw, hw * per_task, |start, out| {
        let mut buf = Vec::new();
        for (k, plane) in out.chunks_mut(hw.max(1)).enumerate() {
            let row = start / hw.max(1) + k;
            let (i, ch) = (row / c, row % c);
            plane_forward(plane, xv.plane(i, ch, &mut buf), lines(table[row]));
        }
    });
    Some(tensor(y, vec![n, c, h, w]))
}

/// `[∂x, ∂coef]` given ∂y; ∂coef is zero outside the columns of `set`.
pub fn backward(
    x: &FlexTensor,
    coef: &FlexTensor,
    set: usize,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 2]> {
    let (xv, gv) = (View::of(x)?, View::of(grad)?);
    let [n, c, h, w] = xv.shape;
    let coef = contiguous(coef)?;
    let coef = coef.storage::<f32>();
    if coef.len() != n * 8 * c || gv.shape != xv.shape || set > 1 {
        return None;
    }
    let hw = h * w;
    let table = deltas(coef, n, c, set);
    let mut dx = unwritten(n * c * hw);
    let mut sums = vec![[0f32; 4]; n * c];
    let per_task = super::planes_per_task(hw);
    dx.par_chunks_mut((hw * per_task).max(1))
        .zip(sums.par_chunks_mut(per_task))
        .enumerate()
        .for_each(|(task, (out, sums))| {
            let out = zeroed(out);
            let (mut bx, mut bg) = (Vec::new(), Vec::new());
            for (k, (plane, sum)) in out.chunks_mut(hw.max(1)).zip(sums).enumerate() {
                let row = task * per_task + k;
                let (i, ch) = (row / c, row % c);
                let xs = xv.plane(i, ch, &mut bx);
                let gs = gv.plane(i, ch, &mut bg);
                *sum = plane_backward(plane, xs, gs, lines(table[row]));
            }
        });
    // SAFETY: every chunk was zeroed by its task (none when the planes are empty).
    let dx = unsafe { assume_written(dx) };
    let dcoef = filled(n * 8 * c, 8 * c.max(1), |start, out| {
        // the other set's logits get no gradient: zero
        let (i, out) = (start / (8 * c.max(1)), zeroed(out));
        for ch in 0..c {
            let (s, delta) = (sums[i * c + ch], table[i * c + ch]);
            for (k, scale) in [1.0, 0.5, 1.0, 0.5].into_iter().enumerate() {
                // through Δ = 2σ(ℓ) − 1: ∂ℓ = ∂Δ · ½(1 − Δ²)
                let slope = 0.5 * (1.0 - delta[k] * delta[k]);
                out[(set * 4 + k) * c + ch] = s[k] * scale * slope;
            }
        }
    });
    Some([tensor(dx, vec![n, c, h, w]), tensor(dcoef, vec![n, 8 * c])])
}
