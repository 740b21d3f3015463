//! The shapes Nevis's IDV endpoints speak, kept in one place because most of them are assumed.

use crate::providers::transport::{MAX_WORD, capped};
use serde::{Deserialize, Deserializer};

// ASSUMPTION: the documented relative path `idverification/sessions` sits under `/api/v1/` of the
// instance URL, like Nevis's other Authentication Cloud endpoints.
pub const SESSIONS_PATH: &str = "/api/v1/idverification/sessions";

/// The documented start URL's shape, rebuilt for a replayed create (the id is all it varies by).
pub fn start_url(instance_url: &str, session_id: &str) -> String {
    format!(
        "{}/idv/welcome.html?tc={session_id}",
        instance_url.trim_end_matches('/')
    )
}

/// Whether `url` is a page of the instance (same scheme, host and port): the gateway hands it to
/// the app to send a user to, so it must never point elsewhere.
pub fn is_start_url_of(instance_url: &str, url: &str) -> bool {
    match (url::Url::parse(instance_url), url::Url::parse(url)) {
        (Ok(instance), Ok(u)) => {
            u.scheme() == instance.scheme()
                && u.host_str().is_some()
                && u.host_str() == instance.host_str()
                && u.port_or_known_default() == instance.port_or_known_default()
                && url.len() <= 2048
        }
        _ => false,
    }
}

/// Answer of `POST idverification/sessions` (documented fields).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub session_id: String,
    pub start_url: String,
}

/// Longest `startUrl` handed on to the app.
pub const MAX_START_URL: usize = 2048;
/// Longest error message kept (never stored today; bounded all the same).
const MAX_MESSAGE: usize = 256;

/// Provider words that may get stored (status, error codes) are capped as they are read, here
/// at the wire, so the status mapping never sees an unbounded string.
fn word<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|s| capped(s, MAX_WORD))
}

fn message<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d).map(|m| m.map(|s| capped(s, MAX_MESSAGE)))
}

/// "a unique nine-digit identifier" (documented).
pub fn is_session_id(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|c| c.is_ascii_digit())
}

/// Answer of `GET idverification/sessions/{sessionId}`.
// ASSUMPTION: `status` as documented; `errors[]` of `{code, message?}` on `failed`; the result
// data (identity and document fields) under `result`, which the gateway does not keep (personal
// data).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NevisSession {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(deserialize_with = "word")]
    pub status: String,
    #[serde(default)]
    pub errors: Vec<NevisError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NevisError {
    #[serde(deserialize_with = "word")]
    pub code: String,
    #[serde(default, deserialize_with = "message")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_and_assumed_shapes() {
        let c: Created = serde_json::from_str(
            r#"{"sessionId":"123456789","startUrl":"https://x.mauth.nevis.cloud/idv/welcome.html?tc=123456789"}"#,
        )
        .unwrap();
        assert!(is_session_id(&c.session_id));
        assert_eq!(
            c.start_url,
            start_url("https://x.mauth.nevis.cloud/", "123456789")
        );
        let s: NevisSession = serde_json::from_str(
            r#"{"sessionId":"123456789","status":"failed","errors":[{"code":"DOCUMENT_EXPIRED"}],"result":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(s.errors[0].code, "DOCUMENT_EXPIRED");
        assert!(is_start_url_of("https://x.mauth.nevis.cloud", &c.start_url));
        assert!(!is_start_url_of(
            "https://x.mauth.nevis.cloud",
            "https://evil.example/x"
        ));
        assert!(!is_start_url_of(
            "https://x.mauth.nevis.cloud",
            "http://x.mauth.nevis.cloud/x"
        ));
        assert!(!is_session_id("12345678"));
        assert!(!is_session_id("12345678a"));
    }

    #[test]
    fn provider_words_that_get_stored_are_capped_where_they_enter() {
        let long = "X".repeat(10_000);
        let s: NevisSession = serde_json::from_value(serde_json::json!({
            "status": long, "errors": [{"code": long, "message": long}]
        }))
        .unwrap();
        assert!(s.status.len() <= 64, "{}", s.status.len());
        assert!(s.errors[0].code.len() <= 64, "{}", s.errors[0].code.len());
        assert!(s.errors[0].message.as_ref().is_none_or(|m| m.len() <= 256));
    }
}
