//! Every API request-body parser (`idv::http::bodies`) and `Idempotency-Key`, on fuzzed JSON.
//! Input: `idempotency-key \0 body` (or a bare body). Each parser accepts only its fields with
//! values inside the documented rules, and refuses with a 400 naming the bad fields; an
//! idempotency key is accepted exactly when it is 1-255 visible ASCII characters.
#![no_main]

use idv::flows::idempotency::IdempotencyKey;
use idv::http::routes;
use idv_fuzz::{check_bodies, fields, refused};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FINGERPRINT_KEY: &str = "fuzz-fingerprint-key-0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let ([key], body) = fields::<1>(data);
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        check_bodies(&map);
    }
    let key = String::from_utf8_lossy(key);
    for (method, template, _) in routes().into_iter().filter(|r| r.0 == "POST") {
        match IdempotencyKey::new(&key, method, template, body, FINGERPRINT_KEY) {
            Ok(k) => {
                assert!(
                    (1..=255).contains(&key.len()) && key.bytes().all(|c| c.is_ascii_graphic())
                );
                assert_eq!(k.key, key);
            }
            Err(e) => {
                assert!(
                    !((1..=255).contains(&key.len()) && key.bytes().all(|c| c.is_ascii_graphic()))
                );
                refused(&e);
            }
        }
    }
});
