//! Row-major f32 matrix products on host slices through the `gemm` crate (what burn-flex's
//! own matmul calls), with transposes expressed as strides instead of copies.

use burn::backend::flex::FlexTensor;
use burn::tensor::DType;
use std::mem::MaybeUninit;

/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MACS: usize = 1 << 21;

/// A matrix operand: storage, row stride, column stride.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Operand<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// This matrix transposed (strides swapped, nothing copied).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// This matrix without its first `r` rows.
    fn skip_rows(self, r: usize) -> Self {
        Self {
            data: &self.data[r * self.row_stride..],
            ..self
        }
    }

    /// This matrix without its first `c` columns.
    fn skip_cols(self, c: usize) -> Self {
        Self {
            data: &self.data[c * self.col_stride..],
            ..self
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }
}

/// A destination matrix: storage, row stride, column stride. Its slots may not hold values
/// yet (a fresh output buffer): a product then only writes them, and may not accumulate.
pub struct Strided<'a> {
    data: &'a mut [MaybeUninit<f32>],
    pub row_stride: usize,
    pub col_stride: usize,
    /// Whether every slot holds a value (so that a product may add to it).
    holds_values: bool,
}

impl<'a> Strided<'a> {
    /// A row-major destination with `cols` columns, holding values.
    pub fn rows(data: &'a mut [f32], cols: usize) -> Self {
        // SAFETY: MaybeUninit<f32> has f32's layout, and the products only ever store
        // initialised f32 values through this slice, so `data` stays initialised.
        let data = unsafe { &mut *(data as *mut [f32] as *mut [MaybeUninit<f32>]) };
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
            holds_values: true,
        }
    }

    /// A destination of fresh slots with any strides: a product writes every slot of its
    /// m × n (no zeroing pass first), and may not accumulate into it.
    pub fn fresh(data: &'a mut [MaybeUninit<f32>], row_stride: usize, col_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            col_stride,
            holds_values: false,
        }
    }
}

/// `lhs (m × k) · rhs (k × n)` as a new row-major buffer, its slots written once by the
/// product (no zeroing pass first).
pub fn product_values(mnk: [usize; 3], lhs: Operand, rhs: Operand, parallel: bool) -> Vec<f32> {
    let [m, n, _] = mnk;
    let mut out = super::unwritten(m * n);
    matmul_strided(
        Strided::fresh(&mut out, n, 1),
        mnk,
        lhs,
        rhs,
        false,
        parallel,
    );
    // SAFETY: a product that does not accumulate writes every one of its m × n slots, which
    // with these strides are the whole buffer.
    unsafe { super::assume_written(out) }
}

/// `dst (m × n) = [dst +] lhs (m × k) · rhs (k × n)` into a destination with any
/// (non-negative) strides; `accumulate` adds to dst (which must then hold values).
/// `parallel` lets the product itself use every core (callers already inside a parallel loop
/// pass false).
///
/// A parallel product is cut into one block of dst's rows (or columns, whichever are more)
/// per thread, each block a whole serial `gemm` call. `gemm`'s own Rayon mode instead joins
/// every thread twice per depth block (once to pack the right operand, once to multiply):
/// for the backward's long reductions (depth 4096 at batch 256) that is dozens of joins per
/// product, each leaving one thread waiting. Each block repacks the whole other operand
/// (k·n values for a row block): negligible beside its m·n·k / threads multiply-adds. On the
/// 2-core Xeon, the step's GEMM time at batch 256 went 135 → 121 ms.
pub fn matmul_strided(
    dst: Strided,
    [m, n, k]: [usize; 3],
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst.holds_values || !accumulate,
        "a product can only add to slots that hold values"
    );
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(
        last(dst.row_stride, dst.col_stride, m, n) < dst.data.len(),
        "gemm destination out of range"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst.data[r * dst.row_stride + c * dst.col_stride] = MaybeUninit::new(0.0);
                }
            }
        }
        return;
    }
    assert!(
        last(lhs.row_stride, lhs.col_stride, m, k) < lhs.data.len(),
        "gemm lhs out of range"
    );
    assert!(
        last(rhs.row_stride, rhs.col_stride, k, n) < rhs.data.len(),
        "gemm rhs out of range"
    );
    let d = dst.data.as_mut_ptr().cast::<f32>();
    let (drs, dcs) = (dst.row_stride, dst.col_stride);
    // One block of rows (or columns) of dst per thread, each a whole serial product.
    let along_rows = m >= n;
    let (lines, other) = if along_rows { (m, n) } else { (n, m) };
    let part = if parallel && m * n * k >= PARALLEL_MACS {
        block_lines(lines, other, rayon::current_num_threads())
    } else {
        lines
    };
    if part >= lines {
        // SAFETY: the asserts above keep every index the product touches inside the slices.
        unsafe { block(d, [drs, dcs], [m, n, k], lhs, rhs, accumulate) };
        return;
    }
    let d = SharedDst(d);
    rayon::scope(|s| {
        for first in (0..lines).step_by(part) {
            let len = part.min(lines - first);
            let d = &d;
            s.spawn(move |_| {
                let (mnk, dst_at, lhs, rhs) = if along_rows {
                    ([len, n, k], first * drs, lhs.skip_rows(first), rhs)
                } else {
                    ([m, len, k], first * dcs, lhs, rhs.skip_cols(first))
                };
                // SAFETY: the block lies inside the whole product the asserts checked, and
                // the blocks' rows (columns) of dst are disjoint.
                unsafe { block(d.0.add(dst_at), [drs, dcs], mnk, lhs, rhs, accumulate) };
            });
        }
    });
}

