//! The evaluation step of a run: which encoder to probe (pre-trained checkpoint, random init,
//! or supervised training) and the probes its config lists, on the run's backend.

use crate::backend::TrainBackend;
use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::finetune::{self, Data};
use super::{linear, tran1, Interrupted, ProbeKind, ProbeResult, ProbeVariant, Recipe};
use crate::config::RunConfig;
use crate::model::features;
use crate::model::mobile_former::MobileFormer;
use crate::model::qbheat::QbHeat;
use crate::spec::Method;
use crate::train::checkpoint;

/// The encoder a run's probes use: its newest checkpoint for a pre-training method (QB-Heat,
/// MoCo-v2), else a fresh one.
pub fn encoder<B: TrainBackend>(
    cfg: &RunConfig,
    out: &Path,
    device: &B::Device,
) -> Result<MobileFormer<B>> {
    if cfg.method.pretrains() {
        let (dir, _) = checkpoint::latest(out)?
            .with_context(|| format!("{}: no checkpoint to probe", out.display()))?;
        return checkpoint::load_encoder::<B>(cfg, &dir, cfg.data.channels, device);
    }
    Ok(QbHeat::<B>::new(cfg, cfg.data.channels, device).encoder)
}

/// What a run's evaluation gives: each probe's result, and the 2-D PCA of the validation
/// images' pooled features when they were extracted (a `lin` or `tran-1` probe ran).
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub results: Vec<(String, ProbeResult)>,
    pub embedding: Option<super::embedding::Pca2>,
}

/// Runs the probes `variants` (or, for the supervised baseline, supervised training) on the
/// run's encoder. Fine-tuning starts its decoder from the tran probe of its width and depth
/// (run first when not asked for) when `probe.finetune_from_tran1` is set. `on_result`
/// receives each probe's result as soon as it ends (the worker stores it then, so an
/// interrupted evaluation keeps the probes it finished). Raising `stop` ends the current
/// probe between two steps and the evaluation with [`Interrupted`]: the probe it stopped
/// gives no result.
pub fn evaluate<B: TrainBackend>(
    cfg: &RunConfig,
    out: &Path,
    variants: &[ProbeVariant],
    device: &B::Device,
    stop: &AtomicBool,
    on_result: &mut dyn FnMut(&str, &ProbeResult) -> Result<()>,
) -> Result<Evaluation> {
    let interrupted = || -> Result<()> {
        if stop.load(Ordering::SeqCst) {
            Err(Interrupted.into())
        } else {
            Ok(())
        }
    };
    crate::train::resources::check_memory(cfg)?;
    let (train, val) = crate::data::load(cfg)?;
    let stats = train.channel_stats();
    let train = crate::data::truncate(train, cfg.probe.train_size);
    let data = Data {
        train: &train,
        val: &val,
        stats: &stats,
        stop,
    };
    let enc = encoder::<B>(cfg, out, device)?;
    let recipe = Recipe::new(&cfg.probe, cfg.model.preset);
    if cfg.method == Method::Supervised {
        let (r, _) = finetune::run(enc, None, &data, &recipe, 1.0, cfg.seed, device);
        interrupted()?;
        on_result("supervised", &r)?;
        return Ok(Evaluation {
            results: vec![("supervised".into(), r)],
            embedding: None,
        });
    }
    let mut order: Vec<ProbeVariant> = Vec::new();
    for v in variants {
        if v.kind == ProbeKind::Finetune && cfg.probe.finetune_from_tran1 {
            // the fine-tuning decoder starts from a tran probe: train one (and report it)
            let tran = ProbeVariant {
                kind: ProbeKind::Tran1,
                ..*v
            };
            if !order.contains(&tran) {
                order.push(tran);
            }
        }
        if !order.contains(v) {
            order.push(*v);
        }
    }
    let need_tokens = order.iter().any(|v| v.kind == ProbeKind::Tran1);
    let frozen = enc.valid();
    let cached = (need_tokens || order.iter().any(|v| v.kind == ProbeKind::Lin)).then(|| {
        (
            features::extract(&frozen, &train, &stats, need_tokens, device),
            features::extract(&frozen, &val, &stats, need_tokens, device),
        )
    });
    interrupted()?;
    let mut results = Vec::new();
    let mut tran_heads = Vec::new();
    for v in order {
        let recipe = recipe.at(&v);
        let r = match (v.kind, &cached) {
            (ProbeKind::Lin, Some((ft, fv))) => {
                linear::run::<B>(ft, fv, train.classes, &cfg.probe, cfg.seed, device, stop)
            }
            (ProbeKind::Tran1, Some((ft, fv))) => {
                let (r, head) =
                    tran1::run::<B>(ft, fv, train.classes, &recipe, cfg.seed, device, stop);
                tran_heads.push(((v.width, v.depth), head));
                r
            }
            _ => {
                let head = cfg
                    .probe
                    .finetune_from_tran1
                    .then(|| {
                        tran_heads
                            .iter()
                            .find(|(at, _)| *at == (v.width, v.depth))
                            .map(|(_, h)| h.clone())
                    })
                    .flatten();
                finetune::run(
                    enc.clone(),
                    head,
                    &data,
                    &recipe,
                    recipe.layer_decay,
                    cfg.seed,
                    device,
                )
                .0
            }
        };
        interrupted()?;
        on_result(&v.name(), &r)?;
        results.push((v.name(), r));
    }
    let embedding = cached
        .as_ref()
        .and_then(|(_, fv)| super::embedding::pca_2d(&fv.pooled, fv.dim, &fv.labels));
    Ok(Evaluation { results, embedding })
}
