//! Heat-equation linear predictor (DESIGN §2, paper Eq. 5, Appendix A Eq. 9 and Eq. 12).
//!
//! With the scaled generators Ā = ΔxA and B̄ = ΔyB, the feature map one step away is
//! z(x + sxΔx, y + syΔy) = M(sx, sy) z(x, y) with
//!
//! ```text
//! M(sx, sy) = I + sx·Ā + sy·B̄ + sx·sy·(ĀB̄ + B̄Ā)/2
//! ```
//!
//! * models = 2: Ā, B̄ explicit (Eq. 5); left/up are I − Ā, I − B̄ (Eq. 9); diagonals Eq. 12.
//! * models = 4: left/up have their own Ā₂, B̄₂; a diagonal uses Eq. 12 with the pair of its
//!   quadrant, M = I + X + Y + (XY + YX)/2.
//! * models = 8: every direction is its own matrix M_dir = I + G_dir.

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use nalgebra::DMatrix;

use crate::spec::Models;

use super::init::{param, Init};
use super::layers::apply_pointwise;
use crate::kernels::{self, heat::HeatPlan};
use crate::masking::{self, BlockSource, Quarter};

/// The 8 prediction directions (sx, sy), in the order of the models = 8 parameters.
pub const DIRECTIONS: [(i32, i32); 8] = [
    (1, 0),
    (-1, 0),
    (0, 1),
    (0, -1),
    (1, 1),
    (1, -1),
    (-1, 1),
    (-1, -1),
];

/// The learnable generators of one scale (corner Δ = ½ or centre Δ = ¼).
#[derive(Module, Debug)]
pub struct Generators<B: Backend> {
    /// models = 2: [Ā, B̄]; models = 4: [Ā, Ā₂, B̄, B̄₂]; models = 8: G_dir in [`DIRECTIONS`] order.
    pub mats: Vec<Param<Tensor<B, 2>>>,
    pub models: usize,
}

impl<B: crate::kernels::Kernels> Generators<B> {
    /// Every explicit matrix starts at 0 + N(0, init_std²), so every M starts near I.
    pub fn new(
        init: &mut Init,
        dim: usize,
        models: Models,
        init_std: f64,
        device: &B::Device,
    ) -> Self {
        let count = models.count();
        Self {
            mats: (0..count)
                .map(|_| param(init.normal_vec(dim * dim, init_std), [dim, dim], device))
                .collect(),
            models: count,
        }
    }

    /// M(sx, sy) − I as a weighted sum of terms (module doc): the generator of each nonzero
    /// step (`sx·Ā`, or Ā / Ā₂ with four models) and, for a diagonal, the symmetrised product
    /// of the two (Eq. 12); with eight models the direction's own G.
    fn terms(&self, sx: i32, sy: i32) -> Vec<(Term, f32)> {
        let mut terms = Vec::new();
        if self.models == 8 {
            if let Some(i) = DIRECTIONS.iter().position(|&d| d == (sx, sy)) {
                terms.push((Term::Explicit(i), 1.0));
            }
            return terms;
        }
        // (index into mats, coefficient) of the generator of a step s along x / along y
        let along = |s: i32, forward: usize, back: usize| {
            (s != 0).then_some(match self.models {
                2 => (forward, s as f32),
                _ if s > 0 => (forward, 1.0),
                _ => (back, 1.0),
            })
        };
        let x = along(sx, 0, 1);
        let y = along(sy, if self.models == 2 { 1 } else { 2 }, 3);
        for &(i, c) in x.iter().chain(&y) {
            terms.push((Term::Explicit(i), c));
        }
        if let (Some((i, ci)), Some((j, cj))) = (x, y) {
            terms.push((Term::Symmetric(i, j), ci * cj));
        }
        terms
    }

    /// One term's `[D, D]` matrix.
    fn term(&self, term: Term) -> Tensor<B, 2> {
        match term {
            Term::Identity => {
                let dim = self.mats[0].dims()[0];
                Tensor::eye(dim, &self.mats[0].device())
            }
            Term::Explicit(i) => self.mats[i].val(),
            Term::Symmetric(i, j) => {
                let (a, b) = (self.mats[i].val(), self.mats[j].val());
                (kernels::matrix_product(a.clone(), b.clone()) + kernels::matrix_product(b, a))
                    * 0.5
            }
        }
    }

