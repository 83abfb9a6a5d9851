//! `workbench bench-report`: report generation on a large store.

use anyhow::Result;
use std::path::Path;
use std::time::Instant;

use super::store::fill_store;
use crate::report::{self, Selection};
use crate::store::Store;

/// Result of the report benchmark.
#[derive(Debug, Clone)]
pub struct ReportBenchResult {
    pub rows: usize,
    pub seconds: f64,
    pub figures: usize,
    pub largest_svg_bytes: usize,
    pub largest_svg: String,
    pub max_points_per_line: usize,
    pub html_bytes: usize,
    /// PNG files written beside the page, and their bytes.
    pub images: usize,
    pub image_bytes: usize,
    /// The worst case for pictures: a sweep whose every run is its own ablation cell, each
    /// with the pictures of a finished run; its page's bytes and its PNG files.
    pub cells: usize,
    pub cells_html_bytes: usize,
    pub cells_images: usize,
}

/// Gives every run of the bench store the pictures a finished run has: 8 reconstruction
/// strips at epochs 1 and 10 (noisy pixels, the worst case for PNG), two attention figures
/// and a PCA of 2 000 points.
fn fill_pictures(store: &mut Store, runs: &[crate::store::NewRun]) -> Result<()> {
    use crate::analysis::raster;
    use crate::store::{Embedding, NewPicture};
    use image::{Rgb, RgbImage};
    let noisy = |w: u32, h: u32, seed: u32| {
        let img = RgbImage::from_fn(w, h, |x, y| {
            let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed)
                .wrapping_mul(2_246_822_519);
            Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
        });
        raster::png(&img)
    };
    for (i, r) in runs.iter().enumerate() {
        let mut pics = Vec::new();
        for epoch in [1, 10] {
            for item in 0..8 {
                pics.push(NewPicture {
                    kind: crate::store::pictures::RECONSTRUCTION.into(),
                    epoch,
                    item,
                    caption: format!("image {} · visible TL · bench", item + 1),
                    value: Some(1.0 / epoch as f64),
                    png: noisy(134, 32, (i * 100 + item as usize) as u32)?,
                });
            }
        }
        for kind in [
            crate::analysis::attention::M2F,
            crate::analysis::attention::F2M,
        ] {
            for block in 0..4 {
                pics.push(NewPicture {
                    kind: kind.into(),
                    epoch: 10,
                    item: block,
                    caption: "bench".into(),
                    value: None,
                    png: noisy(298, 98, i as u32 + block as u32)?,
                });
            }
        }
        store.log_pictures(&r.id, None, &pics)?;
        let points = (0..2000u32)
            .map(|k| ((k as f32 * 0.37).sin(), (k as f32 * 0.11).cos(), k % 10))
            .collect();
        store.log_embedding(
            &r.id,
            None,
            &Embedding {
                name: "pca".into(),
                epoch: 10,
                points,
                variance_share: [0.3, 0.2],
                total: 10_000,
                classes: 10,
            },
        )?;
    }
    Ok(())
}

/// The report of a sweep of `cells` runs, each its own cell (a distinct `train.base_lr`), all
/// with pictures: (page bytes, PNG files).
fn cells_report(dir: &Path, cells: usize) -> Result<(usize, usize)> {
    let db = dir.join("cells.db");
    let mut store = Store::open(&db)?;
    let planned: Vec<crate::store::NewRun> = (0..cells)
        .map(|i| {
            let mut c = crate::config::RunConfig::default();
            c.train.base_lr = 1e-4 * (1 + i) as f64;
            crate::store::NewRun::from_config(&c)
        })
        .collect();
    store.register_sweep("cells", "cells", &planned)?;
    fill_pictures(&mut store, &planned)?;
    drop(store);
    let store = Store::open_read_only(&db)?;
    let r = report::build(&store, &Selection::Sweep("cells".into()))?;
    report::write(&r, &dir.join("cells-report"))?;
    Ok((r.html.len(), r.images.len()))
}

pub fn run(dir: &Path, runs: usize, rows: usize, cells: usize) -> Result<ReportBenchResult> {
    let db = dir.join("report.db");
    let (planned, written) = fill_store(&crate::store::Locator::from(&db), runs, rows)?;
    fill_pictures(&mut Store::open(&db)?, &planned)?;
    let store = Store::open_read_only(&db)?;
    let t = Instant::now();
    let r = report::build(&store, &Selection::Sweep("bench".into()))?;
    report::write(&r, &dir.join("report"))?;
    let seconds = t.elapsed().as_secs_f64();
    let largest = r.figures.iter().max_by_key(|f| f.svg.len());
    let max_points = r
        .figures
        .iter()
        .flat_map(|f| f.svg.split("<polyline").skip(1))
        .map(|p| {
            p.split("points=\"")
                .nth(1)
                .and_then(|q| q.split('"').next())
                .map_or(0, |q| q.split_whitespace().count())
        })
        .max()
        .unwrap_or(0);
    let (cells_html_bytes, cells_images) = if cells > 0 {
        cells_report(dir, cells)?
    } else {
        (0, 0)
    };
    Ok(ReportBenchResult {
        cells,
        cells_html_bytes,
        cells_images,
        rows: written,
        seconds,
        figures: r.figures.len(),
        largest_svg_bytes: largest.map_or(0, |f| f.svg.len()),
        largest_svg: largest.map_or(String::new(), |f| f.name.clone()),
        max_points_per_line: max_points,
        html_bytes: r.html.len(),
        images: r.images.len(),
        image_bytes: r.images.iter().map(|(_, b)| b.len()).sum(),
    })
}
