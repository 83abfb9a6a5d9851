//! RandomResizedCrop + horizontal flip (paper Tab. 9), on channel-first f32 images.

use rand::Rng;

/// A crop box in pixels (floating point, top-left corner and size).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropBox {
    pub top: f32,
    pub left: f32,
    pub height: f32,
    pub width: f32,
}

impl CropBox {
    /// The whole `size × size` image.
    pub fn full(size: usize) -> Self {
        CropBox {
            top: 0.0,
            left: 0.0,
            height: size as f32,
            width: size as f32,
        }
    }
}

/// torchvision's RandomResizedCrop box: area fraction in `scale`, aspect ratio in [3/4, 4/3]
/// (log-uniform), ten tries, then the whole image.
pub fn sample_box(rng: &mut impl Rng, size: usize, scale: [f64; 2]) -> CropBox {
    let s = size as f64;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let area = s * s * rng.random_range(scale[0]..=scale[1]);
        let ratio = rng.random_range(lo..=hi).exp();
        let w = (area * ratio).sqrt();
        let h = (area / ratio).sqrt();
        if w <= s && h <= s {
            let top = rng.random_range(0.0..=(s - h));
            let left = rng.random_range(0.0..=(s - w));
            return CropBox {
                top: top as f32,
                left: left as f32,
                height: h as f32,
                width: w as f32,
            };
        }
    }
    CropBox::full(size)
}

/// Bilinear resample of `crop` of a `channels × size × size` image back to `size × size`,
/// optionally mirrored left-right, written into `out`.
pub fn resized_crop(
    img: &[f32],
    channels: usize,
    size: usize,
    crop: CropBox,
    flip: bool,
    out: &mut [f32],
) {
    let plane = size * size;
    let sy = crop.height / size as f32;
    let sx = crop.width / size as f32;
    let max = (size - 1) as f32;
    for y in 0..size {
        let fy = (crop.top + (y as f32 + 0.5) * sy - 0.5).clamp(0.0, max);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(size - 1);
        let wy = fy - y0 as f32;
        for x in 0..size {
            let xs = if flip { size - 1 - x } else { x };
            let fx = (crop.left + (xs as f32 + 0.5) * sx - 0.5).clamp(0.0, max);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(size - 1);
            let wx = fx - x0 as f32;
            for c in 0..channels {
                let p = &img[c * plane..(c + 1) * plane];
                let top = p[y0 * size + x0] * (1.0 - wx) + p[y0 * size + x1] * wx;
                let bot = p[y1 * size + x0] * (1.0 - wx) + p[y1 * size + x1] * wx;
                out[c * plane + y * size + x] = top * (1.0 - wy) + bot * wy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn full_box_without_flip_is_identity() {
        let size = 8;
        let img: Vec<f32> = (0..2 * size * size).map(|i| i as f32).collect();
        let mut out = vec![0.0; img.len()];
        let full = CropBox::full(8);
        resized_crop(&img, 2, size, full, false, &mut out);
        assert_eq!(out, img);
        resized_crop(&img, 2, size, full, true, &mut out);
        assert_eq!(out[0], img[7]);
        assert_eq!(out[8 * 8 + 9], img[8 * 8 + 14]);
    }

    #[test]
    fn boxes_stay_inside_and_respect_scale() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..500 {
            let b = sample_box(&mut rng, 32, [0.3, 0.9]);
            assert!(b.top >= 0.0 && b.left >= 0.0);
            assert!(b.top + b.height <= 32.0 + 1e-3 && b.left + b.width <= 32.0 + 1e-3);
            let frac = b.height * b.width / 1024.0;
            assert!(
                (0.3 - 1e-3..=0.9 + 1e-3).contains(&frac) || frac == 1.0,
                "{frac}"
            );
        }
    }
}
