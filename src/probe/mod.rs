//! Decoder probing (paper Sec. 5, Tab. 10–12): the frozen encoder runs on the FULL image and
//! a small head is trained on its features.
//!
//! * `lin`: BatchNorm without affine (features standardised with the training set's statistics,
//!   which is what BN's running statistics converge to) + linear classifier, SGD + cosine.
//!   Features carry no augmentation, so they are computed once and cached.
//! * `tran-1`: one pre-norm transformer block over the feature-map tokens, mean pool, linear;
//!   AdamW, label smoothing. Feature maps are cached too.
//! * `finetune`: encoder + tran-1 head end-to-end on augmented images, layer-wise lr decay.

pub mod embedding;
pub mod finetune;
pub mod head;
pub mod linear;
pub mod pipeline;
pub mod tran1;

use serde::Serialize;

pub use crate::config::probe::ProbeVariant;
pub use crate::config::ProbeConfig;
pub use crate::spec::ProbeKind;

use crate::spec::Preset;

/// A probe recipe resolved for an encoder preset (the settings that follow the preset in the
/// paper filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub cfg: ProbeConfig,
    pub tran_width: usize,
    /// Transformer blocks of the tran head (1 for tran-1).
    pub tran_depth: usize,
    pub tran_dropout: f64,
    pub layer_decay: f64,
}

impl Recipe {
    pub fn new(cfg: &ProbeConfig, preset: Preset) -> Recipe {
        Recipe {
            cfg: cfg.clone(),
            tran_width: cfg.tran_width_for(preset),
            tran_depth: cfg.tran_depth,
            tran_dropout: cfg.tran_dropout_for(preset),
            layer_decay: cfg.layer_decay_for(preset),
        }
    }
}

impl Recipe {
    /// The same recipe with the tran head of `variant` (its width and depth).
    pub fn at(&self, variant: &ProbeVariant) -> Recipe {
        Recipe {
            tran_width: variant.width,
            tran_depth: variant.depth.max(1),
            ..self.clone()
        }
    }
}

/// The probes of `cfg` whose results are not stored yet (`stored` says whether a metric key
/// is), in the order they run; for the supervised baseline, its training when its result is
/// missing (the variants then only name it: supervised training has no probe variants).
pub fn pending(cfg: &crate::config::RunConfig, stored: impl Fn(&str) -> bool) -> Vec<ProbeVariant> {
    let variants = cfg.probe.variants(&cfg.probe.kinds, cfg.model.preset);
    if cfg.method == crate::spec::Method::Supervised {
        let width = cfg.probe.tran_width_for(cfg.model.preset);
        let training = ProbeVariant {
            kind: ProbeKind::Finetune,
            width,
            depth: 1,
            default_width: width,
        };
        return if stored("probe/supervised/top1") {
            Vec::new()
        } else {
            vec![training]
        };
    }
    variants
        .into_iter()
        .filter(|v| !stored(&format!("probe/{}/top1", v.name())))
        .collect()
}

/// How a probe ends when its stop flag is raised (Ctrl-C, SIGTERM, a stop request in the
/// store): nothing of it is kept, and a resumed run probes again from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probe interrupted (stop requested)")
    }
}

impl std::error::Error for Interrupted {}

/// Result of one probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    pub kind: ProbeKind,
    /// Validation top-1 accuracy after each epoch.
    pub top1_per_epoch: Vec<f64>,
    pub train_loss_per_epoch: Vec<f64>,
    /// Images per second of head training (features cached for lin / tran-1).
    pub train_img_per_s: f64,
    /// Images per second of the frozen encoder's feature extraction (0 for finetune).
    pub extract_img_per_s: f64,
    pub seconds: f64,
}

impl ProbeResult {
    pub fn top1(&self) -> f64 {
        self.top1_per_epoch.last().copied().unwrap_or(0.0)
    }
}
