//! MoCo-v2 (Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning"): the
//! paper's contrastive baseline (QB-Heat Tab. 1, 4, 5, Fig. 8, 12), on the same encoder and
//! in the same harness. ImageNet values are documented next to the data-scaled defaults.

use serde::{Deserialize, Serialize};

/// `[moco]`: used when `method = "moco-v2"`; the optimiser and schedule are `[train]`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MocoConfig {
    /// Negative keys in the queue K (MoCo: 65 536 for ImageNet's 1.28 M images, ~5 %); 4 096
    /// here, ~7 % of Fashion-MNIST. Must be a multiple of `train.batch_size` (each step
    /// replaces one batch of keys).
    pub queue: usize,
    /// Momentum m of the key encoder, θ_k ← m θ_k + (1 − m) θ_q (MoCo: 0.999).
    pub momentum: f64,
    /// Temperature τ of InfoNCE (MoCo-v2: 0.2).
    pub temperature: f64,
    /// Output width of the 2-layer MLP projection head (MoCo-v2: 128).
    pub proj_dim: usize,
    /// Hidden width of the head [default: the encoder's pooled feature width, as MoCo-v2's
    /// 2048 is ResNet-50's].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proj_hidden: Option<usize>,
    /// RandomResizedCrop area range of the two views (MoCo-v2: [0.2, 1]).
    #[serde(deserialize_with = "super::exactly_two")]
    pub crop_scale: [f64; 2],
    /// Colour jitter strength: brightness, contrast and saturation factors in [1 − s, 1 + s]
    /// and hue in ±s/4 (MoCo-v2: 0.4, 0.4, 0.4, 0.1); saturation and hue only on colour data.
    pub jitter: f64,
    /// Probability of the colour jitter (MoCo-v2: 0.8).
    pub jitter_p: f64,
    /// Probability of grey-scale (MoCo-v2: 0.2; colour data only).
    pub grey_p: f64,
    /// Probability of a Gaussian blur (MoCo-v2: 0.5, σ ∈ [0.1, 2] at 224 px; σ is scaled by
    /// the image side / 224 here, so ~[0.01, 0.3] px at 32 px).
    pub blur_p: f64,
    /// Groups the key batch is split into, in shuffled order, for the key encoder's
    /// BatchNorm statistics (MoCo's "shuffling BN" across 8 GPUs, done on one device).
    pub key_bn_groups: usize,
}

impl Default for MocoConfig {
    fn default() -> Self {
        Self {
            queue: 4096,
            momentum: 0.999,
            temperature: 0.2,
            proj_dim: 128,
            proj_hidden: None,
            crop_scale: [0.2, 1.0],
            jitter: 0.4,
            jitter_p: 0.8,
            grey_p: 0.2,
            blur_p: 0.5,
            key_bn_groups: 4,
        }
    }
}
