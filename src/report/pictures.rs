//! The report's pictures (issue 28): per ablation cell (one run per combination of the swept
//! settings; per run for a one-run report) the reconstruction strips of the first and last
//! stored epoch, the cross-attention figures (Fig. 13–14) and the PCA scatter of the probe
//! features. PNGs are inlined as `data:` URIs and written beside `index.html`; a byte budget
//! keeps a 1 000-run report at a few MB (what it leaves out, it says).

use anyhow::Result;
use base64::Engine;
use plotters::style::RGBColor;
use std::fmt::Write;

use super::figure::{plot, Axes, Series};
use super::html::esc;
use super::sections::Page;
use super::Data;
use crate::analysis::attention::{F2M, M2F};
use crate::analysis::raster;
use crate::store::pictures::RECONSTRUCTION;
use crate::store::{Picture, RunRow};

/// PNG bytes inlined in one report at most (base64 adds a third).
pub const PICTURE_BUDGET: usize = 2 << 20;

/// Images of the fixed batch shown per epoch in the report.
pub const REPORT_IMAGES: usize = 4;

/// PCA points drawn per run in the report.
pub const REPORT_POINTS: usize = 600;

/// PCA scatters in one report at most (each is an inline SVG of its points).
pub const REPORT_EMBEDDINGS: usize = 12;

/// Ten distinguishable label colours (Tableau 10).
const LABEL_COLORS: [(u8, u8, u8); 10] = [
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
];

