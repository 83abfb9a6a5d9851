//! A memory estimate of a run, checked before anything large is allocated: a config that
//! cannot fit (a typo such as `train_size = 10000000000`) is refused with the figure instead of
//! aborting on an allocation.

use anyhow::Result;

use crate::config::{DataSource, RunConfig};

/// Estimated peak bytes of a pre-training run, by part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Decoded training and validation images (f32).
    pub data: f64,
    /// Parameters, their gradients and AdamW's two moments.
    pub model: f64,
    /// Activations of one batch kept for the backward pass.
    pub activations: f64,
}

impl MemoryEstimate {
    pub fn total(&self) -> f64 {
        self.data + self.model + self.activations
    }
}

/// Rough (within a small factor) memory need of `cfg`, computed in f64 so that no product of
/// configured sizes can overflow.
pub fn estimate(cfg: &RunConfig) -> MemoryEstimate {
    let f = |x: usize| x as f64;
    let spec = cfg.model.preset.spec();
    let d = &cfg.data;
    let image = f(d.channels) * f(d.image_size).powi(2) * 4.0;
    let images = match d.source {
        DataSource::Builtin => {
            f(d.train_size
                .unwrap_or(crate::config::DataConfig::BUILTIN_TRAIN))
                + f(d.val_size.unwrap_or(crate::config::DataConfig::BUILTIN_VAL))
        }
        _ => d.train_size.map_or(0.0, f) + d.val_size.map_or(0.0, f),
    };
    let data = images * image;

    // parameters: encoder blocks (pw, dw, pw, dynamic-ReLU MLP, bridges), predictor, decoder
    let t = f(spec.token_dim);
    let mut enc = f(spec.stem) * 27.0 + f(spec.lite_out) * (9.0 + f(spec.stem));
    let mut c_in = f(spec.lite_out);
    for b in &spec.blocks {
        let (e, o) = (f(b.expand), f(b.out));
        enc += c_in * e + 9.0 * e + e * o + t / 4.0 * 8.0 * e + 2.0 * t * (c_in + o) + 12.0 * t * t;
        c_in = o;
    }
    enc += c_in * f(spec.wide);
    let p = &cfg.predictor;
    let scales = f(cfg.masking.position.scales().len());
    let predictor = f(p.dim) * f(spec.wide) + f(p.dim).powi(2) * f(p.models.count()) * scales;
    let dec = &cfg.decoder;
    let decoder = f(dec.dim) * f(p.dim)
        + f(dec.depth) * f(dec.dim).powi(2) * (4.0 + 2.0 * f(dec.mlp_ratio))
        + f(dec.dim) * f(spec.stride).powi(2) * f(d.channels);
    let model = (enc + predictor + decoder) * 4.0 * 4.0;

    // activations of one batch: encoder maps on the quarter, predicted grid, decoder tokens
    let batch = f(cfg.train.batch_size);
    let half = f(d.image_size) / 2.0;
    let mut side = half / 2.0;
    let mut enc_act = f(spec.stem) * side * side * 4.0;
    for b in &spec.blocks {
        let out_side = side / f(b.stride);
        enc_act += f(b.expand) * (side * side + out_side * out_side) * 6.0;
        side = out_side;
    }
    let cells = (f(d.image_size) / f(spec.stride)).powi(2);
    let grid = cells * f(p.dim) * 4.0;
    let dec_act = f(dec.depth)
        * (cells * f(dec.dim) * (8.0 + 2.0 * f(dec.mlp_ratio))
            + f(dec.heads) * cells * cells * 3.0);
    let activations = batch * (enc_act + grid + dec_act) * 4.0;
    MemoryEstimate {
        data,
        model,
        activations,
    }
}

/// Physical memory of this machine in bytes (`None` where /proc is missing).
pub fn machine_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

fn gib(bytes: f64) -> String {
    if bytes >= 1024f64.powi(4) * 1024.0 {
        format!("{:.1e} GiB", bytes / 1024f64.powi(3))
    } else {
        format!("{:.1} GiB", bytes / 1024f64.powi(3))
    }
}

/// Refuses a run whose estimated memory exceeds this machine's.
pub fn check_memory(cfg: &RunConfig) -> Result<()> {
    let Some(available) = machine_memory() else {
        return Ok(());
    };
    let e = estimate(cfg);
    if e.total() > available {
        anyhow::bail!(
            "this run needs an estimated {} of memory (data {}, model and optimiser {}, \
             activations of one batch of {} {}), more than this machine's {}; lower \
             data.train_size, data.image_size, train.batch_size, predictor.dim or the decoder size",
            gib(e.total()),
            gib(e.data),
            gib(e.model),
            cfg.train.batch_size,
            gib(e.activations),
            gib(available)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_runs_fit_and_huge_ones_are_refused() {
        let cfg = RunConfig::default();
        let e = estimate(&cfg);
        assert!(e.total() < 2e9, "{e:?}");
        assert!(check_memory(&cfg).is_ok());
        let mut huge = cfg.clone();
        huge.data.train_size = Some(90_000_000);
        huge.data.image_size = 2048;
        let err = check_memory(&huge).unwrap_err().to_string();
        assert!(
            err.contains("needs an estimated") && err.contains("GiB"),
            "{err}"
        );
        let mut batch = cfg.clone();
        batch.train.batch_size = 1 << 20;
        batch.data.image_size = 256;
        assert!(check_memory(&batch).is_err());
    }
}
