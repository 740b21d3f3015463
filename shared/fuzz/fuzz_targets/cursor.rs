//! The listing cursor (`idv::store::cursor`), of a user's listing. Input: `tenant \0 user \0 cursor`
//! (or a bare cursor).
//! Decoding anything never panics; what decodes is a position of this listing only, and encodes
//! back to a cursor naming the same position; every position the store makes round-trips.
#![no_main]

use idv::session::SessionId;
use idv::store::SessionFilter;
use idv::store::cursor::{Position, decode, encode};
use idv_fuzz::fields;
use libfuzzer_sys::fuzz_target;

/// Creation times the store can page over: its sort key holds 20 digits of nanoseconds (dynamo/keys.rs
/// `user_sk`), i.e. until the year 5138.
const MAX_NS: i128 = 99_999_999_999_999_999_999;
const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

fuzz_target!(|data: &[u8]| {
    let ([tenant, user], cursor) = fields::<2>(data);
    let tenant = String::from_utf8_lossy(tenant);
    let user = SessionFilter::user(&String::from_utf8_lossy(user));
    let other_user = SessionFilter::user(&format!("{}x", user.user_id.as_deref().unwrap_or("")));
    let cursor = String::from_utf8_lossy(cursor);

    if let Some(at) = decode(&tenant, &user, &cursor) {
        assert!((0..=MAX_NS).contains(&at.created_ns));
        let again = encode(&tenant, &user, &at);
        assert_eq!(decode(&tenant, &user, &again).as_ref(), Some(&at));
        assert_eq!(
            decode(&tenant, &other_user, &cursor),
            None,
            "bound to its user"
        );
        assert_eq!(
            decode(&format!("{tenant}x"), &user, &cursor),
            None,
            "bound to its tenant"
        );
    }

    // A position made of the input bytes.
    let mut ns = [0u8; 16];
    for (slot, b) in ns.iter_mut().zip(cursor.bytes()) {
        *slot = b;
    }
    let created_ns = i128::from_le_bytes(ns).rem_euclid(MAX_NS + 1);
    let id: String = cursor
        .bytes()
        .chain(std::iter::repeat(b'a'))
        .take(26)
        .map(|b| BASE32[usize::from(b) % 32] as char)
        .collect();
    let at = Position {
        created_ns,
        id: SessionId::parse(&format!("ses_{id}")).expect("a minted shape"),
    };
    let c = encode(&tenant, &user, &at);
    assert!(c.len() <= 256);
    assert_eq!(decode(&tenant, &user, &c), Some(at));
});
