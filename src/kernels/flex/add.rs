//! `lhs + rhs` on the host, written in parallel chunks straight into the output (burn-flex's
//! binary operations run on one thread, and a strided or broadcast operand goes through its
//! element-by-element strided iterator): the residual connections, the decoder's position
//! embedding, and the pixel-side bridge's head-major output added onto the feature map.

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape};

use super::filled;
use super::matmul::contiguous;
use super::tensor;
use super::view::View;

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
}

/// `lhs + rhs` (see [`crate::kernels::Kernels::add`]); `None` for other element types
/// or when `rhs` is neither `lhs`'s shape nor a tile of its trailing elements.
pub fn forward(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    if lhs.dtype() != DType::F32 || rhs.dtype() != DType::F32 {
        return None;
    }
    let shape = dims(lhs);
    let len: usize = shape.iter().product();
    let tile: usize = dims(rhs).iter().product();
    if tile == 0 || !len.is_multiple_of(tile) {
        return None;
    }
    if tile == len && shape == dims(rhs) {
        if let Some(y) = same_layout(lhs, rhs) {
            return Some(y);
        }
    }
    if tile == len && shape == dims(rhs) && shape.len() == 4 {
        if let (Some(a), Some(b)) = (View::of(lhs), View::of(rhs)) {
            if !lhs.layout().is_contiguous() || !rhs.layout().is_contiguous() {
                return Some(tensor(planes(&a, &b), shape));
            }
        }
    }
    let (a, b) = (contiguous(lhs)?, contiguous(rhs)?);
    let (a, b) = (a.storage::<f32>(), b.storage::<f32>());
    // chunks of whole tiles, so every chunk starts at a tile boundary
    let chunk = tile * (CHUNK / tile).max(1);
    let y = filled(len, chunk, |start, out| {
        let xs = &a[start..start + out.len()];
        for (o, (x, t)) in out
            .chunks_mut(tile)
            .zip(xs.chunks(tile).zip(std::iter::repeat(b)))
        {
            for ((o, &x), &t) in o.iter_mut().zip(x).zip(t) {
                *o = MaybeUninit::new(x + t);
            }
        }
    });
    Some(tensor(y, shape))
}

/// The values of `t` in memory order when its layout is a permutation of a dense one (every
/// element once, no gaps), with its strides; `None` otherwise.
fn dense_storage(t: &FlexTensor) -> Option<(&[f32], Vec<isize>)> {
    let l = t.layout();
    let shape: Vec<usize> = l.shape().iter().copied().collect();
    let strides: Vec<isize> = l.strides().to_vec();
    let mut dims: Vec<usize> = (0..shape.len()).filter(|&d| shape[d] > 1).collect();
    dims.sort_by_key(|&d| strides[d]);
    let mut expect = 1isize;
    for &d in &dims {
        if strides[d] != expect {
            return None;
        }
        expect *= shape[d] as isize;
    }
    let start = l.start_offset();
    let len: usize = shape.iter().product();
    Some((t.storage::<f32>().get(start..start + len)?, strides))
}

/// `lhs + rhs` when both have the same strided layout (a permuted view, such as two
/// gradients of one head view): summed in memory order, the result in that same layout, so
/// a reshape of it stays free.
fn same_layout(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    if lhs.layout().is_contiguous() {
        return None;
    }
    let (a, sa) = dense_storage(lhs)?;
    let (b, sb) = dense_storage(rhs)?;
    if sa != sb {
        return None;
    }
    let y = filled(a.len(), CHUNK, |start, out| {
        for ((o, &x), &t) in out.iter_mut().zip(&a[start..]).zip(&b[start..]) {
            *o = MaybeUninit::new(x + t);
        }
    });
    let shape = dims(lhs);
    // the buffer in physical order (outermost = largest stride), permuted back
    let mut order: Vec<usize> = (0..shape.len()).collect();
    order.sort_by_key(|&d| (std::cmp::Reverse(sa[d]), d));
    let physical: Vec<usize> = order.iter().map(|&d| shape[d]).collect();
    let mut axes = vec![0; shape.len()];
    for (pos, &d) in order.iter().enumerate() {
        axes[d] = pos;
    }
    Some(tensor(y, physical).permute(&axes))
}

/// Two `[n, c, h, w]` tensors of the same shape in any layouts, summed plane by plane.
fn planes(a: &View, b: &View) -> Vec<f32> {
    let [n, c, h, w] = a.shape;
    let hw = h * w;
    filled(n * c * hw, hw, |start, out| {
        let row = start / hw.max(1);
        let (i, ch) = (row / c, row % c);
        let (mut ba, mut bb) = (Vec::new(), Vec::new());
        let (pa, pb) = (a.plane(i, ch, &mut ba), b.plane(i, ch, &mut bb));
        for ((o, &x), &t) in out.iter_mut().zip(pa).zip(pb) {
            *o = MaybeUninit::new(x + t);
        }
    })
}

/// `[∂lhs, ∂rhs]` given ∂y: ∂lhs = ∂y, ∂rhs = ∂y summed over the tiles (in tile order, so
/// the sum does not depend on the number of threads).
pub fn backward(rhs_shape: &[usize], grad: &FlexTensor) -> Option<[FlexTensor; 2]> {
    let tile: usize = rhs_shape.iter().product();
    let g = contiguous(grad)?;
    let gs = g.storage::<f32>();
    if tile == 0 || !gs.len().is_multiple_of(tile) {
        return None;
    }
    if tile == gs.len() {
        let same = g.reshape(Shape::from(rhs_shape.to_vec()));
        return Some([g, same]);
    }
    let reps = gs.len() / tile;
    let columns = (CHUNK / reps).clamp(64, CHUNK);
    let dr = filled(tile, columns, |start, out| {
        let mut acc = vec![0f32; out.len()];
        for r in 0..reps {
            let at = r * tile + start;
            for (a, &x) in acc.iter_mut().zip(&gs[at..at + out.len()]) {
                *a += x;
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = MaybeUninit::new(a);
        }
    });
    Some([g.clone(), tensor(dr, rhs_shape.to_vec())])
}
