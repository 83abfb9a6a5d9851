//! Charts: metric rows → points on the chosen x-axis, smoothed first (EMA with bias
//! correction), then downsampled to the columns available (min/max per bucket), on a linear
//! or log y-axis.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition, Paragraph};
use ratatui::Frame;

use crate::curve::{ema, finite_range, minmax_downsample};
use crate::store::Metric;
use crate::tui::app::{ChartOpts, XAxis};

/// The Okabe–Ito colour-blind-safe palette.
pub const PALETTE: [Color; 8] = [
    Color::Rgb(230, 159, 0),
    Color::Rgb(86, 180, 233),
    Color::Rgb(0, 158, 115),
    Color::Rgb(240, 228, 66),
    Color::Rgb(0, 114, 178),
    Color::Rgb(213, 94, 0),
    Color::Rgb(204, 121, 167),
    Color::Rgb(153, 153, 153),
];

/// A stable colour for a run: the same run id always gets the same colour.
pub fn run_color(id: &str) -> Color {
    let h = crate::config::identity::fnv1a(id.as_bytes());
    PALETTE[(h % PALETTE.len() as u64) as usize]
}

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub color: Color,
    pub points: Vec<(f64, f64)>,
    pub scatter: bool,
}

/// Reference runs shown on the charts (at most 3, in run order).
pub const MAX_REFERENCES: usize = 3;

/// The dotted series of the references' `key` (their step is the epoch), placed on the chart's
/// x-axis through `steps_per_epoch` of the run they are drawn against; none on a wall-time
/// axis (a log has no times) or when `R` hid them.
pub fn reference_series(
    snap: &crate::tui::snapshot::Snapshot,
    app: &crate::tui::app::App,
    key: &str,
    width: usize,
    steps_per_epoch: Option<f64>,
) -> Vec<Series> {
    if !app.references || app.chart.x == crate::tui::app::XAxis::Wall {
        return Vec::new();
    }
    let spe = steps_per_epoch.unwrap_or(1.0);
    snap.references
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let rows = snap.series.get(&(id.clone(), key.to_string()))?;
            let placed: Vec<Metric> = rows
                .iter()
                .map(|m| Metric {
                    step: (m.epoch as f64 * spe).round() as i64,
                    ..m.clone()
                })
                .collect();
            Some(Series {
                name: format!("{id} (ref)"),
                color: REFERENCE_COLORS[i % REFERENCE_COLORS.len()],
                points: points(&placed, &app.chart, width, Some(spe), 0.0),
                scatter: true,
            })
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// Colours of reference series (drawn dotted).
const REFERENCE_COLORS: [Color; 3] = [Color::Gray, Color::LightMagenta, Color::LightCyan];

/// Points of a metric series on the x-axis `opts.x` (`steps_per_epoch` converts steps to
/// epochs; `t0` is the run's start for wall time), smoothed, log-transformed when asked, and
/// downsampled to at most `columns` points.
pub fn points(
    rows: &[Metric],
    opts: &ChartOpts,
    columns: usize,
    steps_per_epoch: Option<f64>,
    t0: f64,
) -> Vec<(f64, f64)> {
    let xs: Vec<f64> = rows
        .iter()
        .map(|m| match opts.x {
            XAxis::Step => m.step as f64,
            XAxis::Epoch => match steps_per_epoch {
                Some(s) if s > 0.0 => m.step as f64 / s,
                _ => m.epoch as f64,
            },
            XAxis::Wall => m.wall - t0,
        })
        .collect();
    let ys: Vec<f64> = rows.iter().map(|m| m.value).collect();
    let ys = ema(&ys, opts.weight());
    let pts: Vec<(f64, f64)> = xs
        .into_iter()
        .zip(ys)
        .filter_map(|(x, y)| {
            if opts.log_y {
                (y > 0.0).then(|| (x, y.log10()))
            } else {
                Some((x, y))
            }
        })
        .collect();
    minmax_downsample(&pts, (columns / 2).max(1))
}

fn fmt_tick(v: f64, log: bool) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// y-axis bounds with a little margin (not below zero for data that is not); a flat or empty
/// range gets a unit span.
pub fn bounds(values: impl IntoIterator<Item = f64>) -> [f64; 2] {
    match finite_range(values) {
        None => [0.0, 1.0],
        Some((lo, hi)) if hi - lo < 1e-12 => [lo - 0.5, hi + 0.5],
        Some((lo, hi)) => {
            let pad = (hi - lo) * 0.05;
            let floor = if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY };
            [(lo - pad).max(floor), hi + pad]
        }
    }
}

