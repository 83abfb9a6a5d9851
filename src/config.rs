//! Run configuration: one TOML schema for a pre-training run.
//!
//! Every table uses `deny_unknown_fields`, enumerations list their valid values, and every
//! error is rendered as one line `FILE:LINE:COL: message` (see [`ConfigError`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::presets::Preset;

/// A configuration error that points at the offending place of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column of a byte offset in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

/// Turns a `toml` deserialisation error into a one-line, located [`ConfigError`].
pub fn toml_error(file: &str, source: &str, err: &toml::de::Error) -> ConfigError {
    let (line, col) = err
        .span()
        .map(|s| line_col(source, s.start))
        .unwrap_or((1, 1));
    ConfigError {
        file: file.to_string(),
        line,
        col,
        message: err.message().replace('\n', " ").trim().to_string(),
    }
}

/// Which quarter stays unmasked (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Position {
    /// One of the four corners per sample, uniformly (Δ = half the image).
    #[serde(rename = "corner")]
    Corner,
    /// The central quarter (Δ = a quarter of the image).
    #[serde(rename = "center")]
    Center,
    /// Half the batch corner, half centre, with separate generators per scale.
    #[serde(rename = "corner+center")]
    CornerCenter,
}

impl Position {
    pub fn name(self) -> &'static str {
        match self {
            Position::Corner => "corner",
            Position::Center => "center",
            Position::CornerCenter => "corner+center",
        }
    }
}

/// Number of explicit linear models (paper Tab. 2b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum Models {
    Two,
    Four,
    Eight,
}

impl TryFrom<i64> for Models {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        match v {
            2 => Ok(Models::Two),
            4 => Ok(Models::Four),
            8 => Ok(Models::Eight),
            other => Err(format!(
                "invalid number of linear models {other}, expected one of 2, 4, 8"
            )),
        }
    }
}

impl From<Models> for i64 {
    fn from(m: Models) -> i64 {
        m.count() as i64
    }
}

impl Models {
    pub fn count(self) -> usize {
        match self {
            Models::Two => 2,
            Models::Four => 4,
            Models::Eight => 8,
        }
    }
}

/// Compute backend of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-flex on the CPU (always available).
    Cpu,
    /// burn-cuda (only when built with `--features cuda`).
    Cuda,
}

/// Where training images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// builtin | idx | cifar10 | cifar100 | folder
    #[serde(default = "default_source")]
    pub source: DataSource,
    /// Folder of the data set (all sources but `builtin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Square image side in pixels (the encoder's feature grid must be divisible by 4);
    /// real images are resized to it.
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// Encoder input channels: 1 or 3 (grey sources are replicated, RGB converted to luma).
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Training images: the number generated for `builtin` (default 2048), at most this many
    /// for the others (default all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Validation images, likewise (default 512 / all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_size: Option<usize>,
    /// Held-out fraction of each class for image folders without a val/ or test/ folder.
    #[serde(default = "default_val_fraction")]
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

fn default_source() -> DataSource {
    DataSource::Builtin
}
fn default_image_size() -> usize {
    32
}
fn default_channels() -> usize {
    3
}
fn default_val_fraction() -> f64 {
    0.1
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: default_source(),
            path: None,
            image_size: default_image_size(),
            channels: default_channels(),
            train_size: None,
            val_size: None,
            val_fraction: default_val_fraction(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default = "default_preset")]
    pub preset: Preset,
}

