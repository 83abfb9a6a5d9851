//! The masked reconstruction loss on the host in one pass over the patches: the per-patch mean
//! squared error, weighted by the mask, summed in fixed blocks of rows (the sum does not
//! depend on the number of threads), and its gradient in one more pass. burn's composition
//! makes a difference, a square, a mean, a masked product and a sum (and their backward),
//! each a full pass over the predictions.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::matmul::contiguous;
use super::{tensor, zeros};

/// Patches per block of the loss sum.
const BLOCK: usize = 64;

/// `[loss]` of `pred`, `target` `[n, L, p]` and `mask` `[n, L]` over `masked` masked cells.
pub fn forward(
    pred: &FlexTensor,
    target: &FlexTensor,
    mask: &FlexTensor,
    masked: usize,
) -> Option<FlexTensor> {
    let (x, t, m) = (contiguous(pred)?, contiguous(target)?, contiguous(mask)?);
    let (x, t, m) = (x.storage::<f32>(), t.storage::<f32>(), m.storage::<f32>());
    let p = x.len().checked_div(m.len())?;
    if p == 0 || t.len() != x.len() {
        return None;
    }
    let partial: Vec<f32> = m
        .par_chunks(BLOCK)
        .enumerate()
        .map(|(b, weights)| {
            let base = b * BLOCK * p;
            weights
                .iter()
                .enumerate()
                .filter(|(_, &w)| w != 0.0)
                .map(|(r, &w)| {
                    let at = base + r * p;
                    let sq: f32 = x[at..at + p]
                        .iter()
                        .zip(&t[at..at + p])
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    w * sq / p as f32
                })
                .sum()
        })
        .collect();
    let loss = partial.iter().sum::<f32>() / masked.max(1) as f32;
    Some(tensor(vec![loss], vec![1]))
}

/// ∂pred `[n, L, p]` = ∂loss · mask · 2 (pred − target) / (p · masked).
pub fn backward(
    pred: &FlexTensor,
    target: &FlexTensor,
    mask: &FlexTensor,
    masked: usize,
    grad: &FlexTensor,
) -> Option<FlexTensor> {
    let (x, t, m) = (contiguous(pred)?, contiguous(target)?, contiguous(mask)?);
    let g = contiguous(grad)?.storage::<f32>().first().copied()?;
    let shape: Vec<usize> = pred.layout().shape().iter().copied().collect();
    let (x, t, m) = (x.storage::<f32>(), t.storage::<f32>(), m.storage::<f32>());
    let p = x.len().checked_div(m.len())?;
    if p == 0 || t.len() != x.len() {
        return None;
    }
    let scale = 2.0 * g / (p * masked.max(1)) as f32;
    let mut dx = zeros(x.len());
    dx.par_chunks_mut(BLOCK * p)
        .enumerate()
        .for_each(|(b, out)| {
            for (r, row) in out.chunks_mut(p).enumerate() {
                let w = m[b * BLOCK + r];
                if w == 0.0 {
                    continue;
                }
                let at = (b * BLOCK + r) * p;
                for ((o, a), b) in row.iter_mut().zip(&x[at..at + p]).zip(&t[at..at + p]) {
                    *o = scale * w * (a - b);
                }
            }
        });
    Some(tensor(dx, shape))
}
