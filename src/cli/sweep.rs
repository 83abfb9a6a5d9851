//! `workbench sweep` and the hidden `workbench worker` it starts per run.

use anyhow::Result;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use qbheat_workbench::backend::{check_gpus, Unavailable};
use qbheat_workbench::spec::BackendKind;
use qbheat_workbench::store::{Claim, Status, Store};
use qbheat_workbench::sweep::runner::{self, SweepOptions, STALE_AFTER_S};
use qbheat_workbench::sweep::spec::Sweep;
use qbheat_workbench::sweep::worker;

use super::DbArg;

#[derive(clap::Args)]
pub struct SweepArgs {
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
    /// Print the expanded runs (and how many are already finished) without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Folder for run outputs [default: runs/<sweep name>].
    #[arg(long)]
    runs_dir: Option<PathBuf>,
    /// Seconds without a heartbeat after which a worker is presumed hung or dead: ours are
    /// killed and their runs requeued (workers beat every second).
    #[arg(long, default_value_t = STALE_AFTER_S)]
    stale_after: f64,
    /// Do not write the sweep's report (reports/<sweep>/index.html) when it ends.
    #[arg(long)]
    no_report: bool,
    /// Log file of a sweep started in the background (the TUI's launcher), noted in the store.
    #[arg(long, hide = true)]
    log_file: Option<PathBuf>,
    /// GPUs to spread the runs over, e.g. 0,1: one run per GPU at a time (replaces --jobs);
    /// every run must use backend cuda; each records the GPU it ran on.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<usize>,
    /// Take over run folders whose checkpoints another store watched train (a deleted or
    /// different --db): their loss history is copied from the checkpoints into this store
    /// and the run records what could not be recovered. Without it such a sweep refuses.
    #[arg(long)]
    adopt: bool,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    db: DbArg,
    #[arg(long)]
    run: String,
    /// The attempt the sweep's claim started: every write of the worker is fenced by it.
    #[arg(long)]
    attempt: i64,
    #[arg(long)]
    out: PathBuf,
    /// GPU assigned by the sweep (--devices).
    #[arg(long)]
    device: Option<usize>,
    /// Take over a checkpoint another store watched train.
    #[arg(long)]
    adopt: bool,
}

/// The dry run: each planned run with its grid point and stored status.
fn dry_run(sweep: &Sweep, db: &std::path::Path) -> Result<()> {
    let store = db
        .is_file()
        .then(|| Store::open_read_only(db))
        .transpose()?;
    let known: std::collections::HashMap<String, Status> = match &store {
        Some(s) => s
            .runs(Some(&sweep.name), None)?
            .into_iter()
            .map(|r| (r.id, r.status))
            .collect(),
        None => Default::default(),
    };
    let finished = sweep
        .runs
        .iter()
        .filter(|r| known.get(&r.id) == Some(&Status::Finished))
        .count();
    let axes: Vec<String> = sweep
        .axes
        .iter()
        .map(|(k, v)| format!("{k} = [{}]", v.join(", ")))
        .collect();
    println!(
        "sweep {}: {} runs ({finished} already finished), seeds {:?}, axes: {}",
        sweep.name,
        sweep.runs.len(),
        sweep.seeds,
        axes.join("; ")
    );
    let mut out = String::new();
    for r in &sweep.runs {
        let ov: Vec<String> = r
            .overrides
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let status = known.get(&r.id).map_or("new", |s| s.as_str());
        out.push_str(&format!("{}  {:<8}  {}\n", r.id, status, ov.join(" ")));
    }
    super::emit(&out);
    Ok(())
}

/// `--devices` lists distinct GPUs that exist, for runs that all use backend cuda.
fn check_devices(sweep: &Sweep, devices: &[usize]) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(d) = devices.iter().find(|d| !seen.insert(**d)) {
        return Err(Unavailable(format!("--devices lists GPU {d} twice")).into());
    }
    if let Some(r) = sweep
        .runs
        .iter()
        .find(|r| r.config.backend != BackendKind::Cuda)
    {
        return Err(Unavailable(format!(
            "--devices assigns GPUs, but run {} uses backend {} (set backend = \"cuda\" in [base])",
            r.id,
            r.config.backend.name()
        ))
        .into());
    }
    check_gpus(devices)
}

pub fn run(a: SweepArgs) -> Result<()> {
    anyhow::ensure!(a.jobs >= 1, "--jobs must be at least 1");
    let sweep = Sweep::load(&a.file)?;
    check_devices(&sweep, &a.devices)?;
    let db = a.db.path();
    if a.dry_run {
        return dry_run(&sweep, &db);
    }
    let stop = super::signal::stop_flag()?;
    let opts = SweepOptions {
        db,
        jobs: a.jobs,
        retry_failed: a.retry_failed,
        runs_root: a.runs_dir,
        progress: std::io::stdout().is_terminal(),
        stale_after: a.stale_after,
        log_file: a.log_file,
        devices: a.devices.clone(),
        adopt: a.adopt,
    };
    println!(
        "sweep {}: {} runs, {} at a time, store {}",
        sweep.name,
        sweep.runs.len(),
        a.jobs,
        opts.db.display()
    );
    let report = runner::run(&sweep, &a.file, &opts, stop.clone())?;
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    println!("sweep {}: {}", sweep.name, counts.join(", "));
    if let Ok(store) = Store::open_read_only(&opts.db) {
        if let Ok(table) = qbheat_workbench::views::runs::runs(
            &store,
            Some(&sweep.name),
            None,
            qbheat_workbench::views::Format::Table,
        ) {
            super::emit(&table);
        }
    }
    if stop.load(Ordering::SeqCst) {
        println!("stopped: run the same command again to resume");
    } else if !a.no_report {
        let sel = qbheat_workbench::report::Selection::Sweep(sweep.name.clone());
        match super::report::write(&opts.db, &sel, None) {
            Ok((page, _)) => println!("report: {}", page.display()),
            Err(e) => println!("report not written: {e:#}"),
        }
    }
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} run(s) failed (see `workbench runs --status failed`)",
        report.failed.len()
    );
    Ok(())
}

pub fn worker(a: WorkerArgs) -> Result<()> {
    let stop = super::signal::stop_flag()?;
    let job = worker::Job {
        claim: Claim {
            run: a.run,
            attempt: a.attempt,
        },
        out: a.out,
        device: a.device,
        adopt: a.adopt,
    };
    worker::work(&a.db.path(), &job, stop)
}
