//! The CPU backend's fused kernels: host loops over the tensors' own layout (no strided
//! iterator, no broadcast temporaries), in parallel with rayon.

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::Kernels;

/// A read-only `[n, c, h, w]` f32 view of a tensor in whatever layout it has.
struct View<'a> {
    data: &'a [f32],
    offset: isize,
    strides: [isize; 4],
    shape: [usize; 4],
}

impl<'a> View<'a> {
    /// The view of `t`; `None` for other element types or ranks.
    fn of(t: &'a FlexTensor) -> Option<View<'a>> {
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
    fn plane<'b>(&'b self, n: usize, c: usize, buf: &'b mut Vec<f32>) -> &'b [f32] {
        let [_, _, h, w] = self.shape;
        let base = self.offset + n as isize * self.strides[0] + c as isize * self.strides[1];
        if self.strides[3] == 1 && self.strides[2] == w as isize {
            let b = base as usize;
            return &self.data[b..b + h * w];
        }
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

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn vector(t: &FlexTensor) -> Vec<f32> {
    t.clone().into_data().iter::<f32>().collect()
}

/// Per channel: (sum, sum of squares around the mean) in f64, the mean and biased variance.
fn channel_stats(x: &View) -> Vec<(f32, f32)> {
    let [n, c, h, w] = x.shape;
    let m = (n * h * w) as f64;
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut buf = Vec::new();
            let mut s = 0f64;
            for i in 0..n {
                s += x
                    .plane(i, ch, &mut buf)
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>();
            }
            let mean = s / m;
            let mut s2 = 0f64;
            for i in 0..n {
                s2 += x
                    .plane(i, ch, &mut buf)
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>();
            }
            (mean as f32, (s2 / m) as f32)
        })
        .collect()
}

impl Kernels for Flex {
    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f64,
    ) -> [FlexTensor; 3] {
        let Some(v) = View::of(&x) else {
            return fallback_forward(x, gamma, beta, eps);
        };
        let [n, c, h, w] = v.shape;
        let hw = h * w;
        let stats = channel_stats(&v);
        let (g, b) = (vector(&gamma), vector(&beta));
        // y = x·k + o per channel: k = γ/√(σ² + ε), o = β − μ·k
        let ko: Vec<(f32, f32)> = stats
            .iter()
            .zip(g.iter().zip(&b))
            .map(|(&(mean, var), (&g, &b))| {
                let k = g / (var + eps as f32).sqrt();
                (k, b - mean * k)
            })
            .collect();
        let mut y = vec![0f32; n * c * hw];
        y.par_chunks_mut(hw).enumerate().for_each(|(row, out)| {
            let (i, ch) = (row / c, row % c);
            let mut buf = Vec::new();
            let (k, o) = ko[ch];
            for (dst, &src) in out.iter_mut().zip(v.plane(i, ch, &mut buf)) {
                *dst = src * k + o;
            }
        });
        let (means, vars): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
        [
            tensor(y, vec![n, c, h, w]),
            tensor(means, vec![c]),
            tensor(vars, vec![c]),
        ]
    }

    fn batch_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        eps: f64,
        grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        let (Some(v), Some(gv)) = (View::of(&x), View::of(&grad)) else {
            return fallback_backward(x, gamma, mean, var, eps, grad);
        };
        let [n, c, h, w] = v.shape;
        let hw = h * w;
        let m = (n * hw) as f32;
        let (g, mu, va) = (vector(&gamma), vector(&mean), vector(&var));
        let inv: Vec<f32> = va.iter().map(|v| 1.0 / (v + eps as f32).sqrt()).collect();
        // per channel: ∂β = Σ∂y, ∂γ = Σ∂y·x̂
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mut bx, mut bg) = (Vec::new(), Vec::new());
                let (mut db, mut dg) = (0f64, 0f64);
                for i in 0..n {
                    let xs = v.plane(i, ch, &mut bx);
                    let gs = gv.plane(i, ch, &mut bg);
                    for (&xv, &gv) in xs.iter().zip(gs) {
                        db += gv as f64;
                        dg += gv as f64 * ((xv - mu[ch]) * inv[ch]) as f64;
                    }
                }
                (dg as f32, db as f32)
            })
            .collect();
        let mut dx = vec![0f32; n * c * hw];
        dx.par_chunks_mut(hw).enumerate().for_each(|(row, out)| {
            let (i, ch) = (row / c, row % c);
            let (mut bx, mut bg) = (Vec::new(), Vec::new());
            let xs = v.plane(i, ch, &mut bx);
            let gs = gv.plane(i, ch, &mut bg);
            let k = g[ch] * inv[ch];
            let (dg, db) = sums[ch];
            let (db_m, dg_m) = (db / m, dg / m);
            for ((dst, &xv), &gv) in out.iter_mut().zip(xs).zip(gs) {
                let xhat = (xv - mu[ch]) * inv[ch];
                *dst = k * (gv - db_m - xhat * dg_m);
            }
        });
        let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
        [
            tensor(dx, vec![n, c, h, w]),
            tensor(dgamma, vec![c]),
            tensor(dbeta, vec![c]),
        ]
    }
}

/// burn's composition, for element types or ranks the host loops do not handle.
fn fallback_forward(x: FlexTensor, g: FlexTensor, b: FlexTensor, eps: f64) -> [FlexTensor; 3] {
    super::composed::batch_norm_train::<Flex>(x, g, b, eps)
}

fn fallback_backward(
    x: FlexTensor,
    g: FlexTensor,
    mean: FlexTensor,
    var: FlexTensor,
    eps: f64,
    grad: FlexTensor,
) -> [FlexTensor; 3] {
    super::composed::batch_norm_backward::<Flex>(x, g, mean, var, eps, grad)
}
