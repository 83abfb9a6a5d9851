//! The built-in procedural image set: 10 shape classes drawn at random positions, sizes and
//! colours over a random background, generated deterministically from a seed. It needs no
//! download, so the first README command runs anywhere.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ImageSet;

/// Class names, in label order.
pub const CLASSES: [&str; 10] = [
    "disc",
    "square",
    "triangle",
    "ring",
    "plus",
    "h-stripes",
    "v-stripes",
    "checker",
    "x-cross",
    "diamond",
];

/// Does the unit-scale shape `class` cover point (u, v) ∈ [−1, 1]²?
fn inside(class: usize, u: f32, v: f32) -> bool {
    let r = (u * u + v * v).sqrt();
    match class {
        0 => r <= 1.0,
        1 => u.abs() <= 0.8 && v.abs() <= 0.8,
        2 => (-0.9..=0.8).contains(&v) && u.abs() <= (v + 0.9) * 0.55,
        3 => (0.6..=1.0).contains(&r),
        4 => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
        5 => u.abs() <= 1.0 && v.abs() <= 1.0 && ((v + 1.0) * 2.5).floor() as i32 % 2 == 0,
        6 => u.abs() <= 1.0 && v.abs() <= 1.0 && ((u + 1.0) * 2.5).floor() as i32 % 2 == 0,
        7 => {
            u.abs() <= 1.0
                && v.abs() <= 1.0
                && (((u + 1.0) * 2.0).floor() as i32 + ((v + 1.0) * 2.0).floor() as i32) % 2 == 0
        }
        8 => r <= 1.05 && ((u - v).abs() <= 0.35 || (u + v).abs() <= 0.35),
        _ => u.abs() + v.abs() <= 1.0,
    }
}

/// Generates `n` images of `channels × size × size` (channels = 1 or 3) from `seed`.
pub fn generate(n: usize, size: usize, channels: usize, seed: u64) -> ImageSet {
    assert!(channels == 1 || channels == 3, "1 or 3 channels");
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb1d7_0001);
    let plane = size * size;
    let mut pixels = Vec::with_capacity(n * channels * plane);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let class = rng.random_range(0..CLASSES.len());
        let fg: Vec<f32> = (0..3).map(|_| rng.random_range(0.0..1.0)).collect();
        // background far enough from the foreground to keep the shape visible
        let bg: Vec<f32> = fg
            .iter()
            .map(|&c| (c + rng.random_range(0.35..0.65)) % 1.0)
            .collect();
        let grad: Vec<f32> = (0..2).map(|_| rng.random_range(-0.15..0.15)).collect();
        let radius = rng.random_range(0.22..0.42) * size as f32;
        let cx = rng.random_range(radius..size as f32 - radius);
        let cy = rng.random_range(radius..size as f32 - radius);
        let angle: f32 = rng.random_range(-0.4..0.4);
        let (sin, cos) = angle.sin_cos();
        let noise = rng.random_range(0.0..0.05);
        let mut img = vec![0f32; 3 * plane];
        for y in 0..size {
            for x in 0..size {
                // 2×2 supersampling for anti-aliased edges
                let mut cover = 0.0;
                for (oy, ox) in [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)] {
                    let dx = (x as f32 + ox - cx) / radius;
                    let dy = (y as f32 + oy - cy) / radius;
                    let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                    if inside(class, u, v) {
                        cover += 0.25;
                    }
                }
                let shade = grad[0] * (x as f32 / size as f32 - 0.5)
                    + grad[1] * (y as f32 / size as f32 - 0.5);
                for c in 0..3 {
                    let jitter = (rng.random::<f32>() - 0.5) * 2.0 * noise;
                    let v = cover * fg[c] + (1.0 - cover) * (bg[c] + shade) + jitter;
                    img[c * plane + y * size + x] = v.clamp(0.0, 1.0);
                }
            }
        }
        if channels == 3 {
            pixels.extend_from_slice(&img);
        } else {
            pixels.extend(
                (0..plane)
                    .map(|p| 0.299 * img[p] + 0.587 * img[plane + p] + 0.114 * img[2 * plane + p]),
            );
        }
        labels.push(class as u32);
    }
    ImageSet {
        pixels,
        labels,
        channels,
        size,
        classes: CLASSES.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_in_range() {
        let a = generate(400, 32, 3, 7);
        let b = generate(400, 32, 3, 7);
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.labels, b.labels);
        assert_ne!(
            generate(10, 32, 3, 8).pixels,
            a.pixels[..10 * 3 * 32 * 32].to_vec()
        );
        assert!(a.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        for c in 0..10 {
            let k = a.labels.iter().filter(|&&l| l == c).count();
            assert!(k > 20, "class {c} has {k} samples");
        }
    }

    #[test]
    fn every_class_draws_a_visible_shape() {
        for class in 0..CLASSES.len() {
            let covered = (0..400)
                .filter(|i| {
                    inside(
                        class,
                        (i % 20) as f32 / 10.0 - 1.0,
                        (i / 20) as f32 / 10.0 - 1.0,
                    )
                })
                .count();
            assert!(covered > 40 && covered < 400, "class {class}: {covered}");
        }
    }
}
