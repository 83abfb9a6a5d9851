//! MoCo-v2's photometric augmentations (torchvision's ColorJitter, RandomGrayscale,
//! GaussianBlur) on one channel-first image with values in [0, 1], in place.

use rand::seq::SliceRandom;
use rand::Rng;

/// ITU-R 601 luma weights (torchvision's `rgb_to_grayscale`).
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// The grey value of each pixel: the luma of an RGB image, the image itself otherwise.
pub fn luma(img: &[f32], channels: usize, plane: usize) -> Vec<f32> {
    if channels != 3 {
        return img[..plane].to_vec();
    }
    (0..plane)
        .map(|i| LUMA[0] * img[i] + LUMA[1] * img[plane + i] + LUMA[2] * img[2 * plane + i])
        .collect()
}

/// `x ← clamp(f·x + (1 − f)·other, 0, 1)` per pixel of every channel (torchvision's blend).
fn blend(img: &mut [f32], plane: usize, f: f32, other: impl Fn(usize) -> f32) {
    for (i, v) in img.iter_mut().enumerate() {
        *v = (f * *v + (1.0 - f) * other(i % plane)).clamp(0.0, 1.0);
    }
}

/// Brightness: blend with black, factor `f`.
pub fn brightness(img: &mut [f32], plane: usize, f: f32) {
    blend(img, plane, f, |_| 0.0);
}

/// Contrast: blend with the mean grey level of the image, factor `f`.
pub fn contrast(img: &mut [f32], channels: usize, plane: usize, f: f32) {
    let grey = luma(img, channels, plane);
    let mean = grey.iter().sum::<f32>() / plane.max(1) as f32;
    blend(img, plane, f, |_| mean);
}

/// Saturation: blend with the image's own grey version, factor `f` (RGB only).
pub fn saturation(img: &mut [f32], plane: usize, f: f32) {
    let grey = luma(img, 3, plane);
    blend(img, plane, f, |i| grey[i]);
}

/// Hue: rotates every pixel's colour by `turn` of a full turn (|turn| ≤ 0.5) about the grey
/// axis (1, 1, 1) of RGB space (Rodrigues' rotation): grey stays grey and r + g + b is kept
/// (torchvision rotates the hue in HSV; both turn red towards green towards blue).
pub fn hue(img: &mut [f32], plane: usize, turn: f32) {
    let (sin, cos) = (turn * std::f32::consts::TAU).sin_cos();
    let third = (1.0 - cos) / 3.0;
    let root = sin / 3f32.sqrt();
    let (a, b, c) = (cos + third, third - root, third + root);
    for i in 0..plane {
        let (r, g, bl) = (img[i], img[plane + i], img[2 * plane + i]);
        img[i] = (a * r + b * g + c * bl).clamp(0.0, 1.0);
        img[plane + i] = (c * r + a * g + b * bl).clamp(0.0, 1.0);
        img[2 * plane + i] = (b * r + c * g + a * bl).clamp(0.0, 1.0);
    }
}

/// Grey-scale: every channel becomes the luma.
pub fn greyscale(img: &mut [f32], channels: usize, plane: usize) {
    let grey = luma(img, channels, plane);
    for c in 0..channels {
        img[c * plane..(c + 1) * plane].copy_from_slice(&grey);
    }
}

/// Separable Gaussian blur with std `sigma` pixels (kernel radius ⌈3σ⌉, edges replicated).
pub fn gaussian_blur(img: &mut [f32], channels: usize, size: usize, sigma: f32) {
    let radius = (3.0 * sigma).ceil() as isize;
    if radius < 1 {
        return;
    }
    let taps: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = taps.iter().sum();
    let taps: Vec<f32> = taps.iter().map(|t| t / total).collect();
    let at = |k: isize| k.clamp(0, size as isize - 1) as usize;
    let plane = size * size;
    let mut tmp = vec![0f32; plane];
    for c in 0..channels {
        let p = &mut img[c * plane..(c + 1) * plane];
        for y in 0..size {
            for x in 0..size {
                tmp[y * size + x] = taps
                    .iter()
                    .enumerate()
                    .map(|(j, t)| t * p[y * size + at(x as isize + j as isize - radius)])
                    .sum();
            }
        }
        for y in 0..size {
            for x in 0..size {
                p[y * size + x] = taps
                    .iter()
                    .enumerate()
                    .map(|(j, t)| t * tmp[at(y as isize + j as isize - radius) * size + x])
                    .sum();
            }
        }
    }
}

