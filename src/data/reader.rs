//! One trait for every image source; one file per format.

use anyhow::Result;

use super::resize::{convert_channels, resize};
use super::ImageSet;

/// Which part of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// A source of labelled images. Readers return images already resized to `size × size` and
/// converted to `channels` channels, values in [0, 1].
pub trait Reader {
    fn read(&self, split: Split, size: usize, channels: usize) -> Result<ImageSet>;
}

/// Accumulates images of any size into an [`ImageSet`] of one size and channel count.
pub struct SetBuilder {
    set: ImageSet,
}

impl SetBuilder {
    pub fn new(size: usize, channels: usize, classes: usize) -> Self {
        Self {
            set: ImageSet {
                pixels: Vec::new(),
                labels: Vec::new(),
                channels,
                size,
                classes,
            },
        }
    }

    /// Room for `n` more images.
    pub fn reserve(&mut self, n: usize) {
        let per = self.set.channels * self.set.size * self.set.size;
        self.set.pixels.reserve(n.saturating_mul(per));
        self.set.labels.reserve(n);
    }

    /// Adds a planar `from_channels × h × w` image in [0, 1].
    pub fn push(&mut self, img: Vec<f32>, from_channels: usize, h: usize, w: usize, label: u32) {
        if self.set.labels.len().is_multiple_of(1024) {
            crate::liveness::tick();
        }
        let s = &mut self.set;
        let img = resize(&img, from_channels, h, w, s.size);
        s.pixels
            .extend(convert_channels(img, from_channels, s.channels));
        s.labels.push(label);
    }

    pub fn finish(self) -> ImageSet {
        self.set
    }
}
