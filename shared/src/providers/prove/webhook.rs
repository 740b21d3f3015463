//! Prove Identity Manager webhooks: `X-Prove-Authorization: Bearer <JWT>`, HS256 with the Portal
//! secret, `iss` = `Prove Identity`, short-lived (`exp`/`iat`, 60 s of skew); the body is an array
//! of events about enrolled identities.
//!
//! The token does not cover the body (Prove documents no body hash), so the gateway bounds it:
//! a token may live at most `MAX_LIFETIME_SECONDS` and be used at most that long after it was
//! issued; and a token that names itself (`jti`) is bound to the first body it came with, so a
//! captured header replayed over another body is refused. A token without `jti` cannot be bound:
//! two deliveries in the same second legitimately carry the same `{iss, iat, exp}` token.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

pub const AUTH_HEADER: &str = "x-prove-authorization";
pub const ISSUER: &str = "Prove Identity";
/// Clock skew allowed on `exp` and `iat` (docs/providers/prove.md#webhooks).
pub const LEEWAY_SECONDS: u64 = 60;
/// ASSUMPTION: Prove's tokens are "short-lived" (their lifetime is not documented): longer than
/// five minutes between `iat` and `exp`, or used longer than that after `iat`, is refused.
pub const MAX_LIFETIME_SECONDS: i64 = 300;
/// Most events one delivery may carry (a 64 KiB body holds a few hundred).
pub const MAX_EVENTS: usize = 100;
/// Events the gateway understands as "the verified number may no longer be the user's".
pub const REVERIFY_EVENTS: [&str; 3] = ["PHONE_NUMBER_CHANGE", "DISCONNECT", "PORT"];

#[derive(Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
}

/// What an authentic token says: when it expires (the flow keeps its binding to the body until
/// then), and its own id, if it has one (`jti`: what the binding is keyed by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: Option<String>,
    pub expires_unix: i64,
}

/// The token if the header is `Bearer <JWT>` (scheme in any case) and the JWT is HS256 under one
/// of the secrets, with `iss` = `Prove Identity`, an `exp` not past, an `iat` not in the future
/// (60 s leeway), and neither a lifetime nor an age beyond `MAX_LIFETIME_SECONDS`.
/// ASSUMPTION: the HMAC key is the Portal secret exactly as shown, `whsec_` prefix included
/// (Prove's snippet uses the string as is).
pub fn authenticate<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    header: Option<&str>,
    now_unix: i64,
) -> Option<Token> {
    let token = header.and_then(bearer)?;
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iat", "iss"]);
    // Times are checked below against the gateway's clock, not the library's.
    v.validate_exp = false;
    v.validate_aud = false;
    let leeway = LEEWAY_SECONDS as i64;
    // Every secret is tried (no early exit on the current one): the work does not depend on
    // which secret matched. The MAC itself is compared in constant time by the crypto library.
    let mut found = None;
    for secret in secrets {
        if let Ok(data) =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
        {
            let Claims { iat, exp, jti } = data.claims;
            let fresh = iat <= now_unix.saturating_add(leeway)
                && now_unix <= exp.saturating_add(leeway)
                && exp.saturating_sub(iat) <= MAX_LIFETIME_SECONDS
                && now_unix.saturating_sub(iat) <= MAX_LIFETIME_SECONDS.saturating_add(leeway);
            if fresh {
                found = Some(Token {
                    id: jti.filter(|j| (1..=256).contains(&j.len())),
                    expires_unix: exp.saturating_add(leeway),
                });
            }
        }
    }
    found
}

/// Whether the header carries an authentic, fresh token (see `authenticate`).
pub fn is_authentic<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    header: Option<&str>,
    now_unix: i64,
) -> bool {
    authenticate(secrets, header, now_unix).is_some()
}

