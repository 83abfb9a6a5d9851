//! Run configuration: one TOML schema for a pre-training run.
//!
//! Every table uses `deny_unknown_fields`, enumerations list their valid values, and every
//! error is rendered as one line `FILE:LINE:COL: message` (see [`ConfigError`]). Defaults live
//! in one place per table (its `Default` impl).

pub mod early_stop;
pub mod error;
pub mod identity;
pub mod moco;
pub mod probe;
mod validate;

use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

pub use early_stop::EarlyStopConfig;
pub use error::{line_col, locate_key, read_source, toml_error, ConfigError};
pub use moco::MocoConfig;
pub use probe::ProbeConfig;

use crate::spec::{BackendKind, Method, Models, Position, Preset};

/// Where training images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// builtin | idx | cifar10 | cifar100 | folder
    pub source: DataSource,
    /// Folder of the data set (all sources but `builtin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Square image side in pixels (the encoder's feature grid must be divisible by 4);
    /// real images are resized to it.
    pub image_size: usize,
    /// Encoder input channels: 1 or 3 (grey sources are replicated, RGB converted to luma).
    pub channels: usize,
    /// Training images: the number generated for `builtin` (default 2048), at most this many
    /// for the others (default all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Validation images, likewise (default 512 / all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_size: Option<usize>,
    /// Held-out fraction of each class for image folders without a val/ or test/ folder.
    pub val_fraction: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    Builtin,
    Idx,
    Cifar10,
    Cifar100,
    Folder,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: DataSource::Builtin,
            path: None,
            image_size: 32,
            channels: 3,
            train_size: None,
            val_size: None,
            val_fraction: 0.1,
        }
    }
}

impl DataConfig {
    /// Training images of the built-in set when `train_size` is not given.
    pub const BUILTIN_TRAIN: usize = 2048;
    /// Validation images of the built-in set when `val_size` is not given.
    pub const BUILTIN_VAL: usize = 512;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub preset: Preset,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            preset: Preset::MfMicro,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskingConfig {
    pub position: Position,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            position: Position::Corner,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictorConfig {
    /// Feature width D of the projected feature map (paper: 512).
    pub dim: usize,
    /// Explicit linear models: 2 (Eq. 5 + Appendix A), 4 or 8 (Fig. 5).
    pub models: Models,
    /// Std of the noise added to the zero-initialised generators (assumed, DESIGN §2).
    pub init_std: f64,
}

impl Default for PredictorConfig {
    fn default() -> Self {
        Self {
            dim: 512,
            models: Models::Two,
            init_std: 1e-3,
        }
    }
}

/// MAE-style decoder (paper: 6 blocks × 512).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecoderConfig {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_ratio: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            depth: 2,
            heads: 4,
            mlp_ratio: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// Normalise each target patch by its own mean and std (MAE's `norm_pix_loss`).
    pub norm_pix: bool,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self { norm_pix: true }
    }
}

/// Optimiser and schedule (paper Tab. 9: AdamW, base lr 1.5e-4, wd 0.1, batch 1024, cosine,
/// 10 warm-up epochs, RandomResizedCrop; CPU-scale defaults here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// lr = base_lr × batch_size / 256 (paper: 1.5e-4).
    pub base_lr: f64,
    pub min_lr: f64,
    /// AdamW weight decay (paper: 0.1).
    pub weight_decay: f64,
    /// Decay every parameter; false (MAE's practice, assumed for the paper) exempts biases,
    /// norm parameters and the learned tokens.
    pub decay_all: bool,
    /// Paper: 10.
    pub warmup_epochs: f64,
    pub beta2: f64,
    /// RandomResizedCrop area range `[lo, hi]`.
    #[serde(deserialize_with = "exactly_two")]
    pub crop_scale: [f64; 2],
    pub flip: bool,
    /// Stop after this many optimiser steps per epoch (0 = the whole epoch).
    pub max_steps_per_epoch: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            base_lr: 1.5e-4,
            min_lr: 0.0,
            weight_decay: 0.1,
            decay_all: false,
            warmup_epochs: 1.0,
            beta2: 0.95,
            crop_scale: [0.35, 1.0],
            flip: true,
            max_steps_per_epoch: 0,
        }
    }
}

