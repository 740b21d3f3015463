//! Prove Identity Manager webhooks: `X-Prove-Authorization: Bearer <JWT>`, HS256 with the Portal
//! secret, `iss` = `Prove Identity`, short-lived (`exp`/`iat`, 60 s of skew); the body is an array
//! of events about enrolled identities.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

pub const AUTH_HEADER: &str = "x-prove-authorization";
pub const ISSUER: &str = "Prove Identity";
/// Clock skew allowed on `exp` and `iat` (api.md).
pub const LEEWAY_SECONDS: u64 = 60;
/// Events the gateway understands as "the verified number may no longer be the user's".
pub const REVERIFY_EVENTS: [&str; 3] = ["PHONE_NUMBER_CHANGE", "DISCONNECT", "PORT"];

#[derive(Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
}

/// Authentic iff the header is `Bearer <JWT>` and the JWT is HS256 under one of the secrets, with
/// `iss` = `Prove Identity`, an `exp` not past and an `iat` not in the future (60 s leeway).
/// ASSUMPTION: the JWT binds no hash of the body (Prove documents none); it is checked before the
/// body is looked at, and the body is then only parsed. ASSUMPTION: the HMAC key is the Portal
/// secret exactly as shown, `whsec_` prefix included (Prove's snippet uses the string as is).
pub fn is_authentic<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    header: Option<&str>,
    now_unix: i64,
) -> bool {
    let Some(token) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return false;
    };
    let token = token.trim();
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iat", "iss"]);
    // Times are checked below against the gateway's clock, not the library's.
    v.validate_exp = false;
    v.validate_aud = false;
    let leeway = LEEWAY_SECONDS as i64;
    // Every secret is tried (no early exit on the current one): the work does not depend on
    // which secret matched. The MAC itself is compared in constant time by the crypto library.
    let mut ok = false;
    for secret in secrets {
        if let Ok(data) =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
            // Saturating: a signed `exp` near i64::MAX is far in the future, not an overflow.
            && data.claims.iat <= now_unix.saturating_add(leeway)
            && now_unix <= data.claims.exp.saturating_add(leeway)
        {
            ok = true;
        }
    }
    ok
}

/// One Identity Manager event. ASSUMPTION (Prove's field table was not found): these key names,
/// `proveId` accepted for `identityId`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    #[serde(alias = "proveId")]
    pub identity_id: String,
    #[serde(default)]
    pub event_timestamp: Option<String>,
    #[serde(default)]
    pub client_customer_id: Option<String>,
}

/// The body: a JSON array of events. Ids must be usable as keys (1-128 visible ASCII chars).
pub fn parse(body: &[u8]) -> Result<Vec<Event>, String> {
    let events: Vec<Event> = serde_json::from_slice(body)
        .map_err(|_| "not a Prove webhook: expected a JSON array of events".to_owned())?;
    if events.is_empty() {
        return Err("the event array is empty".into());
    }
    let key_like =
        |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic());
    for e in &events {
        if !key_like(&e.event_id) || !key_like(&e.identity_id) || !key_like(&e.event_type) {
            return Err("an event's eventId, eventType or identityId is not usable".into());
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn jwt(secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn a_fresh_token_of_prove_identity_is_authentic() {
        let t = jwt(
            "whsec_a",
            json!({"iss": ISSUER, "iat": NOW, "exp": NOW + 300}),
        );
        assert!(is_authentic(["whsec_a"], Some(&bearer(&t)), NOW));
        assert!(is_authentic(["new", "whsec_a"], Some(&bearer(&t)), NOW));
    }

    #[test]
    fn wrong_secret_issuer_expiry_or_algorithm_are_refused() {
        let good = json!({"iss": ISSUER, "iat": NOW, "exp": NOW + 300});
        let t = jwt("whsec_a", good.clone());
        assert!(!is_authentic(["whsec_b"], Some(&bearer(&t)), NOW));
        assert!(!is_authentic(["whsec_a"], Some(&t), NOW), "no Bearer");
        assert!(!is_authentic(["whsec_a"], None, NOW));
        let wrong_iss = jwt(
            "whsec_a",
            json!({"iss": "Someone", "iat": NOW, "exp": NOW + 300}),
        );
        assert!(!is_authentic(["whsec_a"], Some(&bearer(&wrong_iss)), NOW));
        let expired = jwt(
            "whsec_a",
            json!({"iss": ISSUER, "iat": NOW - 600, "exp": NOW - 61}),
        );
        assert!(!is_authentic(["whsec_a"], Some(&bearer(&expired)), NOW));
        let future = jwt(
            "whsec_a",
            json!({"iss": ISSUER, "iat": NOW + 120, "exp": NOW + 600}),
        );
        assert!(!is_authentic(["whsec_a"], Some(&bearer(&future)), NOW));
        let no_exp = jwt("whsec_a", json!({"iss": ISSUER, "iat": NOW}));
        assert!(!is_authentic(["whsec_a"], Some(&bearer(&no_exp)), NOW));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &good,
            &EncodingKey::from_secret(b"whsec_a"),
        )
        .unwrap();
        assert!(!is_authentic(["whsec_a"], Some(&bearer(&hs512)), NOW));
    }

    #[test]
    fn skew_of_up_to_a_minute_is_tolerated() {
        let t = jwt(
            "s",
            json!({"iss": ISSUER, "iat": NOW + 30, "exp": NOW - 30}),
        );
        assert!(is_authentic(["s"], Some(&bearer(&t)), NOW));
    }

    #[test]
    fn an_exp_at_the_end_of_time_is_far_future_not_an_overflow() {
        // Found by fuzz/prove_webhook: `exp + leeway` overflowed (a panic in debug builds, a
        // wrapped, refused token in release).
        let t = jwt("s", json!({"iss": ISSUER, "iat": NOW, "exp": i64::MAX}));
        assert!(is_authentic(["s"], Some(&bearer(&t)), NOW));
        let t = jwt(
            "s",
            json!({"iss": ISSUER, "iat": i64::MAX, "exp": i64::MAX}),
        );
        assert!(!is_authentic(["s"], Some(&bearer(&t)), NOW));
    }

    #[test]
    fn parses_an_array_of_events() {
        let e = parse(br#"[{"eventId":"e1","eventType":"DISCONNECT","identityId":"i1","eventTimestamp":"2026-11-21T22:00:00Z","description":"x"},{"eventId":"e2","eventType":"NEW_KIND","proveId":"i1"}]"#).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].identity_id, "i1");
        assert!(parse(b"[]").is_err());
        assert!(parse(br#"{"eventId":"e1"}"#).is_err());
        assert!(parse(br#"[{"eventId":"","eventType":"PORT","identityId":"i"}]"#).is_err());
    }
}