    /// The predictor matrix M(sx, sy) (module doc), term by term: the readable reference of
    /// [`Self::matrices`].
    pub fn matrix(&self, sx: i32, sy: i32) -> Tensor<B, 2> {
        self.terms(sx, sy)
            .into_iter()
            .fold(self.term(Term::Identity), |m, (t, c)| m + self.term(t) * c)
    }

    /// M(sx, sy) of every step, stacked `[steps, D, D]`: one product of the coefficients
    /// `[steps, terms]` with the distinct terms `[terms, D·D]`, each term (the products of
    /// Eq. 12 included) computed once; its backward is one product too, ∂terms = Cᵀ ∂M.
    pub fn matrices(&self, steps: &[(i32, i32)]) -> Tensor<B, 3> {
        let mut used = vec![Term::Identity];
        let rows: Vec<Vec<(usize, f32)>> = steps
            .iter()
            .map(|&(sx, sy)| {
                let terms = self.terms(sx, sy).into_iter();
                std::iter::once((Term::Identity, 1.0))
                    .chain(terms)
                    .map(|(t, c)| {
                        let k = used.iter().position(|&u| u == t).unwrap_or_else(|| {
                            used.push(t);
                            used.len() - 1
                        });
                        (k, c)
                    })
                    .collect()
            })
            .collect();
        let mut coefficients = vec![0.0f32; steps.len() * used.len()];
        for (r, row) in rows.iter().enumerate() {
            for &(k, c) in row {
                coefficients[r * used.len() + k] += c;
            }
        }
        let device = self.mats[0].device();
        let dim = self.mats[0].dims()[0];
        let coefficients = Tensor::<B, 2>::from_data(
            TensorData::new(coefficients, [steps.len(), used.len()]),
            &device,
        );
        let terms: Vec<Tensor<B, 2>> = used.iter().map(|&t| self.term(t)).collect();
        let terms = Tensor::stack::<3>(terms, 0).reshape([used.len(), dim * dim]);
        kernels::matrix_product(coefficients, terms).reshape([steps.len(), dim, dim])
    }

    /// Named explicit generators for the spectrum analysis (scaled: Ā, not A).
    pub fn named(&self) -> Vec<(String, Tensor<B, 2>)> {
        let names: Vec<String> = match self.models {
            2 => vec!["A".into(), "B".into()],
            4 => vec!["A".into(), "A2".into(), "B".into(), "B2".into()],
            _ => DIRECTIONS
                .iter()
                .map(|(sx, sy)| format!("M({sx:+},{sy:+})"))
                .collect(),
        };
        names
            .into_iter()
            .zip(self.mats.iter().map(|m| m.val()))
            .collect()
    }
}

/// One scale's learned generators copied to the host.
#[derive(Debug, Clone)]
pub struct HostGenerators {
    /// "corner" (Δ = ½) or "center" (Δ = ¼).
    pub scale: &'static str,
    /// Step Δ as a fraction of the image side.
    pub delta: f64,
    /// (name, scaled matrix Ā) of every explicit generator: A, B (, A2, B2) or M(sx,sy).
    pub matrices: Vec<(String, DMatrix<f64>)>,
}

/// One term of a predictor matrix M(sx, sy) (module doc): the identity, an explicit
/// generator (index into `mats`), or the symmetrised product (G_i G_j + G_j G_i)/2 of two.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Term {
    Identity,
    Explicit(usize),
    Symmetric(usize, usize),
}

/// Projection-free predictor: per-scale generators and grid assembly.
#[derive(Module, Debug)]
pub struct Predictor<B: Backend> {
    /// One entry per scale used: [corner] or [centre] or [corner, centre].
    pub scales: Vec<Generators<B>>,
    /// Which scale index each `Quarter::scale()` maps to (usize::MAX = unused).
    pub scale_slot: Vec<usize>,
}

