//! Authento webhook: `X-PAYLOAD-DIGEST` (+ `X-PAYLOAD-DIGEST-ALG`) over raw bytes, then the body.
//! Input: `digest \0 alg \0 body` (or a bare body). Nothing is accepted without the key; the right
//! digest is accepted in every documented spelling, during a rotation too, and for no other body.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use idv::providers::authento::webhook::{event_id, is_authentic, parse};
use idv::webhooks::hmac_digest;
use idv_fuzz::{fields, header};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "fuzz-authento-webhook-secret";
const OTHER: &str = "fuzz-authento-other-secret";

fuzz_target!(|data: &[u8]| {
    let ([digest, alg], body) = fields::<2>(data);
    let (digest, alg) = (header(digest), header(alg));
    let (digest, alg) = (digest.as_deref(), alg.as_deref());

    // Headers from the input: the fuzzer does not know KEY, so an acceptance is a forgery unless
    // the digest is the MAC of this body under KEY.
    if is_authentic([KEY], body, digest, alg) {
        let mac = hmac_digest::sign_hex(KEY, body);
        let d = digest.unwrap().trim();
        assert!(
            d.eq_ignore_ascii_case(&mac) || decodes_to(d, &hex::decode(&mac).unwrap()),
            "accepted a digest that is not the MAC"
        );
        assert!(!is_authentic([OTHER], body, digest, alg));
    }
    assert!(!is_authentic(std::iter::empty::<&str>(), body, digest, alg));
    if let Some(a) = alg
        && !matches!(
            a.trim().to_ascii_uppercase().as_str(),
            "HMAC_SHA256_HEX" | "HMAC_SHA256"
        )
    {
        let mac = hmac_digest::sign_hex(KEY, body);
        assert!(
            !is_authentic([KEY], body, Some(&mac), alg),
            "alg {a:?} accepted"
        );
    }

    // The right digest, in hex of either case and in base64.
    let mac = hmac_digest::sign_hex(KEY, body);
    let b64 = STANDARD.encode(hex::decode(&mac).unwrap());
    for d in [mac.clone(), mac.to_uppercase(), b64] {
        assert!(is_authentic([KEY], body, Some(&d), None));
        assert!(is_authentic(
            [OTHER, KEY],
            body,
            Some(&d),
            Some("HMAC_SHA256_HEX")
        ));
        assert!(!is_authentic([OTHER], body, Some(&d), None));
    }
    if let Some((last, head)) = body.split_last() {
        let tampered = [head, &[last ^ 1]].concat();
        assert!(!is_authentic([KEY], &tampered, Some(&mac), None));
        assert!(!is_authentic([KEY], head, Some(&mac), None));
    }

    // The user identifier is the subject of a token the gateway issued, and keys the lookup:
    // like the event name, 1-128 visible ASCII characters.
    if let Ok(e) = parse(body) {
        let key_like =
            |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic());
        assert!(key_like(&e.user_identifier), "{:?}", e.user_identifier);
        assert!(key_like(&e.event), "{:?}", e.event);
    }
    let id = event_id(body);
    assert!(
        id.len() == 64
            && id
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
});

/// True if `d` is some base64 spelling of `tag`.
fn decodes_to(d: &str, tag: &[u8]) -> bool {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
        .iter()
        .any(|e| e.decode(d).is_ok_and(|b| b == tag))
}
