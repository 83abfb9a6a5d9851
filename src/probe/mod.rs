//! Decoder probing (paper Sec. 5, Tab. 10–12): the frozen encoder runs on the FULL image and
//! a small head is trained on its features.
//!
//! * `lin`: BatchNorm without affine (features standardised with the training set's statistics,
//!   which is what BN's running statistics converge to) + linear classifier, SGD + cosine.
//!   Features carry no augmentation, so they are computed once and cached.
//! * `tran-1`: one pre-norm transformer block over the feature-map tokens, mean pool, linear;
//!   AdamW, label smoothing. Feature maps are cached too.
//! * `finetune`: encoder + tran-1 head end-to-end on augmented images, layer-wise lr decay.

pub mod features;
pub mod finetune;
pub mod head;
pub mod linear;
pub mod pipeline;
pub mod tran1;

use serde::{Deserialize, Serialize};

/// A probe kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum ProbeKind {
    #[serde(rename = "lin")]
    #[value(name = "lin")]
    Lin,
    #[serde(rename = "tran-1")]
    #[value(name = "tran-1")]
    Tran1,
    #[serde(rename = "finetune")]
    #[value(name = "finetune")]
    Finetune,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Lin => "lin",
            ProbeKind::Tran1 => "tran-1",
            ProbeKind::Finetune => "finetune",
        }
    }
}

/// Probe recipes (Tab. 10–12, scaled to CPU budgets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Probes run after pre-training (in a sweep's pipeline).
    #[serde(default)]
    pub kinds: Vec<ProbeKind>,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_lin_epochs")]
    pub lin_epochs: usize,
    /// SGD base lr (× batch / 256), Tab. 10.
    #[serde(default = "d_lin_lr")]
    pub lin_base_lr: f64,
    #[serde(default = "d_tran_epochs")]
    pub tran_epochs: usize,
    /// Width of the tran-1 block (paper: 192 / 384 / 768).
    #[serde(default = "d_tran_width")]
    pub tran_width: usize,
    /// AdamW base lr (× batch / 256), Tab. 11.
    #[serde(default = "d_tran_lr")]
    pub tran_base_lr: f64,
    #[serde(default = "d_smoothing")]
    pub label_smoothing: f64,
    #[serde(default = "d_ft_epochs")]
    pub finetune_epochs: usize,
    #[serde(default = "d_ft_lr")]
    pub finetune_base_lr: f64,
    /// Layer-wise lr decay of fine-tuning (Tab. 12).
    #[serde(default = "d_decay")]
    pub layer_decay: f64,
}

fn d_batch() -> usize {
    256
}
fn d_lin_epochs() -> usize {
    30
}
fn d_lin_lr() -> f64 {
    0.1
}
fn d_tran_epochs() -> usize {
    10
}
fn d_tran_width() -> usize {
    192
}
fn d_tran_lr() -> f64 {
    5e-4
}
fn d_smoothing() -> f64 {
    0.1
}
fn d_ft_epochs() -> usize {
    5
}
fn d_ft_lr() -> f64 {
    1e-3
}
fn d_decay() -> f64 {
    0.75
}

impl Default for ProbeConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

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
