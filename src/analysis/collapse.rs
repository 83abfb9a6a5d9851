//! Collapse health of a run from its monitor series: a run is flagged when its effective rank
//! (RankMe) or its feature std falls below a quarter of that series' own peak, or its
//! effective rank below 1.5 (all features on about one direction). Read by the TUI (a badge
//! in the Runs table, the reason on the Run tab) and the report.

/// The fraction of its peak below which a monitor series counts as collapsed.
pub const COLLAPSE_FRACTION: f64 = 0.25;
/// An effective rank at or below this is a collapse whatever the peak.
pub const MIN_ERANK: f64 = 1.5;

/// Why a run looks collapsed, from its `monitor/erank` and `monitor/feature_std` series
/// (`(epoch, value)`, oldest first); `None` when it looks healthy or has no monitor rows.
pub fn collapse_reason(erank: &[(i64, f64)], feature_std: &[(i64, f64)]) -> Option<String> {
    let fell = |name: &str, s: &[(i64, f64)]| -> Option<String> {
        let &(last_epoch, last) = s.last()?;
        let &(peak_epoch, peak) = s.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
        (peak > 0.0 && last < COLLAPSE_FRACTION * peak).then(|| {
            format!(
                "{name} fell from {peak:.3} (epoch {peak_epoch}) to {last:.3} (epoch {last_epoch})"
            )
        })
    };
    if let Some(&(epoch, last)) = erank.last() {
        if last <= MIN_ERANK {
            return Some(format!(
                "effective rank {last:.2} at epoch {epoch}: the features lie along about one direction"
            ));
        }
    }
    fell("effective rank", erank).or_else(|| fell("feature std", feature_std))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_falls_below_a_quarter_of_the_peak() {
        let healthy = [(1, 40.0), (2, 35.0), (3, 30.0)];
        assert_eq!(collapse_reason(&healthy, &[(1, 0.1), (3, 0.09)]), None);
        let fallen = [(1, 40.0), (2, 20.0), (3, 9.0)];
        let why = collapse_reason(&fallen, &[]).unwrap();
        assert!(
            why.contains("effective rank fell from 40.000 (epoch 1) to 9.000 (epoch 3)"),
            "{why}"
        );
        let std_fell = collapse_reason(&healthy, &[(1, 0.12), (2, 0.02)]).unwrap();
        assert!(std_fell.starts_with("feature std"), "{std_fell}");
        assert!(collapse_reason(&[(1, 1.2)], &[])
            .unwrap()
            .contains("one direction"));
        assert_eq!(collapse_reason(&[], &[]), None);
    }
}
