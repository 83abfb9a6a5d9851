//! Small RGB rasters for the stored pictures: PNG encoding and decoding, a heat colour map,
//! grey or colour pixels from image channels, and tiling panels side by side.

use anyhow::{Context, Result};
use image::{ImageFormat, Rgb, RgbImage};

/// Colour of the gaps between panels.
pub const GAP: Rgb<u8> = Rgb([40, 40, 40]);

/// PNG bytes of an image.
pub fn png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .context("cannot encode a PNG")?;
    Ok(out.into_inner())
}

/// Decodes PNG bytes (a stored picture) into RGB.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    Ok(image::load_from_memory_with_format(bytes, ImageFormat::Png)
        .context("stored picture is not a valid PNG")?
        .to_rgb8())
}

/// A value in [0, 1] as a byte.
pub fn byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The colour of pixel `i` of a `C × plane` image with values in [0, 1]: grey for one
/// channel, RGB for three (other counts show their first channel).
pub fn pixel(values: &[f32], channels: usize, plane: usize, i: usize) -> Rgb<u8> {
    if channels == 3 {
        Rgb([0, 1, 2].map(|c| byte(values[c * plane + i])))
    } else {
        let g = byte(values[i]);
        Rgb([g, g, g])
    }
}

/// A heat colour map over [0, 1] (black → purple → orange → pale yellow, an inferno-like
/// ramp whose brightness grows monotonically).
pub fn heat(t: f32) -> Rgb<u8> {
    const STOPS: [[f32; 3]; 5] = [
        [0.0, 0.0, 0.02],
        [0.34, 0.06, 0.43],
        [0.73, 0.21, 0.33],
        [0.98, 0.55, 0.04],
        [0.99, 1.0, 0.64],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    Rgb([0, 1, 2].map(|c| byte(STOPS[i][c] * (1.0 - f) + STOPS[i + 1][c] * f)))
}

/// Panels of equal height side by side with `gap` pixels of [`GAP`] between them.
pub fn side_by_side(panels: &[RgbImage], gap: u32) -> RgbImage {
    let h = panels.iter().map(|p| p.height()).max().unwrap_or(0);
    let w =
        panels.iter().map(|p| p.width()).sum::<u32>() + gap * panels.len().saturating_sub(1) as u32;
    let mut out = RgbImage::from_pixel(w, h, GAP);
    let mut x0 = 0;
    for p in panels {
        image::imageops::replace(&mut out, p, i64::from(x0), 0);
        x0 += p.width() + gap;
    }
    out
}

/// Panels stacked top to bottom with `gap` pixels between them.
pub fn stacked(panels: &[RgbImage], gap: u32) -> RgbImage {
    let w = panels.iter().map(|p| p.width()).max().unwrap_or(0);
    let h = panels.iter().map(|p| p.height()).sum::<u32>()
        + gap * panels.len().saturating_sub(1) as u32;
    let mut out = RgbImage::from_pixel(w, h, GAP);
    let mut y0 = 0;
    for p in panels {
        image::imageops::replace(&mut out, p, 0, i64::from(y0));
        y0 += p.height() + gap;
    }
    out
}

/// `img` scaled by an integer factor with nearest-neighbour (pixels stay crisp).
pub fn upscale(img: &RgbImage, factor: u32) -> RgbImage {
    if factor <= 1 {
        return img.clone();
    }
    image::imageops::resize(
        img,
        img.width() * factor,
        img.height() * factor,
        image::imageops::FilterType::Nearest,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_and_heat_is_monotone() {
        let mut img = RgbImage::new(5, 3);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = Rgb([x as u8 * 50, y as u8 * 100, 7]);
        }
        assert_eq!(decode(&png(&img).unwrap()).unwrap(), img);
        assert!(decode(b"not a png").is_err());
        let lum = |c: Rgb<u8>| 0.3 * c[0] as f32 + 0.59 * c[1] as f32 + 0.11 * c[2] as f32;
        let steps: Vec<f32> = (0..=20).map(|i| lum(heat(i as f32 / 20.0))).collect();
        assert!(steps.windows(2).all(|w| w[1] >= w[0]), "{steps:?}");
        assert_eq!(heat(f32::NAN), heat(0.0));
    }

    #[test]
    fn panels_tile_with_gaps() {
        let a = RgbImage::from_pixel(2, 2, Rgb([255, 0, 0]));
        let b = RgbImage::from_pixel(3, 2, Rgb([0, 255, 0]));
        let s = side_by_side(&[a.clone(), b], 1);
        assert_eq!(s.dimensions(), (6, 2));
        assert_eq!(*s.get_pixel(2, 0), GAP);
        assert_eq!(*s.get_pixel(3, 1), Rgb([0, 255, 0]));
        let t = stacked(&[a.clone(), a], 2);
        assert_eq!(t.dimensions(), (2, 6));
        assert_eq!(upscale(&t, 3).dimensions(), (6, 18));
    }
}