/// A two-element array; three or one elements are an error, not silently cut or padded.
pub(crate) fn exactly_two<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 2], D::Error> {
    let v = Vec::<f64>::deserialize(d)?;
    <[f64; 2]>::try_from(v.as_slice()).map_err(|_| {
        serde::de::Error::custom(format!(
            "expected exactly two numbers [lo, hi], found {}",
            v.len()
        ))
    })
}

/// Analyses run during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Compute the generator spectra every this many epochs (0 = never).
    pub spectrum_every: usize,
    /// Store reconstructions of a fixed validation batch every this many epochs (0 = never);
    /// the last epoch always gets them when this is not 0.
    pub pictures_every: usize,
    /// Run the feature monitor (kNN top-1, effective rank, feature std of the frozen
    /// encoder's pooled features) every this many epochs (0 = never); the last epoch always
    /// gets it when this is not 0. Off for data without labels.
    pub monitor_every: usize,
    /// Labelled training images the monitor's kNN votes with (the first this many).
    pub monitor_train: usize,
    /// Validation images the monitor's kNN is scored on (the first this many).
    pub monitor_val: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            spectrum_every: 1,
            pictures_every: 1,
            monitor_every: 1,
            monitor_train: 5000,
            monitor_val: 1000,
        }
    }
}

/// The whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub seed: u64,
    pub backend: BackendKind,
    /// Index of the GPU (cuda backend); ignored on the CPU.
    pub device: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub masking: MaskingConfig,
    pub predictor: PredictorConfig,
    pub decoder: DecoderConfig,
    pub loss: LossConfig,
    pub train: TrainConfig,
    pub analysis: AnalysisConfig,
    /// qbheat | moco-v2 | random-init | supervised
    pub method: Method,
    /// MoCo-v2's settings (`method = "moco-v2"`).
    pub moco: MocoConfig,
    pub probe: ProbeConfig,
    /// Early stopping, copied from a sweep file's `[early_stop]` (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStopConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            backend: BackendKind::Cpu,
            device: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            masking: MaskingConfig::default(),
            predictor: PredictorConfig::default(),
            decoder: DecoderConfig::default(),
            loss: LossConfig::default(),
            train: TrainConfig::default(),
            analysis: AnalysisConfig::default(),
            method: Method::QbHeat,
            moco: MocoConfig::default(),
            probe: ProbeConfig::default(),
            early_stop: None,
        }
    }
}

impl RunConfig {
    /// Parses and validates a config held in memory; `file` names it in errors.
    pub fn parse(file: &str, source: &str) -> Result<Self, ConfigError> {
        let cfg: RunConfig = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
        cfg.validate().map_err(|(path, message)| {
            ConfigError::at(
                file,
                source,
                locate_key(source, "", &path),
                format!("{path}: {message}"),
            )
        })?;
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let source = read_source(path, "config")?;
        Ok(Self::parse(&path.display().to_string(), &source)?)
    }

    /// Semantic checks that serde cannot express. Returns the dotted key and the problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        validate::run_config(self)
    }

    /// Stable TOML text of the resolved config (stored next to checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Effective peak learning rate: base_lr × batch / 256 (Tab. 9).
    pub fn peak_lr(&self) -> f64 {
        self.train.base_lr * self.train.batch_size as f64 / 256.0
    }
}

