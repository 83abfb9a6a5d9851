//! Spatial correlation of output feature maps (paper App. D, Fig. 12): for one image, the
//! correlation matrix between the feature vectors of all spatial positions, summarised by its
//! mean absolute off-diagonal entry.

/// Mean |corr(z_p, z_q)| over pairs p ≠ q of a `[channels, positions]` feature map (channel
/// first, as the encoder emits it). Each position's vector is centred over channels and scaled
/// to unit norm, so corr is the Pearson correlation across channels. Positions whose vector is
/// constant carry no correlation and are skipped; `None` when fewer than two remain.
pub fn mean_abs_offdiag(features: &[f32], channels: usize, positions: usize) -> Option<f64> {
    assert_eq!(features.len(), channels * positions);
    let mut unit: Vec<Vec<f64>> = Vec::with_capacity(positions);
    for p in 0..positions {
        let v: Vec<f64> = (0..channels)
            .map(|c| features[c * positions + p] as f64)
            .collect();
        let mean = v.iter().sum::<f64>() / channels as f64;
        let centred: Vec<f64> = v.iter().map(|x| x - mean).collect();
        let norm = centred.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-12 {
            unit.push(centred.iter().map(|x| x / norm).collect());
        }
    }
    let n = unit.len();
    if n < 2 {
        return None;
    }
    let mut total = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let dot: f64 = unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum();
            total += dot.abs();
        }
    }
    Some(total / (n * (n - 1) / 2) as f64)
}

/// Counts of `values` in `bins` equal bins over [0, 1] (values outside are clamped).
pub fn histogram(values: &[f64], bins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    for v in values {
        let k = ((v.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        counts[k] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn constant_pattern_is_fully_correlated() {
        let (c, p) = (16, 25);
        let pattern: Vec<f32> = (0..c).map(|k| (k as f32 * 0.7).sin()).collect();
        // every position holds the same channel pattern, up to a positive scale and offset
        let f: Vec<f32> = (0..c * p)
            .map(|i| pattern[i / p] * (1.0 + (i % p) as f32) + 0.3)
            .collect();
        let m = mean_abs_offdiag(&f, c, p).unwrap();
        assert!((m - 1.0).abs() < 1e-9, "{m}");
    }

    #[test]
    fn independent_noise_is_nearly_uncorrelated() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (c, p) = (2048, 16);
        let f: Vec<f32> = (0..c * p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let m = mean_abs_offdiag(&f, c, p).unwrap();
        // E|r| ≈ sqrt(2/(π c)) ≈ 0.018 for c = 2048
        assert!(m < 0.04, "{m}");
    }

    #[test]
    fn histogram_counts_everything() {
        let h = histogram(&[0.0, 0.05, 0.5, 0.99, 1.0, 1.5], 10);
        assert_eq!(h.iter().sum::<u64>(), 6);
        assert_eq!(h[0], 2);
        assert_eq!(h[9], 3);
        assert_eq!(h[5], 1);
    }

    #[test]
    fn degenerate_maps() {
        assert_eq!(mean_abs_offdiag(&[1.0; 8], 4, 2), None);
    }
}
