//! `workbench bench`, `bench-store`, `bench-spectrum`, `bench-gemm`.

use anyhow::Result;
use std::path::PathBuf;

use qbheat_workbench::backend::dispatch;
use qbheat_workbench::bench::{
    gemm as gemm_bench, spectrum as spectrum_bench, step, store as store_bench,
};
use qbheat_workbench::config::{ConfigError, RunConfig};
use qbheat_workbench::spec::{parse_name, BackendKind, Method, Models, Position, Preset};
use qbheat_workbench::store::scratch::ScratchStore;
use qbheat_workbench::store::Locator;
use qbheat_workbench::train::resources::check_memory;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// mf-285m | mf-1.0g | mf-3.7g | mf-tiny | mf-micro
    #[arg(long, default_value = "mf-tiny", value_parser = super::preset)]
    preset: Preset,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    image: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// cpu | cuda
    #[arg(long, default_value = "cpu", value_parser = super::backend)]
    backend: BackendKind,
    /// GPU index (cuda).
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Optional run config for the predictor/decoder/masking settings.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also print milliseconds per phase of a step (encoder, predictor, decoder, backward,
    /// optimiser; QB-Heat only).
    #[arg(long)]
    breakdown: bool,
    /// qbheat | moco-v2: the pre-training step to time [default: the config's, else qbheat].
    #[arg(long, value_parser = parse_name::<Method>)]
    method: Option<Method>,
}

pub fn run(a: BenchArgs) -> Result<()> {
    anyhow::ensure!(a.steps >= 1, "--steps must be at least 1");
    let mut cfg = match &a.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::default(),
    };
    cfg.model.preset = a.preset;
    cfg.data.image_size = a.image;
    cfg.train.batch_size = a.batch;
    if let Some(m) = a.method {
        anyhow::ensure!(
            m.pretrains(),
            "--method {}: only qbheat and moco-v2 pre-train (the baselines have no step to time)",
            m.name()
        );
        cfg.method = m;
    }
    if cfg.method == Method::MocoV2 {
        // a queue that holds whole batches (the config's, rounded up to the batch)
        cfg.moco.queue = cfg.moco.queue.div_ceil(a.batch.max(1)) * a.batch.max(1);
        anyhow::ensure!(!a.breakdown, "--breakdown times QB-Heat's phases only");
    }
    cfg.validate().map_err(|(key, msg)| ConfigError {
        file: "command line".into(),
        line: 1,
        col: 1,
        message: format!("{key}: {msg}"),
    })?;
    check_memory(&cfg)?;
    let result = dispatch(
        a.backend,
        a.device,
        step::Step {
            cfg: &cfg,
            warmup: 2,
            steps: a.steps,
        },
    )?;
    if cfg.method == Method::MocoV2 {
        println!(
            "preset {} image {} batch {} method moco-v2 queue {}: {:.3} GMAC forward (query + key encoders, two full views)",
            a.preset.name(),
            a.image,
            a.batch,
            cfg.moco.queue,
            result.forward_macs as f64 / 1e9
        );
        println!("{result}");
        return Ok(());
    }
    println!(
        "preset {} image {} batch {} position {} D {} decoder {}x{}: {:.3} GMAC forward",
        a.preset.name(),
        a.image,
        a.batch,
        cfg.masking.position.name(),
        cfg.predictor.dim,
        cfg.decoder.depth,
        cfg.decoder.dim,
        result.forward_macs as f64 / 1e9
    );
    if a.breakdown {
        let phases = dispatch(
            a.backend,
            a.device,
            step::Breakdown {
                cfg: &cfg,
                steps: a.steps,
            },
        )?;
        let total: f64 = phases.iter().map(|p| p.1).sum();
        for (name, ms) in phases {
            println!("  {name:<26} {ms:>9.2} ms  {:>5.1} %", 100.0 * ms / total);
        }
    }
    println!("{result}");
    Ok(())
}

pub fn store(runs: usize, metrics: usize, db: Option<Locator>) -> Result<()> {
    let scratch = bench_store_at(db)?;
    let r = store_bench::store(&scratch.locator, runs, metrics)?;
    println!(
        "bench-store: backend={} runs={runs} rows={} ingest_rows_per_s={:.0} runs_listing_ms={:.1}",
        scratch.name(),
        r.rows,
        r.ingest_rows_per_s,
        r.runs_listing_ms
    );
    Ok(())
}

/// Where a benchmark fills its store: a fresh database of its own on the PostgreSQL server
/// `--db` names (dropped afterwards), the fresh SQLite file `--db` names (kept), or a
/// temporary SQLite file.
pub fn bench_store_at(db: Option<Locator>) -> Result<ScratchStore> {
    match db {
        Some(Locator::Postgres(server)) => ScratchStore::postgres(&server),
        Some(at) => Ok(ScratchStore::kept(at)),
        None => ScratchStore::sqlite(),
    }
}

pub fn spectrum(dim: usize, models: i64) -> Result<()> {
    anyhow::ensure!(
        (1..=4096).contains(&dim),
        "--dim must lie in 1..=4096, got {dim}"
    );
    let mut cfg = RunConfig::default();
    cfg.masking.position = Position::CornerCenter;
    cfg.predictor.dim = dim;
    cfg.predictor.init_std = 0.05;
    cfg.predictor.models =
        Models::try_from(models).map_err(|e| anyhow::anyhow!("--models: {e}"))?;
    let (secs, n) = spectrum_bench::spectrum(&cfg)?;
    println!(
        "bench-spectrum: matrices={n} dim={dim} seconds={secs:.3} per_matrix_ms={:.1}",
        1e3 * secs / n as f64
    );
    Ok(())
}

/// One `bench-gemm:` line per product shape: GFLOP/s on one thread and on every thread.
pub fn gemm(reps: usize) -> Result<()> {
    for shape in &gemm_bench::SHAPES {
        let t = gemm_bench::time(shape, reps)?;
        println!(
            "bench-gemm: what={} shape={}x{}x{} lhs={} rhs={} serial_ms={:.3} serial_gflop_per_s={:.1} \
             parallel_ms={:.3} parallel_gflop_per_s={:.1} threads={} {}",
            shape.what,
            shape.m,
            shape.n,
            shape.k,
            if shape.lhs_t { "t" } else { "n" },
            if shape.rhs_t { "t" } else { "n" },
            t.serial_ms,
            shape.flops() / t.serial_ms / 1e6,
            t.parallel_ms,
            shape.flops() / t.parallel_ms / 1e6,
            rayon::current_num_threads(),
            qbheat_workbench::simd::describe()
        );
    }
    Ok(())
}

/// A fresh folder under the system temp dir.
pub fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("workbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
