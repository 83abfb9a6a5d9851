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

    pub fn name(self) -> &'static str {
        match self {
            Method::QbHeat => "qbheat",
            Method::MocoV2 => "moco-v2",
            Method::RandomInit => "random-init",
            Method::Supervised => "supervised",
        }
    }
}
