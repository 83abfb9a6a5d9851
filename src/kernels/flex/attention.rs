//! Scaled dot-product attention on the host, one task per (batch entry, head), forward and
//! backward (the formulas are in the module doc of `kernels`). Every product is written as a
//! row update `row += a · other_row` over the longer contiguous axis, which the compiler
//! vectorises; the softmax probabilities P are kept for the backward pass.
//!
//! Each output is written in the memory order of the tensor it belongs to (O and ∂Q like Q,
//! ∂K like K, ∂V like V): when Q is a head view of a `[b, L, heads·d]` map, O comes back as
//! that same interleaved map and merging the heads is free, where a contiguous `[b, h, L, d]`
//! result would need a transposing copy (and its gradient another).

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::gelu::exp_nonpositive;
use super::ordered::Ordered;
use super::view::{View, View3};
use super::{tensor, zeros};

/// Raw destination shared by the per-(b, h) tasks; each task writes only its own (b, h) slab.
#[derive(Clone, Copy)]
struct Slab {
    ptr: *mut f32,
    strides: [usize; 4],
}

// SAFETY: tasks write disjoint index sets (distinct (b, h) pairs) of a buffer that outlives them.
unsafe impl Send for Slab {}
unsafe impl Sync for Slab {}

impl Slab {
    fn of(d: &mut Ordered<4>) -> Self {
        Self {
            ptr: d.values.as_mut_ptr(),
            strides: d.strides,
        }
    }

    /// Head `part` of a contiguous `[b, L, parts·h·d]` buffer seen as `[b, h, L, d]`.
    fn part(buf: &mut [f32], [_, h, l, d]: [usize; 4], parts: usize, part: usize) -> Self {
        let width = parts * h * d;
        assert!(buf.len().is_multiple_of(width.max(1)) && (part + 1) * h * d <= width);
        Self {
            // SAFETY: the offset is within the buffer (asserted above)
            ptr: unsafe { buf.as_mut_ptr().add(part * h * d) },
            strides: [l * width, d, width, 1],
        }
    }

    /// Writes the row-major `[rows, cols]` matrix `m` at `(b, h)`.
    ///
    /// # Safety
    /// `(b, h)` must be within the buffer's shape and written by one task only.
    unsafe fn write(&self, b: usize, h: usize, cols: usize, m: &[f32]) {
        let [sb, sh, sr, sc] = self.strides;
        let base = b * sb + h * sh;
        for (r, row) in m.chunks(cols).enumerate() {
            if sc == 1 {
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        row.as_ptr(),
                        self.ptr.add(base + r * sr),
                        row.len(),
                    )
                };
                continue;
            }
            for (c, &x) in row.iter().enumerate() {
                unsafe { *self.ptr.add(base + r * sr + c * sc) = x };
            }
        }
    }
}

/// Four per-thread buffers reused across (batch entry, head) tasks.
type Scratch = [Vec<f32>; 4];

/// `buf` as `len` zeros (keeping its allocation).
fn zeroed(buf: &mut Vec<f32>, len: usize) {
    buf.clear();
    buf.resize(len, 0.0);
}

/// `row += a · other`.
#[inline(always)]
fn axpy(row: &mut [f32], a: f32, other: &[f32]) {
    for (r, &o) in row.iter_mut().zip(other) {
        *r += a * o;
    }
}

/// The attention's dimensions: batch, heads, query length, key length, key width, value width.
struct Dims {
    b: usize,
    h: usize,
    lq: usize,
    lk: usize,
    dk: usize,
    dv: usize,
}

fn dims(q: &View, k: &View, v: &View) -> Option<Dims> {
    let [b, h, lq, dk] = q.shape;
    let [kb, kh, lk, kd] = k.shape;
    let [vb, vh, vl, dv] = v.shape;
    (kb == b && vb == b && kh == h && vh == h && kd == dk && vl == lk).then_some(Dims {
        b,
        h,
        lq,
        lk,
        dk,
        dv,
    })
}

crate::multiversion! {
    /// One (batch entry, head): P = softmax(Q Kᵀ·s) into `p` `[Lq, Lk]` and O = P V into `o`,
    /// from Q `[Lq, dk]`, Kᵀ `[dk, Lk]` and V `[Lk, dv]` (row-major).
    fn forward_head(p: &mut [f32], qkv: [&[f32]; 3], o: &mut [f32], dims: &Dims, scale: f32) {
        let [qm, kt, vm] = qkv;
        let &Dims { lq, lk, dk, dv, .. } = dims;
        for i in 0..lq {
            let row = &mut p[i * lk..(i + 1) * lk];
            for d in 0..dk {
                axpy(row, qm[i * dk + d] * scale, &kt[d * lk..(d + 1) * lk]);
            }
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            // every exponent is ≤ 0: the branch-free exponential vectorises
            for x in row.iter_mut() {
                *x = exp_nonpositive(*x - max);
            }
            let inv = 1.0 / crate::simd::sum(row) as f32;
            for x in row.iter_mut() {
                *x *= inv;
            }
            let orow = &mut o[i * dv..(i + 1) * dv];
            for j in 0..lk {
                axpy(orow, row[j], &vm[j * dv..(j + 1) * dv]);
            }
        }
    }
}

