//! Small, tensor-free vocabulary shared by every layer: which quarter stays visible, how many
//! linear models, which backend, method and probe, and the encoder presets (paper Tab. 8).
//!
//! This module imports nothing from the crate, so config, data, model, store and the CLI can
//! all use it without forming a cycle.

pub mod backend_kind;
pub mod method;
pub mod models;
pub mod position;
pub mod preset;
pub mod probe_kind;

pub use backend_kind::BackendKind;
pub use method::Method;
pub use models::Models;
pub use position::Position;
pub use preset::{BlockSpec, Preset, PresetSpec};
pub use probe_kind::ProbeKind;

/// Parses a name the way the config files spell it (`"corner+center"`, `"mf-285m"`, …);
/// the error lists every valid name.
pub fn parse_name<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_errors_list_the_choices() {
        assert_eq!(
            parse_name::<Position>("corner+center").unwrap(),
            Position::CornerCenter
        );
        assert_eq!(parse_name::<Preset>("mf-tiny").unwrap(), Preset::MfTiny);
        assert_eq!(parse_name::<ProbeKind>("tran-1").unwrap(), ProbeKind::Tran1);
        let e = parse_name::<Preset>("resnet").unwrap_err();
        for p in Preset::ALL {
            assert!(e.contains(p.name()), "{e}");
        }
    }
}
