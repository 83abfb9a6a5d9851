//! Depthwise k×k convolution (groups = input channels, `m` output channels per input channel,
//! zero padding p = k/2, stride s) on the host, one task per channel.
//!
//! `y[n, o, i, j] = Σ_{a,b} w[o, a, b] · x[n, o/m, i·s + a − p, j·s + b − p]`
//!
//! The encoder's maps are small (2×2 to 8×8 at 32 px), so loops over rows of 2–8 values
//! would leave the vector lanes empty. Instead each task stacks one channel's planes of every
//! sample into one flat buffer (zero-padded at both ends) and computes the stride-1 result
//! at every input position as k² shifted products over the whole stack: tap (a, b) reads
//! `x[q + (a − p)·w + (b − p)]` for flat position q, times a 0/1 mask that is 1 where the tap
//! falls inside the sample's own plane (which also cuts reads across row and plane borders).
//! The masks repeat with the plane, so they are tiled once over a block of whole planes and
//! every loop runs over that block. Stride s keeps every s-th row and column of the stride-1
//! result (the backward spreads ∂y onto those positions). Each channel's output, and ∂x per
//! input channel, is one contiguous block: the results are laid out channel-major
//! (`[c, n, h, w]` in memory, logically `[n, c, h, w]`), so no plane is scattered.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::geometry::Geometry;
use super::matmul::contiguous;
use super::view::View;
use super::{channel_major, tensor, zeros};

/// Values of each block of whole planes the tiled masks cover (at least this many).
const BLOCK: usize = 256;

/// The stride-1 geometry on the input grid shared by every channel of one call.
struct Taps {
    /// Flat offset of each tap (a, b) into the padded stack, pad + (a − p)·w + (b − p) = a·w + b.
    offsets: Vec<usize>,
    /// Zeros before (and after) the stack: p·w + p.
    pad: usize,
    /// Values per block (a multiple of h·w).
    block: usize,
    /// `masks[t·block + q]`: 1 where tap t of flat position q lies inside q's plane.
    masks: Vec<f32>,
}

impl Taps {
    fn of(g: &Geometry) -> Self {
        let (h, w, k) = (g.h, g.w, g.k);
        let p = k / 2;
        let hw = (h * w).max(1);
        let block = hw * BLOCK.div_ceil(hw);
        let pad = p * w + p;
        let mut offsets = Vec::with_capacity(k * k);
        let mut masks = vec![0f32; k * k * block];
        for a in 0..k {
            for b in 0..k {
                let t = a * k + b;
                offsets.push(a * w + b);
                for q in 0..block {
                    let (y, x) = ((q % hw) / w.max(1), q % w.max(1));
                    let inside = (y + a >= p && y + a - p < h) && (x + b >= p && x + b - p < w);
                    masks[t * block + q] = if inside { 1.0 } else { 0.0 };
                }
            }
        }
        Self {
            offsets,
            pad,
            block,
            masks,
        }
    }

    /// `wm[t·block + q] = w_t · masks[t·block + q]` for one channel's taps.
    fn weighted(&self, taps: &[f32], wm: &mut Vec<f32>) {
        wm.clear();
        wm.extend(
            self.masks
                .chunks(self.block)
                .zip(taps)
                .flat_map(|(m, &t)| m.iter().map(move |&v| v * t)),
        );
    }
}

crate::multiversion! {
    /// One block of the stride-1 result: `out[q] = Σ_t wm[t·block + q] · src[offsets[t] + q]`
    /// (`src` starts `pad` values before the block's first position).
    fn block_forward(out: &mut [f32], src: &[f32], wm: &[f32], offsets: &[usize], block: usize) {
        let len = out.len();
        out.fill(0.0);
        for (t, &o) in offsets.iter().enumerate() {
            let (m, s) = (&wm[t * block..t * block + len], &src[o..o + len]);
            for ((r, &mv), &sv) in out.iter_mut().zip(m).zip(s) {
                *r += mv * sv;
            }
        }
    }
}

