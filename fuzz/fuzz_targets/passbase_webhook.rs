//! Passbase webhook: `base64(IV ‖ AES-256-CBC(key, JSON))`, no MAC; a delivery counts only if it
//! decrypts and parses as an event. Input: the bytes, used twice: as a delivery body as it
//! arrived, and as the plaintext of a real encryption (so the event parser behind decryption is
//! reached). Accepted events always meet the event rules; encryption round-trips.
#![no_main]

use idv::providers::passbase::webhook::{Event, event_id, open, parse};
use idv::webhooks::aes_cbc_body::{decrypt, encrypt};
use idv_fuzz::lower_uuid;
use libfuzzer_sys::fuzz_target;

const KEY: &str = "fuzz-passbase-webhook-secret-32c";
const OTHER: &str = "fuzz-passbase-some-other-key-32c";

fuzz_target!(|data: &[u8]| {
    // As a delivery.
    let plain = decrypt(KEY, data);
    let opened = open(KEY, false, data);
    if let Some(e) = &opened {
        let plain = plain.as_deref().expect("an opened delivery decrypted");
        assert_eq!(parse(plain).as_ref(), Some(e));
        check(e);
    }
    // Plain JSON only when allowed, and then only what parses.
    let lax = open(KEY, true, data);
    match &plain {
        Some(p) => assert_eq!(lax, parse(p)),
        None => assert_eq!(lax, parse(data)),
    }
    assert!(decrypt("short key", data).is_none());

    // As the plaintext of a delivery.
    let mut iv = [0u8; 16];
    for (slot, b) in iv.iter_mut().zip(data.iter().rev()) {
        *slot = *b;
    }
    let body = encrypt(KEY, iv, data).expect("a 32-byte key encrypts");
    assert_eq!(decrypt(KEY, body.as_bytes()).as_deref(), Some(data));
    assert_eq!(
        decrypt(KEY, format!("{body}\r\n").as_bytes()).as_deref(),
        Some(data)
    );
    assert_ne!(decrypt(OTHER, body.as_bytes()).as_deref(), Some(data));
    let event = parse(data);
    assert_eq!(open(KEY, false, body.as_bytes()), event);
    assert_eq!(open(KEY, true, body.as_bytes()), event);
    if let Some(e) = &event {
        check(e);
    }
    // Cut anywhere short of its last block, a delivery no longer opens to the same bytes.
    let cut = &body.as_bytes()[..body.len() - 4];
    assert_ne!(decrypt(KEY, cut).as_deref(), Some(data));
});

/// The event rules: an upper-case name, a lower-case identity UUID, an id built from both.
fn check(e: &Event) {
    assert!((1..=64).contains(&e.event.len()));
    assert!(
        e.event.bytes().all(|c| c.is_ascii_uppercase() || c == b'_'),
        "{:?}",
        e.event
    );
    assert!(lower_uuid(&e.key), "{:?}", e.key);
    let id = event_id(e);
    assert!(id.starts_with(&format!("{}#{}#", e.key, e.event)), "{id}");
    let at = &id[e.key.len() + e.event.len() + 2..];
    assert!(at == "-" || at.parse::<i64>().is_ok(), "{id}");
}
