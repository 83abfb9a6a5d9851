//! The heat-equation prediction of a batch on the host ([`super::super::heat::HeatPlan`]):
//! z_q is read token-major once, every matrix's source rows are gathered into one block and
//! multiplied as one GEMM, `Y_k = X_k M_kᵀ`, and the products land in their grid rows. The
//! backward pass runs the same maps the other way: `∂X_k = ∂Y_k M_k` (scattered back onto
//! the source rows, summed over every move that read them) and `∂M_k = ∂Y_kᵀ X_k`. burn's
//! composition slices each block, multiplies it by one 1×1 convolution, and concatenates the
//! mosaic; its backward writes every slice into a zero tensor of the whole input.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::super::heat::{destination, source, HeatPlan};
use super::matmul::{contiguous, matmul, Operand};
use super::tensor;
use super::view::View;

/// `z [n, d, h, w]` (any layout) → token-major rows `[n·h·w, d]`.
fn token_major(v: &View) -> Vec<f32> {
    let [n, d, h, w] = v.shape;
    let p = h * w;
    let mut out = vec![0f32; n * p * d];
    if p == 0 || d == 0 {
        return out;
    }
    out.par_chunks_mut(p * d).enumerate().for_each(|(i, rows)| {
        let mut buf = Vec::new();
        for c in 0..d {
            for (s, &x) in v.plane(i, c, &mut buf).iter().enumerate() {
                rows[s * d + c] = x;
            }
        }
    });
    out
}

/// Token-major rows `[n·p, d]` → channel-major `[n, d, p]`.
fn channel_major(rows: &[f32], n: usize, d: usize, p: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * d * p];
    if p == 0 || d == 0 {
        return out;
    }
    out.par_chunks_mut(d * p)
        .zip(rows.par_chunks(p * d))
        .for_each(|(planes, tokens)| {
            for (s, token) in tokens.chunks(d).enumerate() {
                for (c, &x) in token.iter().enumerate() {
                    planes[c * p + s] = x;
                }
            }
        });
    out
}

/// The rows `pick(pair)` of `src` (width d), stacked.
fn gather(
    src: &[f32],
    d: usize,
    pairs: &[(usize, usize)],
    pick: fn(&(usize, usize)) -> usize,
) -> Vec<f32> {
    let mut out = vec![0f32; pairs.len() * d];
    for (row, pair) in out.chunks_mut(d).zip(pairs) {
        let at = pick(pair) * d;
        row.copy_from_slice(&src[at..at + d]);
    }
    out
}

/// The tokens `[n, h·w, d]` of `plan` from `z [n, d, h/2, w/2]` and `mats [K, d, d]`.
pub fn forward(z: &FlexTensor, mats: &FlexTensor, plan: &HeatPlan) -> Option<FlexTensor> {
    let zv = View::of(z)?;
    let m = contiguous(mats)?;
    let m = m.storage::<f32>();
    let [n, d, _, _] = zv.shape;
    let zt = token_major(&zv);
    let mut out = vec![0f32; n * plan.grid_cells * d];
    for &(s, t) in &plan.kept {
        out[t * d..(t + 1) * d].copy_from_slice(&zt[s * d..(s + 1) * d]);
    }
    for (k, pairs) in plan.moved.iter().enumerate() {
        let x = gather(&zt, d, pairs, source);
        let mut y = vec![0f32; pairs.len() * d];
        let mk = &m[k * d * d..(k + 1) * d * d];
        matmul(
            &mut y,
            [pairs.len(), d, d],
            Operand::rows(&x, d),
            Operand::transposed(mk, d),
            false,
            true,
        );
        for (row, &(_, t)) in y.chunks(d).zip(pairs) {
            out[t * d..(t + 1) * d].copy_from_slice(row);
        }
    }
    Some(tensor(out, vec![n, plan.grid_cells, d]))
}

/// `[∂z, ∂mats]` given `∂tokens [n, h·w, d]`.
pub fn backward(
    z: &FlexTensor,
    mats: &FlexTensor,
    plan: &HeatPlan,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 2]> {
    let zv = View::of(z)?;
    let m = contiguous(mats)?;
    let m = m.storage::<f32>();
    let g = contiguous(grad)?;
    let g = g.storage::<f32>();
    let [n, d, h, w] = zv.shape;
    let zt = token_major(&zv);
    let mut dzt = vec![0f32; zt.len()];
    let add_row = |dzt: &mut [f32], s: usize, row: &[f32]| {
        for (a, b) in dzt[s * d..(s + 1) * d].iter_mut().zip(row) {
            *a += b;
        }
    };
    for &(s, t) in &plan.kept {
        add_row(&mut dzt, s, &g[t * d..(t + 1) * d]);
    }
    let mut dm = vec![0f32; m.len()];
    for (k, pairs) in plan.moved.iter().enumerate() {
        let gk = gather(g, d, pairs, destination);
        let xk = gather(&zt, d, pairs, source);
        let r = pairs.len();
        matmul(
            &mut dm[k * d * d..(k + 1) * d * d],
            [d, d, r],
            Operand::transposed(&gk, d),
            Operand::rows(&xk, d),
            false,
            true,
        );
        let mut dx = vec![0f32; r * d];
        matmul(
            &mut dx,
            [r, d, d],
            Operand::rows(&gk, d),
            Operand::rows(&m[k * d * d..(k + 1) * d * d], d),
            false,
            true,
        );
        for (row, &(s, _)) in dx.chunks(d).zip(pairs) {
            add_row(&mut dzt, s, row);
        }
    }
    let k = plan.moved.len();
    Some([
        tensor(channel_major(&dzt, n, d, h * w), vec![n, d, h, w]),
        tensor(dm, vec![k, d, d]),
    ])
}
