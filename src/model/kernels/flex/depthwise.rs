//! Depthwise k×k convolution (groups = input channels, `m` output channels per input channel,
//! zero padding k/2, stride s) on the host, one task per output plane forward and per input
//! plane backward; the weight gradient per output channel, summed over samples in order.
//!
//! `y[n, o, i, j] = Σ_{a,b} w[o, a, b] · x[n, o/m, i·s + a − k/2, j·s + b − k/2]`

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::matmul::contiguous;
use super::view::View;
use super::{filled, tensor, zeroed, zeros};

/// Shapes of one depthwise convolution.
struct Geometry {
    n: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn of(x: &View, weight: &FlexTensor, stride: usize) -> Option<Self> {
        let [n, c_in, h, w] = x.shape;
        let dims: Vec<usize> = weight.layout().shape().iter().copied().collect();
        let &[c_out, one, k, k2] = dims.as_slice() else {
            return None;
        };
        if one != 1
            || k != k2
            || k.is_multiple_of(2)
            || c_in == 0
            || !c_out.is_multiple_of(c_in)
            || stride == 0
        {
            return None;
        }
        Some(Self {
            n,
            c_in,
            c_out,
            h,
            w,
            k,
            stride,
            ho: h.div_ceil(stride),
            wo: w.div_ceil(stride),
        })
    }

    /// For output row/column `o` and tap `a`: the input index, if inside the map.
    #[inline(always)]
    fn input(&self, o: usize, a: usize, side: usize) -> Option<usize> {
        let i = (o * self.stride + a) as isize - (self.k / 2) as isize;
        (i >= 0 && (i as usize) < side).then_some(i as usize)
    }

    /// The output columns `lo..hi` whose tap `b` falls inside an input row of `side` values,
    /// and the input column of `lo`.
    #[inline(always)]
    fn columns(&self, b: usize, side: usize, out_side: usize) -> (usize, usize, usize) {
        let p = self.k / 2;
        let s = self.stride;
        // ox·s + b − p ≥ 0  and  ox·s + b − p ≤ side − 1
        let lo = p.saturating_sub(b).div_ceil(s);
        let hi = if side + p > b {
            ((side - 1 + p - b) / s + 1).min(out_side)
        } else {
            0
        };
        (lo, hi.max(lo), (lo * s + b).saturating_sub(p))
    }
}

/// `out[ox] += t · src[ix₀ + (ox − lo)·s]` for ox in lo..hi.
#[inline(always)]
fn tap_add(out: &mut [f32], src: &[f32], t: f32, (lo, hi, ix0): (usize, usize, usize), s: usize) {
    if s == 1 {
        for (r, &v) in out[lo..hi].iter_mut().zip(&src[ix0..ix0 + hi - lo]) {
            *r += t * v;
        }
    } else {
        for (k, r) in out[lo..hi].iter_mut().enumerate() {
            *r += t * src[ix0 + k * s];
        }
    }
}

/// `dst[ix₀ + (ox − lo)·s] += t · g[ox]` for ox in lo..hi.
#[inline(always)]
fn tap_scatter(dst: &mut [f32], g: &[f32], t: f32, (lo, hi, ix0): (usize, usize, usize), s: usize) {
    if s == 1 {
        for (d, &v) in dst[ix0..ix0 + hi - lo].iter_mut().zip(&g[lo..hi]) {
            *d += t * v;
        }
    } else {
        for (k, &v) in g[lo..hi].iter().enumerate() {
            dst[ix0 + k * s] += t * v;
        }
    }
}

/// `Σ g[ox] · src[ix₀ + (ox − lo)·s]` for ox in lo..hi (in [`crate::simd::LANES`] lanes at
/// stride 1).
#[inline(always)]
fn tap_dot(g: &[f32], src: &[f32], (lo, hi, ix0): (usize, usize, usize), s: usize) -> f32 {
    if s == 1 {
        crate::simd::dot(&g[lo..hi], &src[ix0..ix0 + hi - lo])
    } else {
        g[lo..hi]
            .iter()
            .enumerate()
            .map(|(k, &a)| a * src[ix0 + k * s])
            .sum()
    }
}

crate::multiversion! {
    /// One output plane: `out[oy, ox] = Σ_{a,b} taps[a, b] · src[oy·s + a − k/2, ox·s + b − k/2]`.
    fn forward_plane(out: &mut [f32], src: &[f32], taps: &[f32], g: &Geometry) {
        for oy in 0..g.ho {
            let row = &mut out[oy * g.wo..(oy + 1) * g.wo];
            for a in 0..g.k {
                let Some(iy) = g.input(oy, a, g.h) else {
                    continue;
                };
                let srow = &src[iy * g.w..(iy + 1) * g.w];
                for b in 0..g.k {
                    let cols = g.columns(b, g.w, g.wo);
                    tap_add(row, srow, taps[a * g.k + b], cols, g.stride);
                }
            }
        }
    }
}

