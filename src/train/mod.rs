//! Training: the pre-training loop, its schedule and checkpoints.

pub mod checkpoint;
pub mod pretrain;
pub mod schedule;
