//! Row-major f32 matrix products on host slices through the `gemm` crate (what burn-flex's
//! own matmul calls), with transposes expressed as strides instead of copies.

use burn::backend::flex::FlexTensor;
use burn::tensor::DType;

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

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }
}

/// A destination matrix: storage, row stride, column stride.
pub struct Strided<'a> {
    pub data: &'a mut [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Strided<'a> {
    /// A row-major destination with `cols` columns.
    pub fn rows(data: &'a mut [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }
}

/// `dst (m × n, row-major) = [dst +] lhs (m × k) · rhs (k × n)`; `accumulate` adds to dst.
/// `parallel` lets the product itself use every core (callers already inside a parallel loop
/// pass false).
pub fn matmul(
    dst: &mut [f32],
    mnk: [usize; 3],
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
    parallel: bool,
) {
    let cols = mnk[1];
    matmul_strided(
        Strided::rows(dst, cols),
        mnk,
        lhs,
        rhs,
        accumulate,
        parallel,
    )
}

/// [`matmul`] into a destination with any (non-negative) strides.
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
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(
        last(dst.row_stride, dst.col_stride, m, n) < dst.data.len(),
        "gemm destination out of range"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst.data[r * dst.row_stride + c * dst.col_stride] = 0.0;
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
    let parallelism = if parallel && m * n * k >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the product touches inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.col_stride as isize,
            dst.row_stride as isize,
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
            parallelism,
        );
    }
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
    let mut c = super::zeros(m * n);
    let (a, b) = (a.storage::<f32>(), b.storage::<f32>());
    matmul(
        &mut c,
        [m, n, k],
        Operand::rows(a, k),
        Operand::rows(b, n),
        false,
        true,
    );
    Some(super::tensor(c, vec![m, n]))
}

/// `[∂A = ∂C Bᵀ, ∂B = Aᵀ ∂C]`.
pub fn product_backward(
    a: &FlexTensor,
    b: &FlexTensor,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 2]> {
    let ((a, [m, k]), (b, [_, n]), (g, [gm, gn])) = (matrix(a)?, matrix(b)?, matrix(grad)?);
    if (gm, gn) != (m, n) {
        return None;
    }
    let (a, b, g) = (a.storage::<f32>(), b.storage::<f32>(), g.storage::<f32>());
    let (mut da, mut db) = (super::zeros(m * k), super::zeros(k * n));
    let (bt, at) = (Operand::rows(b, n).t(), Operand::rows(a, k).t());
    matmul(&mut da, [m, k, n], Operand::rows(g, n), bt, false, true);
    matmul(&mut db, [k, n, m], at, Operand::rows(g, n), false, true);
    Some([super::tensor(da, vec![m, k]), super::tensor(db, vec![k, n])])
}
