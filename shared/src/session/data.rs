//! What a provider keeps on a session beyond the common model.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A provider's own facts about a session (Prove's masked number and possession deadline,
/// Authento's track, a document check's outcome): typed by the provider that owns them (its
/// `Serialize`/`Deserialize` struct), opaque to the domain and the store, which keep them as one
/// value. Empty for a provider that keeps nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderData(Map<String, Value>);

impl ProviderData {
    /// The data of a provider's struct (which must serialize as an object).
    pub fn of<T: Serialize>(value: &T) -> Self {
        match serde_json::to_value(value) {
            Ok(Value::Object(map)) => Self(map),
            _ => Self::default(),
        }
    }

    /// The provider's struct back; an empty value reads as the struct of no fields set.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(Value::Object(self.0.clone())).map_err(|e| e.to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As stored: one JSON object.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        match serde_json::from_str(json) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err("provider data is not an object".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Mine {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        word: Option<String>,
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn a_providers_struct_round_trips_and_empty_reads_as_nothing_set() {
        let d = ProviderData::of(&Mine {
            word: Some("x".into()),
            flag: true,
        });
        let back = ProviderData::from_json(&d.to_json()).unwrap();
        assert_eq!(back, d);
        assert_eq!(
            back.read::<Mine>().unwrap(),
            Mine {
                word: Some("x".into()),
                flag: true
            }
        );
        assert_eq!(
            ProviderData::default().read::<Mine>().unwrap(),
            Mine::default()
        );
        assert!(ProviderData::from_json("[1]").is_err());
    }
}
