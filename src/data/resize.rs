//! Resampling of source images to the configured square size and channel count.

/// Bilinear resample of a `channels × h × w` image to `channels × size × size`
/// (align-corners = false, like torchvision's resize).
pub fn resize(img: &[f32], channels: usize, h: usize, w: usize, size: usize) -> Vec<f32> {
    if h == size && w == size {
        return img.to_vec();
    }
    let mut out = vec![0f32; channels * size * size];
    let (sy, sx) = (h as f32 / size as f32, w as f32 / size as f32);
    for y in 0..size {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, wy) = (fy.floor() as usize, fy - fy.floor());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..size {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, wx) = (fx.floor() as usize, fx - fx.floor());
            let x1 = (x0 + 1).min(w - 1);
            for c in 0..channels {
                let p = &img[c * h * w..(c + 1) * h * w];
                let top = p[y0 * w + x0] * (1.0 - wx) + p[y0 * w + x1] * wx;
                let bot = p[y1 * w + x0] * (1.0 - wx) + p[y1 * w + x1] * wx;
                out[c * size * size + y * size + x] = top * (1.0 - wy) + bot * wy;
            }
        }
    }
    out
}

/// Converts a `from`-channel image (1 or 3 channels, planar) to `to` channels: grey is
/// replicated to RGB, RGB becomes ITU-R 601 luma.
pub fn convert_channels(img: Vec<f32>, from: usize, to: usize) -> Vec<f32> {
    if from == to {
        return img;
    }
    let plane = img.len() / from;
    match (from, to) {
        (1, 3) => img.iter().chain(&img).chain(&img).copied().collect(),
        (3, 1) => (0..plane)
            .map(|p| 0.299 * img[p] + 0.587 * img[plane + p] + 0.114 * img[2 * plane + p])
            .collect(),
        _ => unreachable!("channels are validated to be 1 or 3"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_constant_images() {
        let img: Vec<f32> = (0..2 * 9).map(|i| i as f32).collect();
        assert_eq!(resize(&img, 2, 3, 3, 3), img);
        let flat = vec![0.25f32; 28 * 28];
        assert!(resize(&flat, 1, 28, 28, 32)
            .iter()
            .all(|&v| (v - 0.25).abs() < 1e-6));
        let up = resize(&[0.0, 1.0], 1, 1, 2, 4);
        assert_eq!(up.len(), 16);
        assert!(up[0] < up[3]);
    }

    #[test]
    fn channel_conversion() {
        assert_eq!(
            convert_channels(vec![0.5, 1.0], 1, 3),
            vec![0.5, 1.0, 0.5, 1.0, 0.5, 1.0]
        );
        let g = convert_channels(vec![1.0, 1.0, 1.0], 3, 1);
        assert!((g[0] - 1.0).abs() < 1e-6);
    }
}
