//! Signals: Ctrl-C (SIGINT) and SIGTERM as a flag the long-running verbs poll; SIGPIPE ends
//! the process quietly; a worker's preemption signals (SIGUSR2, and SIGTERM inside a SLURM
//! job) ask it to checkpoint and put its run back in the queue.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use qbheat_workbench::sweep::worker::Signals;

/// A flag that becomes true on Ctrl-C or SIGTERM.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// A worker's flags. SIGUSR2 (SLURM's warning before a time limit or a preemption, sent by
/// `--signal=B:USR2@…`) stops it at a checkpoint and requeues the run as preempted; inside a
/// SLURM job SIGTERM (a preemption's or `scancel`'s) does too. Outside SLURM, Ctrl-C and
/// SIGTERM stop the run as before.
pub fn worker_signals() -> Result<Signals> {
    let stop = stop_flag()?;
    let preempt = Arc::new(AtomicBool::new(false));
    let warned = Arc::new(AtomicBool::new(false));
    let register = |sig: i32, flag: &Arc<AtomicBool>| {
        signal_hook::flag::register(sig, flag.clone())
            .map(|_| ())
            .context("cannot install a signal handler")
    };
    for flag in [&stop, &preempt, &warned] {
        register(signal_hook::consts::SIGUSR2, flag)?;
    }
    if qbheat_workbench::store::claim::slurm_job_id().is_some() {
        for flag in [&stop, &preempt] {
            register(signal_hook::consts::SIGTERM, flag)?;
        }
    }
    Ok(Signals {
        stop,
        preempt,
        warned,
    })
}

/// Output piped into a reader that stops early (`workbench runs | head`) ends the process the
/// way other Unix tools end, by SIGPIPE, instead of a panic in `println!`.
pub fn exit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores SIGPIPE's default disposition; called before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
