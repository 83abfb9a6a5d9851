//! `workbench bench-spectrum`: the spectrum analysis of every generator of a fresh model.

use anyhow::Result;
use std::time::Instant;

use crate::config::RunConfig;
use crate::model::qbheat::QbHeat;

/// Seconds to compute every spectrum of a fresh `cfg` model (generators drawn with a large
/// init_std so they are generic dense matrices), and the number of matrices.
pub fn spectrum(cfg: &RunConfig) -> Result<(f64, usize)> {
    let model = QbHeat::<crate::backend::Cpu>::new(cfg, 3, &Default::default());
    let t = Instant::now();
    let spectra = crate::analysis::extract::spectra(&model)?;
    let secs = t.elapsed().as_secs_f64();
    let n = spectra.iter().map(|s| s.matrices.len()).sum();
    anyhow::ensure!(
        spectra.iter().all(|s| s.energy_ratio.is_finite()),
        "non-finite energy ratio"
    );
    Ok((secs, n))
}
