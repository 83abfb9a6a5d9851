//! Semantic checks of a run config that serde cannot express: ranges, finiteness, divisibility
//! and upper bounds that keep a typo (`dim = 1000000`) from reaching an allocation.

use super::{DataSource, RunConfig};
use crate::masking::check_image_size;

/// Largest accepted values: far beyond anything that trains on one machine, small enough that
/// no size computed from them overflows.
pub const MAX_IMAGE: usize = 4096;
pub const MAX_IMAGES: usize = 100_000_000;
pub const MAX_WIDTH: usize = 16_384;
pub const MAX_DEPTH: usize = 64;
pub const MAX_RATIO: usize = 64;
pub const MAX_EPOCHS: usize = 1_000_000;
pub const MAX_BATCH: usize = 1 << 20;

/// Collects the first failed check as (dotted key, message).
#[derive(Default)]
struct Checks {
    first: Option<(String, String)>,
}

impl Checks {
    fn fail(&mut self, key: &str, msg: impl Into<String>) {
        if self.first.is_none() {
            self.first = Some((key.to_string(), msg.into()));
        }
    }

    /// An integer in `lo..=hi`.
    fn int(&mut self, key: &str, v: usize, lo: usize, hi: usize) {
        if v < lo {
            self.fail(key, format!("must be at least {lo}"));
        } else if v > hi {
            self.fail(
                key,
                format!("{v} is larger than the supported maximum {hi}"),
            );
        }
    }

    /// A finite number in `[lo, hi]` (open at an end where `open_lo` / `open_hi`).
    fn real(&mut self, key: &str, v: f64, lo: f64, hi: f64, open_lo: bool, open_hi: bool) {
        let below = if open_lo { v <= lo } else { v < lo };
        let above = if open_hi { v >= hi } else { v > hi };
        if !v.is_finite() {
            self.fail(key, format!("must be a finite number, not {v}"));
        } else if below || above {
            let l = if open_lo { "(" } else { "[" };
            let r = if open_hi { ")" } else { "]" };
            let hi_s = if hi.is_infinite() {
                "∞".to_string()
            } else {
                hi.to_string()
            };
            self.fail(key, format!("{v} must lie in {l}{lo}, {hi_s}{r}"));
        }
    }

    /// A finite number ≥ 0.
    fn non_negative(&mut self, key: &str, v: f64) {
        self.real(key, v, 0.0, f64::INFINITY, false, true);
    }

    /// A finite number > 0.
    fn positive(&mut self, key: &str, v: f64) {
        self.real(key, v, 0.0, f64::INFINITY, true, true);
    }

    fn finish(self) -> Result<(), (String, String)> {
        self.first.map_or(Ok(()), Err)
    }
}

