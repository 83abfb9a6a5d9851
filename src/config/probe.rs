//! Probe recipes (paper Sec. 5, Tab. 10–12). Every value is a key; the paper's ImageNet value
//! is documented next to the CPU-scale default. Values left unset follow the encoder preset
//! the way the paper does (tran-1 width, dropout, layer-wise decay).

use serde::{Deserialize, Serialize};

use crate::spec::{Preset, ProbeKind};

/// One probe of an encoder: a kind at a head width and depth. Its `name` is the metric prefix
/// `probe/<name>/…` its results are stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeVariant {
    pub kind: ProbeKind,
    /// Width of the tran head (of fine-tuning's decoder; unused by lin).
    pub width: usize,
    /// Transformer blocks of the tran head (0 for lin).
    pub depth: usize,
    /// The preset's (or `probe.tran_width`'s) width: the one whose results keep the plain key.
    pub default_width: usize,
}

impl ProbeVariant {
    /// `lin`, `finetune`, `tran-1` at the default width and depth 1, else `tran-<depth>@w<W>`
    /// (e.g. `tran-1@w256`, `tran-4@w128`), and `finetune@…` likewise.
    pub fn name(&self) -> String {
        let plain = self.width == self.default_width && self.depth <= 1;
        match self.kind {
            ProbeKind::Lin => "lin".into(),
            ProbeKind::Tran1 if plain => "tran-1".into(),
            ProbeKind::Tran1 => format!("tran-{}@w{}", self.depth, self.width),
            ProbeKind::Finetune if plain => "finetune".into(),
            ProbeKind::Finetune => format!("finetune@tran-{}@w{}", self.depth, self.width),
        }
    }

    /// The variant a metric prefix names (`tran-1@w256` → tran, width 256, depth 1).
    pub fn parse(name: &str, default_width: usize) -> Option<ProbeVariant> {
        let v = |kind, width, depth| ProbeVariant {
            kind,
            width,
            depth,
            default_width,
        };
        match name {
            "lin" => return Some(v(ProbeKind::Lin, default_width, 0)),
            "tran-1" => return Some(v(ProbeKind::Tran1, default_width, 1)),
            "finetune" => return Some(v(ProbeKind::Finetune, default_width, 1)),
            _ => {}
        }
        let (kind, rest) = match name.strip_prefix("finetune@") {
            Some(rest) => (ProbeKind::Finetune, rest),
            None => (ProbeKind::Tran1, name),
        };
        let (depth, width) = rest.strip_prefix("tran-")?.split_once("@w")?;
        Some(v(kind, width.parse().ok()?, depth.parse().ok()?))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// Probes run after pre-training (in a sweep's pipeline).
    pub kinds: Vec<ProbeKind>,
    /// Batch of the lin and tran-1 heads and of fine-tuning (paper: 4096 / 4096 / 512).
    pub batch_size: usize,
    /// Training images the probes learn from: the first N of the run's training set (its
    /// channel statistics still come from the whole set) [default: all of them, as in the
    /// paper]. tran-1 on all 60 000 Fashion-MNIST images costs ~1 h per run on 2 CPU cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,

    /// lin (Tab. 10): epochs (paper: 90).
    pub lin_epochs: usize,
    /// SGD (momentum 0.9) base lr, lr = base × batch / 256 (paper: 0.1).
    pub lin_base_lr: f64,
    /// Paper: 0.
    pub lin_weight_decay: f64,
    /// Paper: 10.
    pub lin_warmup_epochs: f64,

    /// tran-1 (Tab. 11): epochs (paper: 200).
    pub tran_epochs: usize,
    /// Width of the transformer block [default: by preset, paper 192 / 384 / 768 for
    /// MF-285M / 1.0G / 3.7G].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tran_width: Option<usize>,
    /// Further widths to probe the same encoder at (paper Fig. 8: 192 / 384 / 768 on
    /// MF-3.7G), each under its own metric key `probe/tran-1@w<W>/…`; the width of
    /// `tran_width` keeps the plain key `probe/tran-1/…` [default: none].
    pub tran_widths: Vec<usize>,
    /// Transformer blocks of the tran probe (paper: 1; Tab. 15 also reports tran-4). A depth
    /// other than 1 names its results `probe/tran-<depth>@w<W>/…`.
    pub tran_depth: usize,
    /// AdamW base lr, lr = base × batch / 256 (paper: 5e-4 for 200 epochs at batch 4096, ~60 000
    /// steps; CPU-scale probes take a few hundred steps, where 5e-4 leaves tran-1 under-trained
    /// and below lin: 4e-3 is the default, see the README's tran-1 study).
    pub tran_base_lr: f64,
    /// Paper: 0.1.
    pub tran_weight_decay: f64,
    /// Dropout in the block [default: by preset, paper 0.1 for MF-285M, 0.2 for 1.0G/3.7G].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tran_dropout: Option<f64>,
    /// Paper: 10.
    pub tran_warmup_epochs: f64,
    /// Standardise the tokens per channel with the training set's statistics before the block
    /// (paper: unstated; lin's BatchNorm without affine, Tab. 10, does the same to its input).
    pub tran_standardise: bool,
    /// Label smoothing of tran-1 and fine-tuning (paper: 0.1).
    pub label_smoothing: f64,

    /// Fine-tuning (Tab. 12): epochs (paper: 200 / 150 / 100); also the supervised baseline's.
    pub finetune_epochs: usize,
    /// AdamW base lr (paper: 5e-4).
    pub finetune_base_lr: f64,
    /// Paper: 0.05.
    pub finetune_weight_decay: f64,
    /// Paper: 5.
    pub finetune_warmup_epochs: f64,
    /// Dropout of the tran-1 decoder while fine-tuning (paper: 0.2).
    pub finetune_dropout: f64,
    /// Layer-wise lr decay [default: by preset, paper 0.90 for MF-285M/1.0G, 0.85 for 3.7G].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_decay: Option<f64>,
    /// Initialise the fine-tuning decoder from the tran-1 probe (paper: yes); false starts it
    /// fresh.
    pub finetune_from_tran1: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            kinds: Vec::new(),
            batch_size: 256,
            train_size: None,
            lin_epochs: 30,
            lin_base_lr: 0.1,
            lin_weight_decay: 0.0,
            lin_warmup_epochs: 1.0,
            tran_epochs: 20,
            tran_width: None,
            tran_widths: Vec::new(),
            tran_depth: 1,
            tran_base_lr: 4e-3,
            tran_weight_decay: 0.1,
            tran_dropout: None,
            tran_warmup_epochs: 1.0,
            tran_standardise: true,
            label_smoothing: 0.1,
            finetune_epochs: 5,
            finetune_base_lr: 5e-4,
            finetune_weight_decay: 0.05,
            finetune_warmup_epochs: 1.0,
            finetune_dropout: 0.2,
            layer_decay: None,
            finetune_from_tran1: true,
        }
    }
}