/// Default output folder of a run: `runs/<config file stem>`.
pub fn default_out_dir(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into());
    PathBuf::from("runs").join(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> ConfigError {
        RunConfig::parse("a.toml", src).unwrap_err()
    }

    #[test]
    fn empty_config_is_all_defaults() {
        let c = RunConfig::parse("x.toml", "").unwrap();
        assert_eq!(c, RunConfig::default());
        assert_eq!(c.predictor.dim, 512);
        let partial = RunConfig::parse("x.toml", "[train]\nepochs = 3\n").unwrap();
        assert_eq!(partial.train.batch_size, TrainConfig::default().batch_size);
    }

    #[test]
    fn unknown_key_is_located() {
        let e = err("seed = 1\n[train]\nepochs = 2\nbatchsize = 4\n");
        assert_eq!((e.line, e.col), (4, 1), "{e}");
        assert!(e.message.contains("batchsize"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn wrong_type_is_located() {
        let e = err("[train]\nepochs = \"ten\"\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().starts_with("a.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_preset_lists_valid_ones() {
        let e = err("[model]\npreset = \"mf-9000\"\n");
        assert_eq!(e.line, 2, "{e}");
        for p in ["mf-285m", "mf-1.0g", "mf-3.7g", "mf-tiny", "mf-micro"] {
            assert!(e.message.contains(p), "{e}");
        }
    }

    #[test]
    fn bad_models_and_position() {
        let e = err("[predictor]\nmodels = 3\n");
        assert!(e.message.contains("2, 4, 8"), "{e}");
        assert_eq!(e.line, 2);
        let e = err("[masking]\nposition = \"edge\"\n");
        assert!(e.message.contains("corner+center"), "{e}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let e = err("seed = 3\n[train]\nepochs = 1\nbatch_size = 0\n");
        assert_eq!((e.line, e.col), (4, 1), "{e}");
        let e = err("[data]\nimage_size = 36\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("divisible"), "{e}");
        // each negative schedule value points at its own line
        for (i, key) in ["min_lr", "weight_decay", "warmup_epochs"]
            .iter()
            .enumerate()
        {
            let src = format!("[train]\nepochs = 1\n{}{key} = -1\n", "\n".repeat(i));
            let e = err(&src);
            assert_eq!((e.line, e.col), (3 + i, 1), "{e}");
            assert!(e.message.contains(key), "{e}");
        }
    }

    #[test]
    fn non_finite_floats_are_refused() {
        for (table, key) in [
            ("train", "min_lr"),
            ("train", "weight_decay"),
            ("train", "warmup_epochs"),
            ("predictor", "init_std"),
            ("probe", "lin_base_lr"),
            ("probe", "label_smoothing"),
            ("probe", "finetune_base_lr"),
        ] {
            for v in ["nan", "inf", "-inf"] {
                let e = err(&format!("[{table}]\n{key} = {v}\n"));
                assert_eq!(e.line, 2, "{table}.{key} = {v}: {e}");
                assert!(e.message.contains(key), "{e}");
            }
        }
    }

    #[test]
    fn crop_scale_needs_exactly_two_values() {
        let e = err("[train]\ncrop_scale = [0.2, 0.5, 1.0]\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("exactly two"), "{e}");
        assert!(RunConfig::parse("a", "[train]\ncrop_scale = [0.2, 0.9]\n").is_ok());
    }

    #[test]
    fn huge_values_are_config_errors() {
        for (table, key, v) in [
            ("data", "train_size", "9223372036854775807"),
            ("data", "val_size", "9223372036854775807"),
            ("probe", "train_size", "9223372036854775807"),
            ("probe", "train_size", "0"),
            ("predictor", "dim", "9223372036854775807"),
            ("decoder", "depth", "9223372036854775807"),
            ("decoder", "mlp_ratio", "9223372036854775807"),
            ("data", "image_size", "4294967296"),
            ("predictor", "dim", "1000000"),
            ("data", "image_size", "65536"),
        ] {
            let e = err(&format!("[{table}]\n{key} = {v}\n"));
            assert_eq!(e.line, 2, "{table}.{key}: {e}");
            assert!(e.message.contains(key), "{e}");
        }
    }

    #[test]
    fn moco_settings_are_checked_where_written() {
        let e = err("method = \"moco-v2\"\n[train]\nbatch_size = 48\n[moco]\nqueue = 100\n");
        assert_eq!(e.line, 5, "{e}");
        assert!(
            e.message.contains("multiple of train.batch_size (48)"),
            "{e}"
        );
        let e = err("[moco]\nmomentum = 1.0\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("method = \"moco\"\n");
        assert!(e.message.contains("moco-v2"), "{e}");
        assert!(RunConfig::parse("a", "method = \"moco-v2\"\n[moco]\nqueue = 128\n").is_ok());
    }

    #[test]
    fn roundtrip_through_toml() {
        let c = RunConfig::parse("a.toml", "[masking]\nposition = \"corner+center\"\n").unwrap();
        let back = RunConfig::parse("b.toml", &c.to_toml()).unwrap();
        assert_eq!(c, back);
    }
}