impl<B: crate::kernels::Kernels> Predictor<B> {
    pub fn new(
        init: &mut Init,
        dim: usize,
        models: Models,
        init_std: f64,
        scales_used: &[usize],
        device: &B::Device,
    ) -> Self {
        let mut scale_slot = vec![usize::MAX; 2];
        let mut scales = Vec::new();
        for &s in scales_used {
            scale_slot[s] = scales.len();
            scales.push(Generators::new(init, dim, models, init_std, device));
        }
        Self { scales, scale_slot }
    }

    pub fn generators(&self, q: Quarter) -> &Generators<B> {
        &self.scales[self.scale_slot[q.scale()]]
    }

    /// Builds the full `h × w` feature grid of samples that all keep quarter `q`, block by
    /// block (slices, 1×1 products, concatenations): z_q `[n, D, h/2, w/2]` → `[n, D, h, w]`,
    /// masked blocks predicted by M(sx, sy). The readable reference of
    /// [`Self::predict_tokens`], which training uses.
    pub fn assemble(&self, q: Quarter, z_q: Tensor<B, 4>, h: usize, w: usize) -> Tensor<B, 4> {
        let gens = self.generators(q);
        let moves = masking::moves(q, h, w);
        let mats: Vec<Tensor<B, 2>> = moves.iter().map(|m| gens.matrix(m.sx, m.sy)).collect();
        let [n, d, _, _] = z_q.dims();
        // one slice per block (its backward is one write into the gradient, not two)
        let cut = |r: masking::Rect| {
            z_q.clone()
                .slice([0..n, 0..d, r.row..r.row + r.rows, r.col..r.col + r.cols])
        };
        let rows: Vec<Tensor<B, 4>> = masking::mosaic(q, h, w)
            .into_iter()
            .map(|row| {
                let blocks = row
                    .into_iter()
                    .map(|src| match src {
                        BlockSource::Kept(r) => cut(r),
                        BlockSource::Predicted(i) => {
                            apply_pointwise(mats[i].clone(), cut(moves[i].src))
                        }
                    })
                    .collect();
                Tensor::cat(blocks, 3)
            })
            .collect();
        Tensor::cat(rows, 2)
    }

    /// The full grids of a batch as tokens `[n, h·w, D]` (row-major cells), from the encoded
    /// quarters `z_q [n, D, h/2, w/2]` of samples grouped by the quarter they keep
    /// (`(quarter, first sample, count)`): kept cells copied, masked cells predicted by
    /// M(sx, sy) (Eq. 5), all in one fused operation ([`kernels::heat_predict`]). The same
    /// grids as [`Self::assemble`], token-major.
    pub fn predict_tokens(
        &self,
        groups: &[(Quarter, usize, usize)],
        z_q: Tensor<B, 4>,
        h: usize,
        w: usize,
    ) -> Tensor<B, 3> {
        let (hq, wq) = (h / 2, w / 2);
        // the distinct (scale, sx, sy) of the batch's moves; plan.moved[k] applies M of keys[k]
        let mut keys: Vec<(usize, i32, i32)> = Vec::new();
        let mut plan = HeatPlan {
            grid_cells: h * w,
            kept: Vec::new(),
            moved: Vec::new(),
        };
        let cells = |r: masking::Rect| {
            (0..r.rows).flat_map(move |y| (0..r.cols).map(move |x| (r.row + y, r.col + x)))
        };
        for &(q, start, len) in groups {
            let kept = q.kept(h, w);
            let quarter = masking::Rect {
                row: 0,
                col: 0,
                rows: hq,
                cols: wq,
            };
            for i in start..start + len {
                for (y, x) in cells(quarter) {
                    let dst = i * h * w + (kept.row + y) * w + kept.col + x;
                    plan.kept.push((i * hq * wq + y * wq + x, dst));
                }
            }
            for mv in masking::moves(q, h, w) {
                let key = (q.scale(), mv.sx, mv.sy);
                let k = keys.iter().position(|&k| k == key).unwrap_or_else(|| {
                    keys.push(key);
                    plan.moved.push(Vec::new());
                    keys.len() - 1
                });
                for i in start..start + len {
                    for ((y, x), (ty, tx)) in cells(mv.src).zip(cells(mv.dst)) {
                        plan.moved[k].push((i * hq * wq + y * wq + x, i * h * w + ty * w + tx));
                    }
                }
            }
        }
        debug_assert!(
            plan.covers(z_q.dims()[0], hq * wq),
            "every grid cell written once"
        );
        // keys grouped by scale, each scale's matrices built in one go
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by_key(|&k| keys[k].0);
        let mut moved = std::mem::take(&mut plan.moved);
        plan.moved = order
            .iter()
            .map(|&k| std::mem::take(&mut moved[k]))
            .collect();
        let mut blocks: Vec<Tensor<B, 3>> = order
            .chunk_by(|&a, &b| keys[a].0 == keys[b].0)
            .map(|ks| {
                let steps: Vec<(i32, i32)> = ks.iter().map(|&k| (keys[k].1, keys[k].2)).collect();
                self.scales[self.scale_slot[keys[ks[0]].0]].matrices(&steps)
            })
            .collect();
        let mats = match blocks.len() {
            1 => blocks.swap_remove(0),
            _ => Tensor::cat(blocks, 0),
        };
        kernels::heat_predict(z_q, mats, plan)
    }

