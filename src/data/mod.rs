//! Data: image sets, augmentation and pre-training batches.

pub mod augment;
pub mod batch;
pub mod cifar;
pub mod colour;
pub mod folder;
pub mod idx;
pub mod procedural;
pub mod reader;
pub mod resize;
pub mod views;

/// A labelled set of square images, channel-first, values in [0, 1].
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// `len × channels × size × size` values.
    pub pixels: Vec<f32>,
    pub labels: Vec<u32>,
    pub channels: usize,
    pub size: usize,
    pub classes: usize,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Per-channel mean and standard deviation over the whole set.
    pub fn channel_stats(&self) -> Vec<(f32, f32)> {
        let plane = self.size * self.size;
        (0..self.channels)
            .map(|c| {
                let (mut s, mut s2, mut k) = (0f64, 0f64, 0f64);
                for i in 0..self.len() {
                    for &v in &self.image(i)[c * plane..(c + 1) * plane] {
                        s += v as f64;
                        s2 += (v as f64) * (v as f64);
                        k += 1.0;
                    }
                }
                let mean = s / k.max(1.0);
                let var = (s2 / k.max(1.0) - mean * mean).max(1e-8);
                (mean as f32, var.sqrt() as f32)
            })
            .collect()
    }
}

/// Keeps the first `n` images of a set (all of them for `None`).
pub fn truncate(mut set: ImageSet, n: Option<usize>) -> ImageSet {
    if let Some(n) = n.filter(|&n| n < set.len()) {
        set.labels.truncate(n);
        set.pixels.truncate(n * set.image_len());
    }
    set
}

/// Loads the training and validation sets a run config names.
pub fn load(cfg: &crate::config::RunConfig) -> anyhow::Result<(ImageSet, ImageSet)> {
    use crate::config::DataSource;
    use reader::{Reader, Split};
    let d = &cfg.data;
    let root = || std::path::PathBuf::from(d.path.clone().unwrap_or_default());
    let reader: Box<dyn Reader> = match d.source {
        DataSource::Builtin => {
            return Ok((
                procedural::generate(
                    d.train_size.unwrap_or(2048),
                    d.image_size,
                    d.channels,
                    cfg.seed,
                ),
                procedural::generate(
                    d.val_size.unwrap_or(512),
                    d.image_size,
                    d.channels,
                    cfg.seed ^ 0x7a1_0000,
                ),
            ))
        }
        DataSource::Idx => Box::new(idx::IdxReader {
            root: root(),
            classes: 10,
        }),
        DataSource::Cifar10 => Box::new(cifar::CifarReader {
            root: root(),
            classes: 10,
        }),
        DataSource::Cifar100 => Box::new(cifar::CifarReader {
            root: root(),
            classes: 100,
        }),
        DataSource::Folder => Box::new(folder::FolderReader {
            root: root(),
            val_fraction: d.val_fraction,
            seed: cfg.seed,
        }),
    };
    let train = truncate(
        reader.read(Split::Train, d.image_size, d.channels)?,
        d.train_size,
    );
    let val = truncate(
        reader.read(Split::Test, d.image_size, d.channels)?,
        d.val_size,
    );
    anyhow::ensure!(
        !train.is_empty() && !val.is_empty(),
        "the data set has no training or no validation images"
    );
    Ok((train, val))
}
