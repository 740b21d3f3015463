//! Prove webhook: `X-Prove-Authorization: Bearer <JWT>` (HS256, `iss`, `iat`/`exp` with 60 s of
//! leeway, a lifetime and an age of at most `MAX_LIFETIME_SECONDS`), then a JSON array of events.
//! Input: `header \0 claims-spec \0 body` (or a bare body). A header from the input is never
//! authentic (the fuzzer does not know the key); a JWT built from the claims spec and signed with
//! the key is authentic exactly when the documented rules say so, and names its `jti`; a parsed
//! body has 1 to `MAX_EVENTS` events with usable ids.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use idv::providers::prove::webhook::{
    ISSUER, LEEWAY_SECONDS, MAX_EVENTS, MAX_LIFETIME_SECONDS, authenticate, is_authentic, parse,
};
use idv_fuzz::{fields, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const KEY: &str = "whsec_fuzz_prove_webhook_secret";
const OTHER: &str = "whsec_fuzz_some_other_secret";
const NOW: i64 = 1_800_000_000;

#[derive(Arbitrary, Debug)]
enum Iss {
    Prove,
    Other(String),
    Number(i64),
}

#[derive(Arbitrary, Debug)]
enum Time {
    /// Near now, where the leeway matters.
    Offset(i16),
    Absolute(i64),
    Text(String),
    Float(f64),
}

#[derive(Arbitrary, Debug)]
enum Alg {
    Hs256,
    Hs384,
    Hs512,
}

#[derive(Arbitrary, Debug)]
struct Spec {
    iss: Option<Iss>,
    iat: Option<Time>,
    exp: Option<Time>,
    jti: Option<String>,
    extra: Option<(String, String)>,
    alg: Alg,
    other_key: bool,
    /// 0: `Bearer `, 1: `bearer `, 2: none, 3: `Basic `, else `BEARER `.
    scheme: u8,
    trailing_space: bool,
}

fuzz_target!(|data: &[u8]| {
    let ([auth, spec], body) = fields::<2>(data);

    let auth = header(auth);
    assert!(
        !is_authentic([KEY], auth.as_deref(), NOW),
        "forged: {auth:?}"
    );

    if let Ok(spec) = Spec::arbitrary(&mut Unstructured::new(spec)) {
        signed(&spec);
    }

    if let Ok(events) = parse(body) {
        assert!((1..=MAX_EVENTS).contains(&events.len()));
        let key_like =
            |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic());
        for e in &events {
            assert!(key_like(&e.event_id) && key_like(&e.event_type), "{e:?}");
            assert!(e.identity_id.as_deref().is_none_or(key_like), "{e:?}");
        }
    }
});

/// Signs the spec's claims and checks the verdict against the rules, computed here without overflow.
fn signed(spec: &Spec) {
    let mut claims = Map::new();
    if let Some((k, v)) = &spec.extra {
        claims.insert(k.clone(), json!(v));
    }
    if let Some(j) = &spec.jti {
        claims.insert("jti".into(), json!(j));
    }
    let time = |t: &Time| -> (Value, Option<i128>) {
        match t {
            Time::Offset(o) => (
                json!(NOW + i64::from(*o)),
                Some(i128::from(NOW + i64::from(*o))),
            ),
            Time::Absolute(a) => (json!(a), Some(i128::from(*a))),
            Time::Text(s) => (json!(s), None),
            Time::Float(f) => (json!(f), None),
        }
    };
    let iat = spec.iat.as_ref().map(time);
    let exp = spec.exp.as_ref().map(time);
    let iss = spec.iss.as_ref().map(|i| match i {
        Iss::Prove => json!(ISSUER),
        Iss::Other(s) => json!(s),
        Iss::Number(n) => json!(n),
    });
    for (k, v) in [
        ("iat", iat.as_ref().map(|t| &t.0)),
        ("exp", exp.as_ref().map(|t| &t.0)),
        ("iss", iss.as_ref()),
    ] {
        match v {
            Some(v) => claims.insert(k.into(), v.clone()),
            None => claims.remove(k),
        };
    }
    let alg = match spec.alg {
        Alg::Hs256 => Algorithm::HS256,
        Alg::Hs384 => Algorithm::HS384,
        Alg::Hs512 => Algorithm::HS512,
    };
    let key = if spec.other_key { OTHER } else { KEY };
    let token = jsonwebtoken::encode(
        &Header::new(alg),
        &Value::Object(claims.clone()),
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("HMAC tokens always encode");
    let scheme = match spec.scheme {
        0 => "Bearer ",
        1 => "bearer ",
        2 => "",
        3 => "Basic ",
        _ => "BEARER ",
    };
    let pad = if spec.trailing_space { " " } else { "" };
    let header = format!("{scheme}{token}{pad}");

    // The rules, whichever secret signed it, computed in i128 (no overflow): HS256, a Bearer
    // scheme in any case, the issuer, an `iat` (ours: i64) and an `exp` (the token library's:
    // unsigned) as integers, not expired, not issued in the future, a lifetime and an age of at
    // most MAX_LIFETIME_SECONDS (the age with the leeway).
    let (leeway, now, max) = (
        i128::from(LEEWAY_SECONDS),
        i128::from(NOW),
        i128::from(MAX_LIFETIME_SECONDS),
    );
    let times = match (&iat, &exp) {
        (Some((_, Some(i))), Some((_, Some(e)))) => Some((*i, *e)),
        _ => None,
    };
    let rules = matches!(alg, Algorithm::HS256)
        && spec.scheme != 2
        && spec.scheme != 3
        && claims.get("iss") == Some(&json!(ISSUER))
        && times.is_some_and(|(i, e)| {
            e >= 0
                && i <= now + leeway
                && now <= e + leeway
                && e - i <= max
                && now - i <= max + leeway
        });
    let token = authenticate([KEY], Some(&header), NOW);
    assert_eq!(
        token.is_some(),
        rules && !spec.other_key,
        "claims {claims:?}, header {header:?}"
    );
    if let (Some(t), Some((_, e))) = (&token, times) {
        assert_eq!(i128::from(t.expires_unix), e + leeway);
        let jti = claims.get("jti").and_then(Value::as_str);
        assert_eq!(
            t.id.as_deref(),
            jti.filter(|j| (1..=256).contains(&j.len()))
        );
    }
    assert_eq!(is_authentic([KEY], Some(&header), NOW), token.is_some());
    // During a rotation both secrets are accepted.
    assert_eq!(is_authentic([OTHER, KEY], Some(&header), NOW), rules);
}