crate::multiversion! {
    /// One (batch entry, head) of the backward: from P, Q, K, Vᵀ and ∂O, into
    /// `[∂Q, ∂K, ∂V, scratch of Lk]` (zeroed by the caller).
    fn backward_head(p: &[f32], inputs: [&[f32]; 4], grads: [&mut [f32]; 4], dims: &Dims, scale: f32) {
        let [qm, km, vt, go] = inputs;
        let [gq, gk, gvv, ds] = grads;
        let &Dims { lq, lk, dk, dv, .. } = dims;
        for i in 0..lq {
            let prow = &p[i * lk..(i + 1) * lk];
            let gorow = &go[i * dv..(i + 1) * dv];
            // ∂V += Pᵀ ∂O (row i's share)
            for (j, &pij) in prow.iter().enumerate() {
                axpy(&mut gvv[j * dv..(j + 1) * dv], pij, gorow);
            }
            // ∂P = ∂O Vᵀ, then ∂S = P ⊙ (∂P − Σ ∂P ⊙ P), scaled
            ds.fill(0.0);
            for (d, &g) in gorow.iter().enumerate() {
                axpy(ds, g, &vt[d * lk..(d + 1) * lk]);
            }
            let dot = crate::simd::dot(ds, prow);
            for (x, &pij) in ds.iter_mut().zip(prow) {
                *x = pij * (*x - dot) * scale;
            }
            // ∂Q = ∂S K, ∂K += ∂Sᵀ Q
            let qrow = &qm[i * dk..(i + 1) * dk];
            for (j, &s) in ds.iter().enumerate() {
                axpy(&mut gq[i * dk..(i + 1) * dk], s, &km[j * dk..(j + 1) * dk]);
                axpy(&mut gk[j * dk..(j + 1) * dk], s, qrow);
            }
        }
    }
}

/// (batch entry, head) pairs per parallel task: enough for ~16 k multiply-adds a task (the
/// bridge's heads hold a few hundred, and scheduling one costs more than computing it).
fn heads_per_task(d: &Dims) -> usize {
    (16384 / (d.lq * d.lk * (d.dk + d.dv)).max(1)).max(1)
}

/// softmax(QKᵀ·s)V for every (batch entry, head), O into `out`; returns P `[b, h, Lq, Lk]`.
fn forward_core(qv: &View, kv: &View, vv: &View, dims: &Dims, out: Slab) -> Vec<f32> {
    let &Dims {
        h, lq, lk, dk, dv, ..
    } = dims;
    let scale = 1.0 / (dk as f32).sqrt();
    let mut probs = zeros(dims.b * h * lq * lk);
    probs
        .par_chunks_mut((lq * lk).max(1))
        .enumerate()
        .with_min_len(heads_per_task(dims))
        .for_each_init(Scratch::default, |[qm, kt, vm, o], (bh, p)| {
            let (bi, hi) = (bh / h, bh % h);
            qv.matrix(bi, hi, false, qm);
            kv.matrix(bi, hi, true, kt);
            vv.matrix(bi, hi, false, vm);
            zeroed(o, lq * dv);
            forward_head(p, [qm, kt, vm], o, dims, scale);
            // SAFETY: one task per (bi, hi), inside the shape
            unsafe { out.write(bi, hi, dv, o) };
        });
    probs
}

/// ∂Q, ∂K, ∂V for every (batch entry, head) given P and ∂O, into `[dq, dk, dv]`.
fn backward_core(
    [qv, kv, vv]: [&View; 3],
    p_all: &[f32],
    gv: &View,
    dims: &Dims,
    [sq, sk, sv]: [Slab; 3],
) {
    let &Dims {
        b,
        h,
        lq,
        lk,
        dk,
        dv,
    } = dims;
    let scale = 1.0 / (dk as f32).sqrt();
    let init = || (Scratch::default(), Scratch::default());
    (0..b * h)
        .into_par_iter()
        .with_min_len(heads_per_task(dims))
        .for_each_init(init, |(inputs, grads), bh| {
            let (bi, hi) = (bh / h, bh % h);
            let p = &p_all[bh * lq * lk..(bh + 1) * lq * lk];
            let [qm, km, vt, go] = inputs;
            qv.matrix(bi, hi, false, qm);
            kv.matrix(bi, hi, false, km);
            vv.matrix(bi, hi, true, vt);
            gv.matrix(bi, hi, false, go);
            let [gq, gk, gvv, ds] = grads;
            zeroed(gq, lq * dk);
            zeroed(gk, lk * dk);
            zeroed(gvv, lk * dv);
            zeroed(ds, lk);
            backward_head(p, [qm, km, vt, go], [gq, gk, gvv, ds], dims, scale);
            // SAFETY: one task per (bi, hi), inside each shape
            unsafe {
                sq.write(bi, hi, dk, gq);
                sk.write(bi, hi, dk, gk);
                sv.write(bi, hi, dv, gvv);
            }
        });
}

