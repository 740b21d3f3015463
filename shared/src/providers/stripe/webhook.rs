//! Stripe's webhooks: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=...][,v0=...]`, each `v1`
//! the hex HMAC-SHA256 of `"{t}.{raw body}"` keyed with the endpoint's whole signing secret
//! (`whsec_...` as text). Only `v1` counts (a test-mode `v0` and anything else are ignored: no
//! downgrade). Several `v1`s come while a secret rolls; a timestamp older than the tolerance is
//! refused (a captured delivery replayed later); each event's id deduplicates it.

use crate::webhooks::hmac_digest;
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// The official libraries' default: a delivery signed more than five minutes ago is refused.
pub const TOLERANCE_SECONDS: i64 = 300;
/// Most signatures one header may carry (one per active secret: two while rolling).
const MAX_SIGNATURES: usize = 8;

/// Authentic iff some `v1` is the signature of `{t}.{body}` under one of the secrets, and `t` is
/// not older than `TOLERANCE_SECONDS` before `now`. Every secret is checked against every `v1`
/// (no early exit: the work does not say which matched). Future timestamps are accepted, as
/// Stripe's libraries accept them.
pub fn is_authentic<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    header: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> bool {
    let Some((t, signatures)) = header.and_then(parse_header) else {
        return false;
    };
    if t < now_unix.saturating_sub(TOLERANCE_SECONDS) {
        return false;
    }
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let mut ok = 0u8;
    for secret in secrets {
        let want = hmac_digest::sign_hex(secret, &signed);
        for v1 in &signatures {
            ok |= want.as_bytes().ct_eq(v1.as_bytes()).unwrap_u8();
        }
    }
    ok == 1
}

/// `t` and the `v1` signatures of a header, or `None` when it has no usable `t` or no `v1`.
fn parse_header(header: &str) -> Option<(i64, Vec<String>)> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.split_once('=')?;
        match k.trim() {
            "t" => t = Some(v.trim().parse::<i64>().ok()?),
            "v1" if v1.len() < MAX_SIGNATURES => v1.push(v.trim().to_ascii_lowercase()),
            _ => {}
        }
    }
    (!v1.is_empty()).then_some((t?, v1))
}

/// The part of an Event the gateway uses: what happened to which verification session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    /// `identity.verification_session.<status>`.
    pub kind: String,
    /// The session's `vs_` id.
    pub session: String,
}

#[derive(Deserialize)]
struct Wire {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: WireData,
}

#[derive(Deserialize)]
struct WireData {
    object: WireObject,
}

#[derive(Deserialize)]
struct WireObject {
    id: String,
}

/// The event, or why the body (authentic: checked before) is not one the gateway can use: not
/// an Event, or about something else than an Identity verification session (an endpoint may be
/// subscribed to more). The reason never quotes the body.
pub fn parse(body: &[u8]) -> Result<Event, &'static str> {
    let w: Wire = serde_json::from_slice(body).map_err(|_| "not a Stripe event")?;
    if !w.kind.starts_with("identity.verification_session.") || w.kind.len() > 64 {
        return Err("not an Identity verification session event");
    }
    if !super::is_id(&w.id, "evt_") || !super::is_id(&w.data.object.id, "vs_") {
        return Err("an event or session id that is not one");
    }
    Ok(Event {
        id: w.id,
        kind: w.kind,
        session: w.data.object.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn the_documented_test_vector_verifies() {
        // Produced identically by stripe-python's generate_signature_header and stripe-node's
        // generateTestHeaderString.
        let header =
            "t=1700000000,v1=9c5c8a715ee166f3c7864d90d642cfbd299ba5c3197abb32c3b9e330d9a92eb3";
        let body = br#"{"id":"evt_test_123","object":"event"}"#;
        assert!(is_authentic(["whsec_test_secret"], Some(header), body, NOW));
        assert!(!is_authentic(["whsec_other"], Some(header), body, NOW));
        assert!(!is_authentic(
            ["whsec_test_secret"],
            Some(header),
            b"{}",
            NOW
        ));
    }

    #[test]
    fn only_v1_counts_and_rolls_and_staleness_are_handled() {
        let body = b"{}";
        let sig =
            |secret: &str, t: i64| hmac_digest::sign_hex(secret, format!("{t}.{{}}").as_bytes());
        let rolled = format!(
            "t={NOW},v1={},v1={},v0=00",
            sig("whsec_new", NOW),
            sig("whsec_old", NOW)
        );
        assert!(is_authentic(["whsec_new"], Some(&rolled), body, NOW));
        assert!(is_authentic(["whsec_old"], Some(&rolled), body, NOW));
        // A v0 alone (test mode's fake one), even a right one, is no signature.
        let v0 = format!("t={NOW},v0={}", sig("whsec_new", NOW));
        assert!(!is_authentic(["whsec_new"], Some(&v0), body, NOW));
        // Stale: refused; a little old or ahead: accepted.
        let old = NOW - TOLERANCE_SECONDS - 1;
        assert!(!is_authentic(
            ["whsec_new"],
            Some(&format!("t={old},v1={}", sig("whsec_new", old))),
            body,
            NOW
        ));
        let ahead = NOW + 60;
        assert!(is_authentic(
            ["whsec_new"],
            Some(&format!("t={ahead},v1={}", sig("whsec_new", ahead))),
            body,
            NOW
        ));
        for bad in ["", "v1=ab", "t=x,v1=ab", "t=1", "garbage", "t=1,v1"] {
            assert!(!is_authentic(["whsec_new"], Some(bad), body, NOW), "{bad}");
        }
        assert!(!is_authentic(["whsec_new"], None, body, NOW));
        assert!(!is_authentic(
            ["whsec_new"],
            Some(&format!("t={},v1=00", i64::MIN)),
            body,
            NOW
        ));
    }

    #[test]
    fn events_about_verification_sessions_are_read_and_others_refused() {
        let e = parse(br#"{"id":"evt_1","object":"event","type":"identity.verification_session.verified","data":{"object":{"id":"vs_9","status":"verified"}}}"#).unwrap();
        assert_eq!(
            (e.id.as_str(), e.kind.as_str(), e.session.as_str()),
            ("evt_1", "identity.verification_session.verified", "vs_9")
        );
        assert!(
            parse(br#"{"id":"evt_1","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#)
                .is_err()
        );
        assert!(parse(b"[]").is_err());
    }
}
