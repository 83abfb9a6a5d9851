//! BatchNorm over `[n, c, h, w]` on the host — training mode (batch statistics) and
//! inference (running statistics) — in parallel over channels and planes, reading the input
//! in whatever layout it has.

use burn::backend::flex::FlexTensor;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::view::View;
use super::{filled, tensor, vector};

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

/// Training-mode BatchNorm (the module doc of `kernels`): one pass per channel for the
/// statistics, one parallel pass over the planes for y. `None` for element types or ranks
/// the loops do not handle.
pub fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    eps: f64,
) -> Option<[FlexTensor; 3]> {
    let v = View::of(x)?;
    let c = v.shape[1];
    let stats = channel_stats(&v);
    let y = normalised(&v, gamma, beta, &stats, eps);
    let (means, vars): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    Some([y, tensor(means, vec![c]), tensor(vars, vec![c])])
}

/// y = γ (x − μ) / √(σ² + ε) + β with per-channel (μ, σ²) `stats`, as y = x·k + o per
/// channel (k = γ/√(σ² + ε), o = β − μ·k), one parallel pass over the planes.
fn normalised(
    v: &View,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    stats: &[(f32, f32)],
    eps: f64,
) -> FlexTensor {
    let [n, c, h, w] = v.shape;
    let hw = h * w;
    let (g, b) = (vector(gamma), vector(beta));
    let ko: Vec<(f32, f32)> = stats
        .iter()
        .zip(g.iter().zip(&b))
        .map(|(&(mean, var), (&g, &b))| {
            let k = g / (var + eps as f32).sqrt();
            (k, b - mean * k)
        })
        .collect();
    let y = filled(n * c * hw, hw, |start, out| {
        let row = start / hw.max(1);
        let (i, ch) = (row / c, row % c);
        let mut buf = Vec::new();
        let (k, o) = ko[ch];
        for (dst, &src) in out.iter_mut().zip(v.plane(i, ch, &mut buf)) {
            *dst = MaybeUninit::new(src * k + o);
        }
    });
    tensor(y, vec![n, c, h, w])
}

/// Inference-mode BatchNorm with the running `mean` and `var` `[c]`. `None` for element
/// types or ranks the loops do not handle.
pub fn inference(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    mean: &FlexTensor,
    var: &FlexTensor,
    eps: f64,
) -> Option<FlexTensor> {
    let v = View::of(x)?;
    let stats: Vec<(f32, f32)> = vector(mean).into_iter().zip(vector(var)).collect();
    (stats.len() == v.shape[1]).then(|| normalised(&v, gamma, beta, &stats, eps))
}

/// Its backward: per channel ∂β = Σ∂y and ∂γ = Σ∂y·x̂, then ∂x plane by plane.
pub fn backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    mean: &FlexTensor,
    var: &FlexTensor,
    eps: f64,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 3]> {
    let (v, gv) = (View::of(x)?, View::of(grad)?);
    let [n, c, h, w] = v.shape;
    let hw = h * w;
    let m = (n * hw) as f32;
    let (g, mu, va) = (vector(gamma), vector(mean), vector(var));
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
    let dx = filled(n * c * hw, hw, |start, out| {
        let row = start / hw.max(1);
        let (i, ch) = (row / c, row % c);
        let (mut bx, mut bg) = (Vec::new(), Vec::new());
        let xs = v.plane(i, ch, &mut bx);
        let gs = gv.plane(i, ch, &mut bg);
        let k = g[ch] * inv[ch];
        let (dg, db) = sums[ch];
        let (db_m, dg_m) = (db / m, dg / m);
        for ((dst, &xv), &gv) in out.iter_mut().zip(xs).zip(gs) {
            let xhat = (xv - mu[ch]) * inv[ch];
            *dst = MaybeUninit::new(k * (gv - db_m - xhat * dg_m));
        }
    });
    let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    Some([
        tensor(dx, vec![n, c, h, w]),
        tensor(dgamma, vec![c]),
        tensor(dbeta, vec![c]),
    ])
}
