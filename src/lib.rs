//! QB-Heat Workbench: self-supervised pre-training based on the heat equation
//! ("Self-Supervised Learning based on Heat Equation", Chen et al.), on burn.
//!
//! Data flows one way: config → data → model/train → store → analysis → views / TUI / report.
//! Leaves (`spec`, `masking`, `curve`, `liveness`, `simd`) import nothing of the crate but `spec`;
//! nothing below `store` reads the store, and only `store` runs SQL.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod analysis;
pub mod backend;
pub mod bench;
pub mod config;
pub mod curve;
pub mod data;
pub mod kernels;
pub mod liveness;
pub mod masking;
pub mod model;
pub mod probe;
pub mod report;
pub mod simd;
pub mod spec;
pub mod store;
pub mod sweep;
pub mod threads;
pub mod train;
pub mod tui;
pub mod views;
