//! Strided read access to a burn-flex tensor's f32 storage.

use burn::backend::flex::FlexTensor;
use burn::tensor::DType;

/// A read-only `[n, c, h, w]` f32 view of a tensor in whatever layout it has.
pub struct View<'a> {
    pub data: &'a [f32],
    pub offset: isize,
    pub strides: [isize; 4],
    pub shape: [usize; 4],
}

impl<'a> View<'a> {
    /// The view of `t`; `None` for other element types or ranks.
    pub fn of(t: &'a FlexTensor) -> Option<View<'a>> {
        if t.dtype() != DType::F32 {
            return None;
        }
        let l = t.layout();
        let dims: Vec<usize> = l.shape().iter().copied().collect();
        let st = l.strides();
        if dims.len() != 4 || st.len() != 4 {
            return None;
        }
        Some(View {
            data: t.storage::<f32>(),
            offset: l.start_offset() as isize,
            strides: [st[0], st[1], st[2], st[3]],
            shape: [dims[0], dims[1], dims[2], dims[3]],
        })
    }

    /// The h·w values of sample `n`, channel `c`, in row-major order, into `buf` (or as a
    /// slice of the data when they are contiguous).
    /// Inlined (the kernels call it once per plane, and most planes are a few values: 2×2 to
    /// 8×8 in the encoder at 32 px); the copy of a strided plane is a call of its own.
    #[inline]
    pub fn plane<'b>(&'b self, n: usize, c: usize, buf: &'b mut Vec<f32>) -> &'b [f32] {
        let [_, _, h, w] = self.shape;
        let base = self.matrix_start(n, c);
        if self.strides[3] == 1 && self.strides[2] == w as isize {
            let b = base as usize;
            return &self.data[b..b + h * w];
        }
        self.gather_plane(base, buf)
    }

    /// The plane at `base` copied value by value into `buf`.
    #[inline(never)]
    fn gather_plane<'b>(&self, base: isize, buf: &'b mut Vec<f32>) -> &'b [f32] {
        let [_, _, h, w] = self.shape;
        buf.clear();
        for y in 0..h {
            for x in 0..w {
                let i = base + y as isize * self.strides[2] + x as isize * self.strides[3];
                buf.push(self.data[i as usize]);
            }
        }
        buf
    }
}

