//! Passbase webhook: `base64(IV ‖ AES-256-CBC(key, JSON))`, no MAC; a delivery counts only if it
//! decrypts and parses as an event. Input: the bytes, used twice: as a delivery body as it
//! arrived, and as the plaintext of a real encryption (so the event parser behind decryption is
//! reached). Accepted events always meet the event rules; encryption round-trips; during a
//! rotation either key opens a delivery.
#![no_main]

use idv::providers::passbase::webhook::{Event, KNOWN_EVENTS, event_id, open, parse};
use idv::webhooks::aes_cbc_body::{decrypt, encrypt};
use idv_fuzz::lower_uuid;
use libfuzzer_sys::fuzz_target;

const KEY: &str = "fuzz-passbase-webhook-secret-32c";
const OTHER: &str = "fuzz-passbase-some-other-key-32c";

fuzz_target!(|data: &[u8]| {
    // As a delivery.
    let plain = decrypt(KEY, data);
    if let Some(o) = open([KEY], false, data) {
        assert_eq!(
            Some(&o.plaintext),
            plain.as_ref(),
            "opened without decrypting"
        );
        assert_eq!(parse(&o.plaintext).as_ref(), Some(&o.event));
        check(&o.event, &o.plaintext);
    }
    // Plain JSON only when allowed, and then only what parses.
    let lax = open([KEY], true, data).map(|o| o.event);
    match plain.as_deref().and_then(parse) {
        Some(e) => assert_eq!(lax, Some(e)),
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
    for secrets in [&[KEY][..], &[OTHER, KEY][..], &[KEY, OTHER][..]] {
        let opened = open(secrets.iter().copied(), false, body.as_bytes());
        assert_eq!(opened.as_ref().map(|o| &o.event), event.as_ref());
        if let Some(o) = opened {
            assert_eq!(o.plaintext, data);
        }
    }
    if let Some(e) = &event {
        check(e, data);
    }
    // Cut short of its last block, a delivery no longer opens to the same bytes.
    let cut = &body.as_bytes()[..body.len() - 4];
    assert_ne!(decrypt(KEY, cut).as_deref(), Some(data));
});

/// The event rules: a known name, a lower-case identity UUID, a status of up to 32 letters, digits
/// or `_`, and an id built from the key, the name, a time and a hash of the plaintext.
fn check(e: &Event, plaintext: &[u8]) {
    assert!(KNOWN_EVENTS.contains(&e.event.as_str()), "{:?}", e.event);
    assert!(lower_uuid(&e.key), "{:?}", e.key);
    assert!(
        e.status
            .as_deref()
            .is_none_or(|s| (1..=32).contains(&s.len())
                && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
    );
    let id = event_id(e, plaintext);
    let prefix = format!("{}#{}#", e.key, e.event);
    let rest = id.strip_prefix(&prefix).unwrap_or_else(|| panic!("{id}"));
    let (at, hash) = rest.split_once('#').unwrap_or_else(|| panic!("{id}"));
    assert!(at == "-" || at.parse::<i64>().is_ok(), "{id}");
    assert!(
        hash.len() == 16 && hash.bytes().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(event_id(e, plaintext), id, "stable");
}
