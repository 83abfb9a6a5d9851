//! BatchNorm over `[n, c, h, w]` on the host — training mode (batch statistics) and
//! inference (running statistics) — in parallel over channels and planes, reading the input
//! in whatever layout it has.

use burn::backend::flex::FlexTensor;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::view::View;
use super::{channel_major, filled, tensor, vector};
use crate::simd::{self, LANES};

/// Per channel: the mean and biased variance, summed in f64 lanes (two passes: the sum,
/// then the squares around the mean).
fn channel_stats(x: &View) -> Vec<(f32, f32)> {
    (0..x.shape[1])
        .into_par_iter()
        .map(|ch| moments(x, ch))
        .collect()
}

crate::multiversion! {
    /// (μ, σ²) of channel `ch` over every sample and pixel.
    fn moments(x: &View, ch: usize) -> (f32, f32) {
        let [n, _, h, w] = x.shape;
        let m = (n * h * w) as f64;
        let mut buf = Vec::new();
        let all = x.channel_values(ch, &mut buf);
        let mut acc = [0f64; LANES];
        simd::add_into(&mut acc, all);
        let mean = simd::fold(acc) / m;
        let mut acc = [0f64; LANES];
        simd::sq_dev_into(&mut acc, all, mean);
        (mean as f32, (simd::fold(acc) / m) as f32)
    }
}

crate::multiversion! {
    /// `out = src·k + o` (one plane of y, or of ∂x's first term).
    fn scale_shift(out: &mut [MaybeUninit<f32>], src: &[f32], k: f32, o: f32) {
        for (dst, &v) in out.iter_mut().zip(src) {
            *dst = MaybeUninit::new(v * k + o);
        }
    }
}

crate::multiversion! {
    /// Channel `ch`'s (∂γ, ∂β) = (Σ ∂y·x̂, Σ ∂y), x̂ = (x − μ)·inv, in f64 lanes.
    /// The sums run over the channel's values in sample-major order whatever the layout (the
    /// planes of a sample-major ∂y gathered first: most are 2×2 or 4×4 values, too few to
    /// fill the lanes one plane at a time), so the bits do not depend on the layout either.
    fn grad_sums(v: &View, gv: &View, ch: usize, mu: f32, inv: f32) -> (f32, f32) {
        let (mut bx, mut bg) = (Vec::new(), Vec::new());
        let (xs, gs) = (v.channel_values(ch, &mut bx), gv.channel_values(ch, &mut bg));
        let (mut db, mut dg) = ([0f64; LANES], [0f64; LANES]);
        let (cx, cg) = (xs.chunks_exact(LANES), gs.chunks_exact(LANES));
        let (rx, rg) = (cx.remainder(), cg.remainder());
        for (x, g) in cx.zip(cg) {
            for l in 0..LANES {
                db[l] += g[l] as f64;
                dg[l] += g[l] as f64 * ((x[l] - mu) * inv) as f64;
            }
        }
        for (l, (x, g)) in rx.iter().zip(rg).enumerate() {
            db[l] += *g as f64;
            dg[l] += *g as f64 * ((x - mu) * inv) as f64;
        }
        (simd::fold(dg) as f32, simd::fold(db) as f32)
    }
}

crate::multiversion! {
    /// One plane of ∂x = k·(∂y − Σ∂y/m − x̂·Σ∂y·x̂/m).
    fn input_grad(
        out: &mut [MaybeUninit<f32>],
        xs: &[f32],
        gs: &[f32],
        mu: f32,
        inv: f32,
        k: f32,
        db_m: f32,
        dg_m: f32,
    ) {
        for ((dst, &xv), &gv) in out.iter_mut().zip(xs).zip(gs) {
            let xhat = (xv - mu) * inv;
            *dst = MaybeUninit::new(k * (gv - db_m - xhat * dg_m));
        }
    }
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
    let y = filled(n * c * hw, hw * super::planes_per_task(hw), |start, out| {
        let mut buf = Vec::new();
        for (r, plane) in out.chunks_mut(hw.max(1)).enumerate() {
            let row = start / hw.max(1) + r;
            let (i, ch) = (row / c, row % c);
            let (k, o) = ko[ch];
            scale_shift(plane, v.plane(i, ch, &mut buf), k, o);
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
        .map(|ch| grad_sums(&v, &gv, ch, mu[ch], inv[ch]))
        .collect();
    // ∂x in the memory order of x when x is channel-major (the 1×1 convolution's output, whose
    // backward then reads ∂x as it is), else row-major
    let x_channel_major = v.is_channel_major();
    let dx = filled(n * c * hw, hw * super::planes_per_task(hw), |start, out| {
        let (mut bx, mut bg) = (Vec::new(), Vec::new());
        for (r, plane) in out.chunks_mut(hw.max(1)).enumerate() {
            let row = start / hw.max(1) + r;
            let (i, ch) = if x_channel_major {
                (row % n.max(1), row / n.max(1))
            } else {
                (row / c, row % c)
            };
            let xs = v.plane(i, ch, &mut bx);
            let gs = gv.plane(i, ch, &mut bg);
            let k = g[ch] * inv[ch];
            let (dg, db) = sums[ch];
            input_grad(plane, xs, gs, mu[ch], inv[ch], k, db / m, dg / m);
        }
    });
    let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let dx = if x_channel_major {
        channel_major(dx, [n, c, h, w])
    } else {
        tensor(dx, vec![n, c, h, w])
    };
    Some([dx, tensor(dgamma, vec![c]), tensor(dbeta, vec![c])])
}
