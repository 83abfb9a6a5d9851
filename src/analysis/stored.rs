//! Analyses of stored runs: read what training stored, or compute it from the run's newest
//! checkpoint and store it.

use anyhow::{Context, Result};
use burn::tensor::{Tensor, TensorData};
use std::path::PathBuf;

use super::spatial::{histogram, mean_abs_offdiag};
use super::spectrum::ScaleSpectrum;
use crate::backend::Cpu;
use crate::config::RunConfig;
use crate::store::{now, Metric, Store};
use crate::train::checkpoint;

/// The config and newest checkpoint of a stored run.
fn checkpoint_of(store: &Store, run: &str) -> Result<(RunConfig, PathBuf, usize)> {
    let row = store.run(run)?;
    let cfg: RunConfig = serde_json::from_str(&row.config).context("stored config is not valid")?;
    let out = row
        .out_dir
        .map(PathBuf::from)
        .with_context(|| format!("run {} has not started yet: no checkpoint", row.id))?;
    let (dir, state) = checkpoint::latest(&out)?
        .with_context(|| format!("run {}: no checkpoint in {}", row.id, out.display()))?;
    Ok((cfg, dir, state.epochs_done))
}

/// Spectra of a run by epoch; computed from the newest checkpoint (and stored) when training
/// stored none.
pub fn spectra(store: &mut Store, run: &str) -> Result<Vec<(i64, ScaleSpectrum)>> {
    let id = store.run(run)?.id;
    let stored = store.spectra(&id)?;
    if !stored.is_empty() {
        return Ok(stored);
    }
    let (cfg, dir, epoch) = checkpoint_of(store, &id)?;
    let model = checkpoint::load_model::<Cpu>(&cfg, &dir, cfg.data.channels, &Default::default())?;
    let spectra = super::extract::spectra(&model);
    store.log_spectra(&id, epoch as i64, &spectra)?;
    Ok(spectra.into_iter().map(|s| (epoch as i64, s)).collect())
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
    let id = store.run(run)?.id;
    let (cfg, dir, epoch) = checkpoint_of(store, &id)?;
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
        let data: Vec<f32> = feats.into_data().to_vec().expect("f32 features");
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
