//! `workbench bench-store`: metric ingest rate and the `runs` listing on a generated store.

use anyhow::Result;
use std::time::Instant;

use crate::config::RunConfig;
use crate::store::{Locator, MatrixSpectrum, Metric, NewRun, ScaleSpectrum, Store};
use crate::views::{runs::runs, Format};

/// Result of the store benchmark.
#[derive(Debug, Clone)]
pub struct StoreBenchResult {
    pub rows: usize,
    pub ingest_rows_per_s: f64,
    pub runs_listing_ms: f64,
}

/// Registers `runs` runs of one sweep (seeds 0..runs of the default config) in `store`.
pub fn fill_runs(store: &mut Store, sweep: &str, runs: usize) -> Result<Vec<NewRun>> {
    let cfg = RunConfig::default();
    let planned: Vec<NewRun> = (0..runs)
        .map(|i| {
            let mut c = cfg.clone();
            c.seed = i as u64;
            NewRun::from_config(&c)
        })
        .collect();
    store.register_sweep(sweep, sweep, &planned)?;
    Ok(planned)
}

/// Writes `per_run` rows (train/loss and train/lr alternating, as workers log them) for `id`
/// in batches of 1000. Returns the rows written.
pub fn fill_metrics(store: &mut Store, id: &str, per_run: usize) -> Result<usize> {
    let mut batch = Vec::with_capacity(1000);
    let mut written = 0;
    for i in 0..per_run {
        batch.push(Metric {
            key: if i % 2 == 0 { "train/loss" } else { "train/lr" }.into(),
            step: (i / 2) as i64 + 1,
            epoch: (i / 200) as i64 + 1,
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
    Ok(written)
}

/// Fills a fresh store at `db` with `runs` runs and `rows` metric rows (batched, as the
/// workers write them), then times `workbench runs` on it.
pub fn store(db: &Locator, runs_n: usize, rows: usize) -> Result<StoreBenchResult> {
    anyhow::ensure!(runs_n >= 1, "--runs must be at least 1");
    if let Some(path) = db.sqlite_path() {
        anyhow::ensure!(
            !path.exists(),
            "{}: already exists; the benchmark needs a fresh file",
            path.display()
        );
    }
    let mut store = Store::open(db)?;
    let planned = fill_runs(&mut store, "bench", runs_n)?;
    let per_run = rows / runs_n;
    let started = Instant::now();
    let mut written = 0;
    for r in &planned {
        written += fill_metrics(&mut store, &r.id, per_run)?;
    }
    let ingest = written as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let reader = Store::open_read_only(db)?;
    let t = Instant::now();
    let listing = runs(&reader, None, None, None, Format::Table)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(listing.lines().count() == runs_n + 1, "listing lost runs");
    Ok(StoreBenchResult {
        rows: written,
        ingest_rows_per_s: ingest,
        runs_listing_ms: ms,
    })
}

/// A spectrum of `n` eigenvalues on a circle, for the benchmark store.
pub fn spectrum(scale: &str, n: usize, epoch: i64) -> ScaleSpectrum {
    let matrix = |name: &str, r: f64| MatrixSpectrum {
        name: name.into(),
        eig_re: (0..n)
            .map(|k| r * (k as f64 * 0.1 + epoch as f64).cos())
            .collect(),
        eig_im: (0..n)
            .map(|k| r * (k as f64 * 0.1 + epoch as f64).sin())
            .collect(),
        energy: r * n as f64,
        rank: n,
        condition: 10.0,
        complex_fraction: 1.0,
    };
    ScaleSpectrum {
        scale: scale.into(),
        delta: if scale == "corner" { 0.5 } else { 0.25 },
        matrices: vec![matrix("A", 1.0), matrix("B", 1.1)],
        energy_ratio: 1.0 / 1.1,
        commutator: 0.2,
    }
}

/// A store like a long-lived workbench's: `runs` runs of sweep "bench" with `rows` metric rows
/// in all (steps, and ten epochs of losses and speed each) and 20 epochs of 512-eigenvalue
/// spectra of both scales for the first run. Returns the runs and the rows written.
pub fn fill_store(db: &Locator, runs: usize, rows: usize) -> Result<(Vec<NewRun>, usize)> {
    anyhow::ensure!(runs >= 1, "--runs must be at least 1");
    let mut store = Store::open(db)?;
    let planned = fill_runs(&mut store, "bench", runs)?;
    let per_run = rows / runs;
    let mut written = 0;
    for (i, r) in planned.iter().enumerate() {
        written += fill_metrics(&mut store, &r.id, per_run.saturating_sub(30))?;
        let epochs: Vec<Metric> = (1..=10)
            .flat_map(|e| {
                ["epoch/train_loss", "epoch/val_loss", "epoch/img_per_s"]
                    .into_iter()
                    .map(move |k| Metric {
                        key: k.into(),
                        step: e * 50,
                        epoch: e,
                        value: 1.0 + (i % 97) as f64 / 100.0 + 1.0 / e as f64,
                        wall: e as f64,
                    })
            })
            .collect();
        written += epochs.len();
        store.log_metrics(&r.id, &epochs)?;
    }
    for epoch in 1..=20 {
        store.log_spectra(
            &planned[0].id,
            epoch,
            &[
                spectrum("corner", 512, epoch),
                spectrum("center", 512, epoch),
            ],
        )?;
    }
    Ok((planned, written))
}
