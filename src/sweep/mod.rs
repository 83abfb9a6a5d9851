//! Sweeps: expansion of ablation files into runs, and their crash-safe execution.

pub mod binding;
pub mod legacy;
pub mod progress;
pub mod runner;
pub mod slurm;
pub mod spec;
pub mod worker;
