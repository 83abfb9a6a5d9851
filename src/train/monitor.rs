//! The fixed labelled subsets the feature monitor reads during pre-training (the first
//! `analysis.monitor_train` training and `analysis.monitor_val` validation images, un-augmented,
//! normalised with the training set's channel statistics as the probes are), and their
//! features under the current encoder. The figures themselves are computed by
//! `analysis::monitor` from what the observer receives.

use crate::config::RunConfig;
use crate::data::ImageSet;
use crate::model::features::{extract, Features};
use crate::model::mobile_former::MobileFormer;

/// The monitor's images.
pub struct MonitorSets {
    train: ImageSet,
    val: ImageSet,
    stats: Vec<(f32, f32)>,
}

/// The first `n` images of `set` (a copy of those only).
fn head(set: &ImageSet, n: usize) -> ImageSet {
    let n = n.min(set.len());
    ImageSet {
        pixels: set.pixels[..n * set.image_len()].to_vec(),
        labels: set.labels[..n].to_vec(),
        channels: set.channels,
        size: set.size,
        classes: set.classes,
    }
}

impl MonitorSets {
    /// The subsets of a run, or `None` when the monitor is off: `analysis.monitor_every = 0`,
    /// or data without labels (fewer than two classes), which is said once on stdout.
    pub fn new(cfg: &RunConfig, train: &ImageSet, val: &ImageSet) -> Option<MonitorSets> {
        if cfg.analysis.monitor_every == 0 {
            return None;
        }
        if train.classes < 2 || val.is_empty() {
            println!(
                "monitor off: the data have {} class{} and {} validation images; kNN needs labels",
                train.classes,
                if train.classes == 1 { "" } else { "es" },
                val.len()
            );
            return None;
        }
        Some(MonitorSets {
            train: head(train, cfg.analysis.monitor_train),
            val: head(val, cfg.analysis.monitor_val),
            stats: train.channel_stats(),
        })
    }

    /// Pooled features of the training and validation subsets under `encoder` (evaluation
    /// mode: BatchNorm with its running statistics).
    pub fn features<B: crate::kernels::Kernels>(
        &self,
        encoder: &MobileFormer<B>,
        device: &B::Device,
    ) -> (Features, Features) {
        (
            extract(encoder, &self.train, &self.stats, false, device),
            extract(encoder, &self.val, &self.stats, false, device),
        )
    }
}
