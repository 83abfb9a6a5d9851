//! Analysis of trained models and stored runs: generator spectra, spatial feature correlation,
//! run progress, the pictures a run stores (reconstructions, attention maps), the feature
//! monitor (kNN, effective rank) and collapse health.

pub mod ablation;
pub mod attention;
pub mod collapse;
pub mod export;
pub mod extract;
pub mod monitor;
pub mod paper;
pub mod progress;
pub mod raster;
pub mod reconstruction;
pub mod reference;
pub mod spatial;
pub mod spectrum;
pub mod stored;