fn default_preset() -> Preset {
    Preset::MfMicro
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            preset: default_preset(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    #[serde(default = "default_position")]
    pub position: Position,
}

fn default_position() -> Position {
    Position::Corner
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            position: default_position(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictorConfig {
    /// Feature width D of the projected feature map (paper: 512).
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Explicit linear models: 2 (Eq. 5 + Appendix A), 4 or 8 (Fig. 5).
    #[serde(default = "default_models")]
    pub models: Models,
    /// Std of the noise added to the zero-initialised generators (assumed, DESIGN §2).
    #[serde(default = "default_init_std")]
    pub init_std: f64,
}

fn default_dim() -> usize {
    512
}
fn default_models() -> Models {
    Models::Two
}
fn default_init_std() -> f64 {
    1e-3
}

impl Default for PredictorConfig {
    fn default() -> Self {
        Self {
            dim: default_dim(),
            models: default_models(),
            init_std: default_init_std(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    #[serde(default = "default_dec_dim")]
    pub dim: usize,
    #[serde(default = "default_dec_depth")]
    pub depth: usize,
    #[serde(default = "default_dec_heads")]
    pub heads: usize,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: usize,
}

fn default_dec_dim() -> usize {
    128
}
fn default_dec_depth() -> usize {
    2
}
fn default_dec_heads() -> usize {
    4
}
fn default_mlp_ratio() -> usize {
    4
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            dim: default_dec_dim(),
            depth: default_dec_depth(),
            heads: default_dec_heads(),
            mlp_ratio: default_mlp_ratio(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Normalise each target patch by its own mean and std (MAE's `norm_pix_loss`).
    #[serde(default = "default_true")]
    pub norm_pix: bool,
}

fn default_true() -> bool {
    true
}

impl Default for LossConfig {
    fn default() -> Self {
        Self { norm_pix: true }
    }
}

/// Optimiser and schedule (paper Tab. 9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// lr = base_lr × batch_size / 256.
    #[serde(default = "default_base_lr")]
    pub base_lr: f64,
    #[serde(default = "default_min_lr")]
    pub min_lr: f64,
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    #[serde(default = "default_warmup")]
    pub warmup_epochs: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// RandomResizedCrop area range.
    #[serde(default = "default_crop_scale")]
    pub crop_scale: [f64; 2],
    #[serde(default = "default_true")]
    pub flip: bool,
    /// Stop after this many optimiser steps per epoch (0 = the whole epoch).
    #[serde(default)]
    pub max_steps_per_epoch: usize,
}

fn default_epochs() -> usize {
    10
}
fn default_batch() -> usize {
    64
}
fn default_base_lr() -> f64 {
    1.5e-4
}
fn default_min_lr() -> f64 {
    0.0
}
fn default_wd() -> f64 {
    0.1
}
fn default_warmup() -> f64 {
    1.0
}
fn default_beta2() -> f64 {
    0.95
}
fn default_crop_scale() -> [f64; 2] {
    [0.35, 1.0]
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            batch_size: default_batch(),
            base_lr: default_base_lr(),
            min_lr: default_min_lr(),
            weight_decay: default_wd(),
            warmup_epochs: default_warmup(),
            beta2: default_beta2(),
            crop_scale: default_crop_scale(),
            flip: true,
            max_steps_per_epoch: 0,
        }
    }
}

/// Analyses run during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Compute the generator spectra every this many epochs (0 = never).
    #[serde(default = "default_every")]
    pub spectrum_every: usize,
}

fn default_every() -> usize {
    1
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self { spectrum_every: 1 }
    }
}

/// The whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_backend")]
    pub backend: BackendKind,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub masking: MaskingConfig,
    #[serde(default)]
    pub predictor: PredictorConfig,
    #[serde(default)]
    pub decoder: DecoderConfig,
    #[serde(default)]
    pub loss: LossConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// qbheat | random-init | supervised
    #[serde(default = "default_method")]
    pub method: crate::probe::pipeline::Method,
    #[serde(default)]
    pub probe: crate::probe::ProbeConfig,
}

fn default_method() -> crate::probe::pipeline::Method {
    crate::probe::pipeline::Method::QbHeat
}

fn default_backend() -> BackendKind {
    BackendKind::Cpu
}

impl Default for RunConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty config uses defaults")
    }
}

impl RunConfig {
    /// Parses and validates a config held in memory; `file` names it in errors.
    pub fn parse(file: &str, source: &str) -> Result<Self, ConfigError> {
        let cfg: RunConfig = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
        if let Err((path, message)) = cfg.validate() {
            let (line, col) = locate_key(source, &path);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                col,
                message: format!("{path}: {message}"),
            });
        }
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read config: {e}", path.display()))?;
        Ok(Self::parse(&path.display().to_string(), &source)?)
    }

    /// Semantic checks that serde cannot express. Returns the dotted key and the problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let t = &self.train;
        let positive = [
            ("train.epochs", t.epochs),
            ("train.batch_size", t.batch_size),
            ("predictor.dim", self.predictor.dim),
            ("decoder.dim", self.decoder.dim),
            ("decoder.heads", self.decoder.heads),
            ("decoder.mlp_ratio", self.decoder.mlp_ratio),
            ("data.train_size", self.data.train_size.unwrap_or(1)),
            ("data.val_size", self.data.val_size.unwrap_or(1)),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err((key.into(), "must be greater than 0".into()));
            }
        }
        if !self.decoder.dim.is_multiple_of(4) {
            return Err((
                "decoder.dim".into(),
                "must be divisible by 4 (2-D sin-cos position embedding)".into(),
            ));
        }
        if !self.decoder.dim.is_multiple_of(self.decoder.heads) {
            return Err((
                "decoder.heads".into(),
                format!(
                    "decoder.dim {} is not divisible by {} heads",
                    self.decoder.dim, self.decoder.heads
                ),
            ));
        }
        if !(t.base_lr > 0.0 && t.base_lr.is_finite()) {
            return Err(("train.base_lr".into(), "must be a positive number".into()));
        }
        if !(t.weight_decay >= 0.0 && t.min_lr >= 0.0 && t.warmup_epochs >= 0.0) {
            return Err((
                "train".into(),
                "weight_decay, min_lr and warmup_epochs must be >= 0".into(),
            ));
        }
        if !(0.0 < t.beta2 && t.beta2 < 1.0) {
            return Err(("train.beta2".into(), "must lie in (0, 1)".into()));
        }
        let [lo, hi] = t.crop_scale;
        if !(0.0 < lo && lo <= hi && hi <= 1.0) {
            return Err((
                "train.crop_scale".into(),
                "must be [lo, hi] with 0 < lo <= hi <= 1".into(),
            ));
        }
        if self.predictor.init_std.is_nan() || self.predictor.init_std < 0.0 {
            return Err(("predictor.init_std".into(), "must be >= 0".into()));
        }
        if !matches!(self.data.channels, 1 | 3) {
            return Err(("data.channels".into(), "must be 1 or 3".into()));
        }
        if self.data.source != DataSource::Builtin && self.data.path.is_none() {
            return Err((
                "data.source".into(),
                "needs data.path (the data set folder)".into(),
            ));
        }
        if !(0.0 < self.data.val_fraction && self.data.val_fraction < 1.0) {
            return Err(("data.val_fraction".into(), "must lie in (0, 1)".into()));
        }
        let spec = self.model.preset.spec();
        if let Err(msg) = crate::model::masking::check_image_size(self.data.image_size, spec.stride)
        {
            return Err(("data.image_size".into(), msg));
        }
        Ok(())
    }

    /// Stable TOML text of the resolved config (stored next to checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }

    /// Effective peak learning rate: base_lr × batch / 256 (Tab. 9).
    pub fn peak_lr(&self) -> f64 {
        self.train.base_lr * self.train.batch_size as f64 / 256.0
    }
}

