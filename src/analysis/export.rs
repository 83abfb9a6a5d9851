//! `workbench export RUN` (issue 26): a stored run's encoder as safetensors under PyTorch names
//! ([`crate::model::export`]), a JSON manifest beside it (preset and its architecture, image
//! size, channels, the normalisation the encoder was trained with, run id, commit, probe
//! scores), and a check file (a batch of the run's validation images and the pooled features
//! the workbench computes for them) that `scripts/check_export.py` compares PyTorch against.
//! `--what generators` writes the learned A and B (and M) of every scale instead.

use anyhow::{Context, Result};
use burn::tensor::{Tensor, TensorData};
use serde_json::json;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::stored::{config_of, require_checkpoint};
use crate::backend::Cpu;
use crate::model::export::{encoder_tensors, NamedTensor};
use crate::model::qbheat::QbHeat;
use crate::spec::Method;
use crate::store::{Metric, RunRow};
use crate::train::checkpoint;

/// Validation images in the check file.
pub const CHECK_IMAGES: usize = 8;

impl safetensors::View for &NamedTensor {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        4 * self.values.len()
    }
}

/// safetensors bytes of `tensors`.
pub fn safetensors_bytes(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(tensors.iter().map(|t| (t.name.clone(), t)), Some(meta))
        .map_err(|e| anyhow::anyhow!("cannot encode safetensors: {e}"))
}

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Encoder,
    Generators,
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub run: String,
    pub epoch: i64,
    pub weights: PathBuf,
    pub manifest: PathBuf,
    /// The check file (encoder exports only).
    pub check: Option<PathBuf>,
    pub tensors: usize,
    pub values: usize,
}

