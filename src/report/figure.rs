//! Figures for the report: plotters' SVG backend without font features (text stays `<text>`
//! elements, no fontconfig), the data behind every figure as CSV. Each plotted series is one
//! `<polyline>` (lines) or a group of `<circle>`s (scatter); legends use small squares so the
//! polylines count the series.

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::fmt::Write;

/// The Okabe–Ito colour-blind-safe palette (RGB; grey in place of black, which the axes use).
pub const PALETTE: [(u8, u8, u8); 8] = [
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (153, 153, 153),
];

/// The palette colour `i` (cycling).
pub fn color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Most points drawn per line (after smoothing and min/max downsampling).
pub const MAX_POINTS: usize = 1500;

/// One series of a figure.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    /// Stroke width in pixels (thin seeds, thick means).
    pub width: u32,
    pub points: Vec<(f64, f64)>,
    /// Draw points (scatter) instead of a line.
    pub scatter: bool,
    /// Show in the legend (thin per-seed lines are left out).
    pub legend: bool,
    /// Optional ± band half-widths per point (error bars).
    pub error: Option<Vec<f64>>,
    /// Draw the line dashed (one `<polyline>` with `stroke-dasharray`; reference runs).
    pub dashed: bool,
}

impl Series {
    pub fn line(
        label: impl Into<String>,
        color: RGBColor,
        width: u32,
        points: Vec<(f64, f64)>,
    ) -> Series {
        Series {
            label: label.into(),
            color,
            width,
            points,
            scatter: false,
            legend: true,
            error: None,
            dashed: false,
        }
    }

    pub fn scatter(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            scatter: true,
            ..Series::line(label, color, 1, points)
        }
    }
}

/// A finished figure: file stem, caption, SVG text and CSV text.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub caption: String,
    pub svg: String,
    pub csv: String,
    /// Series drawn (lines + scatters), for tests.
    pub series: usize,
}

/// Axis range of the finite values with 5 % margin (a unit span when flat or empty).
fn range(values: impl Iterator<Item = f64>, pad: bool) -> (f64, f64) {
    match crate::curve::finite_range(values) {
        None => (0.0, 1.0),
        Some((lo, hi)) if hi - lo < 1e-12 => (lo - 0.5, hi + 0.5),
        Some((lo, hi)) if pad => {
            let p = (hi - lo) * 0.05;
            (lo - p, hi + p)
        }
        Some(r) => r,
    }
}

/// The long-format CSV of series: `series,x,y[,err]`.
fn csv_of(series: &[Series]) -> String {
    let with_err = series.iter().any(|s| s.error.is_some());
    let mut out = String::from(if with_err {
        "series,x,y,err\n"
    } else {
        "series,x,y\n"
    });
    for s in series {
        let label = crate::views::csv_field(&s.label);
        for (i, (x, y)) in s.points.iter().enumerate() {
            if with_err {
                let e = s
                    .error
                    .as_ref()
                    .and_then(|e| e.get(i))
                    .copied()
                    .unwrap_or(0.0);
                let _ = writeln!(out, "{label},{x},{y},{e}");
            } else {
                let _ = writeln!(out, "{label},{x},{y}");
            }
        }
    }
    out
}

/// Plot options.
#[derive(Debug, Clone, Default)]
pub struct Axes {
    pub x: String,
    pub y: String,
    /// Draw the diagonal y = x (Fig. 7 alignment).
    pub diagonal: bool,
    /// Use the same range on both axes.
    pub square: bool,
}

/// Characters of a title that fit the 720-px-wide figures at 16 px.
const TITLE_CHARS: usize = 78;

/// The title drawn inside a figure's SVG: the caption up to its first "; " (the details
/// follow in the page's caption under the figure), cut at a word with "…" when it is still
/// wider than the figure.
pub fn svg_title(caption: &str) -> String {
    let head = caption.split("; ").next().unwrap_or(caption);
    if head.chars().count() <= TITLE_CHARS {
        return head.to_string();
    }
    let cut: String = head.chars().take(TITLE_CHARS - 1).collect();
    let at = cut
        .rfind(' ')
        .filter(|&i| i > TITLE_CHARS / 2)
        .unwrap_or(cut.len());
    format!("{}…", cut[..at].trim_end())
}