/// Every check of [`RunConfig::validate`].
pub fn run_config(cfg: &RunConfig) -> Result<(), (String, String)> {
    let mut c = Checks::default();
    let d = &cfg.data;
    c.int("data.image_size", d.image_size, 1, MAX_IMAGE);
    if let Some(n) = d.train_size {
        c.int("data.train_size", n, 1, MAX_IMAGES);
    }
    if let Some(n) = d.val_size {
        c.int("data.val_size", n, 1, MAX_IMAGES);
    }
    if !matches!(d.channels, 1 | 3) {
        c.fail("data.channels", "must be 1 or 3");
    }
    if d.source != DataSource::Builtin && d.path.is_none() {
        c.fail("data.source", "needs data.path (the data set folder)");
    }
    c.real("data.val_fraction", d.val_fraction, 0.0, 1.0, true, true);

    let p = &cfg.predictor;
    c.int("predictor.dim", p.dim, 1, MAX_WIDTH);
    c.non_negative("predictor.init_std", p.init_std);

    let dec = &cfg.decoder;
    c.int("decoder.dim", dec.dim, 4, MAX_WIDTH);
    c.int("decoder.depth", dec.depth, 0, MAX_DEPTH);
    c.int("decoder.heads", dec.heads, 1, MAX_WIDTH);
    c.int("decoder.mlp_ratio", dec.mlp_ratio, 1, MAX_RATIO);
    if !dec.dim.is_multiple_of(4) {
        c.fail(
            "decoder.dim",
            "must be divisible by 4 (2-D sin-cos position embedding)",
        );
    }
    if dec.heads > 0 && !dec.dim.is_multiple_of(dec.heads) {
        c.fail(
            "decoder.heads",
            format!(
                "decoder.dim {} is not divisible by {} heads",
                dec.dim, dec.heads
            ),
        );
    }

    let t = &cfg.train;
    c.int("train.epochs", t.epochs, 1, MAX_EPOCHS);
    c.int("train.batch_size", t.batch_size, 1, MAX_BATCH);
    c.positive("train.base_lr", t.base_lr);
    c.non_negative("train.min_lr", t.min_lr);
    c.non_negative("train.weight_decay", t.weight_decay);
    c.non_negative("train.warmup_epochs", t.warmup_epochs);
    c.real("train.beta2", t.beta2, 0.0, 1.0, true, true);
    let [lo, hi] = t.crop_scale;
    if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi && hi <= 1.0) {
        c.fail(
            "train.crop_scale",
            "must be [lo, hi] with 0 < lo <= hi <= 1",
        );
    }

    let pr = &cfg.probe;
    c.int("probe.batch_size", pr.batch_size, 1, MAX_BATCH);
    if let Some(n) = pr.train_size {
        c.int("probe.train_size", n, 1, MAX_IMAGES);
    }
    c.int("probe.lin_epochs", pr.lin_epochs, 1, MAX_EPOCHS);
    c.positive("probe.lin_base_lr", pr.lin_base_lr);
    c.non_negative("probe.lin_weight_decay", pr.lin_weight_decay);
    c.non_negative("probe.lin_warmup_epochs", pr.lin_warmup_epochs);
    c.int("probe.tran_epochs", pr.tran_epochs, 1, MAX_EPOCHS);
    if let Some(w) = pr.tran_width {
        c.int("probe.tran_width", w, 1, MAX_WIDTH);
    }
    for &w in &pr.tran_widths {
        c.int("probe.tran_widths", w, 1, MAX_WIDTH);
    }
    c.int("probe.tran_depth", pr.tran_depth, 1, 64);
    c.positive("probe.tran_base_lr", pr.tran_base_lr);
    c.non_negative("probe.tran_weight_decay", pr.tran_weight_decay);
    if let Some(p) = pr.tran_dropout {
        c.real("probe.tran_dropout", p, 0.0, 1.0, false, true);
    }
    c.non_negative("probe.tran_warmup_epochs", pr.tran_warmup_epochs);
    c.real(
        "probe.label_smoothing",
        pr.label_smoothing,
        0.0,
        1.0,
        false,
        true,
    );
    c.int("probe.finetune_epochs", pr.finetune_epochs, 1, MAX_EPOCHS);
    c.positive("probe.finetune_base_lr", pr.finetune_base_lr);
    c.non_negative("probe.finetune_weight_decay", pr.finetune_weight_decay);
    c.non_negative("probe.finetune_warmup_epochs", pr.finetune_warmup_epochs);
    c.real(
        "probe.finetune_dropout",
        pr.finetune_dropout,
        0.0,
        1.0,
        false,
        true,
    );
    if let Some(ld) = pr.layer_decay {
        c.real("probe.layer_decay", ld, 0.0, 1.0, false, false);
    }

    let m = &cfg.moco;
    c.int("moco.queue", m.queue, 1, MAX_IMAGES);
    if cfg.method == crate::spec::Method::MocoV2 && !m.queue.is_multiple_of(t.batch_size.max(1)) {
        c.fail(
            "moco.queue",
            format!(
                "must be a multiple of train.batch_size ({}): each step replaces one batch of keys",
                t.batch_size
            ),
        );
    }
    c.real("moco.momentum", m.momentum, 0.0, 1.0, false, true);
    c.positive("moco.temperature", m.temperature);
    c.int("moco.proj_dim", m.proj_dim, 1, MAX_WIDTH);
    if let Some(h) = m.proj_hidden {
        c.int("moco.proj_hidden", h, 1, MAX_WIDTH);
    }
    let [lo, hi] = m.crop_scale;
    if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi && hi <= 1.0) {
        c.fail("moco.crop_scale", "must be [lo, hi] with 0 < lo <= hi <= 1");
    }
    c.real("moco.jitter", m.jitter, 0.0, 1.0, false, false);
    for (key, p) in [
        ("moco.jitter_p", m.jitter_p),
        ("moco.grey_p", m.grey_p),
        ("moco.blur_p", m.blur_p),
    ] {
        c.real(key, p, 0.0, 1.0, false, false);
    }
    c.int("moco.key_bn_groups", m.key_bn_groups, 1, MAX_BATCH);

    let a = &cfg.analysis;
    c.int("analysis.monitor_train", a.monitor_train, 1, MAX_IMAGES);
    c.int("analysis.monitor_val", a.monitor_val, 1, MAX_IMAGES);
    if let Some(es) = &cfg.early_stop {
        if let Err((key, msg)) = es.check(t.epochs, a.monitor_every) {
            c.fail(&key, msg);
        }
    }

    if c.first.is_none() {
        let stride = cfg.model.preset.spec().stride;
        if let Err(msg) = check_image_size(d.image_size, stride) {
            c.fail("data.image_size", msg);
        }
    }
    c.finish()
}