/// Lines (rows or columns) of dst per block when `lines` of `other` values each are cut for
/// `threads`: a multiple of [`LINE_ALIGN`], and fewer blocks (down to one, the whole product)
/// where a block would hold at most [`SMALL`] values: `gemm` multiplies such a small product
/// another way (dot products along the depth), whose sums round differently, so the bits
/// would depend on the thread count.
fn block_lines(lines: usize, other: usize, threads: usize) -> usize {
    for parts in (2..=threads).rev() {
        let part = lines.div_ceil(parts).next_multiple_of(LINE_ALIGN);
        let last = lines - part * (lines.div_ceil(part) - 1);
        if part.min(last) * other > SMALL {
            return part;
        }
    }
    lines
}

/// The largest dst (in values) that `gemm` multiplies with its small-product kernels.
const SMALL: usize = 16 * 16;

/// Rows (columns) of dst per parallel block are a multiple of this (the AVX-512 kernel's
/// 16-lane register width), so only the last block has a ragged edge.
const LINE_ALIGN: usize = 16;

/// dst's base pointer, shared by the blocks that each write their own rows (columns).
struct SharedDst(*mut f32);

// SAFETY: each block writes a disjoint part of dst (see `matmul_strided`).
unsafe impl Sync for SharedDst {}

/// `dst [m, n] = [dst +] lhs · rhs` on the calling thread.
///
/// # Safety
/// Every element the product reads or writes (`dst` through its strides) must be in bounds,
/// and no other thread may touch dst's elements meanwhile.
unsafe fn block(
    dst: *mut f32,
    [row_stride, col_stride]: [usize; 2],
    [m, n, k]: [usize; 3],
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        col_stride as isize,
        row_stride as isize,
        accumulate,
        lhs.data.as_ptr(),
        lhs.col_stride as isize,
        lhs.row_stride as isize,
        rhs.data.as_ptr(),
        rhs.col_stride as isize,
        rhs.row_stride as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// The values of an f32 tensor in row-major order (a copy only when its layout is not).
pub fn contiguous(t: &FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| t.to_contiguous())
}

/// The `[rows, cols]` of a rank-2 f32 tensor's row-major values.
fn matrix(t: &FlexTensor) -> Option<(FlexTensor, [usize; 2])> {
    let dims: Vec<usize> = t.layout().shape().iter().copied().collect();
    let [r, c] = dims[..] else { return None };
    Some((contiguous(t)?, [r, c]))
}

/// `a [m, k] · b [k, n]` with every core; `None` for other element types or ranks.
pub fn product(a: &FlexTensor, b: &FlexTensor) -> Option<FlexTensor> {
    let ((a, [m, k]), (b, [k2, n])) = (matrix(a)?, matrix(b)?);
    if k != k2 {
        return None;
    }
    let (a, b) = (a.storage::<f32>(), b.storage::<f32>());
    let c = product_values([m, n, k], Operand::rows(a, k), Operand::rows(b, n), true);
    Some(super::tensor(c, vec![m, n]))
}

