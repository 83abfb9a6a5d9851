//! The online monitor of feature quality during pre-training: a k-nearest-neighbour classifier
//! on frozen pooled features and two collapse measures.
//!
//! - **kNN top-1** (Wu et al. 2018, "Unsupervised feature learning via non-parametric instance
//!   discrimination", Eq. 7; the evaluation DINO and solo-learn use): features are
//!   L2-normalised, the k training features most similar to a query by cosine similarity
//!   `s_i` vote for their class with weight `exp(s_i / τ)`, and the class with the largest
//!   summed weight is the prediction.
//! - **Effective rank** (RankMe, Garrido et al. 2023, Eq. 1): with `σ_k` the singular values of
//!   the `n × d` feature matrix and `p_k = σ_k / Σ_j σ_j + ε`, `erank = exp(−Σ_k p_k ln p_k)`.
//!   It lies in `[1, min(n, d)]`; a matrix of rank r with equal singular values gives r.
//! - **Feature std** (SimSiam, Chen & He 2021, Sec. 4.1): the standard deviation over samples
//!   of each dimension of the L2-normalised features, averaged over dimensions. Collapsed
//!   features give 0; features spread over the sphere give about `1/√d`.

use nalgebra::DMatrix;

/// Neighbours that vote (k = 20, as in Wu et al. and DINO's k-NN evaluation).
pub const KNN_K: usize = 20;
/// Temperature of the votes' weights `exp(s / τ)` (τ = 0.07, as there).
pub const KNN_TAU: f64 = 0.07;
/// The `ε` added to every normalised singular value (RankMe's Eq. 1).
const RANKME_EPS: f64 = 1e-7;

/// The monitor's three figures after one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorStats {
    /// kNN top-1 accuracy on the validation subset, in [0, 1].
    pub knn_top1: f64,
    /// RankMe effective rank of the training subset's features.
    pub erank: f64,
    /// Mean per-dimension std of the training subset's L2-normalised features.
    pub feature_std: f64,
}

/// `n × dim` row-major features as an f64 matrix whose rows have unit L2 norm (a zero row
/// stays zero).
fn normalised_rows(x: &[f32], n: usize, dim: usize) -> DMatrix<f64> {
    let mut m = DMatrix::<f64>::from_fn(n, dim, |i, j| f64::from(x[i * dim + j]));
    for i in 0..n {
        let norm = m.row(i).norm();
        if norm > 0.0 {
            m.row_mut(i).unscale_mut(norm);
        }
    }
    m
}

/// Feature rows (`labels.len()` rows, row-major) and their labels.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    pub rows: &'a [f32],
    pub labels: &'a [u32],
}

/// kNN top-1 of the `val` rows against the `train` rows (cosine similarity, `k` neighbours,
/// votes weighted by `exp(s / tau)`), in [0, 1]. Ties between classes go to the lower label.
pub fn knn_top1(
    train: Labelled,
    val: Labelled,
    dim: usize,
    classes: usize,
    k: usize,
    tau: f64,
) -> f64 {
    let (train_labels, val_labels) = (train.labels, val.labels);
    let (train, val) = (train.rows, val.rows);
    let (nt, nv) = (train_labels.len(), val_labels.len());
    if nt == 0 || nv == 0 || dim == 0 {
        return 0.0;
    }
    let t = normalised_rows(train, nt, dim);
    let v = normalised_rows(val, nv, dim);
    // s[i, j] = cos(val_i, train_j)
    let s = &v * t.transpose();
    let k = k.clamp(1, nt);
    let classes = classes.max(1 + *train_labels.iter().max().unwrap_or(&0) as usize);
    let mut correct = 0usize;
    let mut order: Vec<usize> = (0..nt).collect();
    let mut votes = vec![0f64; classes];
    for (i, &label) in val_labels.iter().enumerate() {
        let row = s.row(i);
        // the k most similar, ties broken by index so the result does not depend on the sort
        order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        votes.iter_mut().for_each(|w| *w = 0.0);
        for &j in &order[..k] {
            votes[train_labels[j] as usize] += (row[j] / tau).exp();
        }
        let best = votes
            .iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |b, (c, &w)| if w > b.1 { (c, w) } else { b },
            )
            .0;
        if best == label as usize {
            correct += 1;
        }
    }
    correct as f64 / nv as f64
}

