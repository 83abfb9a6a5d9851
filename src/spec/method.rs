//! What a run evaluates: QB-Heat pre-training or one of the baselines.

use serde::{Deserialize, Serialize};

/// The method of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// QB-Heat pre-training, then the probes.
    #[serde(rename = "qbheat")]
    QbHeat,
    /// MoCo-v2 pre-training (contrastive baseline, `[moco]`), then the probes.
    #[serde(rename = "moco-v2")]
    MocoV2,
    /// Probe an untrained encoder (baseline).
    #[serde(rename = "random-init")]
    RandomInit,
    /// Train encoder + tran-1 head with labels (baseline; `probe.finetune_epochs`).
    #[serde(rename = "supervised")]
    Supervised,
}

impl Method {
    /// Whether the method pre-trains an encoder (and so has epochs, checkpoints, a monitor).
    pub fn pretrains(self) -> bool {
        matches!(self, Method::QbHeat | Method::MocoV2)
    }

    /// Whether a setting (dotted key) changes what a run of this method does: QB-Heat's
    /// masking, predictor, decoder, loss and spectra mean nothing to the other methods,
    /// `[moco]` only to MoCo-v2, `[train]` nothing to the baselines (which do not pre-train).
    pub fn uses(self, key: &str) -> bool {
        let table = key.split('.').next().unwrap_or(key);
        let qbheat_only = matches!(table, "masking" | "predictor" | "decoder" | "loss")
            || key == "analysis.spectrum_every";
        match self {
            Method::QbHeat => table != "moco",
            Method::MocoV2 => !qbheat_only,
            Method::RandomInit | Method::Supervised => {
                !qbheat_only
                    && table != "moco"
                    && table != "train"
                    && !key.starts_with("analysis.monitor")
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::QbHeat => "qbheat",
            Method::MocoV2 => "moco-v2",
            Method::RandomInit => "random-init",
            Method::Supervised => "supervised",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_uses_its_own_settings() {
        assert!(Method::QbHeat.uses("predictor.dim") && !Method::QbHeat.uses("moco.queue"));
        assert!(Method::MocoV2.uses("moco.queue") && Method::MocoV2.uses("train.epochs"));
        assert!(
            !Method::MocoV2.uses("decoder.depth")
                && !Method::MocoV2.uses("analysis.spectrum_every")
        );
        assert!(
            !Method::RandomInit.uses("train.epochs") && Method::RandomInit.uses("probe.lin_epochs")
        );
        assert!(Method::Supervised.uses("data.image_size") && Method::Supervised.uses("seed"));
    }
}