/// The corner of the plot the legend covers least data in: points in the outer 40 % × 35 %
/// of each corner are counted, ties going to upper right, upper left, lower right, lower left.
fn legend_corner(
    series: &[Series],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    let (w, h) = ((x1 - x0).max(1e-12), (y1 - y0).max(1e-12));
    let covered = |right: bool, upper: bool| {
        series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|(x, y)| {
                let (fx, fy) = ((x - x0) / w, (y - y0) / h);
                (if right { fx >= 0.6 } else { fx <= 0.4 })
                    && (if upper { fy >= 0.65 } else { fy <= 0.35 })
            })
            .count()
    };
    [
        (true, true, SeriesLabelPosition::UpperRight),
        (false, true, SeriesLabelPosition::UpperLeft),
        (true, false, SeriesLabelPosition::LowerRight),
        (false, false, SeriesLabelPosition::LowerLeft),
    ]
    .into_iter()
    .min_by_key(|(right, upper, _)| covered(*right, *upper))
    .map_or(SeriesLabelPosition::UpperRight, |(_, _, p)| p)
}

/// A line / scatter figure.
pub fn plot(name: &str, caption: &str, axes: &Axes, series: Vec<Series>) -> Result<Figure> {
    let series: Vec<Series> = series
        .into_iter()
        .map(|mut s| {
            s.points.retain(|(x, y)| x.is_finite() && y.is_finite());
            s
        })
        .collect();
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| {
        s.points.iter().enumerate().flat_map(move |(i, p)| {
            let e = s
                .error
                .as_ref()
                .and_then(|e| e.get(i))
                .copied()
                .unwrap_or(0.0);
            [p.1 - e, p.1 + e]
        })
    });
    // error bars are drawn around their x: pad so the outermost are whole
    let (mut x0, mut x1) = range(xs, series.iter().any(|s| s.error.is_some()));
    let (mut y0, mut y1) = range(ys, true);
    if axes.square {
        let (lo, hi) = (x0.min(y0), x1.max(y1));
        (x0, x1, y0, y1) = (lo, hi, lo, hi);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(svg_title(caption), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(axes.x.as_str())
            .y_desc(axes.y.as_str())
            .light_line_style(WHITE)
            .draw()?;
        if axes.diagonal {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x0.max(y0), x0.max(y0)), (x1.min(y1), x1.min(y1))],
                RGBColor(213, 94, 0).stroke_width(1),
            )))?;
        }
        for s in &series {
            let style = s.color.stroke_width(s.width);
            let drawn = if s.scatter {
                chart.draw_series(
                    s.points
                        .iter()
                        .map(|p| Circle::new(*p, 2, s.color.filled())),
                )?
            } else {
                chart.draw_series(LineSeries::new(s.points.iter().copied(), style))?
            };
            if s.legend && !s.label.is_empty() {
                let c = s.color;
                drawn.label(s.label.clone()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 10, y + 4)], c.filled())
                });
            }
            if let Some(err) = &s.error {
                chart.draw_series(s.points.iter().zip(err).map(|(&(x, y), &e)| {
                    ErrorBar::new_vertical(x, y - e, y, y + e, s.color.filled(), 8)
                }))?;
            }
        }
        if series.iter().any(|s| s.legend && !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .position(legend_corner(&series, (x0, x1), (y0, y1)))
                .draw()?;
        }
        root.present().context("cannot write the SVG")?;
    }
    for s in series.iter().filter(|s| s.dashed && !s.scatter) {
        svg = dash(&svg, s.color, s.width);
    }
    Ok(Figure {
        name: name.to_string(),
        caption: caption.to_string(),
        csv: csv_of(&series),
        series: series.len(),
        svg,
    })
}