impl View<'_> {
    /// Channel `c` of every sample as one slice of n·h·w values (sample-major), when the
    /// tensor is laid out channel-major (`[c, n, h, w]` in memory); `None` otherwise.
    pub fn channel(&self, c: usize) -> Option<&[f32]> {
        let [n, _, h, w] = self.shape;
        let dense_planes = self.strides[3] == 1 && self.strides[2] == w as isize;
        if !dense_planes || (n > 1 && self.strides[0] != (h * w) as isize) {
            return None;
        }
        let base = self.offset + c as isize * self.strides[1];
        let b = usize::try_from(base).ok()?;
        self.data.get(b..b + n * h * w)
    }

    /// Channel `c` of every sample as n·h·w values (sample-major): borrowed when the tensor
    /// is laid out channel-major ([`View::channel`]), else its planes copied into `buf`.
    pub fn channel_values<'b>(&'b self, c: usize, buf: &'b mut Vec<f32>) -> &'b [f32] {
        if let Some(all) = self.channel(c) {
            return all;
        }
        let [n, _, h, w] = self.shape;
        let mut plane = Vec::new();
        buf.clear();
        buf.reserve(n * h * w);
        for i in 0..n {
            buf.extend_from_slice(self.plane(i, c, &mut plane));
        }
        buf
    }

    /// Whether the whole tensor is laid out channel-major, `[c, n, h, w]` in memory: each
    /// channel one [`View::channel`] slice, the channels one after another.
    pub fn is_channel_major(&self) -> bool {
        let [n, c, h, w] = self.shape;
        self.channel(0).is_some() && (c <= 1 || self.strides[1] == (n * h * w) as isize)
    }

    /// Where the matrix (plane) at index `(i, j)` of the first two dimensions starts in `data`.
    fn matrix_start(&self, i: usize, j: usize) -> isize {
        self.offset + i as isize * self.strides[0] + j as isize * self.strides[1]
    }

    /// The `[rows, cols]` matrix at index `(i, j)` of the first two dimensions read in place:
    /// its values from the first one of the slice on, `[row step, column step]` apart; `None`
    /// where the view steps backwards (a flipped layout) or is empty.
    pub fn in_place(&self, i: usize, j: usize) -> Option<(&[f32], [usize; 2])> {
        let base = self.matrix_start(i, j);
        let [_, _, sr, sc] = self.strides;
        let steps = [usize::try_from(sr).ok()?, usize::try_from(sc).ok()?];
        Some((self.data.get(usize::try_from(base).ok()?..)?, steps))
    }

    /// The `[rows, cols]` matrix at index `(i, j)` of the first two dimensions, or its
    /// transpose `[cols, rows]` when `transpose`, row-major into `buf` with rows of `width`
    /// values (≥ the row's length), the rest of each row zero.
    pub fn matrix(&self, i: usize, j: usize, transpose: bool, width: usize, buf: &mut Vec<f32>) {
        let [_, _, rows, cols] = self.shape;
        let base = self.matrix_start(i, j);
        let [_, _, sr, sc] = self.strides;
        // the output's rows: (count, length, step between rows, step along a row)
        let (n, len, step, along) = if transpose {
            (cols, rows, sc, sr)
        } else {
            (rows, cols, sr, sc)
        };
        assert!(
            width >= len,
            "row width {width} below the row's {len} values"
        );
        buf.clear();
        for r in 0..n {
            let at = base + r as isize * step;
            if along == 1 {
                let at = at as usize;
                buf.extend_from_slice(&self.data[at..at + len]);
            } else {
                buf.extend((0..len).map(|c| self.data[(at + c as isize * along) as usize]));
            }
            buf.resize(buf.len() + width - len, 0.0);
        }
    }
}

/// A read-only `[b, L, d]` f32 view (sequences of token vectors) in whatever layout it has.
pub struct View3<'a> {
    pub data: &'a [f32],
    pub offset: isize,
    pub strides: [isize; 3],
    pub shape: [usize; 3],
}

impl<'a> View3<'a> {
    /// The view of `t`; `None` for other element types or ranks.
    pub fn of(t: &'a FlexTensor) -> Option<View3<'a>> {
        if t.dtype() != DType::F32 {
            return None;
        }
        let l = t.layout();
        let dims: Vec<usize> = l.shape().iter().copied().collect();
        let st = l.strides();
        if dims.len() != 3 || st.len() != 3 {
            return None;
        }
        Some(View3 {
            data: t.storage::<f32>(),
            offset: l.start_offset() as isize,
            strides: [st[0], st[1], st[2]],
            shape: [dims[0], dims[1], dims[2]],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::View;

    /// A channel's values come out sample by sample, pixel by pixel, whether the tensor is
    /// laid out sample-major (planes copied) or channel-major (borrowed).
    #[test]
    fn channel_values_are_sample_major_in_every_layout() {
        let [n, c, h, w] = [3, 2, 2, 3];
        let data: Vec<f32> = (0..n * c * h * w).map(|x| x as f32).collect();
        let sample_major = View {
            data: &data,
            offset: 0,
            strides: [(c * h * w) as isize, (h * w) as isize, w as isize, 1],
            shape: [n, c, h, w],
        };
        let channel_major = View {
            strides: [(h * w) as isize, (n * h * w) as isize, w as isize, 1],
            ..sample_major
        };
        for v in [&sample_major, &channel_major] {
            for ch in 0..c {
                let mut buf = Vec::new();
                let got = v.channel_values(ch, &mut buf).to_vec();
                let mut want = Vec::new();
                for i in 0..n {
                    for p in 0..h * w {
                        let at = i as isize * v.strides[0] + ch as isize * v.strides[1];
                        want.push(data[at as usize + p]);
                    }
                }
                assert_eq!(got, want, "strides {:?} channel {ch}", v.strides);
            }
        }
        assert!(channel_major.channel(1).is_some() && sample_major.channel(1).is_none());
    }
}
