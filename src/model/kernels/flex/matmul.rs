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

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }
}

/// `dst (m × n, row-major) = [dst +] lhs (m × k) · rhs (k × n)`; `accumulate` adds to dst.
/// `parallel` lets the product itself use every core (callers already inside a parallel loop
/// pass false).
pub fn matmul(
    dst: &mut [f32],
    [m, n, k]: [usize; 3],
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
    parallel: bool,
) {
    assert!(dst.len() >= m * n, "gemm destination too small");
    let last = |o: &Operand, r: usize, c: usize| {
        (r.saturating_sub(1)) * o.row_stride + (c.saturating_sub(1)) * o.col_stride
    };
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    assert!(last(&lhs, m, k) < lhs.data.len(), "gemm lhs out of range");
    assert!(last(&rhs, k, n) < rhs.data.len(), "gemm rhs out of range");
    let parallelism = if parallel && m * n * k >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the product reads inside the slices, and dst
    // holds m × n row-major values.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
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
