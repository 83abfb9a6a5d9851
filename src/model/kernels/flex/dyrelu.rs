//! Dynamic ReLU `y = max(a₁x + b₁, a₂x + b₂)` with coefficients per sample and channel, on the
//! host: planes in parallel forward and backward (each plane's four coefficient gradients are
//! sums over that plane only, so the result does not depend on threads).

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::matmul::contiguous;
use super::tensor;
use super::view::View;

/// (a₁, b₁, a₂, b₂) of sample `i`, channel `ch` from the raw coefficients `coef [n, 8c]` of
/// `set`: a₁ = 1 + Δa₁, b₁ = ½Δb₁, a₂ = Δa₂, b₂ = ½Δb₂.
#[inline]
fn coefficients(coef: &[f32], c: usize, set: usize, i: usize, ch: usize) -> [f32; 4] {
    let at = |k: usize| coef[i * 8 * c + (set * 4 + k) * c + ch];
    [1.0 + at(0), 0.5 * at(1), at(2), 0.5 * at(3)]
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
    let mut y = vec![0f32; n * c * hw];
    y.par_chunks_mut(hw.max(1))
        .enumerate()
        .for_each(|(row, out)| {
            let (i, ch) = (row / c, row % c);
            let [a1, b1, a2, b2] = coefficients(coef, c, set, i, ch);
            let mut buf = Vec::new();
            for (o, &v) in out.iter_mut().zip(xv.plane(i, ch, &mut buf)) {
                *o = (a1 * v + b1).max(a2 * v + b2);
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
    let mut dx = vec![0f32; n * c * hw];
    let sums: Vec<[f32; 4]> = dx
        .par_chunks_mut(hw.max(1))
        .enumerate()
        .map(|(row, out)| {
            let (i, ch) = (row / c, row % c);
            let [a1, b1, a2, b2] = coefficients(coef, c, set, i, ch);
            let (mut bx, mut bg) = (Vec::new(), Vec::new());
            let xs = xv.plane(i, ch, &mut bx);
            let gs = gv.plane(i, ch, &mut bg);
            // [Σ g·x, Σ g] where the first line wins, then where the second does
            let mut s = [0f32; 4];
            for ((o, &v), &g) in out.iter_mut().zip(xs).zip(gs) {
                if a1 * v + b1 >= a2 * v + b2 {
                    *o = g * a1;
                    s[0] += g * v;
                    s[1] += g;
                } else {
                    *o = g * a2;
                    s[2] += g * v;
                    s[3] += g;
                }
            }
            s
        })
        .collect();
    let mut dcoef = vec![0f32; n * 8 * c];
    for (row, s) in sums.iter().enumerate() {
        let (i, ch) = (row / c.max(1), row % c.max(1));
        for (k, scale) in [1.0, 0.5, 1.0, 0.5].into_iter().enumerate() {
            dcoef[i * 8 * c + (set * 4 + k) * c + ch] = s[k] * scale;
        }
    }
    Some([tensor(dx, vec![n, c, h, w]), tensor(dcoef, vec![n, 8 * c])])
}