/// x-axis bounds: exactly the data's span (a unit span when flat or empty).
pub fn x_bounds(values: impl IntoIterator<Item = f64>) -> [f64; 2] {
    match finite_range(values) {
        None => [0.0, 1.0],
        Some((lo, hi)) if hi - lo < 1e-12 => [lo - 0.5, hi + 0.5],
        Some((lo, hi)) => [lo, hi],
    }
}

/// Draws `series` in `area` with a titled block; a message when there is nothing to draw.
pub fn draw(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    series: &[Series],
    x_title: &str,
    log_y: bool,
) {
    let block = Block::bordered().title(title.to_string());
    if series.iter().all(|s| s.points.is_empty()) {
        frame.render_widget(
            Paragraph::new("no data yet")
                .style(Style::new().fg(Color::DarkGray))
                .block(block),
            area,
        );
        return;
    }
    let xb = x_bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let yb = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let datasets: Vec<Dataset> = series
        .iter()
        .map(|s| {
            Dataset::default()
                .name(s.name.clone())
                .marker(if s.scatter {
                    Marker::Dot
                } else {
                    Marker::Braille
                })
                .graph_type(if s.scatter {
                    GraphType::Scatter
                } else {
                    GraphType::Line
                })
                .style(Style::new().fg(s.color))
                .data(&s.points)
        })
        .collect();
    let x_labels: Vec<Span> = [xb[0], (xb[0] + xb[1]) / 2.0, xb[1]]
        .iter()
        .map(|v| Span::raw(fmt_tick(*v, false)))
        .collect();
    let y_labels: Vec<Span> = [yb[0], (yb[0] + yb[1]) / 2.0, yb[1]]
        .iter()
        .map(|v| Span::raw(fmt_tick(*v, log_y)))
        .collect();
    let named = series.iter().filter(|s| !s.name.is_empty()).count();
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(TextLine::from(x_title.to_string()))
                .bounds(xb)
                .labels(x_labels),
        )
        .y_axis(
            Axis::default()
                .title(if log_y { "log" } else { "" })
                .bounds(yb)
                .labels(y_labels),
        )
        .legend_position((named > 1).then_some(LegendPosition::TopRight))
        .hidden_legend_constraints((
            ratatui::layout::Constraint::Percentage(60),
            ratatui::layout::Constraint::Percentage(60),
        ));
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(step: i64, value: f64) -> Metric {
        Metric {
            key: "k".into(),
            step,
            epoch: 1 + step / 10,
            value,
            wall: 100.0 + step as f64,
        }
    }

    #[test]
    fn points_follow_the_chart_controls() {
        let rows: Vec<Metric> = (1..=1000).map(|s| m(s, 1.0 / s as f64)).collect();
        let mut opts = ChartOpts {
            smoothing: 0,
            log_y: false,
            x: XAxis::Step,
        };
        let p = points(&rows, &opts, 80, Some(10.0), 100.0);
        assert!(p.len() <= 80, "never more points than columns: {}", p.len());
        assert_eq!(p[0], (1.0, 1.0));
        opts.x = XAxis::Epoch;
        assert_eq!(points(&rows, &opts, 80, Some(10.0), 100.0)[0].0, 0.1);
        opts.x = XAxis::Wall;
        assert_eq!(points(&rows, &opts, 80, Some(10.0), 100.0)[0].0, 1.0);
        opts.log_y = true;
        assert_eq!(points(&rows, &opts, 80, None, 100.0)[0].1, 0.0);
        let with_nan = vec![m(1, 1.0), m(2, f64::NAN), m(3, 2.0)];
        opts.log_y = false;
        assert_eq!(points(&with_nan, &opts, 80, None, 100.0).len(), 2);
        assert_eq!(bounds([]), [0.0, 1.0]);
        assert_eq!(bounds([2.0, 2.0]), [1.5, 2.5]);
    }
}
