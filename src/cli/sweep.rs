//! `workbench sweep` and the hidden `workbench worker` it starts per run.

use anyhow::Result;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use qbheat_workbench::backend::{check_gpus, Unavailable};
use qbheat_workbench::spec::BackendKind;
use qbheat_workbench::store::{Claim, Locator, Status, Store};
use qbheat_workbench::sweep::runner::{self, SweepOptions, SweepReport, STALE_AFTER_S};
use qbheat_workbench::sweep::slurm::{self, SlurmOptions};
use qbheat_workbench::sweep::spec::Sweep;
use qbheat_workbench::sweep::worker;

use super::DbArg;

#[derive(clap::Args)]
pub struct SweepArgs {
    /// Sweep file (TOML with [base], [grid] / [[grids]], seeds, [[runs]]).
    file: PathBuf,
    /// Runs executed at once, each in its own process [default: 1]; with `--executor slurm`,
    /// the array's throttle (`--array=…%P`) [default: none].
    #[arg(long)]
    jobs: Option<usize>,
    /// Where runs execute: `local` (child processes of this command) or `slurm` (one SLURM
    /// job array; use a PostgreSQL store, and a runs folder every node mounts).
    #[arg(long, default_value = "local", value_parser = ["local", "slurm"])]
    executor: String,
    /// SLURM: time limit of each task (`sbatch --time`).
    #[arg(long)]
    time: Option<String>,
    /// SLURM: partition (`sbatch --partition`).
    #[arg(long)]
    partition: Option<String>,
    /// SLURM: generic resources per task, e.g. gpu:1 (`sbatch --gres`).
    #[arg(long)]
    gres: Option<String>,
    /// SLURM: a further sbatch argument (repeatable), e.g. --sbatch-arg=--qos=low.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// SLURM: wait until every run has ended, resubmitting runs whose task died.
    #[arg(long)]
    wait: bool,
    /// SLURM: P agent tasks that each claim the next queued run until none is left, instead of
    /// one task per run (sweeps larger than the cluster's MaxArraySize).
    #[arg(long)]
    agents: Option<usize>,
    /// SLURM: seconds before the time limit at which tasks get SIGUSR2 (they checkpoint and
    /// requeue themselves).
    #[arg(long, default_value_t = 90)]
    signal_lead: u32,
    #[command(flatten)]
    db: DbArg,
    /// Run failed runs again (they resume from their last checkpoint).
    #[arg(long)]
    retry_failed: bool,
    /// Print the expanded runs (and how many are already finished) without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Run every point of the file to the end, ignoring its [early_stop], as the sweep
    /// `<name>-full` (the runs of a search without early stopping, to compare with it).
    #[arg(long)]
    no_early_stop: bool,
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
    /// The run a local sweep claimed for this worker.
    #[arg(long, required_unless_present = "sweep", requires_all = ["attempt", "out"])]
    run: Option<String>,
    /// The claim number the sweep's claim started: every write of the worker is fenced by it.
    #[arg(long)]
    attempt: Option<i64>,
    #[arg(long)]
    out: Option<PathBuf>,
    /// A SLURM task's worker: the sweep whose run it claims itself (with --task or --agent).
    #[arg(long, conflicts_with = "run")]
    sweep: Option<String>,
    /// The array task whose frozen run this worker claims ($SLURM_ARRAY_TASK_ID).
    #[arg(long, requires = "sweep", conflicts_with = "agent")]
    task: Option<i64>,
    /// Claim queued runs of --sweep one after another until none is left.
    #[arg(long, requires = "sweep")]
    agent: bool,
    /// GPU assigned by the sweep (--devices).
    #[arg(long)]
    device: Option<usize>,
    /// Take over a checkpoint another store watched train.
    #[arg(long)]
    adopt: bool,
}

