//! MoCo-v2's two augmented views of each image (Chen et al. 2020, Sec. 3 / Fig. 1 recipe):
//! RandomResizedCrop, colour jitter (p 0.8), grey-scale (p 0.2), Gaussian blur (p 0.5),
//! horizontal flip, then per-channel normalisation. Every draw comes from the step's seed,
//! so a resumed run replays the same views.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::augment::{resized_crop, sample_box};
use super::colour;
use super::ImageSet;
use crate::config::MocoConfig;

/// Host-side tensors of one contrastive step: the query and key view of each image.
#[derive(Debug, Clone)]
pub struct ViewBatch {
    /// `n × C × S × S` query views (normalised).
    pub query: Vec<f32>,
    /// `n × C × S × S` key views of the same images, in the same order.
    pub key: Vec<f32>,
    pub n: usize,
    pub channels: usize,
    pub size: usize,
}

/// Everything needed to turn images into view pairs.
#[derive(Debug, Clone)]
pub struct ViewMaker {
    pub moco: MocoConfig,
    pub flip: bool,
    /// Per-channel (mean, std) used to normalise the views.
    pub stats: Vec<(f32, f32)>,
}

impl ViewMaker {
    /// The view maker of a run config and `set`'s channel statistics.
    pub fn for_config(cfg: &crate::config::RunConfig, set: &ImageSet) -> Self {
        Self {
            moco: cfg.moco.clone(),
            flip: cfg.train.flip,
            stats: set.channel_stats(),
        }
    }

    /// One augmented, normalised view of `img` into `out`.
    fn view(&self, img: &[f32], set: &ImageSet, rng: &mut ChaCha8Rng, out: &mut [f32]) {
        let (c, size) = (set.channels, set.size);
        let plane = size * size;
        let m = &self.moco;
        let crop = sample_box(rng, size, m.crop_scale);
        let flip = self.flip && rng.random::<bool>();
        resized_crop(img, c, size, crop, flip, out);
        if rng.random::<f64>() < m.jitter_p {
            colour::jitter(out, c, plane, m.jitter, rng);
        }
        if c == 3 && rng.random::<f64>() < m.grey_p {
            colour::greyscale(out, c, plane);
        }
        if rng.random::<f64>() < m.blur_p {
            let sigma = rng.random_range(0.1..=2.0) * size as f64 / 224.0;
            colour::gaussian_blur(out, c, size, sigma as f32);
        }
        for (ch, &(mean, std)) in self.stats.iter().enumerate() {
            for v in &mut out[ch * plane..(ch + 1) * plane] {
                *v = (*v - mean) / std;
            }
        }
    }

    /// The two views of images `indices`, all randomness drawn from `seed`.
    pub fn make(&self, set: &ImageSet, indices: &[usize], seed: u64) -> ViewBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let len = set.image_len();
        let mut query = vec![0f32; indices.len() * len];
        let mut key = vec![0f32; indices.len() * len];
        for (k, &i) in indices.iter().enumerate() {
            let img = set.image(i);
            self.view(img, set, &mut rng, &mut query[k * len..(k + 1) * len]);
            self.view(img, set, &mut rng, &mut key[k * len..(k + 1) * len]);
        }
        ViewBatch {
            query,
            key,
            n: indices.len(),
            channels: set.channels,
            size: set.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ImageSet {
        let (n, c, s) = (4, 3, 8);
        ImageSet {
            pixels: (0..n * c * s * s)
                .map(|i| (i as f32 * 0.013).fract())
                .collect(),
            labels: vec![0, 1, 0, 1],
            channels: c,
            size: s,
            classes: 2,
        }
    }

    #[test]
    fn views_are_seeded_and_differ_from_each_other() {
        let set = set();
        let cfg = crate::config::RunConfig::default();
        let maker = ViewMaker::for_config(&cfg, &set);
        let a = maker.make(&set, &[0, 2], 7);
        let b = maker.make(&set, &[0, 2], 7);
        assert_eq!(a.query, b.query);
        assert_eq!(a.key, b.key);
        assert_ne!(a.query, a.key, "two views of one image are two draws");
        assert_ne!(maker.make(&set, &[0, 2], 8).query, a.query);
        assert_eq!(a.query.len(), 2 * 3 * 64);
    }

    #[test]
    fn without_augmentation_a_view_is_the_normalised_image() {
        let set = set();
        let mut cfg = crate::config::RunConfig::default();
        cfg.moco.crop_scale = [1.0, 1.0];
        cfg.moco.jitter_p = 0.0;
        cfg.moco.grey_p = 0.0;
        cfg.moco.blur_p = 0.0;
        cfg.train.flip = false;
        let maker = ViewMaker::for_config(&cfg, &set);
        let v = maker.make(&set, &[1], 3);
        let stats = set.channel_stats();
        // a full-area crop may still change the aspect ratio: only the centre pixel's row and
        // column are guaranteed; compare the whole image when the box is the full image
        let plane = 64;
        let img = set.image(1);
        let same = (0..3 * plane).all(|i| {
            let (m, s) = stats[i / plane];
            (v.query[i] - (img[i] - m) / s).abs() < 1e-4
        });
        assert!(
            same,
            "a [1, 1] crop without jitter, grey or blur is the image itself"
        );
        assert_eq!(v.query, v.key);
    }
}
