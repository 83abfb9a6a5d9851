//! A 2-D embedding of a run's pooled probe features (issue 28): the projection of the
//! validation images' features on the two leading principal components, with the share of
//! the variance each holds.

use nalgebra::{DMatrix, SymmetricEigen};

/// Points kept for the picture (a deterministic stride through the set beyond it).
pub const MAX_POINTS: usize = 2000;

/// The first two principal components of a feature set.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca2 {
    /// `(pc1, pc2, label)` of every kept image.
    pub points: Vec<(f32, f32, u32)>,
    /// λ₁ / Σλ and λ₂ / Σλ of the covariance's eigenvalues.
    pub variance_share: [f64; 2],
    /// Images projected (before keeping at most [`MAX_POINTS`]).
    pub total: usize,
}

/// PCA of `n × dim` row-major `features`: centre each feature, C = XᵀX / (n − 1), the two
/// eigenvectors of C with the largest eigenvalues (each signed so that its largest-magnitude
/// entry is positive), and every row projected on them. `None` with fewer than 2 rows.
pub fn pca_2d(features: &[f32], dim: usize, labels: &[u32]) -> Option<Pca2> {
    let n = labels.len();
    if n < 2 || dim == 0 || features.len() != n * dim {
        return None;
    }
    let mut x = DMatrix::<f64>::from_row_iterator(n, dim, features.iter().map(|&v| f64::from(v)));
    for mut col in x.column_iter_mut() {
        let mean = col.mean();
        col.add_scalar_mut(-mean);
    }
    let cov = (x.transpose() * &x) / (n - 1) as f64;
    let eig = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let total_var: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let axis = |k: usize| {
        let v = order
            .get(k)
            .map(|&i| eig.eigenvectors.column(i).into_owned());
        v.map(|v| {
            let peak = v
                .iter()
                .copied()
                .fold(0.0f64, |m, e| if e.abs() > m.abs() { e } else { m });
            if peak < 0.0 {
                -v
            } else {
                v
            }
        })
    };
    let a = axis(0)?;
    let b = axis(1).unwrap_or_else(|| nalgebra::DVector::zeros(dim));
    let share = |k: usize| {
        order.get(k).map_or(0.0, |&i| {
            eig.eigenvalues[i].max(0.0) / total_var.max(f64::MIN_POSITIVE)
        })
    };
    let stride = n.div_ceil(MAX_POINTS);
    let points = (0..n)
        .step_by(stride)
        .map(|i| {
            let row = x.row(i);
            (
                row.dot(&a.transpose()) as f32,
                row.dot(&b.transpose()) as f32,
                labels[i],
            )
        })
        .collect();
    Some(Pca2 {
        points,
        variance_share: [share(0), share(1)],
        total: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_planted_axes_and_their_variance() {
        // x_i = a_i·u + b_i·v + c with a_i = 3 cos(2π·2i/n), b_i = sin(2π·3i/n): over whole
        // periods a and b have mean 0, are uncorrelated, var(a) = 4.5 and var(b) = 0.5, so the
        // principal axes are u and v exactly, holding 90 % and 10 % of the variance
        let (n, dim) = (4000, 6);
        let u = [0.6f64, 0.8, 0.0, 0.0, 0.0, 0.0];
        let v = [0.0f64, 0.0, 0.0, -1.0, 0.0, 0.0];
        let tau = std::f64::consts::TAU;
        let planted: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                let t = i as f64 / n as f64;
                (3.0 * (tau * 2.0 * t).cos(), (tau * 3.0 * t).sin())
            })
            .collect();
        let feats: Vec<f32> = planted
            .iter()
            .flat_map(|&(a, b)| (0..dim).map(move |k| (a * u[k] + b * v[k] + 5.0) as f32))
            .collect();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
        let pca = pca_2d(&feats, dim, &labels).unwrap();
        assert_eq!(pca.total, n);
        assert_eq!(pca.points.len(), MAX_POINTS);
        assert!(
            (pca.variance_share[0] - 0.9).abs() < 1e-4,
            "{:?}",
            pca.variance_share
        );
        assert!(
            (pca.variance_share[1] - 0.1).abs() < 1e-4,
            "{:?}",
            pca.variance_share
        );
        // the sign rule makes u's largest entry (0.8) positive and flips v (its largest
        // magnitude is −1): the second coordinate is −b
        for (k, &(x, y, label)) in pca.points.iter().enumerate() {
            let i = k * 2;
            assert_eq!(label, labels[i]);
            assert!(
                (f64::from(x) - planted[i].0).abs() < 1e-3,
                "{k}: {x} vs {}",
                planted[i].0
            );
            assert!(
                (f64::from(y) + planted[i].1).abs() < 1e-3,
                "{k}: {y} vs {}",
                -planted[i].1
            );
        }
        assert!(pca_2d(&feats[..dim], dim, &labels[..1]).is_none());
    }
}
