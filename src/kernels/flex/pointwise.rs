//! The 1×1 convolution `y[n, :, p] = W x[n, :, p]` on the host, channel-major: the input is
//! packed into `X (c, n·h·w)` (plane copies, in parallel; none when it is channel-major
//! already), multiplied as one GEMM, and the product returned as it is: `[c', n, h, w]` in
//! memory, logically `[n, c', h, w]` (the BatchNorm that follows reads any layout, and
//! reads a channel-major one as one slice per channel). Its backward is two GEMMs on the
//! packed gradient: `∂W = ∂Y Xᵀ` and `∂X = Wᵀ ∂Y`. burn's composition does the same products
//! but packs and unpacks through a strided element iterator, twice per direction.

use burn::backend::flex::FlexTensor;

use super::matmul::{contiguous, product_values, Operand};
use super::view::View;
use std::borrow::Cow;

use super::{channel_major, filled, put, tensor, zeros};

/// `[n, c, h, w]` (any layout) → `[c, n·h·w]`, row-major: the data itself when it is laid
/// out so already.
pub(super) fn pack<'a>(v: &View<'a>) -> Cow<'a, [f32]> {
    let [n, c, h, w] = v.shape;
    let hw = h * w;
    if hw == 0 || n == 0 {
        return Cow::Owned(zeros(c * n * hw));
    }
    if v.offset >= 0 && v.is_channel_major() {
        let start = v.offset as usize;
        if let Some(all) = v.data.get(start..start + c * n * hw) {
            return Cow::Borrowed(all);
        }
    }
    Cow::Owned(filled(c * n * hw, n * hw, |start, row| {
        let ch = start / (n * hw);
        let mut buf = Vec::new();
        for (i, dst) in row.chunks_mut(hw).enumerate() {
            put(dst, v.plane(i, ch, &mut buf));
        }
    }))
}

/// `[c, n·hw]` row-major → `[n, c, hw]` row-major.
fn unpack(m: &[f32], c: usize, n: usize, hw: usize) -> Vec<f32> {
    if hw == 0 || c == 0 {
        return zeros(n * c * hw);
    }
    filled(n * c * hw, c * hw, |start, sample| {
        let i = start / (c * hw);
        for (ch, dst) in sample.chunks_mut(hw).enumerate() {
            let src = ch * n * hw + i * hw;
            put(dst, &m[src..src + hw]);
        }
    })
}

/// `W [c', c]` times `x [n, c, h, w]`; `None` for other element types or ranks.
pub fn forward(weight: &FlexTensor, x: &FlexTensor) -> Option<FlexTensor> {
    let xv = View::of(x)?;
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let [n, c, h, wd] = xv.shape;
    let c_out = w.len().checked_div(c)?;
    let cols = n * h * wd;
    let xc = pack(&xv);
    let yc = product_values(
        [c_out, cols, c],
        Operand::rows(w, c),
        Operand::rows(&xc, cols),
        true,
    );
    Some(channel_major(yc, [n, c_out, h, wd]))
}

/// `[∂W, ∂x]` given `∂y [n, c', h, w]`.
pub fn backward(weight: &FlexTensor, x: &FlexTensor, grad: &FlexTensor) -> Option<[FlexTensor; 2]> {
    let (xv, gv) = (View::of(x)?, View::of(grad)?);
    let w = contiguous(weight)?;
    let w = w.storage::<f32>();
    let [n, c, h, wd] = xv.shape;
    let c_out = gv.shape[1];
    let cols = n * h * wd;
    let (xc, gc) = (pack(&xv), pack(&gv));
    let dw = product_values(
        [c_out, c, cols],
        Operand::rows(&gc, cols),
        Operand::transposed(&xc, cols),
        true,
    );
    let dxc = product_values(
        [c, cols, c_out],
        Operand::transposed(w, c),
        Operand::rows(&gc, cols),
        true,
    );
    Some([
        tensor(dw, vec![c_out, c]),
        tensor(unpack(&dxc, c, n, h * wd), vec![n, c, h, wd]),
    ])
}
