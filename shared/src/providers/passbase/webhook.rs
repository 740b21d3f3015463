//! Passbase's webhook dialect: an encrypted body (`webhooks::aes_cbc_body`) holding
//! `{"event","key","status","created","updated","processed"}`. A body counts as a Passbase event
//! only if it decrypts *and* parses as one: with CBC and no MAC, that is the authenticity check.

use super::is_identity_key;
use crate::webhooks::aes_cbc_body;
use serde::Deserialize;

pub const VERIFICATION_COMPLETED: &str = "VERIFICATION_COMPLETED";
pub const VERIFICATION_REVIEWED: &str = "VERIFICATION_REVIEWED";
pub const DATAPOINT_UPDATED: &str = "DATAPOINT_UPDATED";
pub const WATCHLIST_MONITORING: &str = "WATCHLIST_MONITORING";
pub const IDENTITY_AUTHENTICATED: &str = "IDENTITY_AUTHENTICATED";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Event {
    pub event: String,
    /// The identity (the SDK's identity access key, the API's id).
    pub key: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub updated: Option<i64>,
}

/// The event in a delivery, or `None` (refused as 401, nothing written). Plain JSON is accepted
/// only when `allow_plaintext` says Passbase's encryption is switched off on purpose.
pub fn open(secret: &str, allow_plaintext: bool, body: &[u8]) -> Option<Event> {
    match aes_cbc_body::decrypt(secret, body) {
        Some(plain) => parse(&plain),
        None if allow_plaintext => parse(body),
        None => None,
    }
}

/// A Passbase event: a JSON object with an event name and an identity key.
// ASSUMPTION: every event has the envelope of the documented VERIFICATION_REVIEWED example; an
// unknown event name (Passbase adding one) is still a change to re-read, so it is accepted.
pub fn parse(plain: &[u8]) -> Option<Event> {
    let mut e: Event = serde_json::from_slice(plain).ok()?;
    // One spelling of a UUID for refs and dedupe ids.
    e.key.make_ascii_lowercase();
    let name_ok = (1..=64).contains(&e.event.len())
        && e.event.bytes().all(|c| c.is_ascii_uppercase() || c == b'_');
    (name_ok && is_identity_key(&e.key)).then_some(e)
}

/// api.md: a Passbase event is identified by `key` + `event` + `updated`.
// ASSUMPTION: without `updated`, `created` stands in; without either, one per key and event.
pub fn event_id(e: &Event) -> String {
    let at = e
        .updated
        .or(e.created)
        .map_or_else(|| "-".to_owned(), |t| t.to_string());
    format!("{}#{}#{at}", e.key, e.event)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const EVENT: &str = r#"{"event":"VERIFICATION_REVIEWED","key":"b76e244e-26a3-49ef-9c72-3e599bf0b5f2","status":"approved","created":1582628711,"updated":1582628999,"processed":1582628999}"#;

    #[test]
    fn the_documented_payload_opens_and_is_identified() {
        let body = aes_cbc_body::encrypt(KEY, [1; 16], EVENT.as_bytes()).unwrap();
        let e = open(KEY, false, body.as_bytes()).unwrap();
        assert_eq!(e.event, VERIFICATION_REVIEWED);
        assert_eq!(e.status.as_deref(), Some("approved"));
        assert_eq!(
            event_id(&e),
            "b76e244e-26a3-49ef-9c72-3e599bf0b5f2#VERIFICATION_REVIEWED#1582628999"
        );
    }

    #[test]
    fn plain_json_only_when_allowed_and_never_junk() {
        assert!(open(KEY, false, EVENT.as_bytes()).is_none());
        assert!(open(KEY, true, EVENT.as_bytes()).is_some());
        let junk = aes_cbc_body::encrypt(KEY, [1; 16], br#"{"hello":"world"}"#).unwrap();
        assert!(open(KEY, true, junk.as_bytes()).is_none());
        let bad_key = EVENT.replace("b76e244e-26a3", "../../x");
        assert!(parse(bad_key.as_bytes()).is_none());
    }
}
