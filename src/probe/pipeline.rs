//! The evaluation step of a run: which encoder to probe (pre-trained checkpoint, random init,
//! or supervised training) and the probes its config lists. Results become run metrics.

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::{features, finetune, linear, tran1, ProbeKind, ProbeResult};
use crate::backend::CpuTrain;
use crate::config::RunConfig;
use crate::model::mobile_former::MobileFormer;
use crate::model::qbheat::QbHeat;
use crate::store::{now, Metric};
use crate::train::checkpoint;

/// What a run evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// QB-Heat pre-training, then the probes.
    #[serde(rename = "qbheat")]
    QbHeat,
    /// Probe an untrained encoder (baseline).
    #[serde(rename = "random-init")]
    RandomInit,
    /// Train encoder + tran-1 head with labels (baseline; `probe.finetune_epochs`).
    #[serde(rename = "supervised")]
    Supervised,
}

/// The encoder a run's probes use: its newest checkpoint for QB-Heat, else a fresh one.
pub fn encoder(cfg: &RunConfig, out: &Path) -> Result<MobileFormer<CpuTrain>> {
    let dev = Default::default();
    let model = match cfg.method {
        Method::QbHeat => {
            let (dir, _) = checkpoint::latest(out)?
                .with_context(|| format!("{}: no checkpoint to probe", out.display()))?;
            checkpoint::load_model::<CpuTrain>(cfg, &dir, cfg.data.channels, &dev)?
        }
        _ => QbHeat::<CpuTrain>::new(cfg, cfg.data.channels, &dev),
    };
    Ok(model.encoder)
}

/// Runs `kinds` (or, for the supervised baseline, supervised training) on the run's encoder.
pub fn evaluate(
    cfg: &RunConfig,
    out: &Path,
    kinds: &[ProbeKind],
) -> Result<Vec<(String, ProbeResult)>> {
    let (train, val) = crate::data::load(cfg)?;
    let stats = train.channel_stats();
    let dev = Default::default();
    let enc = encoder(cfg, out)?;
    let p = &cfg.probe;
    if cfg.method == Method::Supervised {
        let (r, _) = finetune::run::<CpuTrain>(enc, &train, &val, &stats, p, 1.0, cfg.seed, &dev);
        return Ok(vec![("supervised".into(), r)]);
    }
    let mut results = Vec::new();
    let frozen = enc.valid();
    let need_tokens = kinds.contains(&ProbeKind::Tran1);
    let cached = kinds.iter().any(|k| *k != ProbeKind::Finetune).then(|| {
        (
            features::extract(&frozen, &train, &stats, need_tokens, &dev),
            features::extract(&frozen, &val, &stats, need_tokens, &dev),
        )
    });
    for &kind in kinds {
        let r = match (kind, &cached) {
            (ProbeKind::Lin, Some((ft, fv))) => {
                linear::run::<CpuTrain>(ft, fv, train.classes, p, cfg.seed, &dev)
            }
            (ProbeKind::Tran1, Some((ft, fv))) => {
                tran1::run::<CpuTrain>(ft, fv, train.classes, p, cfg.seed, &dev)
            }
            _ => {
                finetune::run::<CpuTrain>(
                    enc.clone(),
                    &train,
                    &val,
                    &stats,
                    p,
                    p.layer_decay,
                    cfg.seed,
                    &dev,
                )
                .0
            }
        };
        results.push((kind.name().to_string(), r));
    }
    Ok(results)
}

/// Metric rows of probe results: per-epoch curves and final figures under `probe/<name>/…`.
pub fn metrics(results: &[(String, ProbeResult)]) -> Vec<Metric> {
    let mut rows = Vec::new();
    let mut push = |key: String, step: usize, value: f64| {
        rows.push(Metric {
            key,
            step: step as i64,
            epoch: step as i64,
            value,
            wall: now(),
        })
    };
    for (name, r) in results {
        for (e, (top1, loss)) in r
            .top1_per_epoch
            .iter()
            .zip(&r.train_loss_per_epoch)
            .enumerate()
        {
            push(format!("probe/{name}/top1"), e + 1, *top1);
            push(format!("probe/{name}/train_loss"), e + 1, *loss);
        }
        let last = r.top1_per_epoch.len();
        push(
            format!("probe/{name}/train_img_per_s"),
            last,
            r.train_img_per_s,
        );
        push(
            format!("probe/{name}/extract_img_per_s"),
            last,
            r.extract_img_per_s,
        );
        push(format!("probe/{name}/seconds"), last, r.seconds);
    }
    rows
}
