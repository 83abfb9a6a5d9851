//! The heat-equation prediction of a batch on the host ([`super::super::heat::HeatPlan`]):
//! z_q is read token-major once, every matrix's source rows are gathered into one block and
//! multiplied as one GEMM, `Y_k = X_k M_kᵀ`, and the products land in their grid rows. The
//! backward pass runs the same maps the other way: `∂X_k = ∂Y_k M_k` (scattered back onto
//! the source rows, summed over every move that read them) and `∂M_k = ∂Y_kᵀ X_k`. burn's
//! composition slices each block, multiplies it by one 1×1 convolution, and concatenates the
//! mosaic; its backward writes every slice into a zero tensor of the whole input.

use burn::backend::flex::FlexTensor;
use std::mem::MaybeUninit;

use super::super::heat::{destination, source, HeatPlan};
use super::matmul::{contiguous, matmul_strided, product_values, Operand, Strided};
use super::view::View;
use super::{assume_written, filled, tensor, unwritten, zeros};

/// `z [n, d, h, w]` (any layout) → token-major rows `[n·h·w, d]`.
fn token_major(v: &View) -> Vec<f32> {
    let [n, d, h, w] = v.shape;
    let p = h * w;
    if p == 0 || d == 0 {
        return zeros(n * p * d);
    }
    // every (position, channel) slot of sample i's rows is written once
    filled(n * p * d, p * d, |start, rows| {
        let (i, mut buf) = (start / (p * d), Vec::new());
        for c in 0..d {
            for (s, &x) in v.plane(i, c, &mut buf).iter().enumerate() {
                rows[s * d + c] = MaybeUninit::new(x);
            }
        }
    })
}

/// Token-major rows `[n·p, d]` → channel-major `[n, d, p]`.
fn channel_major(rows: &[f32], n: usize, d: usize, p: usize) -> Vec<f32> {
    if p == 0 || d == 0 {
        return zeros(n * d * p);
    }
    // every (channel, position) slot of sample i's planes is written once
    filled(n * d * p, d * p, |start, planes| {
        let tokens = &rows[start..start + p * d];
        for (s, token) in tokens.chunks(d).enumerate() {
            for (c, &x) in token.iter().enumerate() {
                planes[c * p + s] = MaybeUninit::new(x);
            }
        }
    })
}

/// Rows per parallel task of the row copies.
const ROWS: usize = 64;

/// The rows `pick(pair)` of `src` (width d), stacked.
fn gather(
    src: &[f32],
    d: usize,
    pairs: &[(usize, usize)],
    pick: fn(&(usize, usize)) -> usize,
) -> Vec<f32> {
    filled(pairs.len() * d, ROWS * d, |start, out| {
        for (row, pair) in out.chunks_mut(d).zip(&pairs[start / d..]) {
            let at = pick(pair) * d;
            for (o, &x) in row.iter_mut().zip(&src[at..at + d]) {
                *o = MaybeUninit::new(x);
            }
        }
    })
}

/// For every row of a result, the rows it is the sum of: row `r` of block `b` for each
/// `(b, r)` in `from[start[i]..start[i + 1]]`, block 0 being z_q (or ∂tokens) and block k + 1
/// the product of matrix k.
struct Origins {
    start: Vec<usize>,
    from: Vec<(usize, usize)>,
}

impl Origins {
    /// `rows` result rows; `links` yields (result row, block, block row) in summation order.
    fn new(rows: usize, links: impl Iterator<Item = (usize, usize, usize)> + Clone) -> Self {
        let mut start = vec![0usize; rows + 1];
        for (row, _, _) in links.clone() {
            start[row + 1] += 1;
        }
        for i in 0..rows {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut from = vec![(0, 0); start[rows]];
        for (row, b, r) in links {
            from[next[row]] = (b, r);
            next[row] += 1;
        }
        Origins { start, from }
    }

    /// The result rows of width d: each the sum of its origins in order (so the result does
    /// not depend on the number of threads), zero where it has none.
    fn assemble(&self, blocks: &[&[f32]], d: usize) -> Vec<f32> {
        let rows = self.start.len() - 1;
        filled(rows * d, ROWS * d, |first, out| {
            let mut acc = vec![0f32; d];
            for (i, row) in out.chunks_mut(d).enumerate() {
                let at = first / d + i;
                acc.fill(0.0);
                for &(b, r) in &self.from[self.start[at]..self.start[at + 1]] {
                    for (a, &x) in acc.iter_mut().zip(&blocks[b][r * d..(r + 1) * d]) {
                        *a += x;
                    }
                }
                for (o, &a) in row.iter_mut().zip(&acc) {
                    *o = MaybeUninit::new(a);
                }
            }
        })
    }
}

/// (row, block, block row) links of the kept and moved pairs, the row being `pick(pair)`
/// and the block row the kept pair's `other(pair)` or the moved pair's index.
fn links(
    plan: &HeatPlan,
    pick: fn(&(usize, usize)) -> usize,
    other: fn(&(usize, usize)) -> usize,
) -> impl Iterator<Item = (usize, usize, usize)> + Clone + '_ {
    let kept = plan.kept.iter().map(move |p| (pick(p), 0, other(p)));
    let moved = plan.moved.iter().enumerate().flat_map(move |(k, pairs)| {
        pairs
            .iter()
            .enumerate()
            .map(move |(i, p)| (pick(p), k + 1, i))
    });
    kept.chain(moved)
}

