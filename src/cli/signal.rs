//! Signals: Ctrl-C (SIGINT) and SIGTERM as a flag the long-running verbs poll; SIGPIPE ends
//! the process quietly.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag that becomes true on Ctrl-C or SIGTERM.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
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
