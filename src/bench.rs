//! `workbench bench`: times pre-training steps (forward + backward + AdamW) after warm-up.

use anyhow::Result;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use std::time::Instant;

use crate::config::RunConfig;
use crate::data::batch::BatchMaker;
use crate::data::procedural;
use crate::model::qbheat::QbHeat;
use crate::train::pretrain::step_seed;

/// Result of a benchmark.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub img_per_s: f64,
    pub step_ms: f64,
    pub peak_rss_mb: f64,
    pub gflop_per_s: f64,
    /// Forward multiply-adds of one batch.
    pub forward_macs: u64,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bench: img_per_s={:.1} step_ms={:.2} peak_rss_mb={:.1} gflop_per_s={:.2}",
            self.img_per_s, self.step_ms, self.peak_rss_mb, self.gflop_per_s
        )
    }
}

/// Peak resident set size of this process in MiB (VmHWM), 0 where /proc is missing.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs `warmup` untimed and `steps` timed optimiser steps of `cfg`'s model on built-in data.
/// FLOPs = 2 × multiply-adds × 3 (forward + backward ≈ 3× forward).
pub fn run<B: AutodiffBackend>(
    cfg: &RunConfig,
    warmup: usize,
    steps: usize,
    device: &B::Device,
) -> Result<BenchResult> {
    let batch = cfg.train.batch_size;
    let set = procedural::generate(batch * 4, cfg.data.image_size, 3, cfg.seed);
    let maker = BatchMaker::for_config(cfg, &set);
    let mut model = QbHeat::<B>::new(cfg, 3, device);
    let forward_macs = model.macs(cfg, batch);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.05)
        .init::<B, QbHeat<B>>();
    let batches: Vec<_> = (0..4)
        .map(|k| {
            let idx: Vec<usize> = (k * batch..(k + 1) * batch).collect();
            maker.make(&set, &idx, step_seed(cfg.seed, 0, k))
        })
        .collect();
    let mut timed = 0.0;
    for i in 0..warmup + steps {
        let t = Instant::now();
        let loss = model.loss(&batches[i % batches.len()], device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        // reading a value back synchronises asynchronous backends
        let sync: f64 = model.projector.weight.val().sum().into_scalar().elem();
        anyhow::ensure!(sync.is_finite(), "benchmark diverged");
        if i >= warmup {
            timed += t.elapsed().as_secs_f64();
        }
    }
    let step_s = timed / steps.max(1) as f64;
    Ok(BenchResult {
        img_per_s: batch as f64 / step_s,
        step_ms: step_s * 1e3,
        peak_rss_mb: peak_rss_mb(),
        gflop_per_s: 6.0 * forward_macs as f64 / step_s / 1e9,
        forward_macs,
    })
}

/// Result of the store benchmark.
#[derive(Debug, Clone)]
pub struct StoreBenchResult {
    pub rows: usize,
    pub ingest_rows_per_s: f64,
    pub runs_listing_ms: f64,
}

/// Fills a fresh database at `db` with `runs` runs and `rows` metric rows (batched, as the
/// workers write them), then times `workbench runs` on it.
pub fn store(db: &std::path::Path, runs: usize, rows: usize) -> Result<StoreBenchResult> {
    use crate::store::{Metric, NewRun, Store};
    anyhow::ensure!(
        !db.exists(),
        "{}: already exists; the benchmark needs a fresh file",
        db.display()
    );
    let mut store = Store::open(db)?;
    let cfg = RunConfig::default();
    let planned: Vec<NewRun> = (0..runs)
        .map(|i| {
            let mut c = cfg.clone();
            c.seed = i as u64;
            NewRun::from_config(&c)
        })
        .collect();
    store.register_sweep("bench", "bench", &planned)?;
    let per_run = rows / runs.max(1);
    let started = Instant::now();
    let mut written = 0;
    for NewRun { id, .. } in &planned {
        // two keys, like train/loss and train/lr, in batches of 1000 rows
        let mut batch = Vec::with_capacity(1000);
        for i in 0..per_run {
            batch.push(Metric {
                key: if i % 2 == 0 { "train/loss" } else { "train/lr" }.into(),
                step: (i / 2) as i64,
                epoch: (i / 200) as i64,
                value: 1.0 / (i + 1) as f64,
                wall: i as f64,
            });
            if batch.len() == 1000 {
                store.log_metrics(id, &batch)?;
                written += batch.len();
                batch.clear();
            }
        }
        written += batch.len();
        store.log_metrics(id, &batch)?;
    }
    let ingest = written as f64 / started.elapsed().as_secs_f64();
    let t = Instant::now();
    let listing = crate::inspect::runs(&store, None, None, crate::inspect::Format::Table)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(listing.lines().count() == runs + 1, "listing lost runs");
    Ok(StoreBenchResult {
        rows: written,
        ingest_rows_per_s: ingest,
        runs_listing_ms: ms,
    })
}

