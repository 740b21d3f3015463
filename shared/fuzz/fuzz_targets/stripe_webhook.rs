//! Stripe webhook: `Stripe-Signature: t=..,v1=..` over `"{t}.{raw body}"`, then the event.
//! Input: `header \0 body` (or a bare body). Nothing is accepted without the secret, a stale
//! timestamp never is, the right signature is accepted among others and for no other body, and a
//! parsed event names an `evt_` and a `vs_` id fit for keys and URLs.
#![no_main]

use idv::providers::stripe::is_id;
use idv::providers::stripe::webhook::{TOLERANCE_SECONDS, is_authentic, parse};
use idv::webhooks::hmac_digest;
use idv_fuzz::{fields, header};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "whsec_fuzz-stripe-secret";
const OTHER: &str = "whsec_fuzz-stripe-other";
const NOW: i64 = 1_795_000_000;

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    hmac_digest::sign_hex(secret, &signed)
}

fuzz_target!(|data: &[u8]| {
    let ([sig], body) = fields::<1>(data);
    let sig = header(sig);
    let sig = sig.as_deref();

    // A header from the input: the fuzzer does not know KEY, so an acceptance is a forgery unless
    // some v1 in it is the signature of this body at its t, and t is fresh.
    if is_authentic([KEY], sig, body, NOW) {
        let h = sig.unwrap();
        // The header's last `t` (a later one replaces an earlier one).
        let t: i64 = h
            .split(',')
            .filter_map(|p| p.split_once('='))
            .filter(|(k, _)| k.trim() == "t")
            .filter_map(|(_, v)| v.trim().parse().ok())
            .last()
            .expect("accepted without a timestamp");
        assert!(t >= NOW - TOLERANCE_SECONDS, "accepted a stale timestamp");
        assert!(
            h.to_ascii_lowercase().contains(&sign(KEY, t, body)),
            "accepted a signature that is not the MAC"
        );
        assert!(!is_authentic([OTHER], sig, body, NOW));
    }
    assert!(!is_authentic(std::iter::empty::<&str>(), sig, body, NOW));

    // The right signature: alone, beside another secret's (a roll), upper case; never stale, never
    // for another body, never as v0.
    let good = sign(KEY, NOW, body);
    let rolled = format!("t={NOW},v1={},v1={good}", sign(OTHER, NOW, body));
    for h in [
        format!("t={NOW},v1={good}"),
        rolled.clone(),
        format!("t={NOW}, v1={}", good.to_uppercase()),
    ] {
        assert!(is_authentic([KEY], Some(&h), body, NOW), "{h}");
        assert!(is_authentic([OTHER, KEY], Some(&h), body, NOW), "{h}");
    }
    assert!(!is_authentic(
        [KEY],
        Some(&format!("t={NOW},v0={good}")),
        body,
        NOW
    ));
    let old = NOW - TOLERANCE_SECONDS - 1;
    assert!(!is_authentic(
        [KEY],
        Some(&format!("t={old},v1={}", sign(KEY, old, body))),
        body,
        NOW
    ));
    if let Some((last, head)) = body.split_last() {
        let tampered = [head, &[last ^ 1]].concat();
        assert!(!is_authentic([KEY], Some(&rolled), &tampered, NOW));
        assert!(!is_authentic([KEY], Some(&rolled), head, NOW));
    }

    // What a parsed event names reaches table keys and provider URLs.
    if let Ok(e) = parse(body) {
        assert!(is_id(&e.id, "evt_"), "{:?}", e.id);
        assert!(is_id(&e.session, "vs_"), "{:?}", e.session);
        assert!(
            e.kind.starts_with("identity.verification_session.") && e.kind.len() <= 64,
            "{:?}",
            e.kind
        );
    }
});
