//! The command line: clap definitions of every verb and the helpers they share. Each verb
//! group lives in its own file; `main.rs` parses, dispatches and maps errors to exit codes.

pub mod analysis;
pub mod attention;
pub mod bench;
pub mod export;
pub mod import;
pub mod model;
pub mod pretrain;
pub mod probe;
pub mod report;
pub mod signal;
pub mod sweep;
pub mod tags;
pub mod tui;
pub mod views;

use clap::{Parser, Subcommand};

use qbheat_workbench::analysis::reference::{parse_map, LogFormat};
use qbheat_workbench::spec::{parse_name, BackendKind, Preset, ProbeKind};
use qbheat_workbench::store::{Locator, Status};
use qbheat_workbench::views::table::TableFormat;
use qbheat_workbench::views::Format;

#[derive(Parser)]
#[command(
    name = "workbench",
    version,
    about = "QB-Heat self-supervised pre-training workbench"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parses a preset name (`mf-285m`, …), listing the valid ones on error.
fn preset(s: &str) -> Result<Preset, String> {
    parse_name(s)
}

fn backend(s: &str) -> Result<BackendKind, String> {
    parse_name(s)
}

fn probe_kind(s: &str) -> Result<ProbeKind, String> {
    parse_name(s)
}

fn format(s: &str) -> Result<Format, String> {
    Format::parse(s)
}

/// The targets and the tag of `workbench tag` / `untag`.
#[derive(clap::Args)]
pub struct TagArgs {
    /// The runs (or sweeps), then the tag.
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
    /// The targets are sweeps.
    #[arg(long)]
    pub sweep: bool,
    #[command(flatten)]
    pub db: DbArg,
}

/// What `workbench export` writes: metric rows, or a run's weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExportFormat {
    Metrics(Format),
    Safetensors,
}

fn export_format(s: &str) -> Result<ExportFormat, String> {
    match s {
        "safetensors" => Ok(ExportFormat::Safetensors),
        "csv" | "json" => Format::parse(s).map(ExportFormat::Metrics),
        _ => Err(format!(
            "unknown format {s:?}; valid: csv, json (metrics), safetensors (a run's weights)"
        )),
    }
}

fn status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!("unknown status {s:?}; valid: queued, running, finished, failed, stopped")
    })
}

