//! `workbench pretrain`: one pre-training run without the store.

use anyhow::Result;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use qbheat_workbench::backend::{dispatch, OnBackend, TrainBackend};
use qbheat_workbench::config::{default_out_dir, RunConfig};
use qbheat_workbench::spec::BackendKind;
use qbheat_workbench::train::checkpoint::EpochStats;
use qbheat_workbench::train::pretrain::{pretrain, Observer, Outcome, PretrainOptions};

#[derive(clap::Args)]
pub struct PretrainArgs {
    /// Run configuration file.
    config: PathBuf,
    /// Output folder for checkpoints and logs [default: runs/<config name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from the newest checkpoint in the output folder.
    #[arg(long)]
    resume: bool,
    /// Override the config's backend: cpu | cuda.
    #[arg(long, value_parser = super::backend)]
    backend: Option<BackendKind>,
    /// Override the config's GPU index.
    #[arg(long)]
    device: Option<usize>,
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

    fn on_epoch(&mut self, s: &EpochStats) -> Result<()> {
        println!(
            "epoch {:>3}  train_loss {:.4}  val_loss {:.4}  lr {:.2e}  {:.0} img/s  {:.1}s",
            s.epoch, s.train_loss, s.val_loss, s.lr, s.img_per_s, s.seconds
        );
        Ok(())
    }
}

struct Job<'a> {
    cfg: &'a RunConfig,
    opts: &'a PretrainOptions,
    lines: EpochLines,
}

impl OnBackend for Job<'_> {
    type Output = Outcome;
    fn run<B: TrainBackend>(mut self, device: B::Device) -> Result<Outcome> {
        pretrain::<B>(self.cfg, self.opts, &device, &mut self.lines)
    }
}

pub fn run(a: PretrainArgs) -> Result<()> {
    let mut cfg = RunConfig::load(&a.config)?;
    if let Some(b) = a.backend {
        cfg.backend = b;
    }
    if let Some(d) = a.device {
        cfg.device = d;
    }
    let opts = PretrainOptions {
        out: a.out.unwrap_or_else(|| default_out_dir(&a.config)),
        resume: a.resume,
        progress: std::io::stdout().is_terminal(),
    };
    let lines = EpochLines {
        stop: super::signal::stop_flag()?,
    };
    let job = Job {
        cfg: &cfg,
        opts: &opts,
        lines,
    };
    let outcome = dispatch(cfg.backend, cfg.device, job)?;
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