/// RankMe effective rank of the `n × dim` row-major features (not centred, as in the paper):
/// the singular values are the square roots of the eigenvalues of the `dim × dim` Gram matrix
/// `XᵀX`.
pub fn effective_rank(x: &[f32], n: usize, dim: usize) -> f64 {
    if n == 0 || dim == 0 {
        return 0.0;
    }
    let m = DMatrix::<f64>::from_fn(n, dim, |i, j| f64::from(x[i * dim + j]));
    let gram = m.tr_mul(&m);
    let sigma: Vec<f64> = gram
        .symmetric_eigenvalues()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .collect();
    let total: f64 = sigma.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return 0.0;
    }
    let entropy: f64 = sigma
        .iter()
        .map(|s| {
            let p = s / total + RANKME_EPS;
            -p * p.ln()
        })
        .sum();
    entropy.exp()
}

/// Mean over dimensions of the per-dimension standard deviation (over samples) of the
/// L2-normalised `n × dim` features.
pub fn feature_std(x: &[f32], n: usize, dim: usize) -> f64 {
    if n == 0 || dim == 0 {
        return 0.0;
    }
    let m = normalised_rows(x, n, dim);
    let mut total = 0.0;
    for col in m.column_iter() {
        let mean = col.mean();
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        total += var.sqrt();
    }
    total / dim as f64
}

/// The monitor's figures: kNN of `val` against `train`, collapse measures of `train`.
pub fn measure(train: Labelled, val: Labelled, dim: usize, classes: usize) -> MonitorStats {
    let n = train.labels.len();
    MonitorStats {
        knn_top1: knn_top1(train, val, dim, classes, KNN_K, KNN_TAU),
        erank: effective_rank(train.rows, n, dim),
        feature_std: feature_std(train.rows, n, dim),
    }
}