crate::multiversion! {
    /// One block's share of ∂x (stride-1 grid): `dst[offsets[t] + q] += wm[t·block + q] · g[q]`.
    fn block_input_grad(dst: &mut [f32], g: &[f32], wm: &[f32], offsets: &[usize], block: usize) {
        let len = g.len();
        for (t, &o) in offsets.iter().enumerate() {
            let (m, d) = (&wm[t * block..t * block + len], &mut dst[o..o + len]);
            for ((r, &mv), &gv) in d.iter_mut().zip(m).zip(g) {
                *r += mv * gv;
            }
        }
    }
}

crate::multiversion! {
    /// One block's share of ∂w, per tap and position: `acc[t·block + q] += g[q] · src[offsets[t] + q]`.
    fn block_weight_grad(acc: &mut [f32], g: &[f32], src: &[f32], offsets: &[usize], block: usize) {
        let len = g.len();
        for (t, &o) in offsets.iter().enumerate() {
            let (a, s) = (&mut acc[t * block..t * block + len], &src[o..o + len]);
            for ((r, &gv), &sv) in a.iter_mut().zip(g).zip(s) {
                *r += gv * sv;
            }
        }
    }
}

/// Channel `c` of every sample of `v` stacked into `buf` between `pad` zeros on each side.
fn stack(v: &View, c: usize, pad: usize, buf: &mut Vec<f32>, plane: &mut Vec<f32>) {
    let [n, _, h, w] = v.shape;
    buf.clear();
    buf.resize(pad, 0.0);
    for i in 0..n {
        buf.extend_from_slice(v.plane(i, c, plane));
    }
    buf.resize(2 * pad + n * h * w, 0.0);
}

/// ∂y of channel `o` on the stride-1 input grid: `[n, ho, wo]` spread to every s-th row and
/// column of `[n, h, w]` (zeros elsewhere), as a flat stack.
fn spread(gv: &View, o: usize, g: &Geometry, buf: &mut Vec<f32>, plane: &mut Vec<f32>) {
    buf.clear();
    if g.stride == 1 {
        for i in 0..g.n {
            buf.extend_from_slice(gv.plane(i, o, plane));
        }
        return;
    }
    buf.resize(g.n * g.h * g.w, 0.0);
    for i in 0..g.n {
        let src = gv.plane(i, o, plane);
        let dst = &mut buf[i * g.h * g.w..(i + 1) * g.h * g.w];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                dst[oy * g.stride * g.w + ox * g.stride] = src[oy * g.wo + ox];
            }
        }
    }
}

/// The start of ∂x, shared by the per-channel tasks, each writing only its own planes.
#[derive(Clone, Copy)]
struct Planes(*mut f32);

// SAFETY: the tasks write disjoint planes of a buffer that outlives them.
unsafe impl Send for Planes {}
unsafe impl Sync for Planes {}

impl Planes {
    /// The address of value `i`.
    ///
    /// # Safety
    /// `i` must lie inside the buffer.
    unsafe fn at(self, i: usize) -> *mut f32 {
        unsafe { self.0.add(i) }
    }
}

/// Per-task scratch: the padded input stack, the stride-1 result or ∂y stack, the weighted
/// masks, a plane buffer.
type Scratch = [Vec<f32>; 4];

