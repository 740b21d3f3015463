//! `GET /identities/{id}` as the gateway reads it. Only what a session may keep is deserialized:
//! the owner (names, email), the datapoints' names, dates of birth and document numbers, the
//! watchlist and the network are never even held in memory past the JSON parser.

use super::Evidence;
use crate::session::SessionId;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub id: String,
    /// `created`, `processing`, `pending`, `approved`, `declined` (and the node SDK's
    /// `processed`, `verified`, `unverified`).
    pub status: String,
    #[serde(default)]
    pub score: Option<f64>,
    /// Unix seconds.
    #[serde(default)]
    pub updated: Option<i64>,
    /// The app's metaData, decrypted by Passbase.
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub datapoints: Datapoints,
}

/// Of the datapoints, only the issuing country.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Datapoints {
    #[serde(default)]
    pub document_origin_country: Option<Value>,
}

/// Short codes only: a provider value that is not one is not stored.
fn code(v: &str) -> Option<String> {
    let ok = (1..=40).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    ok.then(|| v.to_owned())
}

impl Identity {
    /// Status, score, document type and country: what the session keeps (never personal data).
    pub fn evidence(&self) -> Option<Evidence> {
        let e = Evidence {
            score: self.score.filter(|s| (0.0..=1.0).contains(s)),
            document_type: self
                .resources
                .iter()
                .find_map(|r| r.kind.as_deref().and_then(code)),
            document_country: self.resources.iter().find_map(|r| {
                r.datapoints
                    .document_origin_country
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(code)
            }),
        };
        (e != Evidence::default()).then_some(e)
    }

    /// Our session reference, if the app passed it as the SDK's metaData.
    // ASSUMPTION: `metadata` is `{"session_ref": "ses_..."}`, or that object as a JSON string.
    pub fn session_ref(&self) -> Option<SessionId> {
        let meta = match self.metadata.as_ref()? {
            Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
            other => other.clone(),
        };
        SessionId::parse(meta.get("session_ref")?.as_str()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passbase's documented identity fixture, with a document country and our metadata.
    const FIXTURE: &str = r#"{"id":"00000000-0000-0000-0000-000000000000","status":"approved","score":0.93,
 "owner":{"email":"john.doe@example.com","first_name":"John","last_name":"Doe"},
 "created":1600250430,"updated":1600250431,"metadata":{"session_ref":"ses_aaaaaaaaaaaaaaaaaaaaaaaaaa"},
 "resources":[{"type":"NATIONAL_ID_CARD","datapoints":{"date_of_birth":"1970-01-01","document_number":"010101010101","first_names":"Jessie","last_name":"Smith","document_origin_country":"DEU"}}],
 "watchlist":{"clean":false,"types":["adverse-media"],"sources":[],"media":[],"listings":{}}}"#;

    #[test]
    fn keeps_status_score_document_type_and_country_and_nothing_personal() {
        let i: Identity = serde_json::from_str(FIXTURE).unwrap();
        let e = i.evidence().unwrap();
        assert_eq!(e.score, Some(0.93));
        assert_eq!(e.document_type.as_deref(), Some("NATIONAL_ID_CARD"));
        assert_eq!(e.document_country.as_deref(), Some("DEU"));
        let held = format!("{i:?}");
        for personal in [
            "John",
            "Doe",
            "john.doe",
            "1970-01-01",
            "010101010101",
            "Jessie",
        ] {
            assert!(!held.contains(personal), "{personal} is held: {held}");
        }
        assert_eq!(
            i.session_ref().unwrap().as_str(),
            "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa"
        );
    }

    #[test]
    fn metadata_as_a_json_string_or_foreign_metadata() {
        let mut i: Identity = serde_json::from_str(FIXTURE).unwrap();
        i.metadata = Some(Value::String(
            r#"{"session_ref":"ses_bbbbbbbbbbbbbbbbbbbbbbbbbb"}"#.into(),
        ));
        assert!(i.session_ref().is_some());
        i.metadata = Some(serde_json::json!({"foo": "bar"}));
        assert!(i.session_ref().is_none());
    }
}
