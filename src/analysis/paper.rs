//! The paper's own numbers, quoted exactly from its text (`../shared/paper/`): Mobile-Former
//! encoders pre-trained on ImageNet-1K. The report prints them beside a sweep's results as a
//! reference, labelled as such: they come from another data set and a 3.7 G-MAdds encoder.

/// One row of Tab. 2: a setting and its top-1 (%) for lin, tran-1 and fine-tuning (ft).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AblationRow {
    pub setting: &'static str,
    pub lin: f64,
    pub tran1: f64,
    pub ft: f64,
    /// The paper's default (grey) row.
    pub default: bool,
}

const fn row(setting: &'static str, lin: f64, tran1: f64, ft: f64, default: bool) -> AblationRow {
    AblationRow {
        setting,
        lin,
        tran1,
        ft,
        default,
    }
}

/// What the paper's numbers are of.
pub const SOURCE: &str = "paper, MF-3.7G on ImageNet-1K";

/// Tab. 2a: position of the unmasked quarter (the paper's default: corner + center).
pub const TAB2A: [AblationRow; 3] = [
    row("corner", 64.1, 77.9, 82.1, false),
    row("center", 64.2, 77.9, 82.4, false),
    row("corner+center", 65.1, 78.6, 82.5, true),
];

/// Tab. 2b: number of explicit linear models (the paper's default: 8).
pub const TAB2B: [AblationRow; 3] = [
    row("2", 64.8, 78.4, 82.3, false),
    row("4", 65.0, 78.5, 82.4, false),
    row("8", 65.1, 78.6, 82.5, true),
];

/// Tab. 3: E(A)/E(B) at the end of separate pre-training schedules: (epochs, ¼ scale
/// (Δ = W/4, H/4: center), ½ scale (Δ = W/2, H/2: corner)).
pub const TAB3: [(u32, f64, f64); 5] = [
    (200, 0.9388, 0.9418),
    (400, 0.8575, 0.8559),
    (800, 0.8104, 0.7997),
    (1600, 0.7336, 0.7217),
    (2400, 0.6859, 0.6813),
];

/// Tab. 4: fine-tuning top-1 (%) with the tran-1 decoder: (method, MF-285M, MF-1.0G, MF-3.7G).
pub const TAB4: [(&str, f64, f64, f64); 3] = [
    ("supervised", 75.7, 79.4, 80.8),
    ("moco-v2", 74.3, 79.2, 80.0),
    ("qbheat", 75.8, 80.5, 82.5),
];

/// Fig. 8 gives its values only as a plot; the text quotes one point: MF-285M, tran-1 of
/// width 192, QB-Heat 65.6 % against MoCo-v2 52.9 %.
pub const FIG8_QUOTE: (&str, usize, f64, f64) = ("MF-285M", 192, 65.6, 52.9);

/// The Tab. 2 row of a swept `axis` at `value`, when the paper has one.
pub fn ablation_row(axis: &str, value: &str) -> Option<&'static AblationRow> {
    let rows: &[AblationRow] = match axis {
        "masking.position" => &TAB2A,
        "predictor.models" => &TAB2B,
        _ => return None,
    };
    rows.iter().find(|r| r.setting == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab3_scales_differ_by_at_most_0_012_and_fall_with_the_schedule() {
        let gap = TAB3
            .iter()
            .map(|r| (r.1 - r.2).abs())
            .fold(0.0f64, f64::max);
        assert!((gap - 0.0119).abs() < 1e-9, "{gap}");
        assert!(TAB3.windows(2).all(|w| w[1].1 < w[0].1 && w[1].2 < w[0].2));
        assert_eq!(TAB3[4].2, 0.6813);
    }

    #[test]
    fn rows_are_found_by_the_sweep_value() {
        assert_eq!(ablation_row("masking.position", "center").unwrap().ft, 82.4);
        assert!(ablation_row("predictor.models", "8").unwrap().default);
        assert!(ablation_row("train.epochs", "6").is_none());
    }
}