crate::multiversion! {
    /// Adds one output plane's share of ∂x: `din[iy, ix] += Σ taps[a, b] · gp[oy, ox]` over
    /// the taps that read (iy, ix).
    fn input_grad_plane(din: &mut [f32], gp: &[f32], taps: &[f32], g: &Geometry) {
        for oy in 0..g.ho {
            let grow = &gp[oy * g.wo..(oy + 1) * g.wo];
            for a in 0..g.k {
                let Some(iy) = g.input(oy, a, g.h) else {
                    continue;
                };
                let drow = &mut din[iy * g.w..(iy + 1) * g.w];
                for b in 0..g.k {
                    let cols = g.columns(b, g.w, g.wo);
                    tap_scatter(drow, grow, taps[a * g.k + b], cols, g.stride);
                }
            }
        }
    }
}

crate::multiversion! {
    /// Adds one sample's share of ∂w: `taps[a, b] += Σ_{oy, ox} gp[oy, ox] · src[oy·s + a − k/2, ox·s + b − k/2]`.
    fn weight_grad_plane(taps: &mut [f32], src: &[f32], gp: &[f32], g: &Geometry) {
        for a in 0..g.k {
            for b in 0..g.k {
                let mut acc = 0f32;
                for oy in 0..g.ho {
                    let Some(iy) = g.input(oy, a, g.h) else {
                        continue;
                    };
                    let srow = &src[iy * g.w..(iy + 1) * g.w];
                    let grow = &gp[oy * g.wo..(oy + 1) * g.wo];
                    acc += tap_dot(grow, srow, g.columns(b, g.w, g.wo), g.stride);
                }
                taps[a * g.k + b] += acc;
            }
        }
    }
}

/// `y [n, c_out, ho, wo]`; `None` for other element types, ranks or weight shapes.
pub fn forward(x: &FlexTensor, weight: &FlexTensor, stride: usize) -> Option<FlexTensor> {
    let xv = View::of(x)?;
    let g = Geometry::of(&xv, weight, stride)?;
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let (kk, plane) = (g.k * g.k, g.ho * g.wo);
    let mult = g.c_out / g.c_in;
    let y = filled(g.n * g.c_out * plane, plane, |start, out| {
        let out = zeroed(out);
        let idx = start / plane.max(1);
        let (i, o) = (idx / g.c_out, idx % g.c_out);
        let mut buf = Vec::new();
        let src = xv.plane(i, o / mult, &mut buf);
        forward_plane(out, src, &w[o * kk..(o + 1) * kk], &g);
    });
    Some(tensor(y, vec![g.n, g.c_out, g.ho, g.wo]))
}

/// `[∂x, ∂w]` given `∂y [n, c_out, ho, wo]`.
pub fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: usize,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 2]> {
    let (xv, gv) = (View::of(x)?, View::of(grad)?);
    let g = Geometry::of(&xv, weight, stride)?;
    if gv.shape != [g.n, g.c_out, g.ho, g.wo] {
        return None;
    }
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let kk = g.k * g.k;
    let mult = g.c_out / g.c_in;
    // ∂x: each input plane gathers from its `mult` output planes
    let dx = filled(g.n * g.c_in * g.h * g.w, g.h * g.w, |start, din| {
        let din = zeroed(din);
        let idx = start / (g.h * g.w).max(1);
        let (i, c) = (idx / g.c_in, idx % g.c_in);
        let mut buf = Vec::new();
        for o in c * mult..(c + 1) * mult {
            let gp = gv.plane(i, o, &mut buf);
            input_grad_plane(din, gp, &w[o * kk..(o + 1) * kk], &g);
        }
    });
    // ∂w[o, a, b] = Σ_{n, i, j} ∂y[n, o, i, j] · x[n, o/m, i·s + a − k/2, j·s + b − k/2]
    let mut dw = zeros(g.c_out * kk);
    dw.par_chunks_mut(kk.max(1))
        .enumerate()
        .for_each(|(o, taps)| {
            let (mut bx, mut bg) = (Vec::new(), Vec::new());
            for i in 0..g.n {
                let src = xv.plane(i, o / mult, &mut bx);
                let gp = gv.plane(i, o, &mut bg);
                weight_grad_plane(taps, src, gp, &g);
            }
        });
    Some([
        tensor(dx, vec![g.n, g.c_in, g.h, g.w]),
        tensor(dw, weight.layout().shape().iter().copied().collect()),
    ])
}