/// Milliseconds per phase of one pre-training step (mean over `steps` after one warm-up):
/// encoder, projector + heat predictor + assembly, decoder + loss (forward, autodiff graph
/// recorded), backward, optimiser.
pub fn breakdown<B: AutodiffBackend>(
    cfg: &RunConfig,
    steps: usize,
    device: &B::Device,
) -> Result<Vec<(&'static str, f64)>> {
    use crate::model::predictor::MatrixCache;
    use burn::tensor::{Tensor, TensorData};
    let batch = cfg.train.batch_size;
    let set = procedural::generate(batch, cfg.data.image_size, 3, cfg.seed);
    let maker = BatchMaker::for_config(cfg, &set);
    let b = maker.make(&set, &(0..batch).collect::<Vec<_>>(), 1);
    let mut model = QbHeat::<B>::new(cfg, 3, device);
    let mut optim = AdamWConfig::new().init::<B, QbHeat<B>>();
    let names = [
        "encoder fwd",
        "projector+predictor fwd",
        "decoder+loss fwd",
        "backward",
        "optimizer",
    ];
    let mut acc = [0.0f64; 5];
    let sync = |t: &Tensor<B, 4>| -> f64 { t.clone().sum().into_scalar().elem() };
    for i in 0..steps + 1 {
        let (h, w) = b.grid;
        let side = b.image_size / 2;
        let mut t = Instant::now();
        let mut lap = |k: usize, t: &mut Instant| {
            if i > 0 {
                acc[k] += t.elapsed().as_secs_f64() * 1e3;
            }
            *t = Instant::now();
        };
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(b.quarters.clone(), [batch, 3, side, side]),
            device,
        );
        let feats = model.encoder.forward(x).features;
        sync(&feats);
        lap(0, &mut t);
        let z_q = model.projector.forward(feats);
        let mut cache = MatrixCache::default();
        let grids: Vec<Tensor<B, 4>> = b
            .groups()
            .into_iter()
            .map(|(q, s, n)| {
                model
                    .predictor
                    .assemble_cached(q, z_q.clone().narrow(0, s, n), h, w, &mut cache)
            })
            .collect();
        let grid = Tensor::cat(grids, 0);
        sync(&grid);
        lap(1, &mut t);
        let d = grid.dims()[1];
        let pred = model
            .decoder
            .forward(grid.reshape([batch, d, h * w]).swap_dims(1, 2), h, w);
        let [n, l, p] = pred.dims();
        let target =
            Tensor::<B, 3>::from_data(TensorData::new(b.targets.clone(), [n, l, p]), device);
        let loss = (pred - target).square().mean();
        let _: f64 = loss.clone().into_scalar().elem();
        lap(2, &mut t);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        lap(3, &mut t);
        model = optim.step(1e-4, model, grads);
        let _: f64 = model.projector.weight.val().sum().into_scalar().elem();
        lap(4, &mut t);
    }
    Ok(names
        .iter()
        .zip(acc)
        .map(|(n, a)| (*n, a / steps as f64))
        .collect())
}

/// Seconds to compute every spectrum of a fresh `cfg` model (generators drawn with a large
/// init_std so they are generic dense matrices), and the number of matrices.
pub fn spectrum(cfg: &RunConfig) -> Result<(f64, usize)> {
    let model = QbHeat::<crate::backend::Cpu>::new(cfg, 3, &Default::default());
    let t = Instant::now();
    let spectra = crate::analysis::extract::spectra(&model);
    let secs = t.elapsed().as_secs_f64();
    let n = spectra.iter().map(|s| s.matrices.len()).sum();
    anyhow::ensure!(
        spectra.iter().all(|s| s.energy_ratio.is_finite()),
        "non-finite energy ratio"
    );
    Ok((secs, n))
}
