//! The record of one read of a session's verified data: who (the tenant and which of its API
//! keys), when, which session. Never what was read. Kept `ACCESS_TTL`, shown to the session's
//! tenant (`GET /v1/sessions/{id}/verified_data/accesses`).

use crate::session::SessionId;
use time::{Duration, OffsetDateTime};

/// How long an access record is kept (DynamoDB's TTL deletes it some time after): a year and a
/// month, so that a yearly audit still finds the whole year.
pub const ACCESS_TTL: Duration = Duration::days(400);

/// Hex characters of an API key's SHA-256 digest that name the key in an access record: enough
/// to tell a tenant's keys apart and to find the key's entry in the secret document (whose
/// `sha256` starts with them), too few to stand for the digest.
pub const KEY_ID_LEN: usize = 12;

const ID_PREFIX: &str = "vda_";
/// Random characters after the time in an id (base32: 50 bits).
const ID_RANDOM: usize = 10;
/// Digits of the time in an id (Unix nanoseconds, zero-padded: ids sort as their times).
const ID_TIME: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataAccess {
    /// `vda_<20-digit Unix ns><10 base32>`: unique, and ordered by time.
    pub id: String,
    pub session_id: SessionId,
    pub tenant: String,
    /// Which API key of the tenant read (`key_id`), never the key or its whole digest.
    pub key_id: String,
    pub at: OffsetDateTime,
    /// When the record may be deleted (`at` + `ACCESS_TTL`, in whole seconds: DynamoDB's TTL).
    pub expires_at: OffsetDateTime,
}

impl DataAccess {
    pub fn new(session_id: SessionId, tenant: &str, key_id: &str, at: OffsetDateTime) -> Self {
        let ns = at.unix_timestamp_nanos().max(0);
        let random = crate::ids::random_token();
        DataAccess {
            id: format!("{ID_PREFIX}{ns:0ID_TIME$}{}", &random[..ID_RANDOM]),
            session_id,
            tenant: tenant.to_owned(),
            key_id: key_id.to_owned(),
            at,
            expires_at: (at + ACCESS_TTL)
                .replace_nanosecond(0)
                .unwrap_or(at + ACCESS_TTL),
        }
    }

    /// Whether `s` has the shape of an access id (a listing's cursor is one): a crafted cursor
    /// never reaches the database.
    pub fn is_id(s: &str) -> bool {
        s.strip_prefix(ID_PREFIX).is_some_and(|rest| {
            rest.len() == ID_TIME + ID_RANDOM
                && rest[..ID_TIME].bytes().all(|c| c.is_ascii_digit())
                && rest[ID_TIME..]
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        })
    }
}

/// The `key_id` of an API key, from its digest (lower-case hex SHA-256, as in the secret).
pub fn key_id(sha256: &str) -> String {
    sha256.chars().take(KEY_ID_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_sort_as_their_times() {
        let s = SessionId::generate();
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let a = DataAccess::new(s.clone(), "app-a", "0123456789ab", t);
        let b = DataAccess::new(s, "app-a", "0123456789ab", t + Duration::nanoseconds(1));
        assert!(DataAccess::is_id(&a.id), "{}", a.id);
        assert!(a.id < b.id);
        assert_eq!(a.expires_at - a.at, ACCESS_TTL);
        let late = DataAccess::new(
            SessionId::generate(),
            "a",
            "k",
            t + Duration::milliseconds(1500),
        );
        assert_eq!(late.expires_at.nanosecond(), 0);
        assert!(ACCESS_TTL - (late.expires_at - late.at) < Duration::seconds(1));
        for bad in [
            "",
            "vda_",
            "vda_123",
            "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa",
            &a.id.to_uppercase(),
        ] {
            assert!(!DataAccess::is_id(bad), "{bad}");
        }
        assert_eq!(key_id(&"ab".repeat(32)), "abababababab");
    }
}
