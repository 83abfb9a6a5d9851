//! What a run evaluates: QB-Heat pre-training or one of the baselines.

use serde::{Deserialize, Serialize};

/// The method of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// QB-Heat pre-training, then the probes.
    #[serde(rename = "qbheat")]
    QbHeat,
    /// Probe an untrained encoder (baseline).
    #[serde(rename = "random-init")]
    RandomInit,
    /// Train encoder + tran-1 head with labels (baseline; `probe.finetune_epochs`).
    #[serde(rename = "supervised")]
    Supervised,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::QbHeat => "qbheat",
            Method::RandomInit => "random-init",
            Method::Supervised => "supervised",
        }
    }
}
