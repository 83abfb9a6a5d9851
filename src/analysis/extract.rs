//! Pulls the learned generators out of a model as host matrices, per scale.

use burn::tensor::backend::Backend;
use nalgebra::DMatrix;

use super::spectrum::{scale_spectrum, ScaleSpectrum};
use crate::model::masking::Quarter;
use crate::model::qbheat::QbHeat;

/// Scale name and step Δ (fraction of the image side) of a scale index.
pub fn scale_info(scale: usize) -> (&'static str, f64) {
    match scale {
        0 => (
            "corner",
            Quarter::Corner { row: 0, col: 0 }.delta_fraction(),
        ),
        _ => ("center", Quarter::Center.delta_fraction()),
    }
}

/// Named scaled generators (Ā, B̄, …) of one scale.
pub type NamedMatrices = Vec<(String, DMatrix<f64>)>;

/// (scale name, Δ, generators) for every scale the model uses.
pub fn generators<B: Backend>(model: &QbHeat<B>) -> Vec<(&'static str, f64, NamedMatrices)> {
    let p = &model.predictor;
    (0..2)
        .filter(|&s| p.scale_slot[s] != usize::MAX)
        .map(|s| {
            let (name, delta) = scale_info(s);
            let mats = p.scales[p.scale_slot[s]]
                .named()
                .into_iter()
                .map(|(n, t)| {
                    let [r, c] = t.dims();
                    let v = t
                        .into_data()
                        .convert::<f64>()
                        .to_vec::<f64>()
                        .expect("f64 data");
                    (n, DMatrix::from_row_slice(r, c, &v))
                })
                .collect();
            (name, delta, mats)
        })
        .collect()
}

/// Spectra of every scale of a model (matrices decomposed in parallel).
pub fn spectra<B: Backend>(model: &QbHeat<B>) -> Vec<ScaleSpectrum> {
    use rayon::prelude::*;
    generators(model)
        .par_iter()
        .map(|(name, delta, mats)| scale_spectrum(name, *delta, mats))
        .collect()
}
