//! Passbase's webhook authenticity (docs/providers/passbase.md#webhooks): the body must decrypt with the
//! webhook secret *and* parse as a Passbase event. Anything else is 401 `invalid_signature` and
//! leaves the table unchanged; plain JSON only when the setting allows it; and a body encrypted
//! by an independent implementation (Python `cryptography`) is accepted.

use super::passbase_support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use idv_tests::{Backend, Gateway};
use serde_json::json;
use std::process::Command;

/// The tools venv's Python (scripts/install-tools installs `cryptography` there).
fn python() -> String {
    let cache = std::env::var("IDV_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/idv-gateway",
            std::env::var("HOME").expect("HOME")
        )
    });
    format!("{cache}/venv/bin/python")
}

/// Python `cryptography`'s AES-256-CBC of `plaintext` under `key`, with PKCS#7 padding unless
/// `raw_last_byte` asks for an unpadded final block ending in that byte (bad padding).
fn python_encrypt(key: &str, plaintext: &str, raw_last_byte: Option<u8>) -> String {
    const SCRIPT: &str = r#"
import base64, os, sys
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
key, text, last = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3]
if last == "pkcs7":
    p = padding.PKCS7(128).padder()
    data = p.update(text) + p.finalize()
else:
    data = text + b" " * (-(len(text) + 1) % 16) + bytes([int(last)])
iv = os.urandom(16)
e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
print(base64.b64encode(iv + e.update(data) + e.finalize()).decode())
"#;
    let last = raw_last_byte.map_or_else(|| "pkcs7".to_owned(), |b| b.to_string());
    let out = Command::new(python())
        .args(["-c", SCRIPT, key, plaintext, &last])
        .output()
        .unwrap_or_else(|e| panic!("{} runs (scripts/install-tools): {e}", python()));
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn event(key: &str, name: &str, updated: i64) -> String {
    json!({"event": name, "key": key, "status": "approved", "created": updated - 60,
           "updated": updated, "processed": updated})
    .to_string()
}

#[tokio::test]
async fn a_webhook_encrypted_by_python_cryptography_decrypts_and_applies() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pw1", &key).await;
    // Passbase approves; its webhook is built here, by an independent implementation.
    act(&gw, &key, &["approve"], "none").await;
    let body = python_encrypt(
        &webhook_secret(&gw),
        &event(&key, "VERIFICATION_COMPLETED", 1_900_000_000),
        None,
    );
    let r = deliver(&gw, &body).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"received": true, "duplicate": false}))
    );
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}

#[tokio::test]
async fn undecryptable_or_plain_webhooks_are_refused_and_change_nothing() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let _id = linked_session(&gw, "user-pw2", &key).await;
    act(&gw, &key, &["approve"], "none").await;
    let secret = webhook_secret(&gw);
    let plain = event(&key, "VERIFICATION_COMPLETED", 1_900_000_100);
    let good = python_encrypt(&secret, &plain, None);
    let before = gw.snapshot().await;

    let wrong_key = python_encrypt("ffffffffffffffffffffffffffffffff", &plain, None);
    let truncated = good[..good.len() - 8].to_owned();
    let bad_padding = python_encrypt(&secret, &plain, Some(0));
    let mut raw = STANDARD.decode(&good).unwrap();
    raw.truncate(raw.len() - 16); // whole blocks, but the padded one is gone
    let block_short = STANDARD.encode(raw);
    let not_an_event = python_encrypt(&secret, r#"{"hello":"world"}"#, None);
    let not_json = python_encrypt(&secret, "VERIFICATION_COMPLETED approved", None);
    let cases = [
        ("wrong key", wrong_key, "text/plain"),
        ("truncated body", truncated, "text/plain"),
        ("bad padding", bad_padding, "text/plain"),
        ("last block missing", block_short, "text/plain"),
        ("not base64", "%%% not base64 %%%".to_owned(), "text/plain"),
        ("plain JSON", plain.clone(), "application/json"),
        ("empty", String::new(), "text/plain"),
        ("decrypts but is no event", not_an_event, "text/plain"),
        ("decrypts but is no JSON", not_json, "text/plain"),
    ];
    for (what, body, content_type) in cases {
        let r = deliver_as(&gw, &body, content_type).await;
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
        assert_eq!(r.body["code"], "invalid_signature", "{what}");
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    assert_eq!(
        gw.snapshot().await,
        before,
        "no session, delivery, ref or history changed"
    );

    // The genuine body still applies.
    let r = deliver(&gw, &good).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    gw.stop().await;
}

#[tokio::test]
async fn plain_json_is_accepted_only_when_the_setting_allows_it() {
    let gw =
        Gateway::start_with(Backend::Dynamo, &[("IDV_PASSBASE_ALLOW_PLAINTEXT", "true")]).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-pw3", &key).await;
    act(&gw, &key, &["decline"], "none").await;
    let plain = event(&key, "VERIFICATION_COMPLETED", 1_900_000_200);
    let r = deliver_as(&gw, &plain, "application/json").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(gw.stored_status(&id).await, "failed");
    // Still no junk: JSON that is not a Passbase event is refused.
    let r = deliver_as(&gw, r#"{"event":"x"}"#, "application/json").await;
    assert_eq!(r.status, 401);
    gw.stop().await;
}

#[tokio::test]
async fn a_body_whose_iv_was_tampered_with_is_refused_without_a_passbase_read() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    act(&gw, &key, &["approve"], "none").await;
    // Passbase's documented field order: the event name opens the first block.
    let plain = format!(
        r#"{{"event":"VERIFICATION_COMPLETED","key":"{key}","status":"approved","updated":1764000000}}"#
    );
    let body =
        idv::webhooks::aes_cbc_body::encrypt(&webhook_secret(&gw), [7; 16], plain.as_bytes())
            .unwrap();
    assert_eq!(
        deliver(&gw, &body).await.status,
        200,
        "the untampered body is authentic"
    );
    // CBC has no MAC: flipping IV bits rewrites the first plaintext block ({"event":"VERIFI...).
    let mut raw = STANDARD.decode(body.trim()).unwrap();
    raw[10] ^= b'V' ^ b'X';
    let tampered = STANDARD.encode(&raw);
    let reads = gw.running.passbase.identity_reads();
    let before = gw.snapshot().await;
    let r = deliver(&gw, &tampered).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(
        gw.running.passbase.identity_reads(),
        reads,
        "no Passbase read"
    );
    assert_eq!(gw.snapshot().await, before);
    gw.stop().await;
}

#[tokio::test]
async fn a_line_wrapped_base64_body_is_accepted() {
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = new_identity(&gw, None).await;
    let id = linked_session(&gw, "user-wrap", &key).await;
    let report = act(&gw, &key, &["approve"], "none").await;
    let body = bodies(&report)[0].clone();
    // Ruby's Base64.encode64 and MIME encoders break lines every 60 or 76 characters.
    let wrapped: String = body
        .as_bytes()
        .chunks(60)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let r = deliver(&gw, &wrapped).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(gw.stored_status(&id).await, "verified");
    gw.stop().await;
}