impl ProbeConfig {
    /// tran-1 width: the key, else the paper's width for the preset (Tab. 11).
    pub fn tran_width_for(&self, preset: Preset) -> usize {
        self.tran_width.unwrap_or(match preset {
            Preset::Mf285m => 192,
            Preset::Mf1g => 384,
            Preset::Mf3g => 768,
            Preset::MfTiny => 192,
            Preset::MfMicro => 128,
        })
    }

    /// The widths the tran probe runs at: `tran_width` (or the preset's) first, then each
    /// further one of `tran_widths`, without repeats.
    pub fn tran_widths_for(&self, preset: Preset) -> Vec<usize> {
        let mut widths = vec![self.tran_width_for(preset)];
        for &w in &self.tran_widths {
            if !widths.contains(&w) {
                widths.push(w);
            }
        }
        widths
    }

    /// The probes `kinds` stand for: lin and fine-tuning once each, the tran probe once per
    /// width of [`ProbeConfig::tran_widths_for`] at `tran_depth` blocks.
    pub fn variants(&self, kinds: &[ProbeKind], preset: Preset) -> Vec<ProbeVariant> {
        let default_width = self.tran_width_for(preset);
        let mut out = Vec::new();
        for &kind in kinds {
            let widths = match kind {
                ProbeKind::Tran1 => self.tran_widths_for(preset),
                _ => vec![default_width],
            };
            for width in widths {
                let v = ProbeVariant {
                    kind,
                    width,
                    depth: if kind == ProbeKind::Lin {
                        0
                    } else {
                        self.tran_depth
                    },
                    default_width,
                };
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// The recipe of the probes apart from what says which of them run (`kinds`,
    /// `tran_widths`, `tran_depth`): when it changes, a run's probe results are stale.
    pub fn recipe_part(&self) -> ProbeConfig {
        ProbeConfig {
            kinds: Vec::new(),
            tran_widths: Vec::new(),
            tran_depth: 1,
            ..self.clone()
        }
    }

    /// tran-1 dropout: the key, else the paper's value for the preset (Tab. 11).
    pub fn tran_dropout_for(&self, preset: Preset) -> f64 {
        self.tran_dropout.unwrap_or(match preset {
            Preset::Mf1g | Preset::Mf3g => 0.2,
            _ => 0.1,
        })
    }

    /// Layer-wise lr decay: the key, else the paper's value for the preset (Tab. 12).
    pub fn layer_decay_for(&self, preset: Preset) -> f64 {
        self.layer_decay.unwrap_or(match preset {
            Preset::Mf3g => 0.85,
            _ => 0.90,
        })
    }
}