/// A jitter factor uniform in [max(0, 1 − s), 1 + s].
fn factor(rng: &mut impl Rng, s: f64) -> f32 {
    if s > 0.0 {
        rng.random_range((1.0 - s).max(0.0)..=1.0 + s) as f32
    } else {
        1.0
    }
}

/// ColorJitter(s, s, s, s/4) in a random order of its four parts (torchvision): factors
/// uniform in [1 − s, 1 + s], hue in ±s/4 turns; saturation and hue on RGB images only.
pub fn jitter(img: &mut [f32], channels: usize, plane: usize, s: f64, rng: &mut impl Rng) {
    let colour = channels == 3;
    let mut order = [0usize, 1, 2, 3];
    order.shuffle(rng);
    for part in order {
        match part {
            0 => brightness(img, plane, factor(rng, s)),
            1 => contrast(img, channels, plane, factor(rng, s)),
            2 if colour => saturation(img, plane, factor(rng, s)),
            3 if colour && s > 0.0 => {
                let h = s / 4.0;
                hue(img, plane, rng.random_range(-h..=h) as f32)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_one_and_zero_turn_change_nothing() {
        let img: Vec<f32> = (0..3 * 16).map(|i| (i as f32 * 0.37).fract()).collect();
        for op in 0..4 {
            let mut x = img.clone();
            match op {
                0 => brightness(&mut x, 16, 1.0),
                1 => contrast(&mut x, 3, 16, 1.0),
                2 => saturation(&mut x, 16, 1.0),
                _ => hue(&mut x, 16, 0.0),
            }
            for (a, b) in x.iter().zip(&img) {
                assert!((a - b).abs() < 1e-5, "op {op}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn grey_pixels_stay_grey_and_hue_keeps_the_sum() {
        // hue and saturation do not touch a grey image; hue keeps r + g + b of a colour one
        let mut grey = vec![0.3f32, 0.3, 0.3];
        hue(&mut grey, 1, 0.2);
        saturation(&mut grey, 1, 0.0);
        for v in grey {
            assert!((v - 0.3).abs() < 1e-3, "{v}");
        }
        let mut c = vec![0.6f32, 0.3, 0.2];
        let before = luma(&c, 3, 1)[0];
        hue(&mut c, 1, 0.1);
        assert!((c.iter().sum::<f32>() - 1.1).abs() < 1e-5);
        // a third of a turn maps red to green to blue
        let mut red = vec![1.0f32, 0.0, 0.0];
        hue(&mut red, 1, 1.0 / 3.0);
        assert!(
            (red[1] - 1.0).abs() < 1e-5 && red[0].abs() < 1e-5 && red[2].abs() < 1e-5,
            "{red:?}"
        );
        // saturation 0 is grey-scale
        let mut s = vec![0.6f32, 0.3, 0.2];
        saturation(&mut s, 1, 0.0);
        assert!((s[0] - s[1]).abs() < 1e-6 && (s[1] - s[2]).abs() < 1e-6);
        assert!((s[0] - before).abs() < 1e-6);
    }

    #[test]
    fn contrast_zero_is_the_mean_and_blur_keeps_the_mean() {
        let img: Vec<f32> = (0..16).map(|i| i as f32 / 15.0).collect();
        let mut x = img.clone();
        contrast(&mut x, 1, 16, 0.0);
        assert!(x.iter().all(|v| (v - 0.5).abs() < 1e-6));
        // a blurred constant stays constant; an impulse spreads symmetrically
        let mut k = vec![0.25f32; 64];
        gaussian_blur(&mut k, 1, 8, 1.0);
        assert!(k.iter().all(|v| (v - 0.25).abs() < 1e-6));
        let mut d = vec![0f32; 81];
        d[40] = 1.0;
        gaussian_blur(&mut d, 1, 9, 1.0);
        assert!((d.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!((d[39] - d[41]).abs() < 1e-7 && (d[31] - d[49]).abs() < 1e-7);
        assert!(d[40] < 0.2 && d[40] > d[39]);
    }
}