/// The SVG with every `<polyline>` stroked in `color` at `width` dashed (`stroke-dasharray`):
/// plotters' own dashed series draw one element per dash. A solid line of the same colour at
/// another width stays solid.
fn dash(svg: &str, color: RGBColor, width: u32) -> String {
    let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
    let stroke_width = format!("stroke-width=\"{width}\"");
    svg.lines()
        .map(|l| {
            if l.trim_start().starts_with("<polyline")
                && !l.contains("stroke-dasharray")
                && l.to_uppercase().contains(&stroke.to_uppercase())
                && l.contains(&stroke_width)
            {
                l.replacen("<polyline", "<polyline stroke-dasharray=\"7,4\"", 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A histogram figure: one bar group per series over shared bins `[lo, hi)`.
pub fn histogram(
    name: &str,
    caption: &str,
    axes: &Axes,
    lo: f64,
    hi: f64,
    series: Vec<(String, RGBColor, Vec<u64>)>,
) -> Result<Figure> {
    let bins = series.iter().map(|s| s.2.len()).max().unwrap_or(1).max(1);
    let top = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let width = (hi - lo) / bins as f64;
    let mut svg = String::new();
    let mut csv = String::from("series,bin_lo,bin_hi,count\n");
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(svg_title(caption), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, 0f64..top * 1.05)?;
        chart
            .configure_mesh()
            .x_desc(axes.x.as_str())
            .y_desc(axes.y.as_str())
            .light_line_style(WHITE)
            .draw()?;
        let k = series.len().max(1) as f64;
        for (si, (label, color, counts)) in series.iter().enumerate() {
            let c = *color;
            let bars = counts.iter().enumerate().map(|(b, &n)| {
                let x0 = lo + b as f64 * width + si as f64 * width / k;
                Rectangle::new([(x0, 0.0), (x0 + width / k, n as f64)], c.mix(0.8).filled())
            });
            chart
                .draw_series(bars)?
                .label(label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], c.filled()));
            let label = crate::views::csv_field(label);
            for (b, n) in counts.iter().enumerate() {
                let a = lo + b as f64 * width;
                let _ = writeln!(csv, "{label},{a},{},{n}", a + width);
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present().context("cannot write the SVG")?;
    }
    Ok(Figure {
        name: name.to_string(),
        caption: caption.to_string(),
        csv,
        series: series.len(),
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_goes_where_the_data_is_not() {
        let rising = Series::line("a", color(0), 1, vec![(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]);
        let at = |s: &Series| legend_corner(std::slice::from_ref(s), (0.0, 2.0), (0.0, 2.0));
        assert_eq!(at(&rising), SeriesLabelPosition::UpperLeft);
        let falling = Series::line("b", color(1), 1, vec![(0.0, 2.0), (1.0, 1.0), (2.0, 0.0)]);
        assert_eq!(at(&falling), SeriesLabelPosition::UpperRight);
    }

    #[test]
    fn svg_titles_fit_the_figure_and_the_caption_keeps_the_details() {
        let caption = "Probe top-1 vs pre-training epochs (mean ± std over seeds); other settings at masking.position = corner+center, predictor.models = 2";
        assert_eq!(
            svg_title(caption),
            "Probe top-1 vs pre-training epochs (mean ± std over seeds)"
        );
        let long = "word ".repeat(30);
        let t = svg_title(&long);
        assert!(
            t.chars().count() <= TITLE_CHARS && t.ends_with("word…"),
            "{t}"
        );
        assert_eq!(svg_title("short"), "short");
        let f = plot("t", caption, &Axes::default(), Vec::new()).unwrap();
        assert_eq!(f.caption, caption, "the page's caption is whole");
        assert!(!f.svg.contains("predictor.models"), "the SVG title is cut");
    }

    #[test]
    fn one_polyline_per_line_series_and_text_elements() {
        let f = plot(
            "t",
            "two lines",
            &Axes {
                x: "step".into(),
                y: "loss".into(),
                ..Default::default()
            },
            vec![
                Series::line("a", color(0), 1, vec![(0.0, 1.0), (1.0, 0.5)]),
                Series::line(
                    "b",
                    color(1),
                    3,
                    vec![(0.0, 2.0), (1.0, f64::NAN), (2.0, 1.0)],
                ),
            ],
        )
        .unwrap();
        // axes and ticks are black polylines; each series is one in its own colour
        let series_lines = f
            .svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && !l.contains("stroke=\"#000000\""))
            .count();
        assert_eq!(series_lines, 2, "{}", f.svg);
        assert!(f.svg.contains("stroke=\"#56B4E9\" stroke-width=\"3\""));
        assert!(f.svg.contains("<text") && f.svg.contains("two lines"));
        assert_eq!(f.csv.lines().count(), 1 + 2 + 2, "NaN dropped:\n{}", f.csv);
        let h = histogram(
            "h",
            "hist",
            &Axes::default(),
            0.0,
            1.0,
            vec![("x".into(), color(2), vec![1, 3, 2])],
        )
        .unwrap();
        assert_eq!(h.csv.lines().count(), 4);
    }
}
