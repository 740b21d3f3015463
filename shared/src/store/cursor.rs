//! The opaque `cursor` of a session listing: where the previous page ended, bound to the listing
//! (tenant and filter) that handed it out. Anything else, crafted, altered or foreign, decodes to
//! nothing, and the caller answers 400: a cursor never reaches the database unchecked. The tag is
//! a hash, not a MAC: whoever knows a listing can make a cursor of it, which only positions a
//! read inside that same listing (the tenant is the query's key, never the cursor's).

use super::SessionFilter;
use crate::session::SessionId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The last session a page read, in the listing's order (creation time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Unix nanoseconds of the session's creation (never negative).
    pub created_ns: i128,
    pub id: SessionId,
}

/// Longest cursor accepted: what `encode` makes is about 110 characters.
pub const MAX_LEN: usize = 256;
const VERSION: &str = "v2";

/// Ties a cursor to its listing without revealing the tenant or the filter. Each part is
/// length-framed, so that no two listings share a tag by moving a separator.
fn listing_tag(tenant: &str, f: &SessionFilter) -> String {
    let ns = |t: Option<OffsetDateTime>| t.map(|t| t.unix_timestamp_nanos().to_string());
    let parts = [
        Some(tenant.to_owned()),
        f.user_id.clone(),
        f.status.map(|s| s.as_str().to_owned()),
        f.provider.as_ref().map(|p| p.as_str().to_owned()),
        ns(f.created_from),
        ns(f.created_until),
    ];
    let mut h = Sha256::new();
    // Appended only when set: the tags of every other listing stay as they were.
    let extra = f.with_redacting.then(|| "with_redacting".to_owned());
    for part in parts.into_iter().chain(extra.map(Some)) {
        match part {
            None => h.update([0]),
            Some(p) => {
                h.update([1]);
                h.update((p.len() as u64).to_be_bytes());
                h.update(p.as_bytes());
            }
        }
    }
    hex::encode(&h.finalize()[..8])
}

pub fn encode(tenant: &str, filter: &SessionFilter, at: &Position) -> String {
    let raw = format!(
        "{VERSION}|{}|{}|{}",
        at.created_ns.max(0),
        at.id,
        listing_tag(tenant, filter)
    );
    URL_SAFE_NO_PAD.encode(raw)
}

/// The position a cursor of this listing names, or `None` for anything else.
pub fn decode(tenant: &str, filter: &SessionFilter, cursor: &str) -> Option<Position> {
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
    if version != VERSION || !digits_ok || tag != listing_tag(tenant, filter) {
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
    use crate::session::{Provider, Status};

    #[test]
    fn a_cursor_round_trips_only_on_its_own_listing() {
        let at = Position {
            created_ns: 1_800_000_000_123_456_789,
            id: SessionId::generate(),
        };
        let user = SessionFilter::user("u");
        let c = encode("t", &user, &at);
        assert_eq!(decode("t", &user, &c), Some(at.clone()));
        assert_eq!(decode("t", &SessionFilter::user("v"), &c), None);
        assert_eq!(decode("t2", &user, &c), None);
        assert_eq!(decode("t", &SessionFilter::default(), &c), None);
        // Each filter is part of the listing.
        let base = SessionFilter::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let others = [
            SessionFilter {
                status: Some(Status::Verified),
                ..base.clone()
            },
            SessionFilter {
                provider: Some(Provider::named("stripe")),
                ..base.clone()
            },
            SessionFilter {
                created_from: Some(t0),
                ..base.clone()
            },
            SessionFilter {
                created_until: Some(t0),
                ..base.clone()
            },
        ];
        let c = encode("t", &base, &at);
        assert_eq!(decode("t", &base, &c), Some(at.clone()));
        for (i, f) in others.iter().enumerate() {
            assert_eq!(decode("t", f, &c), None, "{f:?}");
            let own = encode("t", f, &at);
            assert_eq!(decode("t", f, &own), Some(at.clone()));
            for (j, g) in others.iter().enumerate() {
                if i != j {
                    assert_eq!(decode("t", g, &own), None, "{f:?} {g:?}");
                }
            }
        }
        // A tenant and a user that move a character between them are another listing.
        assert_ne!(
            listing_tag("ab", &SessionFilter::user("c")),
            listing_tag("a", &SessionFilter::user("bc"))
        );
    }

    #[test]
    fn crafted_cursors_decode_to_nothing() {
        let id = SessionId::generate();
        let f = SessionFilter::user("u");
        let tag = listing_tag("t", &f);
        for raw in [
            String::new(),
            format!("v1|1|{id}|{tag}"),
            format!("v2||{id}|{tag}"),
            format!("v2|-1|{id}|{tag}"),
            format!("v2|1|ses_x|{tag}"),
            format!("v2|1|{id}|{tag}|x"),
            format!("v2|{}|{id}|{tag}", "9".repeat(21)),
        ] {
            assert_eq!(
                decode("t", &f, &URL_SAFE_NO_PAD.encode(raw.as_bytes())),
                None,
                "{raw}"
            );
        }
        assert_eq!(decode("t", &f, "not base64!"), None);
        assert_eq!(decode("t", &f, &"A".repeat(MAX_LEN + 1)), None);
    }
}
