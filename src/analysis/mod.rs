//! Analysis of trained models and stored runs: generator spectra, spatial feature correlation,
//! run progress.

pub mod ablation;
pub mod extract;
pub mod progress;
pub mod spatial;
pub mod spectrum;
pub mod stored;