/// Finds where a dotted key (`train.batch_size`) is written in `source`, for error positions.
/// Falls back to the table header, then to 1:1.
pub fn locate_key(source: &str, dotted: &str) -> (usize, usize) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let key = parts.pop().unwrap_or(dotted);
    let table = parts.join(".");
    let mut current = String::new();
    let mut table_pos = None;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix('[') {
            current = rest.split(']').next().unwrap_or("").trim().to_string();
            if current == table {
                table_pos = Some(offset + indent);
            }
        } else if current == table {
            let name = trimmed
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            if name == key && trimmed.contains('=') {
                return line_col(source, offset + indent);
            }
        } else if table.is_empty() || current.is_empty() {
            // dotted key written inline: `train.batch_size = 3` at top level
            let name = trimmed.split('=').next().unwrap_or("").trim();
            if name == dotted {
                return line_col(source, offset + indent);
            }
        }
        offset += line.len();
    }
    table_pos.map_or((1, 1), |p| line_col(source, p))
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

    #[test]
    fn empty_config_is_all_defaults() {
        let c = RunConfig::parse("x.toml", "").unwrap();
        assert_eq!(c, RunConfig::default());
        assert_eq!(c.predictor.dim, 512);
    }

    #[test]
    fn unknown_key_is_located() {
        let src = "seed = 1\n[train]\nepochs = 2\nbatchsize = 4\n";
        let e = RunConfig::parse("a.toml", src).unwrap_err();
        assert_eq!((e.line, e.col), (4, 1), "{e}");
        assert!(e.message.contains("batchsize"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn wrong_type_is_located() {
        let src = "[train]\nepochs = \"ten\"\n";
        let e = RunConfig::parse("a.toml", src).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().starts_with("a.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_preset_lists_valid_ones() {
        let src = "[model]\npreset = \"mf-9000\"\n";
        let e = RunConfig::parse("a.toml", src).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        for p in ["mf-285m", "mf-1.0g", "mf-3.7g", "mf-tiny", "mf-micro"] {
            assert!(e.message.contains(p), "{e}");
        }
    }

    #[test]
    fn bad_models_and_position() {
        let e = RunConfig::parse("a.toml", "[predictor]\nmodels = 3\n").unwrap_err();
        assert!(e.message.contains("2, 4, 8"), "{e}");
        assert_eq!(e.line, 2);
        let e = RunConfig::parse("a.toml", "[masking]\nposition = \"edge\"\n").unwrap_err();
        assert!(e.message.contains("corner+center"), "{e}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let src = "seed = 3\n[train]\nepochs = 1\nbatch_size = 0\n";
        let e = RunConfig::parse("a.toml", src).unwrap_err();
        assert_eq!((e.line, e.col), (4, 1), "{e}");
        let src = "[data]\nimage_size = 36\n";
        let e = RunConfig::parse("a.toml", src).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("divisible"), "{e}");
    }

    #[test]
    fn roundtrip_through_toml() {
        let c = RunConfig::parse("a.toml", "[masking]\nposition = \"corner+center\"\n").unwrap();
        let back = RunConfig::parse("b.toml", &c.to_toml()).unwrap();
        assert_eq!(c, back);
    }
}
