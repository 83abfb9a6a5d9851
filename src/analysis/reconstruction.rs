//! Reconstruction strips (issue 28): per image *input · visible quarter · decoded masked
//! quarters pasted around the visible one · error map*, as the PNG pictures a run stores.
//!
//! With norm-pix the decoder predicts each patch normalised by its own mean and standard
//! deviation (MAE's `norm_pix_loss`); the strip un-normalises it with the *target* patch's
//! statistics, as MAE's visualisation notebook does, and says so in its caption: the
//! brightness and contrast of each masked patch are borrowed from the ground truth. The error
//! panel is in the loss's own space, so its masked mean is the model's masked loss.

use anyhow::Result;
use image::{Rgb, RgbImage};

use super::raster::{self, heat, pixel};
use crate::masking::Quarter;
use crate::store::pictures::RECONSTRUCTION;
use crate::store::NewPicture;
use crate::train::reconstruction::Reconstruction;

/// Pixels between two panels of a strip.
pub const STRIP_GAP: u32 = 2;

/// Squared error (loss space) shown at full brightness in the error panel.
pub const ERROR_SCALE: f32 = 2.0;

/// Colour of cells nothing was predicted for (the visible quarter in the error panel, the
/// masked quarters in the visible-quarter panel).
const HIDDEN: Rgb<u8> = Rgb([72, 72, 72]);

/// Short name of a quarter for captions: TL, TR, BL, BR or centre.
pub fn quarter_name(q: Quarter) -> &'static str {
    match q {
        Quarter::Corner { row: 0, col: 0 } => "TL",
        Quarter::Corner { row: 0, .. } => "TR",
        Quarter::Corner { col: 0, .. } => "BL",
        Quarter::Corner { .. } => "BR",
        Quarter::Center => "centre",
    }
}

/// The reconstructed image `C × S × S` in [0, 1]: the input where the cell was visible (the
/// model predicts nothing there), the decoded patch — un-normalised — where it was masked.
pub fn paste(r: &Reconstruction) -> Vec<f32> {
    let (c, size, s) = (r.channels, r.size, r.patch);
    let plane = size * size;
    let grid = r.grid();
    let p = r.patch_len();
    let mut out = r.pixels.clone();
    for cell in 0..grid * grid {
        if r.mask[cell] <= 0.0 {
            continue;
        }
        let (gy, gx) = (cell / grid, cell % grid);
        let at = |py: usize, px: usize, ch: usize| ch * plane + (gy * s + py) * size + gx * s + px;
        let predicted = &r.prediction[cell * p..(cell + 1) * p];
        // the patch of the normalised image: the space the targets were made in
        let normalised: Vec<f32> = (0..p)
            .map(|k| {
                let (py, px, ch) = (k / (s * c), (k / c) % s, k % c);
                let (mean, std) = r.stats[ch];
                (r.pixels[at(py, px, ch)] - mean) / std
            })
            .collect();
        let (mu, sigma) = if r.norm_pix {
            let n = p as f32;
            let mu = normalised.iter().sum::<f32>() / n;
            let var = normalised.iter().map(|v| (v - mu).powi(2)).sum::<f32>() / n;
            (mu, (var + 1e-6).sqrt())
        } else {
            (0.0, 1.0)
        };
        for (k, &v) in predicted.iter().enumerate() {
            let (py, px, ch) = (k / (s * c), (k / c) % s, k % c);
            let (mean, std) = r.stats[ch];
            out[at(py, px, ch)] = ((v * sigma + mu) * std + mean).clamp(0.0, 1.0);
        }
    }
    out
}

/// Per-pixel squared error `S × S` in the loss's space (mean over channels), `None` on
/// visible cells. Its mean over the masked pixels is [`Reconstruction::masked_error`].
pub fn error_map(r: &Reconstruction) -> Vec<Option<f32>> {
    let (c, size, s) = (r.channels, r.size, r.patch);
    let grid = r.grid();
    let p = r.patch_len();
    let mut out = vec![None; size * size];
    for cell in 0..grid * grid {
        if r.mask[cell] <= 0.0 {
            continue;
        }
        let (gy, gx) = (cell / grid, cell % grid);
        for py in 0..s {
            for px in 0..s {
                let k0 = cell * p + (py * s + px) * c;
                let se: f32 = (0..c)
                    .map(|ch| (r.prediction[k0 + ch] - r.target[k0 + ch]).powi(2))
                    .sum();
                out[(gy * s + py) * size + gx * s + px] = Some(se / c as f32);
            }
        }
    }
    out
}

