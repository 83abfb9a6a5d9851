//! The shapes of one k×k convolution (zero padding p = k/2, stride s) on `[n, c, h, w]`,
//! shared by the dense and the depthwise kernels: output side ⌈side/s⌉, and the input index
//! `o·s + a − p` that output index o reads through tap a.

use burn::backend::flex::FlexTensor;

use super::view::View;

/// Shapes of one convolution.
pub struct Geometry {
    pub n: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    /// The shapes of `x` convolved by `weight [c_out, per_group, k, k]`; `None` unless the
    /// kernel is square and odd, the stride positive and `per_group` channels are what each
    /// output channel reads (`c_in` for one group, 1 for a depthwise convolution, whose
    /// `c_out` must be a multiple of `c_in`).
    pub fn of(x: &View, weight: &FlexTensor, stride: usize, depthwise: bool) -> Option<Self> {
        let [n, c_in, h, w] = x.shape;
        let dims: Vec<usize> = weight.layout().shape().iter().copied().collect();
        let &[c_out, per_group, k, k2] = dims.as_slice() else {
            return None;
        };
        let groups_fit = if depthwise {
            per_group == 1 && c_in > 0 && c_out.is_multiple_of(c_in)
        } else {
            per_group == c_in
        };
        if !groups_fit || k != k2 || k.is_multiple_of(2) || stride == 0 {
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

    /// The views of `x` and `∂y` and the shapes, for a backward pass; `None` where
    /// [`Geometry::of`] gives none or `∂y` does not have the output's shape.
    pub fn with_grad<'a>(
        x: &'a FlexTensor,
        weight: &FlexTensor,
        stride: usize,
        depthwise: bool,
        grad: &'a FlexTensor,
    ) -> Option<(View<'a>, View<'a>, Self)> {
        let (xv, gv) = (View::of(x)?, View::of(grad)?);
        let g = Self::of(&xv, weight, stride, depthwise)?;
        (gv.shape == [g.n, g.c_out, g.ho, g.wo]).then_some((xv, gv, g))
    }

    /// The input index that output index `o` reads through tap `a` on a side of `side`
    /// values, `o·s + a − p`, if inside.
    #[inline(always)]
    pub fn input(&self, o: usize, a: usize, side: usize) -> Option<usize> {
        let i = (o * self.stride + a) as isize - (self.k / 2) as isize;
        (i >= 0 && (i as usize) < side).then_some(i as usize)
    }
}