/// The model a run's export reads: its newest checkpoint (QB-Heat) or the random-init
/// baseline's fresh one; the supervised baseline keeps none.
fn model_of(row: &RunRow) -> Result<(QbHeat<Cpu>, i64)> {
    let cfg = config_of(row)?;
    let dev = Default::default();
    match cfg.method {
        Method::QbHeat => {
            let (dir, epoch) = require_checkpoint(row)?;
            let model = checkpoint::load_model::<Cpu>(&cfg, &dir, cfg.data.channels, &dev)?;
            Ok((model, epoch as i64))
        }
        Method::MocoV2 => {
            // the query encoder in the model the export reads (only its encoder is used)
            let (dir, epoch) = require_checkpoint(row)?;
            let mut model = QbHeat::new(&cfg, cfg.data.channels, &dev);
            model.encoder = checkpoint::load_encoder::<Cpu>(&cfg, &dir, cfg.data.channels, &dev)?;
            Ok((model, epoch as i64))
        }
        Method::RandomInit => Ok((QbHeat::new(&cfg, cfg.data.channels, &dev), 0)),
        Method::Supervised => anyhow::bail!(
            "run {}: the supervised baseline trains its encoder inside its probe and keeps no checkpoint; nothing to export",
            row.id
        ),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// `FILE.json` beside `FILE.safetensors`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "export".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}{suffix}"))
}

/// Exports run `row` (its latest metrics `latest`) to `out`.
pub fn export(row: &RunRow, latest: &[Metric], out: &Path, what: What) -> Result<Exported> {
    let cfg = config_of(row)?;
    anyhow::ensure!(
        what != What::Generators || cfg.method == Method::QbHeat,
        "run {} is {}: only QB-Heat learns generators (A, B); export its encoder instead",
        row.id,
        cfg.method.name()
    );
    let (model, epoch) = model_of(row)?;
    let spec = cfg.model.preset.spec();
    let probes: serde_json::Map<String, serde_json::Value> = latest
        .iter()
        .filter(|m| m.key.starts_with("probe/") && m.key.ends_with("/top1"))
        .map(|m| (m.key.clone(), json!(m.value)))
        .collect();
    let mut manifest = json!({
        "run": row.id,
        "sweep": row.sweep,
        "method": cfg.method,
        "epoch": epoch,
        "commit": row.git_commit,
        "commit_note": "commit: the binary that trained the run; exported_by: the binary that wrote this file",
        "exported_by": env!("WORKBENCH_GIT_COMMIT"),
        "probe_top1": probes,
    });
    let (tensors, check) = match what {
        What::Generators => {
            let tensors: Vec<NamedTensor> = model
                .predictor
                .host_generators()
                .into_iter()
                .flat_map(|g| {
                    g.matrices.into_iter().map(move |(name, m)| NamedTensor {
                        name: format!("{}.{name}", g.scale),
                        shape: vec![m.nrows(), m.ncols()],
                        // row-major
                        values: m.transpose().iter().map(|v| *v as f32).collect(),
                    })
                })
                .collect();
            manifest["what"] = json!("generators");
            manifest["note"] = json!("per scale (corner: Δ = 1/2, center: Δ = 1/4) the learned generators Ā = ΔA, B̄ = ΔB (and the explicit M of models = 4 / 8), row-major [D, D]");
            (tensors, None)
        }
        What::Encoder => {
            let (train, val) = crate::data::load(&cfg)?;
            let stats = train.channel_stats();
            let (c, s) = (val.channels, val.size);
            let n = val.len().min(CHECK_IMAGES);
            let plane = s * s;
            let input: Vec<f32> = (0..n)
                .flat_map(|i| {
                    let img = val.image(i);
                    let stats = &stats;
                    (0..c * plane).map(move |k| {
                        let (mean, std) = stats[k / plane];
                        (img[k] - mean) / std
                    })
                })
                .collect();
            let x = Tensor::<Cpu, 4>::from_data(
                TensorData::new(input.clone(), [n, c, s, s]),
                &Default::default(),
            );
            let pooled = model.encoder.forward(x).pooled();
            let [_, dim] = pooled.dims();
            let check = vec![
                NamedTensor {
                    name: "input".into(),
                    shape: vec![n, c, s, s],
                    values: input,
                },
                NamedTensor {
                    name: "pooled".into(),
                    shape: vec![n, dim],
                    values: pooled.into_data().to_vec().unwrap_or_default(),
                },
            ];
            manifest["what"] = json!("encoder");
            manifest["preset"] = json!(spec.name);
            manifest["architecture"] = json!({
                "stem": spec.stem,
                "lite_expand": spec.lite_expand,
                "lite_out": spec.lite_out,
                "blocks": spec.blocks.iter().map(|b| [b.expand, b.out, b.stride]).collect::<Vec<_>>(),
                "tokens": spec.tokens,
                "token_dim": spec.token_dim,
                "wide": spec.wide,
                "ffn_ratio": spec.ffn_ratio,
                "dyrelu_reduction": spec.dyrelu_reduction,
                "bridge_heads": 2,
                "batch_norm_eps": 1e-5,
                "layer_norm_eps": 1e-6,
            });
            manifest["image_size"] = json!(cfg.data.image_size);
            manifest["channels"] = json!(c);
            manifest["normalisation"] = json!({
                "mean": stats.iter().map(|s| s.0).collect::<Vec<_>>(),
                "std": stats.iter().map(|s| s.1).collect::<Vec<_>>(),
                "note": "x = (pixel in [0, 1] - mean) / std per channel, the training set's statistics",
            });
            manifest["pooled_features"] = json!({
                "dim": dim,
                "what": "concat(mean over positions of the final feature map, token 0)",
            });
            (encoder_tensors(&model.encoder), Some(check))
        }
    };
    let weights = out.to_path_buf();
    let manifest_path = beside(out, ".json");
    let check_path = check.as_ref().map(|_| beside(out, ".check.safetensors"));
    manifest["files"] = json!({
        "weights": weights.file_name().map(|f| f.to_string_lossy().into_owned()),
        "check": check_path.as_ref().and_then(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned()),
    });
    let bytes = safetensors_bytes(&tensors)?;
    write(&weights, &bytes)?;
    write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    if let (Some(check), Some(path)) = (&check, &check_path) {
        write(path, &safetensors_bytes(check)?)?;
    }
    Ok(Exported {
        run: row.id.clone(),
        epoch,
        weights,
        manifest: manifest_path,
        check: check_path,
        tensors: tensors.len(),
        values: tensors.iter().map(|t| t.values.len()).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip_by_name_shape_and_bytes() {
        let tensors = vec![
            NamedTensor {
                name: "b.weight".into(),
                shape: vec![2, 3],
                values: vec![1.0, -2.0, 3.5, 0.0, 1e-7, -0.25],
            },
            NamedTensor {
                name: "a".into(),
                shape: vec![1],
                values: vec![42.0],
            },
        ];
        let bytes = safetensors_bytes(&tensors).unwrap();
        // the format: 8-byte little-endian header length, JSON header, raw data
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        assert_eq!(header["__metadata__"]["format"], "pt");
        assert_eq!(header["b.weight"]["dtype"], "F32");
        assert_eq!(header["b.weight"]["shape"], serde_json::json!([2, 3]));
        let back = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for t in &tensors {
            let v = back.tensor(&t.name).unwrap();
            assert_eq!(v.shape(), t.shape.as_slice());
            let values: Vec<f32> = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(values, t.values);
        }
    }
}