/// The strip of one reconstruction: four `S × S` panels, [`STRIP_GAP`] pixels apart.
pub fn strip(r: &Reconstruction) -> RgbImage {
    let (c, size) = (r.channels, r.size);
    let plane = size * size;
    let kept = r.quarter.kept(size, size);
    let panel = |f: &dyn Fn(usize, usize) -> Rgb<u8>| {
        RgbImage::from_fn(size as u32, size as u32, |x, y| f(y as usize, x as usize))
    };
    let input = panel(&|y, x| pixel(&r.pixels, c, plane, y * size + x));
    let visible = panel(&|y, x| {
        if kept.contains(y, x) {
            pixel(&r.pixels, c, plane, y * size + x)
        } else {
            HIDDEN
        }
    });
    let pasted = paste(r);
    let reconstruction = panel(&|y, x| pixel(&pasted, c, plane, y * size + x));
    let errors = error_map(r);
    let error = panel(&|y, x| errors[y * size + x].map_or(HIDDEN, |e| heat(e / ERROR_SCALE)));
    raster::side_by_side(&[input, visible, reconstruction, error], STRIP_GAP)
}

/// Caption of a strip: which image and quarter, how the masked patches were un-normalised,
/// the error panel's scale and its masked mean.
pub fn caption(r: &Reconstruction) -> String {
    let norm = if r.norm_pix {
        "norm-pix: masked patches un-normalised with the target patch's own mean and std"
    } else {
        "masked patches as predicted"
    };
    format!(
        "image {} · visible {} · input | visible quarter | reconstruction ({norm}) | squared error in the loss's space, 0–{ERROR_SCALE}: masked mean {:.4}",
        r.image + 1,
        quarter_name(r.quarter),
        r.masked_error()
    )
}

/// The pictures of one epoch's reconstructions, ready to store.
pub fn pictures(epoch: usize, recs: &[Reconstruction]) -> Result<Vec<NewPicture>> {
    recs.iter()
        .map(|r| {
            Ok(NewPicture {
                kind: RECONSTRUCTION.to_string(),
                epoch: epoch as i64,
                item: r.image as i64,
                caption: caption(r),
                value: Some(r.masked_error()),
                png: raster::png(&strip(r))?,
            })
        })
        .collect()
}

