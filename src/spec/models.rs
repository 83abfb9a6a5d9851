//! Number of explicit linear models of the predictor (paper Fig. 5, Tab. 2b).

use serde::{Deserialize, Serialize};

/// 2 (Ā, B̄ of Eq. 5, the rest derived by Appendix A), 4 or 8 explicit models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum Models {
    Two,
    Four,
    Eight,
}

impl TryFrom<i64> for Models {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        match v {
            2 => Ok(Models::Two),
            4 => Ok(Models::Four),
            8 => Ok(Models::Eight),
            other => Err(format!(
                "invalid number of linear models {other}, expected one of 2, 4, 8"
            )),
        }
    }
}

impl From<Models> for i64 {
    fn from(m: Models) -> i64 {
        m.count() as i64
    }
}

impl Models {
    pub fn count(self) -> usize {
        match self {
            Models::Two => 2,
            Models::Four => 4,
            Models::Eight => 8,
        }
    }
}
