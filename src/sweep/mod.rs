//! Sweeps: expansion of ablation files into runs, and their crash-safe execution.

pub mod binding;
pub mod early_stop;
pub mod legacy;
pub mod progress;
pub mod reprobe;
pub mod runner;
pub mod search;
pub mod slurm;
pub mod spec;
pub mod worker;