/// Ranks of `xs` from 1, ties given the mean of the ranks they span.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of paired samples: Pearson's correlation of their ranks (ties
/// ranked by their mean rank). `None` for fewer than 3 pairs or a constant side.
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() || xs.len() < 3 {
        return None;
    }
    let (rx, ry) = (ranks(xs), ranks(ys));
    let n = xs.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx) * (a - mx)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my) * (b - my)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `n` points of `dim` dimensions around one of `classes` random centres (label = centre),
    /// with Gaussian-ish noise of size `noise`.
    fn clusters(
        n: usize,
        dim: usize,
        classes: usize,
        noise: f32,
        seed: u64,
    ) -> (Vec<f32>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..classes)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % classes;
            y.push(c as u32);
            for &centre in &centres[c] {
                let e: f32 = (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>() / 2.0;
                x.push(centre + noise * e);
            }
        }
        (x, y)
    }

    #[test]
    fn spearman_against_hand_computed_values() {
        assert_eq!(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 100.0]),
            Some(1.0)
        );
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // ranks x = 1..5, y = 2 1 4 3 5: Σd² = 4, ρ = 1 − 6·4 / (5·24) = 0.8
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        // a tie takes the mean rank: y ranks 1.5 1.5 3 → Pearson of (1,2,3) and (1.5,1.5,3)
        let r = spearman(&[1.0, 2.0, 3.0], &[5.0, 5.0, 7.0]).unwrap();
        assert!((r - 0.75f64.sqrt()).abs() < 1e-12, "{r}");
        assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }

    #[test]
    fn knn_separates_separable_clusters() {
        let (t, ty) = clusters(400, 16, 2, 0.05, 1);
        let (v, vy) = clusters(100, 16, 2, 0.05, 1);
        let acc = knn_top1(
            Labelled {
                rows: &t,
                labels: &ty,
            },
            Labelled {
                rows: &v,
                labels: &vy,
            },
            16,
            2,
            KNN_K,
            KNN_TAU,
        );
        assert_eq!(acc, 1.0);
    }

    #[test]
    fn knn_on_random_labels_is_chance() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let dim = 16;
        let t: Vec<f32> = (0..2000 * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let v: Vec<f32> = (0..2000 * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let ty: Vec<u32> = (0..2000).map(|_| rng.random_range(0..10)).collect();
        let vy: Vec<u32> = (0..2000).map(|_| rng.random_range(0..10)).collect();
        let acc = knn_top1(
            Labelled {
                rows: &t,
                labels: &ty,
            },
            Labelled {
                rows: &v,
                labels: &vy,
            },
            dim,
            10,
            KNN_K,
            KNN_TAU,
        );
        // chance is 0.1; the binomial std over 2 000 queries is 0.0067
        assert!((acc - 0.1).abs() < 0.03, "{acc}");
    }

    #[test]
    fn knn_votes_are_weighted_by_similarity() {
        // one query; 1 neighbour of class 1 almost identical, 2 of class 0 further away:
        // with τ = 0.07 the close one outweighs the two others, unweighted it would lose
        let t = [1.0f32, 0.0, 0.6, 0.8, 0.6, -0.8];
        let ty = [1u32, 0, 0];
        let v = [0.99f32, 0.01];
        assert_eq!(
            knn_top1(
                Labelled {
                    rows: &t,
                    labels: &ty
                },
                Labelled {
                    rows: &v,
                    labels: &[1]
                },
                2,
                2,
                3,
                KNN_TAU
            ),
            1.0
        );
        assert_eq!(
            knn_top1(
                Labelled {
                    rows: &t,
                    labels: &ty
                },
                Labelled {
                    rows: &v,
                    labels: &[0]
                },
                2,
                2,
                3,
                1e6
            ),
            1.0
        );
    }

    #[test]
    fn effective_rank_of_a_rank_k_matrix_is_k() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n, dim) = (300, 32);
        for k in [1usize, 3, 8, 20] {
            // k orthonormal directions (Gram-Schmidt), each with the same energy
            let mut basis: Vec<Vec<f64>> = Vec::new();
            while basis.len() < k {
                let mut v: Vec<f64> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                for b in &basis {
                    let d: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(b).for_each(|(a, b)| *a -= d * b);
                }
                let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
                basis.push(v.iter().map(|a| a / norm).collect());
            }
            // rows: sample i lies on direction i mod k, so every direction gets the same
            // number of unit rows and the singular values are equal
            let x: Vec<f32> = (0..n)
                .flat_map(|i| basis[i % k].iter().map(|&v| v as f32).collect::<Vec<_>>())
                .collect();
            let n = n - n % k;
            let r = effective_rank(&x[..n * dim], n, dim);
            assert!((r - k as f64).abs() < 1e-3 * k as f64, "k={k}: {r}");
        }
        // full-rank isotropic noise: close to the dimension
        let x: Vec<f32> = (0..5000 * 16)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let r = effective_rank(&x, 5000, 16);
        assert!(r > 15.5 && r <= 16.0 + 1e-9, "{r}");
    }

    #[test]
    fn feature_std_is_zero_when_collapsed_and_about_one_over_root_d_when_spread() {
        let dim = 64;
        let one: Vec<f32> = (0..dim).map(|d| d as f32).collect();
        let collapsed: Vec<f32> = (0..100).flat_map(|_| one.clone()).collect();
        assert!(feature_std(&collapsed, 100, dim) < 1e-6);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let spread: Vec<f32> = (0..4000 * dim)
            .map(|_| (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum())
            .collect();
        let s = feature_std(&spread, 4000, dim);
        let expect = 1.0 / (dim as f64).sqrt();
        assert!((s - expect).abs() < 0.05 * expect, "{s} vs {expect}");
    }
}
