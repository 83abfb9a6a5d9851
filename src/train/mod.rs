//! Training: the pre-training loop, its optimiser, schedule, checkpoints and memory estimate.

pub mod adamw;
pub mod checkpoint;
pub mod monitor;
pub mod objective;
pub mod optim;
pub mod pretrain;
pub mod reconstruction;
pub mod resources;
pub mod schedule;
pub mod seeds;
