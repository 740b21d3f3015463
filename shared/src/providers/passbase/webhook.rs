//! Passbase's webhook dialect: an encrypted body (`webhooks::aes_cbc_body`) holding
//! `{"event","key","status","created","updated","processed"}`. A body counts as a Passbase event
//! only if it decrypts *and* parses as one: with CBC and no MAC, that is the authenticity check.

use super::is_identity_key;
use crate::webhooks::aes_cbc_body;
use serde::{Deserialize, Serialize};

pub const VERIFICATION_COMPLETED: &str = "VERIFICATION_COMPLETED";
pub const VERIFICATION_REVIEWED: &str = "VERIFICATION_REVIEWED";
pub const DATAPOINT_UPDATED: &str = "DATAPOINT_UPDATED";
pub const WATCHLIST_MONITORING: &str = "WATCHLIST_MONITORING";
pub const IDENTITY_AUTHENTICATED: &str = "IDENTITY_AUTHENTICATED";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Event {
    pub event: String,
    /// The identity (the SDK's identity access key, the API's id).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<i64>,
}

/// The events Passbase documents. ASSUMPTION: the list is closed. With CBC and no MAC, anyone who
/// saw one delivery can flip bits of its IV and rewrite the first plaintext block
/// (`{"event":"VERIFI` becomes `{"event":"XERIFI`): only a known name counts as authentic, so
/// such a body is refused (401), not taken for a new event.
pub const KNOWN_EVENTS: [&str; 5] = [
    VERIFICATION_COMPLETED,
    VERIFICATION_REVIEWED,
    DATAPOINT_UPDATED,
    WATCHLIST_MONITORING,
    IDENTITY_AUTHENTICATED,
];

/// An authentic delivery: the event and the plaintext it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub event: Event,
    pub plaintext: Vec<u8>,
}

/// The event in a delivery, or `None` (refused as 401, nothing written). Every secret is tried
/// (rotation: the previous one stays good meanwhile). Plain JSON is accepted only when
/// `allow_plaintext` says Passbase's encryption is switched off on purpose.
pub fn open<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    allow_plaintext: bool,
    body: &[u8],
) -> Option<Opened> {
    let mut opened = None;
    for secret in secrets {
        // Every secret is tried, whichever opens it: the work does not say which one did.
        if let Some(plain) = aes_cbc_body::decrypt(secret, body)
            && let Some(event) = parse(&plain)
            && opened.is_none()
        {
            opened = Some(Opened {
                event,
                plaintext: plain,
            });
        }
    }
    match opened {
        Some(o) => Some(o),
        None if allow_plaintext => parse(body).map(|event| Opened {
            event,
            plaintext: body.to_vec(),
        }),
        None => None,
    }
}

/// A Passbase event: a JSON object with a known event name and an identity key.
pub fn parse(plain: &[u8]) -> Option<Event> {
    let mut e: Event = serde_json::from_slice(plain).ok()?;
    // One spelling of a UUID for refs and dedupe ids.
    e.key.make_ascii_lowercase();
    let status_ok = e.status.as_deref().is_none_or(|s| {
        (1..=32).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    });
    (KNOWN_EVENTS.contains(&e.event.as_str()) && is_identity_key(&e.key) && status_ok).then_some(e)
}

/// A delivery's identity: `key` + `event` + `updated` (`created` without it) + a hash of the
/// plaintext. The hash tells apart two events that carry no time, or the same second (a second
/// review with another status; two reauthentications within one second); a redelivery of the
/// same event is the same plaintext, so the same id.
pub fn event_id(e: &Event, plaintext: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let at = e
        .updated
        .or(e.created)
        .map_or_else(|| "-".to_owned(), |t| t.to_string());
    let h = hex::encode(&Sha256::digest(plaintext)[..8]);
    format!("{}#{}#{at}#{h}", e.key, e.event)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const EVENT: &str = r#"{"event":"VERIFICATION_REVIEWED","key":"b76e244e-26a3-49ef-9c72-3e599bf0b5f2","status":"approved","created":1582628711,"updated":1582628999,"processed":1582628999}"#;

    #[test]
    fn the_documented_payload_opens_and_is_identified() {
        let body = aes_cbc_body::encrypt(KEY, [1; 16], EVENT.as_bytes()).unwrap();
        let o = open([KEY], false, body.as_bytes()).unwrap();
        assert_eq!(o.event.event, VERIFICATION_REVIEWED);
        assert_eq!(o.event.status.as_deref(), Some("approved"));
        let id = event_id(&o.event, &o.plaintext);
        assert!(
            id.starts_with(
                "b76e244e-26a3-49ef-9c72-3e599bf0b5f2#VERIFICATION_REVIEWED#1582628999#"
            ),
            "{id}"
        );
        let other = EVENT.replace("approved", "declined");
        assert_ne!(
            id,
            event_id(&parse(other.as_bytes()).unwrap(), other.as_bytes())
        );
    }

    #[test]
    fn the_previous_secret_opens_during_a_rotation() {
        let old = "fedcba9876543210fedcba9876543210";
        let body = aes_cbc_body::encrypt(old, [1; 16], EVENT.as_bytes()).unwrap();
        assert!(open([KEY], false, body.as_bytes()).is_none());
        assert!(open([KEY, old], false, body.as_bytes()).is_some());
    }

    #[test]
    fn plain_json_only_when_allowed_and_never_junk() {
        assert!(open([KEY], false, EVENT.as_bytes()).is_none());
        assert!(open([KEY], true, EVENT.as_bytes()).is_some());
        let junk = aes_cbc_body::encrypt(KEY, [1; 16], br#"{"hello":"world"}"#).unwrap();
        assert!(open([KEY], true, junk.as_bytes()).is_none());
        let bad_key = EVENT.replace("b76e244e-26a3", "../../x");
        assert!(parse(bad_key.as_bytes()).is_none());
        let unknown = EVENT.replace("VERIFICATION_REVIEWED", "XERIFICATION_REVIEWED");
        assert!(parse(unknown.as_bytes()).is_none());
    }
}
