//! Analyses of stored runs: read what training stored, or compute it from the run's newest
//! checkpoint and store it.

use anyhow::{Context, Result};
use burn::tensor::{Tensor, TensorData};
use std::path::{Path, PathBuf};

use super::spatial::{histogram, mean_abs_offdiag};
use crate::backend::Cpu;
use crate::config::RunConfig;
use crate::store::{now, Locator, Metric, RunRow, SpectrumRow, Store};
use crate::train::checkpoint;

/// The config of a stored run.
pub fn config_of(row: &RunRow) -> Result<RunConfig> {
    if let Some(file) = row.reference() {
        anyhow::bail!(
            "run {} is a reference imported from {file}: it has metrics only, no config or model",
            row.id
        );
    }
    serde_json::from_str(&row.config)
        .with_context(|| format!("run {}: stored config is not valid", row.id))
}

/// The newest checkpoint of a stored run (folder, epochs done), `None` when it has none yet.
/// A run that never started has no output folder: it is never `./checkpoints`.
pub fn checkpoint_of(row: &RunRow) -> Result<Option<(PathBuf, usize)>> {
    let Some(out) = row.out_dir.as_deref().filter(|o| !o.is_empty()) else {
        return Ok(None);
    };
    Ok(checkpoint::latest(Path::new(out))?.map(|(dir, state)| (dir, state.epochs_done)))
}

/// The newest checkpoint of a run, or an error saying why there is none.
pub fn require_checkpoint(row: &RunRow) -> Result<(PathBuf, usize)> {
    checkpoint_of(row)?.with_context(|| match &row.out_dir {
        None => format!(
            "run {} ({}) has not started yet: no checkpoint",
            row.id, row.status
        ),
        Some(out) => format!(
            "run {} ({}): no checkpoint in {out} yet",
            row.id, row.status
        ),
    })
}

/// Spectra of a run by epoch: the stored ones, else computed from the newest checkpoint and
/// stored (when the database is writable). `Ok(None)` when there is neither yet.
pub fn spectra(db: &Locator, run: &str) -> Result<Option<Vec<SpectrumRow>>> {
    let store = Store::open_read_only(db)?;
    let row = store.run(run)?;
    let stored = store.spectra(&row.id)?;
    if !stored.is_empty() {
        return Ok(Some(stored));
    }
    let Some((dir, epoch)) = checkpoint_of(&row)? else {
        return Ok(None);
    };
    let cfg = config_of(&row)?;
    let model = checkpoint::load_model::<Cpu>(&cfg, &dir, cfg.data.channels, &Default::default())?;
    let spectra = super::extract::spectra(&model)?;
    drop(store);
    if let Ok(mut writer) = Store::open_existing(db) {
        writer.log_spectra(&row.id, epoch as i64, &spectra)?;
    }
    Ok(Some(
        spectra
            .into_iter()
            .map(|spectrum| SpectrumRow {
                epoch: epoch as i64,
                spectrum,
            })
            .collect(),
    ))
}

/// Result of the spatial-correlation analysis.
#[derive(Debug, Clone)]
pub struct SpatialSummary {
    pub run: String,
    pub epoch: usize,
    pub images: usize,
    pub mean: f64,
    /// 20 bins over [0, 1] of the per-image mean |off-diagonal correlation|.
    pub counts: Vec<u64>,
}

/// App. D: per validation image, the encoder's full-image feature map → correlation across
/// positions → mean |off-diagonal|; the histogram over `images` images goes to the store.
pub fn spatial(store: &mut Store, run: &str, images: usize) -> Result<SpatialSummary> {
    let row = store.run(run)?;
    let id = row.id.clone();
    let cfg = config_of(&row)?;
    let (dir, epoch) = require_checkpoint(&row)?;
    let dev = Default::default();
    let model = checkpoint::load_model::<Cpu>(&cfg, &dir, cfg.data.channels, &dev)?;
    let (train, val) = crate::data::load(&cfg)?;
    let stats = train.channel_stats();
    let n = images.min(val.len()).max(1);
    let (c, s) = (val.channels, val.size);
    let plane = s * s;
    let mut values = Vec::with_capacity(n);
    for start in (0..n).step_by(64) {
        let end = (start + 64).min(n);
        let mut pixels = Vec::with_capacity((end - start) * c * plane);
        for i in start..end {
            for (ch, &(mean, std)) in stats.iter().enumerate() {
                pixels.extend(
                    val.image(i)[ch * plane..(ch + 1) * plane]
                        .iter()
                        .map(|v| (v - mean) / std),
                );
            }
        }
        let x = Tensor::<Cpu, 4>::from_data(TensorData::new(pixels, [end - start, c, s, s]), &dev);
        let feats = model.encoder.forward(x).features;
        let [b, k, h, w] = feats.dims();
        let data: Vec<f32> = feats.into_data().to_vec().unwrap_or_default();
        for i in 0..b {
            let one = &data[i * k * h * w..(i + 1) * k * h * w];
            if let Some(v) = mean_abs_offdiag(one, k, h * w) {
                values.push(v);
            }
        }
    }
    anyhow::ensure!(
        !values.is_empty(),
        "feature maps have a single position; use larger images"
    );
    let counts = histogram(&values, 20);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    store.log_histogram(
        &id,
        "spatial/mean_abs_corr",
        epoch as i64,
        0.0,
        1.0,
        &counts,
    )?;
    store.log_metrics(
        &id,
        &[Metric {
            key: "spatial/mean_abs_corr".into(),
            step: -1,
            epoch: epoch as i64,
            value: mean,
            wall: now(),
        }],
    )?;
    Ok(SpatialSummary {
        run: id,
        epoch,
        images: values.len(),
        mean,
        counts,
    })
}
