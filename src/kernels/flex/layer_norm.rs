//! LayerNorm over the rows of `[rows, d]` on the host: rows in parallel; the parameter
//! gradients are summed over fixed blocks of rows and then across blocks in order, so the
//! result does not depend on the number of threads.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::matmul::contiguous;
use super::{assume_written, tensor, unwritten, vector, zeroed, zeros};
use crate::simd::LANES;

/// Rows per block of the parameter-gradient sums.
const BLOCK: usize = 64;

/// `[rows, d]` of a rank-2 tensor.
fn matrix_dims(t: &FlexTensor) -> Option<[usize; 2]> {
    match t.layout().shape().iter().copied().collect::<Vec<_>>()[..] {
        [rows, d] => Some([rows, d]),
        _ => None,
    }
}

crate::multiversion! {
    /// One row: `y = (x − μ)·rstd·γ + β` with μ and rstd = 1/√(σ² + ε) over the row (sums in
    /// [`LANES`] lanes); returns (μ, rstd).
    fn row_forward(out: &mut [f32], row: &[f32], g: &[f32], b: &[f32], eps: f32) -> (f32, f32) {
        let d = row.len() as f64;
        let mean = crate::simd::sum(row) / d;
        let var = crate::simd::sum_sq_dev(row, mean) / d;
        let (mean, rstd) = (mean as f32, 1.0 / (var as f32 + eps).sqrt());
        for (((o, &v), &gm), &bt) in out.iter_mut().zip(row).zip(g).zip(b) {
            *o = (v - mean) * rstd * gm + bt;
        }
        (mean, rstd)
    }
}

crate::multiversion! {
    /// One row of ∂x given `[x, ∂y, γ]` and (μ, rstd), adding its share to `[∂γ, ∂β]`:
    /// `∂x = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` with ĝ = ∂y·γ and x̂ = (x − μ)·rstd.
    fn row_backward(
        out: &mut [f32],
        rows: [&[f32]; 3],
        stat: [f32; 2],
        sums: [&mut [f32]; 2],
        gg: &mut [f32],
    ) {
        let [row, grow, g] = rows;
        let [m, s] = stat;
        let [dgamma, dbeta] = sums;
        let d = out.len();
        let (row, grow, g, gg) = (&row[..d], &grow[..d], &g[..d], &mut gg[..d]);
        let (dgamma, dbeta) = (&mut dgamma[..d], &mut dbeta[..d]);
        for j in 0..d {
            let xhat = (row[j] - m) * s;
            dgamma[j] += grow[j] * xhat;
            dbeta[j] += grow[j];
            gg[j] = grow[j] * g[j];
        }
        let mut lanes = [[0f32; LANES]; 2];
        for (gc, xc) in gg.chunks(LANES).zip(row.chunks(LANES)) {
            for (l, (&gj, &xj)) in gc.iter().zip(xc).enumerate() {
                lanes[0][l] += gj;
                lanes[1][l] += gj * ((xj - m) * s);
            }
        }
        let [sum_gg, sum_ggx] = lanes.map(crate::simd::fold);
        let (mean_gg, mean_ggx) = (sum_gg / d as f32, sum_ggx / d as f32);
        for j in 0..d {
            let xhat = (row[j] - m) * s;
            out[j] = s * (gg[j] - mean_gg - xhat * mean_ggx);
        }
    }
}

/// `[y, mean, rstd]`; `None` for other element types or ranks.
pub fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    eps: f64,
) -> Option<[FlexTensor; 3]> {
    let x = contiguous(x)?;
    let [rows, d] = matrix_dims(&x)?;
    let xs = x.storage::<f32>();
    let (g, b) = (vector(gamma), vector(beta));
    let mut y = unwritten(rows * d);
    let mut stats = vec![(0f32, 0f32); rows];
    if d > 0 {
        y.par_chunks_mut(d)
            .zip(stats.par_iter_mut())
            .enumerate()
            .for_each(|(r, (out, stat))| {
                let out = zeroed(out);
                *stat = row_forward(out, &xs[r * d..(r + 1) * d], &g, &b, eps as f32);
            });
    }
    // SAFETY: every row was zeroed by its task (there are none when d = 0).
    let y = unsafe { assume_written(y) };
    let (means, rstds): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    Some([
        tensor(y, vec![rows, d]),
        tensor(means, vec![rows]),
        tensor(rstds, vec![rows]),
    ])
}

/// `[∂x, ∂γ, ∂β]` given the forward's row statistics and ∂y.
pub fn backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    mean: &FlexTensor,
    rstd: &FlexTensor,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 3]> {
    let (x, grad) = (contiguous(x)?, contiguous(grad)?);
    let [rows, d] = matrix_dims(&x)?;
    let (xs, gs) = (x.storage::<f32>(), grad.storage::<f32>());
    let (g, mu, rs) = (vector(gamma), vector(mean), vector(rstd));
    let mut dx = unwritten(rows * d);
    let mut partial = zeros(rows.div_ceil(BLOCK) * 2 * d);
    if d > 0 {
        dx.par_chunks_mut(BLOCK * d)
            .zip(partial.par_chunks_mut(2 * d))
            .enumerate()
            .for_each(|(blk, (dx_blk, part))| {
                let dx_blk = zeroed(dx_blk);
                let (dgamma, dbeta) = part.split_at_mut(d);
                let mut gg = zeros(d);
                for (k, out) in dx_blk.chunks_mut(d).enumerate() {
                    let r = blk * BLOCK + k;
                    let (row, grow) = (&xs[r * d..(r + 1) * d], &gs[r * d..(r + 1) * d]);
                    let rows = [row, grow, &g];
                    row_backward(out, rows, [mu[r], rs[r]], [dgamma, dbeta], &mut gg);
                }
            });
    }
    // SAFETY: every block was zeroed by its task (there are none when d = 0).
    let dx = unsafe { assume_written(dx) };
    let mut dgamma = zeros(d);
    let mut dbeta = zeros(d);
    for part in partial.chunks(2 * d.max(1)) {
        for j in 0..d {
            dgamma[j] += part[j];
            dbeta[j] += part[d + j];
        }
    }
    Some([
        tensor(dx, vec![rows, d]),
        tensor(dgamma, vec![d]),
        tensor(dbeta, vec![d]),
    ])
}
