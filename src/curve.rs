//! Curves for charts: smoothing and downsampling of `(x, y)` series (DESIGN §6). Pure
//! functions, shared by the store's downsampled reads, the TUI and the report.
//!
//! Smooth first, then downsample: [`ema`] is TensorBoard's exponential moving average with
//! bias correction, [`minmax_downsample`] keeps the lowest and the highest point of every
//! bucket so spikes stay visible while no more points are drawn than there are columns.

/// Exponential moving average with bias correction: m_i = w·m_{i−1} + (1 − w)·y_i,
/// ŷ_i = m_i / (1 − w^{i+1}). `weight` = 0 returns the input. Non-finite values pass through
/// unchanged and do not enter the average.
pub fn ema(ys: &[f64], weight: f64) -> Vec<f64> {
    let w = weight.clamp(0.0, 0.999_999);
    let mut m = 0.0;
    let mut k = 0i32;
    ys.iter()
        .map(|&y| {
            if !y.is_finite() {
                return y;
            }
            m = w * m + (1.0 - w) * y;
            k += 1;
            m / (1.0 - w.powi(k))
        })
        .collect()
}

/// At most `2 × buckets` points: consecutive points are grouped into `buckets` buckets of
/// equal count and each contributes its lowest and highest point, in x order; the first and
/// the last point are always kept (the curve spans its data). Series that already fit are
/// returned as they are. Non-finite y values are dropped.
pub fn minmax_downsample(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let buckets = buckets.max(1);
    if finite.len() <= 2 * buckets {
        return finite;
    }
    let (first, last) = (finite[0], finite[finite.len() - 1]);
    let inner = &finite[1..finite.len() - 1];
    let buckets = buckets.saturating_sub(1).max(1);
    let mut out = Vec::with_capacity(2 * buckets + 2);
    out.push(first);
    for b in 0..buckets {
        let lo = b * inner.len() / buckets;
        let hi = ((b + 1) * inner.len() / buckets)
            .max(lo + 1)
            .min(inner.len());
        if lo >= hi {
            continue;
        }
        let chunk = &inner[lo..hi];
        let (mut imin, mut imax) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[imin].1 {
                imin = i;
            }
            if p.1 > chunk[imax].1 {
                imax = i;
            }
        }
        let (a, c) = (imin.min(imax), imin.max(imax));
        out.push(chunk[a]);
        if c != a {
            out.push(chunk[c]);
        }
    }
    out.push(last);
    out
}

/// `(min, max)` of the finite values, or `None` when there is none.
pub fn finite_range(ys: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    ys.into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Mean and sample standard deviation (n − 1) of the finite values; std is `None` for fewer
/// than two values.
pub fn mean_std(values: &[f64]) -> Option<(f64, Option<f64>)> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.len() > 1)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, std))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_is_debiased_and_zero_weight_is_identity() {
        let ys = [1.0, 2.0, 3.0];
        assert_eq!(ema(&ys, 0.0), ys.to_vec());
        // constant input stays constant from the first point (bias correction)
        let c = ema(&[5.0; 10], 0.9);
        assert!(c.iter().all(|v| (v - 5.0).abs() < 1e-12), "{c:?}");
        // by hand, w = 0.5: m1 = .5, ŷ1 = 1; m2 = .25 + 1 = 1.25, ŷ2 = 1.25 / .75
        let s = ema(&[1.0, 2.0], 0.5);
        assert!((s[0] - 1.0).abs() < 1e-12 && (s[1] - 1.25 / 0.75).abs() < 1e-12);
        let n = ema(&[1.0, f64::NAN, 1.0], 0.5);
        assert!(n[1].is_nan() && (n[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn downsampling_keeps_spikes_and_bounds_the_count() {
        let mut pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, 1.0)).collect();
        pts[4321].1 = 100.0;
        pts[777].1 = -50.0;
        let d = minmax_downsample(&pts, 100);
        assert!(d.len() <= 200);
        assert!(d.contains(&(4321.0, 100.0)) && d.contains(&(777.0, -50.0)));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert_eq!(
            (d[0].0, d[d.len() - 1].0),
            (0.0, 9999.0),
            "the ends are kept"
        );
        assert_eq!(minmax_downsample(&pts[..50], 100).len(), 50);
        let with_nan = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)];
        assert_eq!(
            minmax_downsample(&with_nan, 10),
            vec![(0.0, 1.0), (2.0, 3.0)]
        );
    }

    #[test]
    fn mean_and_sample_std_by_hand() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m, 2.5);
        assert!((s.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0]), Some((7.0, None)));
        assert_eq!(mean_std(&[f64::NAN]), None);
        assert_eq!(finite_range([3.0, f64::NAN, -1.0]), Some((-1.0, 3.0)));
    }
}
