//! Scaled dot-product attention on the host, one task per (batch entry, head), forward and
//! backward (the formulas are in the module doc of `kernels`). Every product is a small matrix
//! product over whole 16-lane vectors, four rows held in registers ([`product_rows`]): each
//! head's matrices are gathered with their rows padded by zeros to a multiple of 16 values,
//! since its rows hold only 4–32 (6 tokens, 16 decoder tokens, 8–32 channels a head). The
//! softmax probabilities P are kept for the backward pass.
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
use super::{assume_written, tensor, unwritten, zeroed as zeroed_slots};
use crate::simd::LANES;
use std::mem::MaybeUninit;

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
            ptr: d.values.as_mut_ptr().cast::<f32>(),
            strides: d.strides,
        }
    }

    /// Head `part` of a contiguous `[b, L, parts·h·d]` buffer seen as `[b, h, L, d]`.
    fn part(
        buf: &mut [MaybeUninit<f32>],
        [_, h, l, d]: [usize; 4],
        parts: usize,
        part: usize,
    ) -> Self {
        let width = parts * h * d;
        assert!(buf.len().is_multiple_of(width.max(1)) && (part + 1) * h * d <= width);
        Self {
            // SAFETY: the offset is within the buffer (asserted above)
            ptr: unsafe { buf.as_mut_ptr().add(part * h * d).cast::<f32>() },
            strides: [l * width, d, width, 1],
        }
    }

    /// Where head `(b, h)`'s `rows` rows of `cols` values are computed, `width` (`cols`
    /// padded to whole vectors) wide: straight into the slab when its rows are contiguous
    /// and `cols` is already `width`, else into `buf` ([`Slab::write_back`] copies them out).
    fn rows(
        &self,
        [b, h]: [usize; 2],
        [cols, width]: [usize; 2],
        rows: usize,
        buf: &mut Vec<f32>,
    ) -> Rows {
        let [sb, sh, sr, sc] = self.strides;
        if sc == 1 && cols == width {
            return Rows {
                // SAFETY: (b, h) lies inside the slab's shape (the callers' loops)
                ptr: unsafe { self.ptr.add(b * sb + h * sh) },
                stride: sr,
                scratch: false,
            };
        }
        Rows::scratch(buf, [rows, width])
    }

    /// Copies head `(b, h)`'s values out of `buf` when [`Slab::rows`] put them there.
    ///
    /// # Safety
    /// As for [`Slab::write`].
    unsafe fn write_back(&self, at: [usize; 2], cols: [usize; 2], rows: Rows, buf: &[f32]) {
        if rows.scratch {
            unsafe { self.write(at[0], at[1], cols, buf) };
        }
    }

    /// Writes the first `cols` values of each row of `m` (rows of `width` values) at `(b, h)`.
    ///
    /// # Safety
    /// `(b, h)` must be within the buffer's shape and written by one task only.
    unsafe fn write(&self, b: usize, h: usize, [cols, width]: [usize; 2], m: &[f32]) {
        let [sb, sh, sr, sc] = self.strides;
        let base = b * sb + h * sh;
        for (r, row) in m.chunks(width.max(1)).enumerate() {
            let row = &row[..cols];
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

/// Five per-thread buffers reused across (batch entry, head) tasks.
type Scratch = [Vec<f32>; 5];

/// `buf` as `len` zeros (keeping its allocation).
fn zeroed(buf: &mut Vec<f32>, len: usize) {
    buf.clear();
    buf.resize(len, 0.0);
}

/// `n` rounded up to whole [`LANES`]-wide vectors: every row the head loops update has this
/// length, zero beyond its values, so each update is whole vectors (rows of 4–24 values would
/// otherwise run mostly in the scalar remainder of a 16-lane loop).
fn padded(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
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

impl Dims {
    /// The padded row lengths `[Lk, dk, dv]` (see [`padded`]).
    fn widths(&self) -> [usize; 3] {
        [padded(self.lk), padded(self.dk), padded(self.dv)]
    }
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

/// Rows of the product held in registers at once by [`product_rows`].
const ROWS: usize = 4;

/// Where a product's rows go: from `ptr`, `stride` values apart. Either a task's own scratch
/// buffer or its (batch entry, head) block of the output tensor, whose rows interleave with the
/// other heads' (so it is a pointer, not a slice).
#[derive(Clone, Copy)]
struct Rows {
    ptr: *mut f32,
    stride: usize,
    /// Whether these are a scratch buffer's rows (to be copied out afterwards).
    scratch: bool,
}

impl Rows {
    /// A scratch buffer of `rows` rows of `stride` values, its contents left as they are.
    fn scratch(buf: &mut Vec<f32>, [rows, stride]: [usize; 2]) -> Self {
        buf.resize(rows * stride, 0.0);
        Self {
            ptr: buf.as_mut_ptr(),
            stride,
            scratch: true,
        }
    }
}

/// `c[r, :] (+)= Σ_t α·a[r·ars + t·acs] · b[t·bs, :]` for `rows` rows and `depth` terms over
/// `width` columns (a multiple of [`LANES`]): one small matrix product, the terms in order
/// t = 0, 1, … for every element (the same sums, in the same order, as one row update
/// `c[r, :] += α·a(r, t)·b[t, :]` per term). [`ROWS`] rows × one vector are kept in registers
/// over the whole depth: the row-at-a-time form chains every update through a store and a
/// reload of the same row. `FRESH` products start from zero and only write c (no zeroing pass
/// first, the same bits: 0 + x = x); the others add to what c holds.
///
/// # Safety
/// `c` must hold `rows` rows of `width` writable values that no one else touches meanwhile.
#[inline(always)]
unsafe fn product_rows<const FRESH: bool>(
    c: Rows,
    [rows, width, depth]: [usize; 3],
    (a, [ars, acs], alpha): (&[f32], [usize; 2], f32),
    (b, bs): (&[f32], usize),
) {
    let args = (a, [ars, acs], alpha);
    let mut r0 = 0;
    while r0 + ROWS <= rows {
        unsafe { row_block::<ROWS, FRESH>(c, [r0, width, depth], args, (b, bs)) };
        r0 += ROWS;
    }
    unsafe {
        match rows - r0 {
            1 => row_block::<1, FRESH>(c, [r0, width, depth], args, (b, bs)),
            2 => row_block::<2, FRESH>(c, [r0, width, depth], args, (b, bs)),
            3 => row_block::<3, FRESH>(c, [r0, width, depth], args, (b, bs)),
            _ => {}
        }
    }
}

/// [`product_rows`] for the `N` rows from `r0`.
///
/// # Safety
/// As for [`product_rows`].
#[inline(always)]
unsafe fn row_block<const N: usize, const FRESH: bool>(
    c: Rows,
    [r0, width, depth]: [usize; 3],
    (a, [ars, acs], alpha): (&[f32], [usize; 2], f32),
    (b, bs): (&[f32], usize),
) {
    let row = |r: usize, v: usize| unsafe { c.ptr.add((r0 + r) * c.stride + v) };
    for v in (0..width).step_by(LANES) {
        let mut acc = [[0f32; LANES]; N];
        if !FRESH {
            for (r, x) in acc.iter_mut().enumerate() {
                // SAFETY: row r0 + r of c holds `width` values (the caller's promise)
                *x = unsafe { row(r, v).cast::<[f32; LANES]>().read_unaligned() };
            }
        }
        for t in 0..depth {
            let mut bv = [0f32; LANES];
            bv.copy_from_slice(&b[t * bs + v..t * bs + v + LANES]);
            for (r, x) in acc.iter_mut().enumerate() {
                let s = alpha * a[(r0 + r) * ars + t * acs];
                for l in 0..LANES {
                    x[l] += s * bv[l];
                }
            }
        }
        for (r, x) in acc.iter().enumerate() {
            // SAFETY: as above
            unsafe { row(r, v).cast::<[f32; LANES]>().write_unaligned(*x) };
        }
    }
}

/// Head `(i, j)` of `v` as the left operand of [`product_rows`] (values, `[row step, column
/// step]`): read in place, or gathered into `buf` (rows of `width`) from a flipped view.
fn lhs<'b>(
    v: &'b View,
    [i, j]: [usize; 2],
    width: usize,
    buf: &'b mut Vec<f32>,
) -> (&'b [f32], [usize; 2]) {
    if let Some(m) = v.in_place(i, j) {
        return m;
    }
    v.matrix(i, j, false, width, buf);
    (buf, [width, 1])
}

/// Head `(i, j)` of `v` as the right operand of [`product_rows`] (values, row step): read in
/// place when its rows are contiguous and already `width` (whole vectors) long, else gathered
/// into `buf` with its rows padded by zeros to `width`.
fn rhs<'b>(
    v: &'b View,
    [i, j]: [usize; 2],
    width: usize,
    buf: &'b mut Vec<f32>,
) -> (&'b [f32], usize) {
    match v.in_place(i, j) {
        Some((m, [row, 1])) if v.shape[3] == width => (m, row),
        _ => {
            v.matrix(i, j, false, width, buf);
            (buf, width)
        }
    }
}

crate::multiversion! {
    /// One (batch entry, head): P = softmax(Q Kᵀ·s) into `p` `[Lq, Lk]` and O = P V into `o`
    /// `[Lq, dv']`, from Q (left operand), Kᵀ `[dk, Lk']` (row-major) and V `[Lk, dv']` (right
    /// operand), with `sm` scratch for `[Lq, Lk']` (S, then P); a primed length is padded
    /// with zeros to whole vectors (see [`padded`]). `o` must hold `Lq` rows of `dv'` values
    /// that no other task touches.
    fn forward_head(p: &mut [f32], q: (&[f32], [usize; 2]), kt: &[f32], v: (&[f32], usize), o: Rows, sm: &mut Vec<f32>, dims: &Dims, scale: f32) {
        let &Dims { lq, lk, dk, .. } = dims;
        let [lkp, _, dvp] = dims.widths();
        // S = (Q·s) Kᵀ, all rows
        let s_rows = Rows::scratch(sm, [lq, lkp]);
        // SAFETY: `sm` was just sized for the product
        unsafe { product_rows::<true>(s_rows, [lq, lkp, dk], (q.0, q.1, scale), (kt, lkp)) };
        for (i, srow) in sm.chunks_mut(lkp).enumerate() {
            srow[lk..].fill(f32::NEG_INFINITY);
            let max = crate::simd::max(srow);
            // every exponent is ≤ 0: the branch-free exponential vectorises
            for x in srow.iter_mut() {
                *x = exp_nonpositive(*x - max);
            }
            srow[lk..].fill(0.0);
            let inv = 1.0 / crate::simd::sum(srow) as f32;
            for x in srow.iter_mut() {
                *x *= inv;
            }
            p[i * lk..(i + 1) * lk].copy_from_slice(&srow[..lk]);
        }
        // O = P V
        // SAFETY: `o` holds Lq rows of dv' values for this task alone (the caller's promise)
        unsafe { product_rows::<true>(o, [lq, dvp, lk], (sm, [lkp, 1], 1.0), v) };
    }
}

crate::multiversion! {
    /// One (batch entry, head) of the backward: from P `[Lq, Lk]`, Q and K (right operands),
    /// Vᵀ `[dv, Lk']` (row-major) and ∂O (right operand) into ∂Q `[Lq, dk']`, ∂K `[Lk, dk']`
    /// and ∂V `[Lk, dv']` (primed lengths padded, see [`padded`]), with `ds` scratch for ∂S
    /// `[Lq, Lk']` and `prow` a row of `Lk'` zeros. Each of `grads` must hold its rows for
    /// this task alone.
    fn backward_head(p: &[f32], inputs: [(&[f32], usize); 3], vt: &[f32], grads: [Rows; 3], ds: &mut Vec<f32>, prow: &mut [f32], dims: &Dims, scale: f32) {
        let [q, k, go] = inputs;
        let [gq, gk, gvv] = grads;
        let &Dims { lq, lk, dv, .. } = dims;
        let [lkp, dkp, dvp] = dims.widths();
        let ds_rows = Rows::scratch(ds, [lq, lkp]);
        // SAFETY (every product): each destination holds its rows for this task alone (the
        // caller's promise; `ds` was just sized)
        unsafe {
            // ∂V = Pᵀ ∂O
            product_rows::<true>(gvv, [lk, dvp, lq], (p, [1, lk], 1.0), go);
            // ∂P = ∂O Vᵀ
            product_rows::<true>(ds_rows, [lq, lkp, dv], (go.0, [go.1, 1], 1.0), (vt, lkp));
        }
        // ∂S = P ⊙ (∂P − Σ ∂P ⊙ P), scaled, row by row
        for (i, drow) in ds.chunks_mut(lkp).enumerate() {
            prow[..lk].copy_from_slice(&p[i * lk..(i + 1) * lk]);
            let dot = crate::simd::dot(drow, prow);
            for (x, &pij) in drow.iter_mut().zip(prow.iter()) {
                *x = pij * (*x - dot) * scale;
            }
        }
        unsafe {
            // ∂Q = ∂S K, ∂K = ∂Sᵀ Q
            product_rows::<true>(gq, [lq, dkp, lk], (ds, [lkp, 1], 1.0), k);
            product_rows::<true>(gk, [lk, dkp, lq], (ds, [1, lkp], 1.0), q);
        }
    }
}

/// (batch entry, head) pairs per parallel task: enough for ~16 k multiply-adds a task (the
/// bridge's heads hold a few hundred, and scheduling one costs more than computing it).
fn heads_per_task(d: &Dims) -> usize {
    (16384 / (d.lq * d.lk * (d.dk + d.dv)).max(1)).max(1)
}

/// softmax(QKᵀ·s)V for every (batch entry, head), O into `out`; returns P `[b, h, Lq, Lk]`.
/// Q, V and O are read and written in place where their layouts allow (see [`lhs`], [`rhs`],
/// [`Slab::rows`]); Kᵀ is always gathered (its rows run along the keys).
fn forward_core(qv: &View, kv: &View, vv: &View, dims: &Dims, out: Slab) -> Vec<f32> {
    let &Dims {
        h, lq, lk, dk, dv, ..
    } = dims;
    let scale = 1.0 / (dk as f32).sqrt();
    let mut probs = unwritten(dims.b * h * lq * lk);
    probs
        .par_chunks_mut((lq * lk).max(1))
        .enumerate()
        .with_min_len(heads_per_task(dims))
        .for_each_init(Scratch::default, |[qm, kt, vm, o, sm], (bh, p)| {
            let p = zeroed_slots(p);
            let at = [bh / h, bh % h];
            let [lkp, dkp, dvp] = dims.widths();
            kv.matrix(at[0], at[1], true, lkp, kt);
            let (q, v) = (lhs(qv, at, dkp, qm), rhs(vv, at, dvp, vm));
            let o_rows = out.rows(at, [dv, dvp], lq, o);
            forward_head(p, q, kt, v, o_rows, sm, dims, scale);
            // SAFETY: one task per (bi, hi), inside the shape
            unsafe { out.write_back(at, [dv, dvp], o_rows, o) };
        });
    // SAFETY: every chunk was zeroed by its task.
    unsafe { assume_written(probs) }
}

/// ∂Q, ∂K, ∂V for every (batch entry, head) given P and ∂O, into `[dq, dk, dv]`; in place
/// where the layouts allow, as in [`forward_core`] (Vᵀ always gathered).
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
            let at = [bh / h, bh % h];
            let [lkp, dkp, dvp] = dims.widths();
            let p = &p_all[bh * lq * lk..(bh + 1) * lq * lk];
            let [qm, km, vt, go, _] = inputs;
            vv.matrix(at[0], at[1], true, lkp, vt);
            let operands = [
                rhs(qv, at, dkp, qm),
                rhs(kv, at, dkp, km),
                rhs(gv, at, dvp, go),
            ];
            let [gq, gk, gvv, ds, prow] = grads;
            zeroed(prow, lkp);
            let rows = [
                sq.rows(at, [dk, dkp], lq, gq),
                sk.rows(at, [dk, dkp], lk, gk),
                sv.rows(at, [dv, dvp], lk, gvv),
            ];
            backward_head(p, operands, vt, rows, ds, prow, dims, scale);
            // SAFETY: one task per (bi, hi), inside each shape
            unsafe {
                sq.write_back(at, [dk, dkp], rows[0], gq);
                sk.write_back(at, [dk, dkp], rows[1], gk);
                sv.write_back(at, [dv, dvp], rows[2], gvv);
            }
        });
}

