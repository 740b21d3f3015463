//! Prove webhook: `X-Prove-Authorization: Bearer <JWT>` (HS256, `iss`, `iat`/`exp` with 60 s of
//! leeway), then a JSON array of events. Input: `header \0 claims-spec \0 body` (or a bare body).
//! A header from the input is never authentic (the fuzzer does not know the key); a JWT built
//! from the claims spec and signed with the key is authentic exactly when the documented rules
//! say so; a parsed body has only usable ids.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use idv::providers::prove::webhook::{ISSUER, LEEWAY_SECONDS, is_authentic, parse};
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
    extra: Option<(String, String)>,
    alg: Alg,
    other_key: bool,
    /// 0: `Bearer `, 1: `bearer `, 2: none, else `BEARER `.
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
        assert!(!events.is_empty());
        let key_like =
            |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic());
        for e in &events {
            assert!(
                key_like(&e.event_id) && key_like(&e.event_type) && key_like(&e.identity_id),
                "{e:?}"
            );
        }
    }
});

/// Signs the spec's claims and checks the verdict against the rules, computed here without overflow.
fn signed(spec: &Spec) {
    let mut claims = Map::new();
    if let Some((k, v)) = &spec.extra {
        claims.insert(k.clone(), json!(v));
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
        _ => "BEARER ",
    };
    let pad = if spec.trailing_space { " " } else { "" };
    let header = format!("{scheme}{token}{pad}");

    let leeway = i128::from(LEEWAY_SECONDS);
    let now = i128::from(NOW);
    // An `exp` of the token library's type (unsigned) and an `iat` of ours (i64), both integers.
    // The rules, whichever secret signed it: an `exp` of the token library's type (unsigned) and
    // an `iat` of ours (i64), both integers.
    let rules = matches!(alg, Algorithm::HS256)
        && spec.scheme < 2
        && claims.get("iss") == Some(&json!(ISSUER))
        && matches!(iat, Some((_, Some(t))) if t <= now + leeway)
        && matches!(exp, Some((_, Some(t))) if t >= 0 && now <= t + leeway);
    let got = is_authentic([KEY], Some(&header), NOW);
    assert_eq!(
        got,
        rules && !spec.other_key,
        "claims {claims:?}, header {header:?}"
    );
    // During a rotation both secrets are accepted.
    assert_eq!(is_authentic([OTHER, KEY], Some(&header), NOW), rules);
}
