//! Every API request-body parser (`idv::http::bodies`) and `Idempotency-Key`, on fuzzed JSON.
//! Input: `idempotency-key \0 body` (or a bare body). Each parser accepts only its fields with
//! values inside the documented rules, and refuses with a 400 naming the bad fields.
#![no_main]

use idv::flows::idempotency::IdempotencyKey;
use idv::http::ROUTES;
use idv_fuzz::{check_bodies, fields, refused};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let ([key], body) = fields::<1>(data);
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        check_bodies(&map);
    }
    let key = String::from_utf8_lossy(key);
    let mut hashes = Vec::new();
    for (method, template, _) in ROUTES.iter().filter(|r| r.0 == "POST") {
        let route = format!("{method} {template}");
        match IdempotencyKey::new(&key, &route, body) {
            Ok(k) => {
                assert!(
                    (1..=255).contains(&key.len()) && key.bytes().all(|c| c.is_ascii_graphic())
                );
                assert_eq!(k.key, key);
                assert!(
                    k.request_hash.len() == 64
                        && k.request_hash.bytes().all(|c| c.is_ascii_hexdigit())
                );
                let again = IdempotencyKey::new(&key, &route, body).unwrap();
                assert_eq!(
                    again.request_hash, k.request_hash,
                    "the fingerprint is stable"
                );
                hashes.push(k.request_hash);
            }
            Err(e) => refused(&e),
        }
    }
    // The same key and body on two routes are two requests.
    hashes.sort();
    let n = hashes.len();
    hashes.dedup();
    assert_eq!(hashes.len(), n, "routes share a fingerprint");
});
