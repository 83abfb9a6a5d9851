//! Learning-rate schedule: linear warmup then cosine decay (paper Tab. 9).

/// lr at optimiser step `step` (0-based) of `total` steps.
///
/// Warmup: lr = peak · (step + 1) / warmup. Then
/// lr = min + (peak − min) · ½ · (1 + cos(π · (step − warmup) / (total − warmup))).
pub fn cosine_lr(step: usize, total: usize, warmup: usize, peak: f64, min: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1);
    let t = ((step - warmup) as f64 / span as f64).min(1.0);
    min + (peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let (peak, min) = (1e-3, 1e-5);
        assert!((cosine_lr(0, 100, 10, peak, min) - 1e-4).abs() < 1e-12);
        assert!((cosine_lr(9, 100, 10, peak, min) - peak).abs() < 1e-12);
        assert!((cosine_lr(10, 100, 10, peak, min) - peak).abs() < 1e-12);
        // half-way through the decay: the mean of peak and min
        assert!((cosine_lr(55, 100, 10, peak, min) - (peak + min) / 2.0).abs() < 1e-12);
        assert!((cosine_lr(100, 100, 10, peak, min) - min).abs() < 1e-12);
        let mut prev = f64::MAX;
        for s in 10..100 {
            let lr = cosine_lr(s, 100, 10, peak, min);
            assert!(lr <= prev);
            prev = lr;
        }
    }

    #[test]
    fn no_warmup() {
        assert!((cosine_lr(0, 10, 0, 1.0, 0.0) - 1.0).abs() < 1e-12);
    }
}
