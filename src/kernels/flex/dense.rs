//! The fully connected layer `y = x W + b` over the last dimension of `x [n, L, d]` on the
//! host, for `x` in any layout: rows that can be walked with one stride (a contiguous input)
//! are one GEMM; otherwise (a transposed view such as the decoder's tokens read off the
//! channel-first feature grid) one GEMM per leading index, reading the strides directly instead
//! of copying the input into row order first. ∂x is written in the memory order of x, so that
//! the view's own backward is free as well.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::matmul::{contiguous, matmul_strided, Operand, Strided};
use super::ordered::Ordered;
use super::view::View3;
use super::{filled, put, tensor, zeros};

/// Rows per block of the bias-gradient sums (fixed, so the sum does not depend on threads).
const BLOCK: usize = 256;

/// Sample `i` of `v` as a `[L, d]` operand.
fn sample<'a>(v: &View3<'a>, i: usize) -> Operand<'a> {
    Operand {
        data: &v.data[(v.offset + i as isize * v.strides[0]) as usize..],
        row_stride: v.strides[1] as usize,
        col_stride: v.strides[2] as usize,
    }
}

/// Whether the `[n, L]` rows of `v` are evenly spaced (one row stride covers both dims).
fn merged(v: &View3) -> bool {
    v.shape[0] <= 1 || v.strides[0] == v.strides[1] * v.shape[1] as isize
}

fn positive(v: &View3) -> bool {
    v.offset >= 0 && v.strides.iter().all(|&s| s >= 0)
}

crate::multiversion! {
    /// `s += ∂y[row]` for the rows `from..to` of `∂y [n·L, out]` (row r = sample r / L,
    /// position r % L), in row order.
    fn bias_grad_block(s: &mut [f32], gv: &View3, from: usize, to: usize) {
        let l = gv.shape[1].max(1);
        let [s0, s1, s2] = gv.strides;
        for r in from..to {
            let base = gv.offset + (r / l) as isize * s0 + (r % l) as isize * s1;
            if s2 == 1 {
                let row = &gv.data[base as usize..base as usize + s.len()];
                for (acc, &v) in s.iter_mut().zip(row) {
                    *acc += v;
                }
            } else {
                for (j, acc) in s.iter_mut().enumerate() {
                    *acc += gv.data[(base + j as isize * s2) as usize];
                }
            }
        }
    }
}

/// `y [n, L, out]` (row-major) for `x [n, L, d]`, `weight [d, out]`, `bias [out]`.
pub fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> Option<FlexTensor> {
    let xv = View3::of(x)?;
    if !positive(&xv) {
        return None;
    }
    let [n, l, d] = xv.shape;
    let (w, b) = (contiguous(weight)?, contiguous(bias)?);
    let (w, b) = (w.storage::<f32>(), b.storage::<f32>());
    let out = b.len();
    if w.len() != d * out {
        return None;
    }
    // every row starts as the bias; the products are added onto it
    let mut y = if out == 0 {
        Vec::new()
    } else {
        filled(n * l * out, out * BLOCK, |_, rows| {
            for row in rows.chunks_mut(out) {
                put(row, b);
            }
        })
    };
    let wop = Operand::rows(w, out);
    if merged(&xv) {
        let x0 = sample(&xv, 0);
        matmul_strided(
            Strided::rows(&mut y, out),
            [n * l, out, d],
            x0,
            wop,
            true,
            true,
        );
    } else {
        y.par_chunks_mut((l * out).max(1))
            .enumerate()
            .for_each(|(i, yi)| {
                let dst = Strided::rows(yi, out);
                matmul_strided(dst, [l, out, d], sample(&xv, i), wop, true, false);
            });
    }
    Some(tensor(y, vec![n, l, out]))
}

/// `[∂x (like x), ∂W, ∂b]` given `∂y [n, L, out]` in any layout.
pub fn backward(x: &FlexTensor, weight: &FlexTensor, grad: &FlexTensor) -> Option<[FlexTensor; 3]> {
    let (xv, gv) = (View3::of(x)?, View3::of(grad)?);
    if !positive(&xv) || !positive(&gv) {
        return None;
    }
    let [n, l, d] = xv.shape;
    let out = gv.shape[2];
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    // ∂W = Σ xᵀ ∂y
    let mut dw = zeros(d * out);
    if merged(&xv) && merged(&gv) {
        let (x0, g0) = (sample(&xv, 0), sample(&gv, 0));
        let dst = Strided::rows(&mut dw, out);
        matmul_strided(dst, [d, out, n * l], x0.t(), g0, false, true);
    } else {
        for i in 0..n {
            let dst = Strided::rows(&mut dw, out);
            matmul_strided(
                dst,
                [d, out, l],
                sample(&xv, i).t(),
                sample(&gv, i),
                i > 0,
                true,
            );
        }
    }
    // ∂b = Σ ∂y over rows, in fixed blocks
    let partial: Vec<Vec<f32>> = (0..(n * l).div_ceil(BLOCK))
        .into_par_iter()
        .map(|blk| {
            let mut s = vec![0f32; out];
            let rows = blk * BLOCK..((blk + 1) * BLOCK).min(n * l);
            bias_grad_block(&mut s, &gv, rows.start, rows.end);
            s
        })
        .collect();
    let mut db = zeros(out);
    for p in &partial {
        for (a, v) in db.iter_mut().zip(p) {
            *a += v;
        }
    }
    // ∂x = ∂y Wᵀ, in the memory order of x
    let mut dx = Ordered::new(xv.shape, xv.strides);
    let (strides, order) = (dx.strides, dx.order);
    let wt = Operand::rows(w, out).t();
    let x_rows_merged = n <= 1 || strides[0] == strides[1] * l;
    if x_rows_merged && merged(&gv) {
        let dst = Strided::fresh(&mut dx.values, strides[1], strides[2]);
        matmul_strided(dst, [n * l, d, out], sample(&gv, 0), wt, false, true);
    } else if order[0] == 0 {
        // samples are the outermost dimension: each owns one contiguous chunk
        dx.values
            .par_chunks_mut(strides[0].max(1))
            .enumerate()
            .for_each(|(i, chunk)| {
                let dst = Strided::fresh(chunk, strides[1], strides[2]);
                matmul_strided(dst, [l, d, out], sample(&gv, i), wt, false, false);
            });
    } else {
        for i in 0..n {
            let dst = Strided::fresh(&mut dx.values[i * strides[0]..], strides[1], strides[2]);
            matmul_strided(dst, [l, d, out], sample(&gv, i), wt, false, true);
        }
    }
    Some([
        // SAFETY: each branch above writes every (sample, position, channel) of ∂x: one
        // product over all n·L rows, or one per sample, none accumulating.
        unsafe { dx.into_tensor() },
        tensor(dw, vec![d, out]),
        tensor(db, vec![out]),
    ])
}
