//! The `workbench` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use qbheat_workbench::backend::CpuTrain;
use qbheat_workbench::bench;
use qbheat_workbench::config::{default_out_dir, BackendKind, ConfigError, RunConfig};
use qbheat_workbench::inspect::{self, Format};
use qbheat_workbench::model::mobile_former::MobileFormer;
use qbheat_workbench::model::presets::Preset;
use qbheat_workbench::model::qbheat::QbHeat;
use qbheat_workbench::store::{self, Status, Store};
use qbheat_workbench::sweep::runner::{self, SweepOptions};
use qbheat_workbench::sweep::spec::Sweep;
use qbheat_workbench::sweep::worker;
use qbheat_workbench::train::checkpoint::EpochStats;
use qbheat_workbench::train::pretrain::{pretrain, Observer, PretrainOptions};

#[derive(Parser)]
#[command(
    name = "workbench",
    version,
    about = "QB-Heat self-supervised pre-training workbench"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pre-train QB-Heat from a run config (TOML).
    Pretrain {
        /// Run configuration file.
        config: PathBuf,
        /// Output folder for checkpoints and logs [default: runs/<config name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue from the newest checkpoint in the output folder.
        #[arg(long)]
        resume: bool,
        /// Override the config's backend.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Time pre-training steps and print images/s, step time, peak memory and FLOP/s.
    Bench {
        #[arg(long, value_enum, default_value = "mf-tiny")]
        preset: Preset,
        /// Image side in pixels.
        #[arg(long, default_value_t = 32)]
        image: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Timed steps (after 2 warm-up steps).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendKind,
        /// Optional run config for the predictor/decoder/masking settings.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also print milliseconds per phase of a step (encoder, predictor, decoder, backward,
        /// optimiser).
        #[arg(long)]
        breakdown: bool,
    },
    /// Expand a sweep file into runs and execute them (resumes unfinished runs).
    Sweep {
        /// Sweep file (TOML with [base], [grid] / [[grids]], seeds, [[runs]]).
        file: PathBuf,
        /// Runs executed at once, each in its own process.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        #[command(flatten)]
        db: DbArg,
        /// Run failed runs again (they resume from their last checkpoint).
        #[arg(long)]
        retry_failed: bool,
        /// Print the expanded runs and exit without touching the database.
        #[arg(long)]
        dry_run: bool,
        /// Folder for run outputs [default: runs/<sweep name>].
        #[arg(long)]
        runs_dir: Option<PathBuf>,
    },
    /// Execute one stored run (started by `sweep`; not for direct use).
    #[command(hide = true)]
    Worker {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        run: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// List runs of the store.
    Runs {
        #[arg(long)]
        sweep: Option<String>,
        /// queued | running | finished | failed | stopped
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// Show one run: config, status, latest metrics, artifacts.
    Show {
        /// Run id (or a unique prefix).
        run: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Compare runs: parameters that differ and final metrics side by side.
    Compare {
        #[arg(required = true, num_args = 2..)]
        runs: Vec<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Export metrics (CSV: one row per sample; JSON: runs with params and metrics).
    Export {
        #[arg(long)]
        sweep: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// Probe a stored run's encoder (lin / tran-1 / finetune); results become run metrics.
    Probe {
        run: String,
        /// Probe kinds [default: the run config's probe.kinds, else lin and tran-1].
        #[arg(long = "kind", value_enum)]
        kinds: Vec<qbheat_workbench::probe::ProbeKind>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Spectra of a run's generators: Tab. 3 (E(A)/E(B) per epoch and scale) and per-matrix
    /// eigen summaries.
    Spectrum {
        run: String,
        #[arg(long)]
        epoch: Option<i64>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// Analyses of a stored run's newest checkpoint.
    Analyze {
        #[command(subcommand)]
        what: Analysis,
    },
    /// Benchmark the run store: metric ingest rate and `runs` listing time.
    BenchStore {
        #[arg(long, default_value_t = 1000)]
        runs: usize,
        #[arg(long, default_value_t = 1_000_000)]
        metrics: usize,
        /// Database file to create [default: a temporary file].
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Time the spectrum analysis of every generator (corner+center, models = 4 by default).
    BenchSpectrum {
        /// Feature width D.
        #[arg(long, default_value_t = 512)]
        dim: usize,
        /// Explicit linear models: 2, 4 or 8.
        #[arg(long, default_value_t = 4)]
        models: i64,
    },
    /// Print an encoder preset's parameters and multiply-adds.
    Model {
        #[arg(long, value_enum, default_value = "mf-285m")]
        preset: Preset,
        /// Input side in pixels [default: the preset's canonical size].
        #[arg(long)]
        image: Option<usize>,
    },
}

#[derive(Subcommand)]
enum Analysis {
    /// Spatial correlation of the encoder's feature maps (App. D): histogram over images.
    Spatial {
        run: String,
        #[arg(long, default_value_t = 256)]
        images: usize,
        #[command(flatten)]
        db: DbArg,
    },
}

/// `--db PATH` (default `$WORKBENCH_DB`, else `./workbench.db`).
#[derive(clap::Args)]
struct DbArg {
    /// Run database [default: $WORKBENCH_DB or ./workbench.db].
    #[arg(long = "db")]
    path: Option<PathBuf>,
}

impl DbArg {
    fn path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(store::default_path)
    }
}

/// Prints one line per finished epoch; stops at the next step after Ctrl-C (the run
/// checkpoints there and `--resume` continues).
struct EpochLines {
    stop: Arc<AtomicBool>,
}

impl Observer for EpochLines {
    fn on_step(&mut self, _: usize, _: usize, _: f64, _: f64) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    fn on_epoch(&mut self, s: &EpochStats) {
        println!(
            "epoch {:>3}  train_loss {:.4}  val_loss {:.4}  lr {:.2e}  {:.0} img/s  {:.1}s",
            s.epoch, s.train_loss, s.val_loss, s.lr, s.img_per_s, s.seconds
        );
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pretrain {
            config,
            out,
            resume,
            backend,
        } => {
            let mut cfg = RunConfig::load(&config)?;
            if let Some(b) = backend {
                cfg.backend = b;
            }
            let opts = PretrainOptions {
                out: out.unwrap_or_else(|| default_out_dir(&config)),
                resume,
                progress: std::io::stdout().is_terminal(),
            };
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
                .context("cannot install the Ctrl-C handler")?;
            let mut lines = EpochLines { stop };
            let outcome = match cfg.backend {
                BackendKind::Cpu => {
                    pretrain::<CpuTrain>(&cfg, &opts, &Default::default(), &mut lines)?
                }
                BackendKind::Cuda => pretrain_cuda(&cfg, &opts, &mut lines)?,
            };
            if !outcome.finished {
                println!(
                    "stopped at step {}: rerun with --resume to continue",
                    outcome.state.step
                );
            }
            let state = outcome.state;
            let first = state.epochs.first().map_or(f64::NAN, |e| e.train_loss);
            let last = state.epochs.last().map_or(f64::NAN, |e| e.train_loss);
            println!(
                "pretrain: {} epochs, {} steps, train loss {first:.4} -> {last:.4}, checkpoints in {}",
                state.epochs_done,
                state.step,
                opts.out.join("checkpoints").display()
            );
            Ok(())
        }
        Command::Bench {
            preset,
            image,
            batch,
            steps,
            backend,
            config,
            breakdown,
        } => {
            let mut cfg = match config {
                Some(path) => RunConfig::load(&path)?,
                None => RunConfig::default(),
            };
            cfg.model.preset = preset;
            cfg.data.image_size = image;
            cfg.train.batch_size = batch;
            if let Err((key, msg)) = cfg.validate() {
                anyhow::bail!("{key}: {msg}");
            }
            let result = match backend {
                BackendKind::Cpu => bench::run::<CpuTrain>(&cfg, 2, steps, &Default::default())?,
                BackendKind::Cuda => bench_cuda(&cfg, steps)?,
            };
            println!(
                "preset {} image {image} batch {batch} position {} D {} decoder {}x{}: {:.3} GMAC forward",
                preset.name(),
                cfg.masking.position.name(),
                cfg.predictor.dim,
                cfg.decoder.depth,
                cfg.decoder.dim,
                result.forward_macs as f64 / 1e9
            );
            if breakdown {
                let phases = match backend {
                    BackendKind::Cpu => {
                        bench::breakdown::<CpuTrain>(&cfg, steps, &Default::default())?
                    }
                    BackendKind::Cuda => anyhow::bail!("--breakdown runs on the CPU backend only"),
                };
                let total: f64 = phases.iter().map(|p| p.1).sum();
                for (name, ms) in phases {
                    println!("  {name:<26} {ms:>9.2} ms  {:>5.1} %", 100.0 * ms / total);
                }
            }
            println!("{result}");
            Ok(())
        }
        Command::Sweep {
            file,
            jobs,
            db,
            retry_failed,
            dry_run,
            runs_dir,
        } => {
            anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
            let sweep = Sweep::load(&file)?;
            if dry_run {
                println!("sweep {}: {} runs", sweep.name, sweep.runs.len());
                for r in &sweep.runs {
                    let ov: Vec<String> = r
                        .overrides
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    println!("{}  {}", r.id, ov.join(" "));
                }
                return Ok(());
            }
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
                .context("cannot install the Ctrl-C handler")?;
            let opts = SweepOptions {
                db: db.path(),
                jobs,
                retry_failed,
                runs_root: runs_dir,
                progress: std::io::stdout().is_terminal(),
            };
            println!(
                "sweep {}: {} runs, {jobs} at a time, store {}",
                sweep.name,
                sweep.runs.len(),
                opts.db.display()
            );
            let report = runner::run(&sweep, &file, &opts, stop.clone())?;
            let counts: Vec<String> = report
                .counts
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            println!("sweep {}: {}", sweep.name, counts.join(", "));
            if stop.load(Ordering::SeqCst) {
                println!("stopped: run the same command again to resume");
            }
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} run(s) failed (see `workbench runs --status failed`)",
                report.failed.len()
            );
            Ok(())
        }
        Command::Worker { db, run, out } => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
                .context("cannot install the Ctrl-C handler")?;
            worker::work(&db.path(), &run, &out, stop)
        }
        Command::Runs {
            sweep,
            status,
            format,
            db,
        } => {
            let status = match status {
                Some(s) => Some(Status::parse(&s).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown status {s:?}; valid: queued, running, finished, failed, stopped"
                    )
                })?),
                None => None,
            };
            let store = Store::open_existing(&db.path())?;
            emit(&inspect::runs(&store, sweep.as_deref(), status, format)?);
            Ok(())
        }
        Command::Show { run, db } => {
            emit(&inspect::show(&Store::open_existing(&db.path())?, &run)?);
            Ok(())
        }
        Command::Compare { runs, db } => {
            emit(&inspect::compare(
                &Store::open_existing(&db.path())?,
                &runs,
            )?);
            Ok(())
        }
        Command::Export { sweep, format, db } => {
            anyhow::ensure!(format != Format::Table, "export writes csv or json");
            emit(&inspect::export(
                &Store::open_existing(&db.path())?,
                sweep.as_deref(),
                format,
            )?);
            Ok(())
        }
        Command::Probe { run, kinds, db } => {
            use qbheat_workbench::probe::{pipeline, ProbeKind};
            let store = Store::open_existing(&db.path())?;
            let row = store.run(&run)?;
            let cfg: RunConfig =
                serde_json::from_str(&row.config).context("stored config is not valid")?;
            let kinds = if !kinds.is_empty() {
                kinds
            } else if !cfg.probe.kinds.is_empty() {
                cfg.probe.kinds.clone()
            } else {
                vec![ProbeKind::Lin, ProbeKind::Tran1]
            };
            let out = PathBuf::from(row.out_dir.clone().unwrap_or_default());
            let results = pipeline::evaluate(&cfg, &out, &kinds)?;
            let mut store = store;
            store.log_metrics(&row.id, &pipeline::metrics(&results))?;
            for (name, r) in &results {
                println!(
                    "probe {name:<10} top1 {:.4}  ({} epochs, train {:.0} img/s, extract {:.0} img/s, {:.1}s)",
                    r.top1(),
                    r.top1_per_epoch.len(),
                    r.train_img_per_s,
                    r.extract_img_per_s,
                    r.seconds
                );
            }
            Ok(())
        }
        Command::Spectrum {
            run,
            epoch,
            format,
            db,
        } => {
            anyhow::ensure!(format != Format::Csv, "spectrum prints table or json");
            let mut store = Store::open_existing(&db.path())?;
            let spectra = qbheat_workbench::analysis::stored::spectra(&mut store, &run)?;
            emit(&inspect::spectrum(&spectra, epoch, format)?);
            Ok(())
        }
        Command::Analyze {
            what: Analysis::Spatial { run, images, db },
        } => {
            let mut store = Store::open_existing(&db.path())?;
            let s = qbheat_workbench::analysis::stored::spatial(&mut store, &run, images)?;
            println!(
                "run {} epoch {}: mean |off-diagonal spatial correlation| over {} images = {:.4}",
                s.run, s.epoch, s.images, s.mean
            );
            let peak = *s.counts.iter().max().unwrap_or(&1).max(&1);
            for (k, c) in s.counts.iter().enumerate() {
                let bar = "#".repeat((40 * c / peak) as usize);
                println!(
                    "  [{:.2}, {:.2})  {c:>5}  {bar}",
                    k as f64 / 20.0,
                    (k + 1) as f64 / 20.0
                );
            }
            Ok(())
        }
        Command::BenchStore { runs, metrics, db } => {
            let tmp = tempfile_dir()?;
            let path = db.unwrap_or_else(|| tmp.join("bench.db"));
            let r = bench::store(&path, runs, metrics)?;
            println!(
                "bench-store: runs={runs} rows={} ingest_rows_per_s={:.0} runs_listing_ms={:.1}",
                r.rows, r.ingest_rows_per_s, r.runs_listing_ms
            );
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Command::BenchSpectrum { dim, models } => {
            let mut cfg = RunConfig::default();
            cfg.masking.position = qbheat_workbench::config::Position::CornerCenter;
            cfg.predictor.dim = dim;
            cfg.predictor.init_std = 0.05;
            cfg.predictor.models = models.try_into().map_err(|e: String| anyhow::anyhow!(e))?;
            let (secs, n) = bench::spectrum(&cfg)?;
            println!(
                "bench-spectrum: matrices={n} dim={dim} seconds={secs:.3} per_matrix_ms={:.1}",
                1e3 * secs / n as f64
            );
            Ok(())
        }
        Command::Model { preset, image } => {
            let spec = preset.spec();
            let size = image.unwrap_or(spec.canonical_size);
            let dev = Default::default();
            let mut init = qbheat_workbench::model::init::Init::new(0);
            let enc =
                MobileFormer::<qbheat_workbench::backend::Cpu>::new(&spec, 3, &mut init, &dev);
            let params = burn::module::Module::num_params(&enc);
            let (wide, pooled) = enc.widths();
            println!("preset        {}", spec.name);
            println!("input         3x{size}x{size}");
            println!(
                "feature map   {wide}x{}x{} (stride {})",
                size.div_ceil(spec.stride),
                size.div_ceil(spec.stride),
                spec.stride
            );
            println!("tokens        {}x{}", spec.tokens, spec.token_dim);
            println!(
                "classifier    {pooled} features ({wide} pooled + {} token 0)",
                spec.token_dim
            );
            println!("parameters    {:.2} M (encoder)", params as f64 / 1e6);
            println!(
                "multiply-adds {:.1} M (encoder, one image)",
                enc.macs(1, size, size) as f64 / 1e6
            );
            let mut cfg = RunConfig::default();
            cfg.model.preset = preset;
            if qbheat_workbench::model::masking::check_image_size(size, spec.stride).is_ok() {
                cfg.data.image_size = size;
                let full = QbHeat::<qbheat_workbench::backend::Cpu>::new(&cfg, 3, &dev);
                println!(
                    "pre-training  {:.2} M parameters with predictor D={} and decoder {}x{}; {:.1} M multiply-adds per image",
                    full.num_params() as f64 / 1e6,
                    cfg.predictor.dim,
                    cfg.decoder.depth,
                    cfg.decoder.dim,
                    full.macs(&cfg, 1) as f64 / 1e6
                );
            }
            Ok(())
        }
    }
}

#[cfg(feature = "cuda")]
fn pretrain_cuda(
    cfg: &RunConfig,
    opts: &PretrainOptions,
    obs: &mut EpochLines,
) -> Result<qbheat_workbench::train::pretrain::Outcome> {
    use qbheat_workbench::backend::GpuTrain;
    pretrain::<GpuTrain>(cfg, opts, &Default::default(), obs)
}

#[cfg(not(feature = "cuda"))]
fn pretrain_cuda(
    _: &RunConfig,
    _: &PretrainOptions,
    _: &mut EpochLines,
) -> Result<qbheat_workbench::train::pretrain::Outcome> {
    anyhow::bail!(qbheat_workbench::backend::NO_CUDA)
}

#[cfg(feature = "cuda")]
fn bench_cuda(cfg: &RunConfig, steps: usize) -> Result<bench::BenchResult> {
    use qbheat_workbench::backend::GpuTrain;
    bench::run::<GpuTrain>(cfg, 2, steps, &Default::default())
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: &RunConfig, _: usize) -> Result<bench::BenchResult> {
    anyhow::bail!(qbheat_workbench::backend::NO_CUDA)
}

/// Writes command output; a closed pipe (`workbench runs | head`) is not an error.
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A fresh folder under the system temp dir.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("workbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.downcast_ref::<ConfigError>().is_some();
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
