//! Spectra of a model's learned generators, per scale.

use anyhow::Result;

use super::spectrum::{scale_spectrum, ScaleSpectrum};
use crate::model::predictor::HostGenerators;
use crate::model::qbheat::QbHeat;

/// Spectra of host copies of the generators (scales decomposed in parallel).
pub fn spectra_of(generators: &[HostGenerators]) -> Result<Vec<ScaleSpectrum>> {
    use rayon::prelude::*;
    generators
        .par_iter()
        .map(|g| scale_spectrum(g.scale, g.delta, &g.matrices))
        .collect()
}

/// Spectra of every scale a model trains.
pub fn spectra<B: crate::kernels::Kernels>(model: &QbHeat<B>) -> Result<Vec<ScaleSpectrum>> {
    spectra_of(&model.predictor.host_generators())
}
