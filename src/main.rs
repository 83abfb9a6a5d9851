//! The `workbench` binary: parses the command line, dispatches to the verb and maps errors to
//! exit codes (2 for a bad config or usage, 1 for everything else). Every error is one line.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod cli;

use clap::Parser;
use std::process::ExitCode;

use qbheat_workbench::backend::Unavailable;
use qbheat_workbench::config::ConfigError;

fn main() -> ExitCode {
    qbheat_workbench::backend::keep_freed_memory();
    qbheat_workbench::threads::train_on_main_thread();
    cli::signal::exit_quietly_on_closed_pipe();
    let args = cli::Cli::parse();
    if let Err(e) = qbheat_workbench::simd::init() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match cli::dispatch(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<Unavailable>().is_some();
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
