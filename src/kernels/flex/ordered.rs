//! A result buffer laid out in the memory order of another tensor, so that a gradient (or an
//! output) has its input's layout and the views around it stay free.

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use std::mem::MaybeUninit;

/// A dense buffer for a tensor of logical `shape` whose dimensions lie in memory in the order
/// of `like` strides (largest outermost). Its slots start without values: the kernel that
/// fills it writes every one (a GEMM that does not accumulate, a per-head copy).
pub struct Ordered<const N: usize> {
    pub values: Vec<MaybeUninit<f32>>,
    /// The logical shape.
    pub shape: [usize; N],
    /// Strides of the logical dimensions in `values`.
    pub strides: [usize; N],
    /// Physical order of the logical dimensions, outermost first.
    pub order: [usize; N],
}

impl<const N: usize> Ordered<N> {
    pub fn new(shape: [usize; N], like: [isize; N]) -> Self {
        let mut order: [usize; N] = std::array::from_fn(|d| d);
        order.sort_by_key(|&d| (std::cmp::Reverse(like[d].unsigned_abs()), d));
        let mut strides = [0; N];
        let mut s = 1;
        for &d in order.iter().rev() {
            strides[d] = s;
            s *= shape[d];
        }
        Self {
            values: super::unwritten(s),
            shape,
            strides,
            order,
        }
    }

    /// The tensor: the buffer in physical order, permuted back to the logical dimensions.
    ///
    /// # Safety
    /// Every slot of `values` must have been written.
    pub unsafe fn into_tensor(self) -> FlexTensor {
        let physical: Vec<usize> = self.order.iter().map(|&d| self.shape[d]).collect();
        let mut axes = [0; N];
        for (pos, &d) in self.order.iter().enumerate() {
            axes[d] = pos;
        }
        // SAFETY: every slot was written (the caller's promise).
        let values = unsafe { super::assume_written(self.values) };
        FlexTensor::from_data(TensorData::new(values, physical)).permute(&axes)
    }
}