    /// The learned scaled generators of every scale as host matrices (for the spectrum
    /// analysis): scale name, step Δ as a fraction of the image side, and (name, Ā) pairs.
    pub fn host_generators(&self) -> Vec<HostGenerators> {
        (0..2)
            .filter(|&s| self.scale_slot[s] != usize::MAX)
            .map(|s| {
                let q = if s == 0 {
                    Quarter::Corner { row: 0, col: 0 }
                } else {
                    Quarter::Center
                };
                let matrices = self.scales[self.scale_slot[s]]
                    .named()
                    .into_iter()
                    .map(|(name, t)| {
                        let [r, c] = t.dims();
                        let v: Vec<f64> = t
                            .into_data()
                            .convert::<f64>()
                            .to_vec::<f64>()
                            .unwrap_or_default();
                        (name, DMatrix::from_row_slice(r, c, &v))
                    })
                    .collect();
                HostGenerators {
                    scale: q.scale_name(),
                    delta: q.delta_fraction(),
                    matrices,
                }
            })
            .collect()
    }

    /// Multiply-adds of the predictions for `n` samples of quarter `q` at width `dim`.
    pub fn macs(q: Quarter, n: usize, dim: usize, h: usize, w: usize) -> u64 {
        masking::moves(q, h, w)
            .iter()
            .map(|m| (n * m.src.rows * m.src.cols * dim * dim) as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type Cpu = burn::backend::Flex;

    fn host(t: Tensor<Cpu, 2>) -> (usize, Vec<f64>) {
        let n = t.dims()[0];
        let v = t.into_data().convert::<f64>().to_vec::<f64>().unwrap();
        (n, v)
    }

    fn mm(n: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                for j in 0..n {
                    c[i * n + j] += a[i * n + k] * b[k * n + j];
                }
            }
        }
        c
    }

    fn eye(n: usize) -> Vec<f64> {
        (0..n * n)
            .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
            .collect()
    }

    fn assert_close(a: &[f64], b: &[f64], tol: f64) {
        let err = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(err < tol, "max err {err}");
    }

    #[test]
    fn two_models_follow_appendix_a_for_all_directions() {
        let dev = Default::default();
        let mut init = Init::new(11);
        let g = Generators::<Cpu>::new(&mut init, 6, Models::Two, 0.3, &dev);
        let (n, a) = host(g.mats[0].val());
        let (_, b) = host(g.mats[1].val());
        let sym: Vec<f64> = mm(n, &a, &b)
            .iter()
            .zip(mm(n, &b, &a))
            .map(|(x, y)| (x + y) / 2.0)
            .collect();
        for (sx, sy) in DIRECTIONS {
            let (sx_f, sy_f) = (sx as f64, sy as f64);
            let expect: Vec<f64> = (0..n * n)
                .map(|i| eye(n)[i] + sx_f * a[i] + sy_f * b[i] + sx_f * sy_f * sym[i])
                .collect();
            let (_, got) = host(g.matrix(sx, sy));
            assert_close(&got, &expect, 1e-5);
        }
        // Eq. 9: the implicit left/up models are I − Ā and I − B̄
        let (_, left) = host(g.matrix(-1, 0));
        let i_minus_a: Vec<f64> = eye(n).iter().zip(&a).map(|(e, x)| e - x).collect();
        assert_close(&left, &i_minus_a, 1e-6);
    }