/// The dry run: each planned run with its grid point and stored status.
fn dry_run(sweep: &Sweep, db: &Locator) -> Result<()> {
    // a store that does not exist yet has no runs (nothing is created by a dry run)
    let store = Store::exists(db)?
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
    let count = |status: Status| {
        sweep
            .runs
            .iter()
            .filter(|r| known.get(&r.id) == Some(&status))
            .count()
    };
    let (finished, pruned) = (count(Status::Finished), count(Status::Pruned));
    let pruned = if pruned > 0 {
        format!(", {pruned} pruned")
    } else {
        String::new()
    };
    // finished runs whose planned probes are not all stored: probed again, not pre-trained
    let configs: Vec<&qbheat_workbench::config::RunConfig> =
        sweep.runs.iter().map(|r| &r.config).collect();
    let again = match &store {
        Some(s) => qbheat_workbench::sweep::reprobe::to_probe_again(s, &configs)?,
        None => Default::default(),
    };
    let pruned = if again.is_empty() {
        pruned
    } else {
        format!("{pruned}, {} to probe again", again.len())
    };
    let axes: Vec<String> = sweep
        .axes
        .iter()
        .map(|(k, v)| format!("{k} = [{}]", v.join(", ")))
        .collect();
    println!(
        "sweep {}: {} runs ({finished} already finished{pruned}), seeds {:?}, axes: {}",
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
        let status = if again.contains(&r.id) {
            "reprobe"
        } else {
            known.get(&r.id).map_or("new", |s| s.as_str())
        };
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
    anyhow::ensure!(a.jobs != Some(0), "--jobs must be at least 1");
    anyhow::ensure!(a.agents != Some(0), "--agents must be at least 1");
    let slurm = a.executor == "slurm";
    anyhow::ensure!(
        slurm
            || (a.agents.is_none()
                && !a.wait
                && a.time.is_none()
                && a.partition.is_none()
                && a.gres.is_none()
                && a.sbatch_args.is_empty()),
        "--agents, --wait, --time, --partition, --gres and --sbatch-arg need --executor slurm"
    );
    let jobs = a.jobs.unwrap_or(1);
    let mut sweep = Sweep::load(&a.file)?;
    if a.no_early_stop {
        sweep = sweep.without_early_stop();
    }
    check_devices(&sweep, &a.devices)?;
    let db = a.db.locator();
    if a.dry_run {
        return dry_run(&sweep, &db);
    }
    let stop = super::signal::stop_flag()?;
    let opts = SweepOptions {
        db,
        jobs,
        retry_failed: a.retry_failed,
        runs_root: a.runs_dir,
        progress: std::io::stdout().is_terminal(),
        stale_after: a.stale_after,
        log_file: a.log_file,
        devices: a.devices.clone(),
        adopt: a.adopt,
    };
    if slurm {
        let slurm_opts = SlurmOptions {
            throttle: a.jobs,
            time: a.time,
            partition: a.partition,
            gres: a.gres,
            sbatch_args: a.sbatch_args,
            wait: a.wait,
            agents: a.agents,
            signal_lead: a.signal_lead,
        };
        println!(
            "sweep {}: {} runs on SLURM, store {}",
            sweep.name,
            sweep.runs.len(),
            opts.db
        );
        let report = slurm::run(&sweep, &a.file, &opts, &slurm_opts, stop)?;
        print_counts(&sweep.name, &report);
        if slurm_opts.wait && !a.no_report {
            let sel = qbheat_workbench::report::Selection::Sweep(sweep.name.clone());
            match super::report::write(&opts.db, &sel, None) {
                Ok((page, _)) => println!("report: {}", page.display()),
                Err(e) => println!("report not written: {e:#}"),
            }
        }
        return no_failures(&report);
    }
    println!(
        "sweep {}: {} runs, {jobs} at a time, store {}",
        sweep.name,
        sweep.runs.len(),
        opts.db
    );
    let report = runner::run(&sweep, &a.file, &opts, stop.clone())?;
    print_counts(&sweep.name, &report);
    if let Ok(store) = Store::open_read_only(&opts.db) {
        if let Ok(table) = qbheat_workbench::views::runs::runs(
            &store,
            Some(&sweep.name),
            None,
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
    no_failures(&report)
}

/// `sweep NAME: 2 finished, 1 failed`.
fn print_counts(name: &str, report: &SweepReport) {
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    println!("sweep {name}: {}", counts.join(", "));
}

/// The sweep's exit status: an error naming how many runs failed.
fn no_failures(report: &SweepReport) -> Result<()> {
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} run(s) failed (see `workbench runs --status failed`)",
        report.failed.len()
    );
    Ok(())
}

pub fn worker(a: WorkerArgs) -> Result<()> {
    let signals = super::signal::worker_signals()?;
    let db = a.db.locator();
    let Some(sweep) = a.sweep else {
        let (Some(run), Some(attempt), Some(out)) = (a.run, a.attempt, a.out) else {
            anyhow::bail!("a worker needs --run, --attempt and --out, or --sweep");
        };
        let job = worker::Job {
            claim: Claim { run, attempt },
            out,
            device: a.device,
            adopt: a.adopt,
        };
        return worker::work(&db, &job, &signals);
    };
    anyhow::ensure!(
        a.task.is_some() || a.agent,
        "--sweep needs --task N or --agent"
    );
    loop {
        let mut store = Store::open_existing(&db)?;
        let Some(mut job) = slurm::claim_for_task(&mut store, &sweep, a.task)? else {
            println!("sweep {sweep}: nothing left to claim");
            return Ok(());
        };
        drop(store);
        job.device = a.device;
        println!(
            "worker: run {} (claim {})",
            job.claim.run, job.claim.attempt
        );
        worker::work(&db, &job, &signals)?;
        if a.task.is_some() || signals.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}
