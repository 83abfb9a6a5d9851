//! Which quarter of the image stays unmasked (DESIGN §2, paper Tab. 2a).

use serde::{Deserialize, Serialize};

/// Position of the unmasked quarter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Position {
    /// One of the four corners per sample, uniformly (Δ = half the image).
    #[serde(rename = "corner")]
    Corner,
    /// The central quarter (Δ = a quarter of the image).
    #[serde(rename = "center")]
    Center,
    /// Half the batch corner, half centre, with separate generators per scale.
    #[serde(rename = "corner+center")]
    CornerCenter,
}

impl Position {
    pub const ALL: [Position; 3] = [Position::Corner, Position::Center, Position::CornerCenter];

    pub fn name(self) -> &'static str {
        match self {
            Position::Corner => "corner",
            Position::Center => "center",
            Position::CornerCenter => "corner+center",
        }
    }

    /// Scales a position trains (0 = corner, Δ = ½; 1 = centre, Δ = ¼).
    pub fn scales(self) -> &'static [usize] {
        match self {
            Position::Corner => &[0],
            Position::Center => &[1],
            Position::CornerCenter => &[0, 1],
        }
    }
}