/// `[O, P]`: O like Q, P `[b, h, Lq, Lk]` contiguous. `None` for other element types or ranks.
pub fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor) -> Option<[FlexTensor; 2]> {
    let (qv, kv, vv) = (View::of(q)?, View::of(k)?, View::of(v)?);
    let d = dims(&qv, &kv, &vv)?;
    let mut out = Ordered::new([d.b, d.h, d.lq, d.dv], qv.strides);
    let probs = forward_core(&qv, &kv, &vv, &d, Slab::of(&mut out));
    // SAFETY: each (batch entry, head) task wrote its Lq × dv block of O.
    let out = unsafe { out.into_tensor() };
    Some([out, tensor(probs, vec![d.b, d.h, d.lq, d.lk])])
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
    // SAFETY: each (batch entry, head) task wrote its blocks of ∂Q, ∂K and ∂V.
    Some(unsafe { [dq.into_tensor(), dk.into_tensor(), dv.into_tensor()] })
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
    let mut out = unwritten(d.b * d.lq * d.h * d.dv);
    let probs = forward_core(&qv, &kv, &vv, &d, Slab::part(&mut out, qv.shape, 1, 0));
    // SAFETY: each (batch entry, head) task wrote its Lq × dv block, and the h blocks of
    // width dv fill each row of the h·dv-wide buffer.
    let out = unsafe { assume_written(out) };
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
    let mut out = unwritten(d.b * d.lq * 3 * d.h * d.dk);
    let slabs = [0, 1, 2].map(|part| Slab::part(&mut out, qv.shape, 3, part));
    backward_core([&qv, &kv, &vv], probs.storage::<f32>(), &gv, &d, slabs);
    // SAFETY: each (batch entry, head) task wrote its blocks of ∂Q, ∂K and ∂V, which tile
    // every row of the 3·h·d-wide buffer.
    let out = unsafe { assume_written(out) };
    Some(tensor(out, vec![d.b, d.lq, 3 * d.h * d.dk]))
}