/// `y [n, c_out, ho, wo]` (channel-major in memory); `None` for other element types, ranks
/// or weight shapes.
pub fn forward(x: &FlexTensor, weight: &FlexTensor, stride: usize) -> Option<FlexTensor> {
    let xv = View::of(x)?;
    let g = Geometry::of(&xv, weight, stride, true)?;
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let taps = Taps::of(&g);
    let (kk, hw, out_plane) = (g.k * g.k, g.h * g.w, g.ho * g.wo);
    let mult = g.c_out / g.c_in;
    let mut y = zeros(g.c_out * g.n * out_plane);
    y.par_chunks_mut((g.n * out_plane).max(1))
        .enumerate()
        .for_each_init(Scratch::default, |[xs, full, wm, plane], (o, out)| {
            stack(&xv, o / mult, taps.pad, xs, plane);
            taps.weighted(&w[o * kk..(o + 1) * kk], wm);
            let dst = if g.stride == 1 {
                &mut out[..]
            } else {
                full.resize(g.n * hw, 0.0);
                &mut full[..]
            };
            for (b, block) in dst.chunks_mut(taps.block).enumerate() {
                let src = &xs[b * taps.block..];
                block_forward(block, src, wm, &taps.offsets, taps.block);
            }
            if g.stride > 1 {
                for (i, po) in out.chunks_mut(out_plane).enumerate() {
                    let pf = &full[i * hw..(i + 1) * hw];
                    for oy in 0..g.ho {
                        for ox in 0..g.wo {
                            po[oy * g.wo + ox] = pf[oy * g.stride * g.w + ox * g.stride];
                        }
                    }
                }
            }
        });
    Some(channel_major(y, [g.n, g.c_out, g.ho, g.wo]))
}

/// `[∂x, ∂w]` given `∂y [n, c_out, ho, wo]` in any layout; ∂x laid out like x.
pub fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: usize,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 2]> {
    let (xv, gv, g) = Geometry::with_grad(x, weight, stride, true, grad)?;
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let taps = Taps::of(&g);
    let (kk, hw, block) = (g.k * g.k, g.h * g.w, taps.block);
    let mult = g.c_out / g.c_in;
    // ∂x: each input channel gathers from its `mult` output channels; written in the layout
    // of x (a gradient that burn adds to another one, as at a residual, must not be strided)
    let x_channel_major = xv.is_channel_major();
    let mut dx = zeros(g.c_in * g.n * hw);
    let planes = Planes(dx.as_mut_ptr());
    (0..g.c_in)
        .into_par_iter()
        .for_each_init(Scratch::default, |[pad, gs, wm, plane], c| {
            pad.clear();
            pad.resize(2 * taps.pad + g.n * hw, 0.0);
            for o in c * mult..(c + 1) * mult {
                spread(&gv, o, &g, gs, plane);
                taps.weighted(&w[o * kk..(o + 1) * kk], wm);
                for (b, gb) in gs.chunks(block).enumerate() {
                    let dst = &mut pad[b * block..];
                    block_input_grad(dst, gb, wm, &taps.offsets, block);
                }
            }
            let stacked = &pad[taps.pad..taps.pad + g.n * hw];
            for (i, p) in stacked.chunks(hw.max(1)).enumerate() {
                let at = if x_channel_major {
                    (c * g.n + i) * hw
                } else {
                    (i * g.c_in + c) * hw
                };
                // SAFETY: plane (i, c) lies inside dx and is written by channel c's task only
                unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), planes.at(at), p.len()) };
            }
        });
    // ∂w[o, a, b] = Σ_{n, i, j} ∂y[n, o, i, j] · x[n, o/m, i·s + a − p, j·s + b − p]:
    // per tap and position over every block, then over positions (masked) in a fixed order
    let mut dw = zeros(g.c_out * kk);
    dw.par_chunks_mut(kk.max(1)).enumerate().for_each_init(
        Scratch::default,
        |[xs, gs, acc, plane], (o, taps_o)| {
            stack(&xv, o / mult, taps.pad, xs, plane);
            spread(&gv, o, &g, gs, plane);
            acc.clear();
            acc.resize(kk * block, 0.0);
            for (b, gb) in gs.chunks(block).enumerate() {
                block_weight_grad(acc, gb, &xs[b * block..], &taps.offsets, block);
            }
            for (t, d) in taps_o.iter_mut().enumerate() {
                let r = t * block..(t + 1) * block;
                *d = crate::simd::dot(&taps.masks[r.clone()], &acc[r]);
            }
        },
    );
    let dx = if x_channel_major {
        channel_major(dx, [g.n, g.c_in, g.h, g.w])
    } else {
        tensor(dx, vec![g.n, g.c_in, g.h, g.w])
    };
    Some([
        dx,
        tensor(dw, weight.layout().shape().iter().copied().collect()),
    ])
}