/// Mean squared difference, over the masked pixels and channels, between a stored strip's
/// input panel and its reconstruction panel, in [0, 1] pixel units, read from the picture's
/// own pixels (`size` the panel side, `quarter` the visible one).
pub fn stored_pixel_error(strip: &RgbImage, size: u32, quarter: Quarter) -> f64 {
    let kept = quarter.kept(size as usize, size as usize);
    let x_rec = 2 * (size + STRIP_GAP);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in 0..size {
        for x in 0..size {
            if kept.contains(y as usize, x as usize) {
                continue;
            }
            let a = strip.get_pixel(x, y);
            let b = strip.get_pixel(x_rec + x, y);
            for ch in 0..3 {
                sum += ((f64::from(a[ch]) - f64::from(b[ch])) / 255.0).powi(2);
            }
            n += 3;
        }
    }
    sum / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masking::{masked_cells, moves};

    /// A reconstruction of a ramp image whose masked cells are predicted as `prediction`.
    fn fixture(q: Quarter, norm_pix: bool, channels: usize) -> Reconstruction {
        let (size, patch) = (16, 2);
        let grid = size / patch;
        let plane = size * size;
        let pixels: Vec<f32> = (0..channels * plane)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let stats = vec![(0.4, 0.25); channels];
        let p = patch * patch * channels;
        // targets exactly as the batch maker builds them
        let mut target = Vec::new();
        for gy in 0..grid {
            for gx in 0..grid {
                let first = target.len();
                for py in 0..patch {
                    for px in 0..patch {
                        for ch in 0..channels {
                            let v = pixels[ch * plane + (gy * patch + py) * size + gx * patch + px];
                            target.push((v - 0.4) / 0.25);
                        }
                    }
                }
                if norm_pix {
                    crate::data::batch::normalise_patch(&mut target[first..]);
                }
            }
        }
        assert_eq!(target.len(), grid * grid * p);
        Reconstruction {
            image: 0,
            quarter: q,
            channels,
            size,
            patch,
            pixels,
            prediction: target.clone(),
            target,
            mask: masked_cells(q, grid, grid)
                .into_iter()
                .map(|m| m as u8 as f32)
                .collect(),
            norm_pix,
            stats,
        }
    }

    fn quarters() -> Vec<Quarter> {
        let mut v = Quarter::CORNERS.to_vec();
        v.push(Quarter::Center);
        v
    }

    #[test]
    fn a_perfect_prediction_pastes_back_the_input() {
        for q in quarters() {
            for norm_pix in [false, true] {
                for channels in [1, 3] {
                    let r = fixture(q, norm_pix, channels);
                    let pasted = paste(&r);
                    let worst = pasted
                        .iter()
                        .zip(&r.pixels)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f32::max);
                    assert!(
                        worst < 1e-4,
                        "{q:?} norm_pix={norm_pix} C={channels}: {worst}"
                    );
                    assert_eq!(r.masked_error(), 0.0);
                }
            }
        }
    }

    #[test]
    fn visible_cells_are_the_input_and_masked_ones_sit_where_the_moves_put_them() {
        for q in quarters() {
            let mut r = fixture(q, false, 1);
            // predict 1.0 everywhere: after un-normalising (×0.25 + 0.4) that is 0.65
            r.prediction.iter_mut().for_each(|v| *v = 1.0);
            let pasted = paste(&r);
            let (size, s, grid) = (r.size, r.patch, r.grid());
            let kept = q.kept(grid, grid);
            let mut predicted_cells = vec![false; grid * grid];
            for mv in moves(q, grid, grid) {
                for y in 0..mv.dst.rows {
                    for x in 0..mv.dst.cols {
                        predicted_cells[(mv.dst.row + y) * grid + mv.dst.col + x] = true;
                    }
                }
            }
            for y in 0..size {
                for x in 0..size {
                    let cell = (y / s) * grid + x / s;
                    let v = pasted[y * size + x];
                    if kept.contains(y / s, x / s) {
                        assert!(!predicted_cells[cell]);
                        assert_eq!(v, r.pixels[y * size + x], "{q:?} visible ({y},{x})");
                    } else {
                        assert!(predicted_cells[cell], "{q:?} ({y},{x}) is no move's target");
                        assert!((v - 0.65).abs() < 1e-6, "{q:?} masked ({y},{x}) = {v}");
                    }
                }
            }
            // the stored picture shows the same: visible pixels of the input panel equal the
            // reconstruction panel's, and the pixel error comes only from masked cells
            let img = strip(&r);
            assert_eq!(img.width(), 4 * size as u32 + 3 * STRIP_GAP);
            let k = q.kept(size, size);
            for y in 0..size as u32 {
                for x in 0..size as u32 {
                    if k.contains(y as usize, x as usize) {
                        let x_rec = 2 * (size as u32 + STRIP_GAP) + x;
                        assert_eq!(img.get_pixel(x, y), img.get_pixel(x_rec, y));
                    }
                }
            }
            assert!(stored_pixel_error(&img, size as u32, q) > 0.0);
        }
    }

    #[test]
    fn the_error_map_averages_to_the_loss() {
        for q in quarters() {
            let mut r = fixture(q, true, 3);
            for (i, v) in r.prediction.iter_mut().enumerate() {
                *v += ((i % 7) as f32 - 3.0) * 0.1;
            }
            let map = error_map(&r);
            let masked: Vec<f32> = map.iter().flatten().copied().collect();
            assert_eq!(masked.len() * 4, 3 * r.size * r.size);
            let mean = masked.iter().map(|&e| f64::from(e)).sum::<f64>() / masked.len() as f64;
            // by hand: the loss is the mean over masked cells of the per-patch MSE
            let p = r.patch_len();
            let (mut sum, mut cells) = (0.0f64, 0);
            for cell in 0..r.mask.len() {
                if r.mask[cell] > 0.0 {
                    let mut se = 0.0f64;
                    for k in 0..p {
                        se +=
                            f64::from(r.prediction[cell * p + k] - r.target[cell * p + k]).powi(2);
                    }
                    sum += se / p as f64;
                    cells += 1;
                }
            }
            let loss = sum / cells as f64;
            assert!((mean - loss).abs() < 1e-6, "{mean} vs {loss}");
            assert!((r.masked_error() - loss).abs() < 1e-9);
            assert!(caption(&r).contains("norm-pix"));
        }
    }
}
