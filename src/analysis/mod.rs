//! Analysis of trained models: generator spectra and spatial feature correlation.

pub mod extract;
pub mod spatial;
pub mod spectrum;
pub mod stored;