/// One run per ablation cell: the first run (in report order) of each combination of the
/// swept settings other than the seed, with the cell's label.
fn cells<'a>(data: &'a Data) -> Vec<(String, &'a RunRow)> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for r in &data.runs {
        let label = data
            .axes
            .iter()
            .map(|(k, _)| format!("{k} = {}", data.param(&r.id, k).unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(", ");
        if !seen.contains(&label) {
            seen.push(label.clone());
            let label = if label.is_empty() {
                format!("run {}", r.id)
            } else {
                format!("{label} (run {})", r.id)
            };
            out.push((label, r));
        }
    }
    out
}

/// Spends the picture budget: `false` once a picture would exceed it.
struct Budget {
    left: usize,
    refused: usize,
}

impl Budget {
    fn take(&mut self, bytes: usize) -> bool {
        if bytes > self.left {
            self.refused += 1;
            return false;
        }
        self.left -= bytes;
        true
    }
}

/// An `<img>` of PNG bytes as a `data:` URI, shown `zoom` times its size, pixels crisp.
fn img(png: &[u8], width: u32, zoom: u32, alt: &str) -> String {
    format!(
        "<img src=\"data:image/png;base64,{}\" width=\"{}\" alt=\"{}\" style=\"image-rendering: pixelated\">",
        base64::engine::general_purpose::STANDARD.encode(png),
        width * zoom,
        esc(alt)
    )
}

/// Pictures stacked into one PNG (a sheet), with its width.
fn sheet(pictures: &[&Picture]) -> Result<(Vec<u8>, u32)> {
    let images = pictures
        .iter()
        .map(|p| raster::decode(&p.png))
        .collect::<Result<Vec<_>>>()?;
    let stacked = raster::stacked(&images, 3);
    Ok((raster::png(&stacked)?, stacked.width()))
}

/// A display zoom that brings a picture of `width` pixels near 480.
fn zoom(width: u32) -> u32 {
    (480 / width.max(1)).clamp(1, 4)
}

pub fn pictures(data: &Data, page: &mut Page) -> Result<()> {
    let mut budget = Budget {
        left: PICTURE_BUDGET,
        refused: 0,
    };
    let cells = cells(data);
    reconstructions(data, &cells, page, &mut budget)?;
    attention(data, &cells, page, &mut budget)?;
    embeddings(data, &cells, page)?;
    if budget.refused > 0 {
        page.missing(format!(
            "{} pictures were left out to keep the report under {} MB of images; `workbench report --run RUN` shows one run's.",
            budget.refused,
            PICTURE_BUDGET >> 20
        ));
    }
    Ok(())
}

fn reconstructions(
    data: &Data,
    cells: &[(String, &RunRow)],
    page: &mut Page,
    budget: &mut Budget,
) -> Result<()> {
    page.h2("Reconstructions of a fixed validation batch (input · visible quarter · reconstruction · error)");
    let mut shown = 0;
    let mut html = String::new();
    for (i, (label, run)) in cells.iter().enumerate() {
        let epochs = data.store.picture_epochs(&run.id, RECONSTRUCTION)?;
        let (Some(&first), Some(&last)) = (epochs.first(), epochs.last()) else {
            continue;
        };
        let _ = writeln!(html, "<h3>{}</h3>\n<div class=\"pictures\">", esc(label));
        for epoch in if first == last {
            vec![last]
        } else {
            vec![first, last]
        } {
            let all = data.store.pictures(&run.id, RECONSTRUCTION, Some(epoch))?;
            let chosen: Vec<&Picture> = all.iter().take(REPORT_IMAGES).collect();
            let (png, width) = sheet(&chosen)?;
            if !budget.take(png.len()) {
                continue;
            }
            let name = format!("recon-{}-e{epoch}", i + 1);
            let errors: Vec<String> = chosen
                .iter()
                .filter_map(|p| p.value.map(|v| format!("{v:.3}")))
                .collect();
            let caption = chosen.first().map_or(String::new(), |p| p.caption.clone());
            let _ = writeln!(
                html,
                "<figure>{}<figcaption>epoch {epoch}: images 1–{} of {}; masked error per image {} (<a href=\"{name}.png\">png</a>). {}</figcaption></figure>",
                img(&png, width, zoom(width), &format!("reconstructions at epoch {epoch}")),
                chosen.len(),
                all.len(),
                errors.join(", "),
                esc(&strip_first_image(&caption)),
            );
            page.images.push((format!("{name}.png"), png));
            shown += 1;
        }
        html.push_str("</div>\n");
    }
    if shown == 0 {
        page.missing("No run of this report stored reconstructions (analysis.pictures_every = 0, no epoch finished yet, or runs from before pictures existed).".into());
    } else {
        page.raw(&html);
    }
    Ok(())
}

/// A strip's caption without what differs per image of a sheet (its image, quarter and
/// masked mean).
fn strip_first_image(caption: &str) -> String {
    let shared = caption.split(" · ").skip(2).collect::<Vec<_>>().join(" · ");
    match shared.find(": masked mean") {
        Some(i) => shared[..i].to_string(),
        None => shared,
    }
}

fn attention(
    data: &Data,
    cells: &[(String, &RunRow)],
    page: &mut Page,
    budget: &mut Budget,
) -> Result<()> {
    page.h2("Cross-attention of the two-way bridge (paper Fig. 13–14)");
    let mut html = String::from("<div class=\"grid\">\n");
    let mut shown = 0;
    for (i, (label, run)) in cells.iter().enumerate() {
        let mut parts = Vec::new();
        for (kind, name) in [
            (M2F, "Mobile→Former (over pixels)"),
            (F2M, "Mobile←Former (over tokens)"),
        ] {
            let all = data.store.pictures(&run.id, kind, None)?;
            let Some(&last) = all.iter().map(|p| &p.epoch).max() else {
                continue;
            };
            let blocks: Vec<&Picture> = all.iter().filter(|p| p.epoch == last).collect();
            let (png, width) = sheet(&blocks)?;
            if !budget.take(png.len()) {
                continue;
            }
            let file = format!(
                "attention-{}-{}",
                i + 1,
                kind.trim_start_matches("attention/")
            );
            parts.push(format!(
                "<figure>{}<figcaption>{name}, epoch {last}: blocks 1–{} top to bottom, a column per token, a row per head, each map scaled to its own maximum (<a href=\"{file}.png\">png</a>)</figcaption></figure>",
                img(&png, width, 1, name),
                blocks.len()
            ));
            page.images.push((format!("{file}.png"), png));
        }
        if !parts.is_empty() {
            shown += 1;
            let _ = writeln!(
                html,
                "<div><h3>{}</h3>{}</div>",
                esc(label),
                parts.join("\n")
            );
        }
    }
    html.push_str("</div>\n");
    if shown == 0 {
        page.missing("No attention maps stored: runs store them when they finish (analysis.pictures_every > 0), and `workbench attention RUN` stores them for any run with a checkpoint.".into());
    } else {
        page.raw(&html);
    }
    Ok(())
}

fn embeddings(data: &Data, cells: &[(String, &RunRow)], page: &mut Page) -> Result<()> {
    page.h2("Feature embedding: PCA of the pooled probe features of the validation images");
    let mut shown = 0;
    let mut left_out = 0;
    for (i, (label, run)) in cells.iter().enumerate() {
        let Some(e) = data.store.embedding(&run.id, "pca")? else {
            continue;
        };
        if shown == REPORT_EMBEDDINGS {
            left_out += 1;
            continue;
        }
        let stride = e.points.len().div_ceil(REPORT_POINTS).max(1);
        let mut by_label: Vec<Vec<(f64, f64)>> = vec![Vec::new(); e.classes.max(1)];
        for &(x, y, l) in e.points.iter().step_by(stride) {
            if let Some(v) = by_label.get_mut(l as usize) {
                v.push((f64::from(x), f64::from(y)));
            }
        }
        let series: Vec<Series> = by_label
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(l, points)| {
                let (r, g, b) = LABEL_COLORS[l % LABEL_COLORS.len()];
                Series::scatter(format!("class {l}"), RGBColor(r, g, b), points)
            })
            .collect();
        let caption = format!(
            "PCA of {label}; epoch {}: {} of {} validation images, PC1 {:.1} % and PC2 {:.1} % of the variance, coloured by label",
            e.epoch,
            e.points.len().div_ceil(stride),
            e.total,
            100.0 * e.variance_share[0],
            100.0 * e.variance_share[1]
        );
        page.fig(plot(
            &format!("pca-{}", i + 1),
            &caption,
            &Axes {
                x: format!("PC1 ({:.1} %)", 100.0 * e.variance_share[0]),
                y: format!("PC2 ({:.1} %)", 100.0 * e.variance_share[1]),
                ..Default::default()
            },
            series,
        )?);
        shown += 1;
    }
    if shown == 0 {
        page.missing(
            "No PCA of probe features stored: it is computed with a run's lin or tran-1 probe."
                .into(),
        );
    }
    if left_out > 0 {
        page.missing(format!(
            "The PCA of {left_out} more cells was left out (at most {REPORT_EMBEDDINGS} per report); `workbench report --run RUN` shows one run's."
        ));
    }
    Ok(())
}