/// The credentials of `Bearer <credentials>`: the scheme is case-insensitive (RFC 9110).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// One Identity Manager event. Prove documents an event id, a type, a description, the time it
/// is sent and the client customer id; the key names are ASSUMPTIONS (its field table was not
/// found), and so is the identity id (`identityId`, `proveId` accepted), which the gateway uses
/// when present and does without when not.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    #[serde(default, alias = "proveId")]
    pub identity_id: Option<String>,
    #[serde(default)]
    pub event_timestamp: Option<String>,
    #[serde(default)]
    pub client_customer_id: Option<String>,
}

/// The body: a JSON array of 1 to `MAX_EVENTS` events, each with an id and a type usable as
/// keys (1-128 visible ASCII characters). Anything else is a body the gateway cannot use: the
/// reason never quotes it.
pub fn parse(body: &[u8]) -> Result<Vec<Event>, &'static str> {
    let raw: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| "not a JSON array of events")?;
    if raw.is_empty() || raw.len() > MAX_EVENTS {
        return Err("an event array must hold 1 to 100 events");
    }
    let key_like =
        |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic());
    let optional_ok = |s: &Option<String>| s.as_deref().is_none_or(key_like);
    raw.into_iter()
        .map(|v| {
            let e: Event =
                serde_json::from_value(v).map_err(|_| "an event lacks its id or type")?;
            let usable = key_like(&e.event_id)
                && key_like(&e.event_type)
                && optional_ok(&e.identity_id)
                && optional_ok(&e.client_customer_id)
                && e.event_timestamp.as_deref().is_none_or(|t| t.len() <= 64);
            if usable {
                Ok(e)
            } else {
                Err("an event's id, type, identity or customer is not usable")
            }
        })
        .collect()
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
        assert!(is_authentic(["whsec_a"], Some(&format!("BEARER {t}")), NOW));
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
    fn long_lived_or_old_tokens_are_refused() {
        let long = jwt("s", json!({"iss": ISSUER, "iat": NOW, "exp": NOW + 3600}));
        assert!(!is_authentic(["s"], Some(&bearer(&long)), NOW));
        let old = jwt(
            "s",
            json!({"iss": ISSUER, "iat": NOW - 1000, "exp": NOW + 10}),
        );
        assert!(!is_authentic(["s"], Some(&bearer(&old)), NOW));
        let huge = jwt(
            "s",
            json!({"iss": ISSUER, "iat": i64::MIN, "exp": i64::MAX}),
        );
        assert!(!is_authentic(["s"], Some(&bearer(&huge)), NOW));
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
    fn times_at_the_ends_of_i64_are_refused_without_overflow() {
        // Found by fuzz/prove_webhook: `exp + leeway` overflowed (a panic in debug builds, a
        // wrapped deadline in release); every time check must saturate.
        for (iat, exp) in [
            (NOW, i64::MAX),
            (i64::MAX, i64::MAX),
            (i64::MIN, NOW),
            (i64::MIN, i64::MAX),
        ] {
            let t = jwt("s", json!({"iss": ISSUER, "iat": iat, "exp": exp}));
            assert!(!is_authentic(["s"], Some(&bearer(&t)), NOW), "{iat} {exp}");
        }
    }

    #[test]
    fn parses_an_array_of_events() {
        let e = parse(br#"[{"eventId":"e1","eventType":"DISCONNECT","identityId":"i1","eventTimestamp":"2026-11-21T22:00:00Z","description":"x"},{"eventId":"e2","eventType":"NEW_KIND","proveId":"i1"},{"eventId":"e3","eventType":"PORT","clientCustomerId":"c1"}]"#).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].identity_id.as_deref(), Some("i1"));
        assert_eq!(e[2].identity_id, None);
        assert_eq!(e[2].client_customer_id.as_deref(), Some("c1"));
        assert!(parse(b"[]").is_err());
        assert!(parse(br#"{"eventId":"e1"}"#).is_err());
        assert!(parse(br#"[{"eventId":"","eventType":"PORT","identityId":"i"}]"#).is_err());
    }
}
