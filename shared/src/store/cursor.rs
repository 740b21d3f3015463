//! The opaque `cursor` of a user's session listing: where the previous page ended, bound to the
//! listing (tenant and user) that handed it out. Anything else, crafted or foreign, decodes to
//! nothing, and the caller answers 400: a cursor never reaches the database unchecked.

use crate::session::SessionId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The last session of a page, in the listing's order (creation time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Unix nanoseconds of the session's creation (never negative).
    pub created_ns: i128,
    pub id: SessionId,
}

/// Longest cursor accepted: what `encode` makes is about 110 characters.
const MAX_LEN: usize = 256;
const VERSION: &str = "v1";

/// Ties a cursor to its listing without revealing the tenant or the user.
fn listing_tag(tenant: &str, user_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0]);
    h.update(user_id.as_bytes());
    hex::encode(&h.finalize()[..8])
}

pub fn encode(tenant: &str, user_id: &str, at: &Position) -> String {
    let raw = format!(
        "{VERSION}|{}|{}|{}",
        at.created_ns.max(0),
        at.id,
        listing_tag(tenant, user_id)
    );
    URL_SAFE_NO_PAD.encode(raw)
}

/// The position a cursor of this listing names, or `None` for anything else.
pub fn decode(tenant: &str, user_id: &str, cursor: &str) -> Option<Position> {
    if cursor.is_empty() || cursor.len() > MAX_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut parts = text.split('|');
    let (Some(version), Some(ns), Some(id), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let digits_ok = (1..=20).contains(&ns.len()) && ns.bytes().all(|c| c.is_ascii_digit());
    if version != VERSION || !digits_ok || tag != listing_tag(tenant, user_id) {
        return None;
    }
    Some(Position {
        created_ns: ns.parse().ok()?,
        id: SessionId::parse(id)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_only_on_its_own_listing() {
        let at = Position {
            created_ns: 1_800_000_000_123_456_789,
            id: SessionId::generate(),
        };
        let c = encode("t", "u", &at);
        assert_eq!(decode("t", "u", &c), Some(at));
        assert_eq!(decode("t", "v", &c), None);
        assert_eq!(decode("t2", "u", &c), None);
    }

    #[test]
    fn crafted_cursors_decode_to_nothing() {
        let id = SessionId::generate();
        let tag = listing_tag("t", "u");
        for raw in [
            String::new(),
            format!("v2|1|{id}|{tag}"),
            format!("v1||{id}|{tag}"),
            format!("v1|-1|{id}|{tag}"),
            format!("v1|1|ses_x|{tag}"),
            format!("v1|1|{id}|{tag}|x"),
            format!("v1|{}|{id}|{tag}", "9".repeat(21)),
        ] {
            assert_eq!(
                decode("t", "u", &URL_SAFE_NO_PAD.encode(raw.as_bytes())),
                None,
                "{raw}"
            );
        }
        assert_eq!(decode("t", "u", "not base64!"), None);
        assert_eq!(decode("t", "u", &"A".repeat(MAX_LEN + 1)), None);
    }
}