/// The tokens `[n, h·w, d]` of `plan` from `z [n, d, h/2, w/2]` and `mats [K, d, d]`.
pub fn forward(z: &FlexTensor, mats: &FlexTensor, plan: &HeatPlan) -> Option<FlexTensor> {
    let zv = View::of(z)?;
    let m = contiguous(mats)?;
    let m = m.storage::<f32>();
    let [n, d, _, _] = zv.shape;
    let zt = token_major(&zv);
    let products: Vec<Vec<f32>> = plan
        .moved
        .iter()
        .enumerate()
        .map(|(k, pairs)| {
            let x = gather(&zt, d, pairs, source);
            let mk = &m[k * d * d..(k + 1) * d * d];
            let shape = [pairs.len(), d, d];
            product_values(
                shape,
                Operand::rows(&x, d),
                Operand::transposed(mk, d),
                true,
            )
        })
        .collect();
    let origins = Origins::new(n * plan.grid_cells, links(plan, destination, source));
    let blocks: Vec<&[f32]> = std::iter::once(&zt[..])
        .chain(products.iter().map(|y| &y[..]))
        .collect();
    let out = origins.assemble(&blocks, d);
    Some(tensor(out, vec![n, plan.grid_cells, d]))
}

/// `[∂z, ∂mats]` given `∂tokens [n, h·w, d]`.
pub fn backward(
    z: &FlexTensor,
    mats: &FlexTensor,
    plan: &HeatPlan,
    grad: &FlexTensor,
) -> Option<[FlexTensor; 2]> {
    let zv = View::of(z)?;
    let m = contiguous(mats)?;
    let m = m.storage::<f32>();
    let g = contiguous(grad)?;
    let g = g.storage::<f32>();
    let [n, d, h, w] = zv.shape;
    if m.len() != plan.moved.len() * d * d {
        return None;
    }
    let zt = token_major(&zv);
    let mut dm = unwritten(m.len());
    let mut dxs = Vec::with_capacity(plan.moved.len());
    for (k, pairs) in plan.moved.iter().enumerate() {
        let gk = gather(g, d, pairs, destination);
        let xk = gather(&zt, d, pairs, source);
        let r = pairs.len();
        matmul_strided(
            Strided::fresh(&mut dm[k * d * d..(k + 1) * d * d], d, 1),
            [d, d, r],
            Operand::transposed(&gk, d),
            Operand::rows(&xk, d),
            false,
            true,
        );
        let mk = Operand::rows(&m[k * d * d..(k + 1) * d * d], d);
        dxs.push(product_values([r, d, d], Operand::rows(&gk, d), mk, true));
    }
    // SAFETY: each of the K d × d blocks of ∂M (K·d·d slots, checked above) was written by
    // its product, which does not accumulate.
    let dm = unsafe { assume_written(dm) };
    // ∂z_q row s: ∂tokens of the cell that kept it, then ∂X_k of every move that read it
    let origins = Origins::new(zt.len() / d.max(1), links(plan, source, destination));
    let blocks: Vec<&[f32]> = std::iter::once(g)
        .chain(dxs.iter().map(|x| &x[..]))
        .collect();
    let dzt = origins.assemble(&blocks, d);
    let k = plan.moved.len();
    Some([
        tensor(channel_major(&dzt, n, d, h * w), vec![n, d, h, w]),
        tensor(dm, vec![k, d, d]),
    ])
}
