//! QB-Heat Workbench: self-supervised pre-training based on the heat equation
//! ("Self-Supervised Learning based on Heat Equation", Chen et al.), on burn.
//!
//! Data flows one way: config → data → model/train → (store → analysis → TUI/report).

pub mod analysis;
pub mod backend;
pub mod bench;
pub mod config;
pub mod data;
pub mod inspect;
pub mod model;
pub mod probe;
pub mod store;
pub mod sweep;
pub mod train;