/// `[O, P]`: O like Q, P `[b, h, Lq, Lk]` contiguous. `None` for other element types or ranks.
pub fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor) -> Option<[FlexTensor; 2]> {
    let (qv, kv, vv) = (View::of(q)?, View::of(k)?, View::of(v)?);
    let d = dims(&qv, &kv, &vv)?;
    let mut out = Ordered::new([d.b, d.h, d.lq, d.dv], qv.strides);
    let probs = forward_core(&qv, &kv, &vv, &d, Slab::of(&mut out));
    Some([out.into_tensor(), tensor(probs, vec![d.b, d.h, d.lq, d.lk])])
}

/// `[∂Q, ∂K, ∂V]` given P from [`forward`] and ∂O, each like its tensor.
pub fn backward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    probs: &FlexTensor,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 3]> {
    let (qv, kv, vv, gv) = (View::of(q)?, View::of(k)?, View::of(v)?, View::of(grad)?);
    let d = dims(&qv, &kv, &vv)?;
    let probs = probs.to_contiguous();
    let like = |v: &View| Ordered::new(v.shape, v.strides);
    let (mut dq, mut dk, mut dv) = (like(&qv), like(&kv), like(&vv));
    let slabs = [Slab::of(&mut dq), Slab::of(&mut dk), Slab::of(&mut dv)];
    backward_core([&qv, &kv, &vv], probs.storage::<f32>(), &gv, &d, slabs);
    Some([dq.into_tensor(), dk.into_tensor(), dv.into_tensor()])
}

/// Views of Q, K and V as `[b, heads, L, d]` heads of the fused projection `qkv [b, L, 3·heads·d]`.
fn qkv_views(qkv: &FlexTensor, heads: usize) -> Option<[View<'_>; 3]> {
    let whole = View3::of(qkv)?;
    let [b, l, width] = whole.shape;
    let d = width / 3 / heads.max(1);
    if heads == 0 || width != 3 * heads * d {
        return None;
    }
    let [sb, sl, sw] = whole.strides;
    Some([0, 1, 2].map(|part| View {
        data: whole.data,
        offset: whole.offset + (part * heads * d) as isize * sw,
        strides: [sb, d as isize * sw, sl, sw],
        shape: [b, heads, l, d],
    }))
}

/// Self-attention from the fused projection `qkv [b, L, 3·h·d]`: `[O [b, L, h·d], P]`.
pub fn self_forward(qkv: &FlexTensor, heads: usize) -> Option<[FlexTensor; 2]> {
    let [qv, kv, vv] = qkv_views(qkv, heads)?;
    let d = dims(&qv, &kv, &vv)?;
    let mut out = zeros(d.b * d.lq * d.h * d.dv);
    let probs = forward_core(&qv, &kv, &vv, &d, Slab::part(&mut out, qv.shape, 1, 0));
    Some([
        tensor(out, vec![d.b, d.lq, d.h * d.dv]),
        tensor(probs, vec![d.b, d.h, d.lq, d.lk]),
    ])
}

/// ∂qkv `[b, L, 3·h·d]` given P and ∂O `[b, L, h·d]`.
pub fn self_backward(
    qkv: &FlexTensor,
    heads: usize,
    probs: &FlexTensor,
    grad: &FlexTensor,
) -> Option<FlexTensor> {
    let [qv, kv, vv] = qkv_views(qkv, heads)?;
    let d = dims(&qv, &kv, &vv)?;
    let g = View3::of(grad)?;
    let [gb, gl, gw] = g.strides;
    let gv = View {
        data: g.data,
        offset: g.offset,
        strides: [gb, d.dv as isize * gw, gl, gw],
        shape: [d.b, d.h, d.lq, d.dv],
    };
    let probs = probs.to_contiguous();
    let mut out = zeros(d.b * d.lq * 3 * d.h * d.dk);
    let slabs = [0, 1, 2].map(|part| Slab::part(&mut out, qv.shape, 3, part));
    backward_core([&qv, &kv, &vv], probs.storage::<f32>(), &gv, &d, slabs);
    Some(tensor(out, vec![d.b, d.lq, 3 * d.h * d.dk]))
}