/// `[∂A = ∂C Bᵀ, ∂B = Aᵀ ∂C]`, each only where `wanted` says.
pub fn product_backward(
    a: &FlexTensor,
    b: &FlexTensor,
    grad: &FlexTensor,
    [want_a, want_b]: [bool; 2],
) -> Option<[Option<FlexTensor>; 2]> {
    let ((a, [m, k]), (b, [_, n]), (g, [gm, gn])) = (matrix(a)?, matrix(b)?, matrix(grad)?);
    if (gm, gn) != (m, n) {
        return None;
    }
    let (a, b, g) = (a.storage::<f32>(), b.storage::<f32>(), g.storage::<f32>());
    let (bt, at) = (Operand::rows(b, n).t(), Operand::rows(a, k).t());
    let da = want_a.then(|| {
        let da = product_values([m, k, n], Operand::rows(g, n), bt, true);
        super::tensor(da, vec![m, k])
    });
    let db = want_b.then(|| {
        let db = product_values([k, n, m], at, Operand::rows(g, n), true);
        super::tensor(db, vec![k, n])
    });
    Some([da, db])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [−1, 1).
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(13);
                (h % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Checks `got[r·rs + c·cs]` against `init + Σ_t a(r, t)·b(t, c)` in f64, within 10⁻⁵ of
    /// `Σ_t |a(r, t)·b(t, c)|` (f32 rounding of a k-term sum).
    #[allow(clippy::too_many_arguments)]
    fn check(
        got: &[f32],
        [rs, cs]: [usize; 2],
        [m, n, k]: [usize; 3],
        lhs: Operand,
        rhs: Operand,
        init: impl Fn(usize, usize) -> f32,
    ) {
        for r in 0..m {
            for c in 0..n {
                let (mut want, mut scale) = (init(r, c) as f64, 1.0f64);
                for t in 0..k {
                    let a = lhs.data[r * lhs.row_stride + t * lhs.col_stride] as f64;
                    let b = rhs.data[t * rhs.row_stride + c * rhs.col_stride] as f64;
                    want += a * b;
                    scale += (a * b).abs();
                }
                let g = got[r * rs + c * cs] as f64;
                assert!(
                    (g - want).abs() <= 1e-5 * scale,
                    "({r}, {c}): {g} vs {want}"
                );
            }
        }
    }

    /// Products large enough to be cut into per-thread blocks (3 threads: two whole blocks and
    /// a ragged last one), along dst's rows and along its columns, into fresh and accumulating
    /// destinations with transposed operands, against the sum written out in f64.
    #[test]
    fn parallel_blocks_give_the_whole_product() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            // along rows (m ≥ n): fresh row-major dst, lhs stored transposed
            let [m, n, k] = [300, 70, 200];
            assert!(m * n * k >= PARALLEL_MACS);
            let (a, b) = (values(k * m, 1), values(k * n, 2));
            let (lhs, rhs) = (Operand::transposed(&a, m), Operand::rows(&b, n));
            let got = product_values([m, n, k], lhs, rhs, true);
            check(&got, [n, 1], [m, n, k], lhs, rhs, |_, _| 0.0);

            // along columns (n > m): column-major dst holding values, rhs stored transposed
            let [m, n, k] = [40, 333, 200];
            assert!(m * n * k >= PARALLEL_MACS);
            let (a, b) = (values(m * k, 3), values(n * k, 4));
            let (lhs, rhs) = (Operand::rows(&a, k), Operand::transposed(&b, k));
            let start = values(m * n, 5);
            let mut dst = start.clone();
            let strided = Strided {
                row_stride: 1,
                col_stride: m,
                ..Strided::rows(&mut dst, 1)
            };
            matmul_strided(strided, [m, n, k], lhs, rhs, true, true);
            check(&dst, [1, m], [m, n, k], lhs, rhs, |r, c| start[r + c * m]);
        });
    }

    /// A thin product (16 columns) gives the same bits on 1 to 4 threads: no block is cut
    /// small enough for `gemm`'s small-product kernels, which sum in another order.
    #[test]
    fn thin_products_give_the_same_bits_on_any_thread_count() {
        let [m, n, k] = [64, 16, 4096];
        assert!(m * n * k >= PARALLEL_MACS);
        let (a, b) = (values(m * k, 9), values(k * n, 10));
        let (lhs, rhs) = (Operand::rows(&a, k), Operand::transposed(&b, k));
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| product_values([m, n, k], lhs, rhs, true));
            got.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        let one = on(1);
        for threads in 2..=4 {
            assert_eq!(on(threads), one, "{threads} threads");
        }
    }

    /// A product with no depth writes zeros into fresh slots.
    #[test]
    fn empty_depth_gives_zeros() {
        let got = product_values(
            [3, 4, 0],
            Operand::rows(&[], 0),
            Operand::rows(&[], 4),
            true,
        );
        assert_eq!(got, vec![0.0; 12]);
    }

    #[test]
    #[should_panic(expected = "only add to slots that hold values")]
    fn fresh_slots_cannot_be_accumulated_into() {
        let mut out = crate::kernels::flex::unwritten(4);
        let dst = Strided::fresh(&mut out, 2, 1);
        let a = [1.0; 4];
        matmul_strided(
            dst,
            [2, 2, 2],
            Operand::rows(&a, 2),
            Operand::rows(&a, 2),
            true,
            false,
        );
    }
}
