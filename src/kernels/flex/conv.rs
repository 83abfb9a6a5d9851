//! The dense k×k convolution (one group, zero padding p = k/2, stride s: the stem) on the host
//! as one parallel GEMM each way over the unfolded input (im2col) `X [(c, a, b), (n, oy, ox)]`
//! with `X[(c, a, b), (n, oy, ox)] = x[n, c, oy·s + a − p, ox·s + b − p]` (0 outside):
//! `Y = W X`, `∂W = ∂Y Xᵀ`, `∂X = Wᵀ ∂Y` folded back onto x (each plane of ∂x sums its taps
//! in a fixed order). burn's own convolution ran on one thread.

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;

use super::geometry::Geometry;
use super::matmul::{contiguous, product_values, Operand};
use super::pointwise::pack;
use super::view::View;
use super::{channel_major, filled, tensor, zeroed};

/// Rows of the unfolded input, c·k².
fn taps(g: &Geometry) -> usize {
    g.c_in * g.k * g.k
}

/// Columns of the unfolded input, n·ho·wo.
fn positions(g: &Geometry) -> usize {
    g.n * g.ho * g.wo
}

/// The unfolded input `X [(c, a, b), (n, oy, ox)]`, row-major, rows in parallel.
fn unfold(xv: &View, g: &Geometry) -> Vec<f32> {
    let (kk, p, plane_out) = (g.k * g.k, positions(g), g.ho * g.wo);
    filled(taps(g) * p, p.max(1), |start, row| {
        let r = start / p.max(1);
        let (c, a, b) = (r / kk, (r % kk) / g.k, r % g.k);
        let mut buf = Vec::new();
        for (i, dst) in row.chunks_mut(plane_out.max(1)).enumerate() {
            let plane = xv.plane(i, c, &mut buf);
            for oy in 0..g.ho {
                let iy = g.input(oy, a, g.h);
                for ox in 0..g.wo {
                    let v = match (iy, g.input(ox, b, g.w)) {
                        (Some(iy), Some(ix)) => plane[iy * g.w + ix],
                        _ => 0.0,
                    };
                    dst[oy * g.wo + ox] = MaybeUninit::new(v);
                }
            }
        }
    })
}

/// `y [n, c_out, ho, wo]` (channel-major in memory); `None` for other element types, ranks or
/// weight shapes.
pub fn forward(x: &FlexTensor, weight: &FlexTensor, stride: usize) -> Option<FlexTensor> {
    let xv = View::of(x)?;
    let g = Geometry::of(&xv, weight, stride, false)?;
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let (k, p) = (taps(&g), positions(&g));
    let cols = unfold(&xv, &g);
    let y = product_values(
        [g.c_out, p, k],
        Operand::rows(w, k),
        Operand::rows(&cols, p),
        true,
    );
    Some(channel_major(y, [g.n, g.c_out, g.ho, g.wo]))
}

/// `[∂x, ∂w]` given `∂y [n, c_out, ho, wo]` in any layout, each only where `wanted` says
/// (∂w needs the unfolded input, ∂x the product `Wᵀ ∂Y` and its fold); ∂x row-major.
pub fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: usize,
    grad: &FlexTensor,
    [want_x, want_w]: [bool; 2],
) -> Option<[Option<FlexTensor>; 2]> {
    let (xv, gv, g) = Geometry::with_grad(x, weight, stride, false, grad)?;
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let (k, p) = (taps(&g), positions(&g));
    let gc = pack(&gv);
    let dw = want_w.then(|| {
        let cols = unfold(&xv, &g);
        let dw = product_values(
            [g.c_out, k, p],
            Operand::rows(&gc, p),
            Operand::transposed(&cols, p),
            true,
        );
        tensor(dw, weight.layout().shape().iter().copied().collect())
    });
    let dx = want_x.then(|| {
        let dcols = product_values(
            [k, p, g.c_out],
            Operand::transposed(w, k),
            Operand::rows(&gc, p),
            true,
        );
        tensor(fold(&dcols, &g), vec![g.n, g.c_in, g.h, g.w])
    });
    Some([dx, dw])
}

/// ∂x `[n, c, h, w]` (row-major) from the unfolded input's gradient `∂X [(c, a, b), (n, oy,
/// ox)]`: each plane (n, c) gathers its k² rows, taps in order.
fn fold(dcols: &[f32], g: &Geometry) -> Vec<f32> {
    let (hw, kk, plane_out, p) = (g.h * g.w, g.k * g.k, g.ho * g.wo, positions(g));
    filled(g.n * g.c_in * hw, hw.max(1), |start, out| {
        let din = zeroed(out);
        let plane = start / hw.max(1);
        let (i, c) = (plane / g.c_in, plane % g.c_in);
        for t in 0..kk {
            let (a, b) = (t / g.k, t % g.k);
            let row = &dcols[(c * kk + t) * p + i * plane_out..][..plane_out];
            for oy in 0..g.ho {
                let Some(iy) = g.input(oy, a, g.h) else {
                    continue;
                };
                for ox in 0..g.wo {
                    if let Some(ix) = g.input(ox, b, g.w) {
                        din[iy * g.w + ix] += row[oy * g.wo + ox];
                    }
                }
            }
        }
    })
}