    #[test]
    fn commuting_generators_give_product_diagonal() {
        // Ā = p(C), B̄ = q(C) commute; then M(1,1) = (I + Ā)(I + B̄).
        let dev = Default::default();
        let n = 5;
        let mut init = Init::new(5);
        let c = init
            .normal_vec(n * n, 0.3)
            .iter()
            .map(|&x| x as f64)
            .collect::<Vec<_>>();
        let c2 = mm(n, &c, &c);
        let a: Vec<f64> = c.iter().zip(&c2).map(|(x, y)| 0.5 * x + 0.1 * y).collect();
        let b: Vec<f64> = c
            .iter()
            .zip(eye(n))
            .map(|(x, e)| -0.7 * x + 0.2 * e)
            .collect();
        let to_param = |v: &[f64]| {
            Param::from_tensor(Tensor::<Cpu, 2>::from_data(
                TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [n, n]),
                &dev,
            ))
        };
        let g = Generators {
            mats: vec![to_param(&a), to_param(&b)],
            models: 2,
        };
        let ia: Vec<f64> = eye(n).iter().zip(&a).map(|(e, x)| e + x).collect();
        let ib: Vec<f64> = eye(n).iter().zip(&b).map(|(e, x)| e + x).collect();
        let (_, diag) = host(g.matrix(1, 1));
        assert_close(&diag, &mm(n, &ia, &ib), 1e-5);
    }

    #[test]
    fn four_models_use_the_quadrant_pair() {
        let dev = Default::default();
        let mut init = Init::new(2);
        let g = Generators::<Cpu>::new(&mut init, 4, Models::Four, 0.5, &dev);
        assert_eq!(g.mats.len(), 4);
        let mats: Vec<Vec<f64>> = g.mats.iter().map(|m| host(m.val()).1).collect();
        let n = 4;
        for (sx, sy) in DIRECTIONS {
            let x = match sx {
                1 => mats[0].clone(),
                -1 => mats[1].clone(),
                _ => vec![0.0; n * n],
            };
            let y = match sy {
                1 => mats[2].clone(),
                -1 => mats[3].clone(),
                _ => vec![0.0; n * n],
            };
            let xy = mm(n, &x, &y);
            let yx = mm(n, &y, &x);
            let expect: Vec<f64> = (0..n * n)
                .map(|i| eye(n)[i] + x[i] + y[i] + (xy[i] + yx[i]) / 2.0)
                .collect();
            assert_close(&host(g.matrix(sx, sy)).1, &expect, 1e-5);
        }
    }

    #[test]
    fn eight_models_are_independent() {
        let dev = Default::default();
        let mut init = Init::new(9);
        let g = Generators::<Cpu>::new(&mut init, 3, Models::Eight, 0.5, &dev);
        assert_eq!(g.mats.len(), 8);
        let ms: Vec<Vec<f64>> = DIRECTIONS
            .iter()
            .map(|&(x, y)| host(g.matrix(x, y)).1)
            .collect();
        for i in 0..8 {
            let expect: Vec<f64> = eye(3)
                .iter()
                .zip(host(g.mats[i].val()).1)
                .map(|(e, x)| e + x)
                .collect();
            assert_close(&ms[i], &expect, 1e-6);
            for j in 0..i {
                assert_ne!(ms[i], ms[j]);
            }
        }
        let two = Generators::<Cpu>::new(&mut init, 3, Models::Two, 0.5, &dev);
        assert_eq!(two.mats.len(), 2);
    }

    #[test]
    fn zero_generators_copy_the_quarter_everywhere() {
        // with Ā = B̄ = 0 every M = I, so each predicted block equals its source block
        let dev = Default::default();
        let mut init = Init::new(1);
        let (d, h, w) = (3, 8, 8);
        let p = Predictor::<Cpu>::new(&mut init, d, Models::Two, 0.0, &[0, 1], &dev);
        let zq_vals: Vec<f32> = (0..d * 16).map(|i| i as f32).collect();
        let z_q = Tensor::<Cpu, 4>::from_data(TensorData::new(zq_vals.clone(), [1, d, 4, 4]), &dev);
        for q in [Quarter::Corner { row: 1, col: 1 }, Quarter::Center] {
            let grid = p.assemble(q, z_q.clone(), h, w);
            assert_eq!(grid.dims(), [1, d, h, w]);
            let g = grid.into_data().to_vec::<f32>().unwrap();
            let at = |c: usize, r: usize, col: usize| g[c * h * w + r * w + col];
            let kept = q.kept(h, w);
            for c in 0..d {
                for r in 0..4 {
                    for col in 0..4 {
                        assert_eq!(
                            at(c, kept.row + r, kept.col + col),
                            zq_vals[c * 16 + r * 4 + col]
                        );
                    }
                }
            }
            for mv in masking::moves(q, h, w) {
                for r in 0..mv.src.rows {
                    for col in 0..mv.src.cols {
                        let src = zq_vals[(mv.src.row + r) * 4 + mv.src.col + col];
                        assert_eq!(at(0, mv.dst.row + r, mv.dst.col + col), src, "{mv:?}");
                    }
                }
            }
        }
    }

    /// The fused prediction of a batch equals the block-by-block mosaic of [`Predictor::assemble`]
    /// (slices, 1×1 products, concatenations): forward, ∂z_q and ∂ of every generator, for
    /// 2, 4 and 8 models and a batch mixing the four corners and the centre.
    #[test]
    fn fused_batch_prediction_equals_the_mosaic() {
        type Train = burn::backend::Autodiff<Cpu>;
        let dev = Default::default();
        let (d, h, w) = (4, 8, 8);
        let groups = [
            (Quarter::Corner { row: 0, col: 0 }, 0, 2),
            (Quarter::Center, 2, 1),
            (Quarter::Corner { row: 1, col: 0 }, 3, 1),
            (Quarter::Corner { row: 0, col: 1 }, 4, 1),
            (Quarter::Center, 5, 2),
            (Quarter::Corner { row: 1, col: 1 }, 7, 1),
        ];
        let n = 8;
        for models in [Models::Two, Models::Four, Models::Eight] {
            let mut init = Init::new(3);
            let p = Predictor::<Train>::new(&mut init, d, models, 0.4, &[0, 1], &dev);
            let vals = init.normal_vec(n * d * (h / 2) * (w / 2), 1.0);
            let z =
                Tensor::<Train, 4>::from_data(TensorData::new(vals, [n, d, h / 2, w / 2]), &dev)
                    .require_grad();
            let weights = Tensor::<Train, 3>::from_data(
                TensorData::new(init.normal_vec(n * h * w * d, 1.0), [n, h * w, d]),
                &dev,
            );
            let fused = p.predict_tokens(&groups, z.clone(), h, w);
            let grids: Vec<Tensor<Train, 4>> = groups
                .iter()
                .map(|&(q, start, len)| p.assemble(q, z.clone().narrow(0, start, len), h, w))
                .collect();
            let mosaic = Tensor::cat(grids, 0).reshape([n, d, h * w]).swap_dims(1, 2);
            let diff: f32 = (fused.clone() - mosaic.clone()).abs().max().into_scalar();
            assert!(diff < 1e-5, "{models:?} forward: {diff}");
            let a = (fused * weights.clone()).sum().backward();
            let b = (mosaic * weights).sum().backward();
            let (za, zb) = (z.grad(&a).expect("∂z"), z.grad(&b).expect("∂z"));
            let diff: f32 = (za - zb).abs().max().into_scalar();
            assert!(diff < 1e-4, "{models:?} gradient of z_q: {diff}");
            let params = p.scales.iter().flat_map(|g| g.mats.iter().map(|m| m.val()));
            for (i, t) in params.enumerate() {
                let (ga, gb) = (t.grad(&a).expect("grad"), t.grad(&b).expect("grad"));
                let diff: f32 = (ga - gb).abs().max().into_scalar();
                assert!(diff < 1e-4, "{models:?} gradient {i}: {diff}");
            }
        }
    }
}
