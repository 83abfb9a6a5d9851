//! The decoder probes of paper Sec. 5 (Tab. 10–12).

use serde::{Deserialize, Serialize};

/// A probe kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProbeKind {
    #[serde(rename = "lin")]
    Lin,
    #[serde(rename = "tran-1")]
    Tran1,
    #[serde(rename = "finetune")]
    Finetune,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [ProbeKind::Lin, ProbeKind::Tran1, ProbeKind::Finetune];

    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Lin => "lin",
            ProbeKind::Tran1 => "tran-1",
            ProbeKind::Finetune => "finetune",
        }
    }
}