#[derive(Subcommand)]
pub enum Command {
    /// Pre-train QB-Heat from a run config (TOML).
    Pretrain(pretrain::PretrainArgs),
    /// Time pre-training steps and print images/s, step time, peak memory, FLOP/s, cores busy
    /// and page faults.
    Bench(bench::BenchArgs),
    /// Expand a sweep file into runs and execute them (resumes unfinished runs).
    Sweep(sweep::SweepArgs),
    /// Execute one stored run (started by `sweep`; not for direct use).
    #[command(hide = true)]
    Worker(sweep::WorkerArgs),
    /// List runs of the store.
    Runs {
        #[arg(long)]
        sweep: Option<String>,
        /// queued | running | finished | failed | stopped
        #[arg(long, value_parser = status)]
        status: Option<Status>,
        /// Only runs with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// table | csv | json
        #[arg(long, default_value = "table", value_parser = format)]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// Tag runs (ids or unique prefixes), or sweeps with --sweep: `workbench tag RUN... NAME`.
    Tag(TagArgs),
    /// Remove a tag: `workbench untag RUN... NAME`.
    Untag(TagArgs),
    /// Add a note to a run (or a sweep with --sweep): `workbench note RUN "text"`.
    Note {
        target: String,
        text: String,
        #[arg(long)]
        sweep: bool,
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
    /// Export metrics (CSV: one row per sample; JSON: runs with params and metrics), or with
    /// a RUN its encoder as safetensors that `scripts/mobile_former.py` loads into PyTorch.
    Export {
        /// A run whose encoder (or generators) to export [default: export metrics].
        run: Option<String>,
        #[arg(long)]
        sweep: Option<String>,
        /// csv | json (metrics) | safetensors (a RUN's weights) [default: csv, or safetensors
        /// with a RUN]
        #[arg(long, value_parser = export_format)]
        format: Option<ExportFormat>,
        /// A RUN's weights: encoder | generators.
        #[arg(long, default_value = "encoder")]
        what: String,
        /// A RUN's weights file [default: exports/<run id>.safetensors]; the manifest
        /// (`.json`) and the check file (`.check.safetensors`) go beside it.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Import a published training log (MAE / DINO `log.txt`: one JSON object per epoch; or a
    /// CSV with a header) as the read-only reference run `ref-NAME` of the sweep `references`,
    /// to overlay on a sweep's curves (TUI Compare, `workbench compare`).
    Import {
        file: std::path::PathBuf,
        /// The reference's name (the run id becomes `ref-NAME`).
        #[arg(long = "as")]
        name: String,
        /// jsonl | csv [default: by the file's extension, .csv or else jsonl]
        #[arg(long, value_parser = LogFormat::parse)]
        format: Option<LogFormat>,
        /// Rename a key: `--map train_loss=epoch/train_loss` (repeatable).
        #[arg(long = "map", value_parser = parse_map)]
        map: Vec<(String, String)>,
        /// Replace a reference of the same name.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// The report's ablation tables (Tab. 2: mean ± std over seeds, n per row, best in bold)
    /// for a paper: Markdown, LaTeX (booktabs) or CSV.
    Table {
        #[arg(long)]
        sweep: String,
        /// Only the table of this swept setting [default: one per swept setting].
        #[arg(long)]
        by: Option<String>,
        /// Columns, comma-separated: lin, tran-1, ft, train loss, val loss [default: those
        /// with values].
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        /// markdown | latex | csv
        #[arg(long, default_value = "markdown", value_parser = TableFormat::parse)]
        format: TableFormat,
        #[command(flatten)]
        db: DbArg,
    },
    /// Probe a stored run's encoder (lin / tran-1 / finetune); results become run metrics.
    Probe {
        run: String,
        /// Probe kinds: lin | tran-1 | finetune [default: the run config's probe.kinds, else
        /// lin and tran-1].
        #[arg(long = "kind", value_parser = probe_kind)]
        kinds: Vec<ProbeKind>,
        /// Widths of the tran (and fine-tuning) head, each its own probe (Fig. 8) [default:
        /// the run config's probe.tran_width and probe.tran_widths].
        #[arg(long = "width", value_parser = clap::value_parser!(u32).range(1..=4096))]
        widths: Vec<u32>,
        /// Transformer blocks of the tran head (Tab. 15: 4) [default: the run config's
        /// probe.tran_depth].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
        depth: Option<u32>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Spectra of a run's generators: Tab. 3 (E(A)/E(B) per epoch and scale) and per-matrix
    /// eigen summaries.
    Spectrum {
        run: String,
        #[arg(long)]
        epoch: Option<i64>,
        /// table | json
        #[arg(long, default_value = "table", value_parser = format)]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// Cross-attention maps of a run's encoder (Fig. 13–14): per block, token and head, the
    /// Mobile→Former map (softmax over pixels) and the Mobile←Former map (softmax over
    /// tokens), as PNG figures (also stored with the run for the report).
    Attention {
        run: String,
        /// Index of the validation image.
        #[arg(long, default_value_t = 0)]
        image: usize,
        /// Only this block (1-based) [default: every block].
        #[arg(long)]
        block: Option<usize>,
        /// Folder for the PNG files [default: reports/attention/<run id>].
        #[arg(long)]
        out: Option<std::path::PathBuf>,
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
        /// Database file to create, or a PostgreSQL server URL (the benchmark creates its own
        /// database there and drops it afterwards) [default: a temporary file].
        #[arg(long, value_name = "PATH|URL")]
        db: Option<Locator>,
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
    /// Time the pre-training step's heaviest matrix products (mf-tiny, 32 px, batch 256) on one
    /// thread and on every thread, through the step's own product code.
    BenchGemm {
        /// Timed products per shape and thread count (after one warm-up).
        #[arg(long, default_value_t = 20)]
        reps: usize,
    },
    /// Write the HTML/SVG report of a sweep (or one run): the paper's tables and figures.
    Report(report::ReportArgs),
    /// Time report generation on a generated store (1 000 runs, 1 000 000 rows by default).
    BenchReport(report::BenchReportArgs),
    /// Interactive terminal UI: watch runs live, compare them, look at spectra, launch sweeps.
    Tui(tui::TuiArgs),
    /// Time the TUI: frame time per tab and commit-to-screen latency on a generated store.
    BenchTui(tui::BenchTuiArgs),
    /// Print an encoder preset's parameters and multiply-adds.
    Model {
        /// mf-285m | mf-1.0g | mf-3.7g | mf-tiny | mf-micro
        #[arg(long, default_value = "mf-285m", value_parser = preset)]
        preset: Preset,
        /// Input side in pixels [default: the preset's canonical size].
        #[arg(long)]
        image: Option<usize>,
    },
}

#[derive(Subcommand)]
pub enum Analysis {
    /// Spatial correlation of the encoder's feature maps (App. D): histogram over images.
    Spatial {
        run: String,
        #[arg(long, default_value_t = 256)]
        images: usize,
        #[command(flatten)]
        db: DbArg,
    },
}

/// `--db PATH|URL` (default `$WORKBENCH_DB`, else `./workbench.db`).
#[derive(clap::Args, Clone)]
pub struct DbArg {
    /// Run store: a SQLite file, or a PostgreSQL URL `postgresql://user@host:port/db`
    /// [default: $WORKBENCH_DB or ./workbench.db].
    #[arg(long = "db", value_name = "PATH|URL")]
    pub locator: Option<Locator>,
}

impl DbArg {
    pub fn locator(&self) -> Locator {
        self.locator
            .clone()
            .unwrap_or_else(qbheat_workbench::store::default_locator)
    }
}

/// Writes command output; a closed pipe (`workbench runs | head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Runs one parsed command.
pub fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Pretrain(a) => pretrain::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Worker(a) => sweep::worker(a),
        Command::Runs {
            sweep,
            status,
            tag,
            format,
            db,
        } => views::runs(&db, sweep.as_deref(), status, tag.as_deref(), format),
        Command::Show { run, db } => views::show(&db, &run),
        Command::Compare { runs, db } => views::compare(&db, &runs),
        Command::Export {
            run: Some(run),
            sweep,
            format,
            what,
            out,
            db,
        } => export::run(&db, &run, sweep.is_some(), format, &what, out),
        Command::Export {
            run: None,
            sweep,
            format,
            db,
            ..
        } => match format.unwrap_or(ExportFormat::Metrics(Format::Csv)) {
            ExportFormat::Metrics(f) => views::export(&db, sweep.as_deref(), f),
            ExportFormat::Safetensors => {
                anyhow::bail!("--format safetensors exports a run's weights: name the RUN")
            }
        },
        Command::Tag(a) => tags::tag(&a, true),
        Command::Untag(a) => tags::tag(&a, false),
        Command::Note {
            target,
            text,
            sweep,
            db,
        } => tags::note(&db, &target, &text, sweep),
        Command::Import {
            file,
            name,
            format,
            map,
            replace,
            db,
        } => import::run(&db, &file, &name, format, &map, replace),
        Command::Table {
            sweep,
            by,
            metrics,
            format,
            db,
        } => views::table(&db, &sweep, by.as_deref(), &metrics, format),
        Command::Probe {
            run,
            kinds,
            widths,
            depth,
            db,
        } => probe::run(&db, &run, kinds, &widths, depth),
        Command::Spectrum {
            run,
            epoch,
            format,
            db,
        } => analysis::spectrum(&db, &run, epoch, format),
        Command::Attention {
            run,
            image,
            block,
            out,
            db,
        } => attention::run(&db, &run, image, block, out),
        Command::Analyze {
            what: Analysis::Spatial { run, images, db },
        } => analysis::spatial(&db, &run, images),
        Command::BenchStore { runs, metrics, db } => bench::store(runs, metrics, db),
        Command::BenchSpectrum { dim, models } => bench::spectrum(dim, models),
        Command::BenchGemm { reps } => bench::gemm(reps),
        Command::Report(a) => report::run(a),
        Command::BenchReport(a) => report::bench(a),
        Command::Tui(a) => tui::run(a),
        Command::BenchTui(a) => tui::bench(a),
        Command::Model { preset, image } => model::run(preset, image),
    }
}
