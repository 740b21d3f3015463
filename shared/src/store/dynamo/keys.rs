//! Every key of the table (the layout in `mod.rs`), built in one place. Numbers in sort keys are
//! fixed width, so that string order is time order.

use super::super::cursor::Position;
use super::super::shard::{delivery_shard, outbound_shard, session_shard};
use super::attr::{Item, opt_s, s};
use crate::events::OutboundKey;
use crate::session::SessionId;
use std::collections::HashMap;
use time::OffsetDateTime;

/// The index of a user's sessions.
pub(super) const USER_INDEX: &str = "gsi1";
/// The sparse index of due sessions and deliveries awaiting a retry.
pub(super) const DUE_INDEX: &str = "gsi2";
/// The index of a tenant's sessions: keyed by the session's `tenant` and sorted by the user
/// index's `gsi1sk` (creation time, then id), so that it costs a session no attribute of its own.
pub(super) const TENANT_INDEX: &str = "gsi3";

pub(super) const SESSION_SK: &str = "SES";
pub(super) const REF_SK: &str = "REF";
pub(super) const DELIVERY_SK: &str = "WH";
pub(super) const TOKEN_SK: &str = "TOK";
pub(super) const IDEM_SK: &str = "IDEM";
/// Identity events sort under their session by this prefix.
pub(super) const IDENTITY_EVENT_PREFIX: &str = "IE#";
/// Reads of a session's verified data sort under their session by this prefix.
pub(super) const ACCESS_PREFIX: &str = "VDA#";

pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

pub(super) fn unix_ms(at: OffsetDateTime) -> i128 {
    (at.unix_timestamp_nanos() / 1_000_000).max(0)
}

/// Everything of a time-ordered index partition at or before `at`: `~` sorts after every
/// character of what follows the time.
pub(super) fn upto(at: OffsetDateTime) -> String {
    format!("{:015}#~", unix_ms(at))
}

// ---- sessions ------------------------------------------------------------------------------

pub(super) fn session_pk(id: &SessionId) -> String {
    format!("SES#{id}")
}
pub(super) fn session_key(id: &SessionId) -> Item {
    key(session_pk(id), SESSION_SK)
}
/// The session a session item, or an index entry naming one, is about.
pub(super) fn session_id_of(item: &Item) -> Option<SessionId> {
    opt_s(item, "pk")?
        .strip_prefix("SES#")
        .and_then(SessionId::parse)
}
pub(super) fn user_pk(tenant: &str, user_id: &str) -> String {
    format!("USR#{tenant}#{user_id}")
}
pub(super) fn user_sk(created_ns: i128, id: &SessionId) -> String {
    format!("{created_ns:020}#{id}")
}
/// The creation time a `user_sk` holds, as the listing's cursor names it.
pub(super) fn position_of(gsi1sk: &str) -> Option<Position> {
    let (ns, id) = gsi1sk.split_once('#')?;
    if ns.len() != 20 || !ns.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(Position {
        created_ns: ns.parse().ok()?,
        id: SessionId::parse(id)?,
    })
}
/// A bound of `user_sk`s by creation time alone: every session created at or after `ns` sorts
/// at or after it, every one created before sorts before it (it is no key: `<` and `>=` alike).
pub(super) fn created_bound(ns: i128) -> String {
    format!("{:020}", ns.clamp(0, 99_999_999_999_999_999_999))
}
pub(super) fn due_pk(shard: u16) -> String {
    format!("DUE#{shard:02}")
}
pub(super) fn session_due_pk(id: &SessionId) -> String {
    due_pk(session_shard(id))
}
/// Fixed-width milliseconds; the id keeps keys unique.
pub(super) fn due_sk(at: OffsetDateTime, id: &SessionId) -> String {
    format!("{:015}#{id}", unix_ms(at))
}
/// The time a due or retry filing (`gsi2sk`) holds, in milliseconds.
pub(super) fn filed_ms(gsi2sk: &str) -> Option<i128> {
    gsi2sk.split('#').next()?.parse().ok()
}
pub(super) fn identity_event_sk(event_id: &str) -> String {
    format!("{IDENTITY_EVENT_PREFIX}{event_id}")
}
/// An access id sorts as its time (`verified::DataAccess`).
pub(super) fn access_sk(access_id: &str) -> String {
    format!("{ACCESS_PREFIX}{access_id}")
}

// ---- refs ----------------------------------------------------------------------------------

pub(super) fn ref_pk(ref_key: &str) -> String {
    format!("REF#{ref_key}")
}
pub(super) fn ref_key(ref_key: &str) -> Item {
    key(ref_pk(ref_key), REF_SK)
}
/// The ref key a ref item's `pk` holds.
pub(super) fn ref_key_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("REF#")
}

// ---- deliveries ----------------------------------------------------------------------------

pub(super) fn delivery_pk(provider: &str, event_id: &str) -> String {
    format!("WH#{provider}#{event_id}")
}
pub(super) fn delivery_key(provider: &str, event_id: &str) -> Item {
    key(delivery_pk(provider, event_id), DELIVERY_SK)
}
pub(super) fn retry_pk(shard: u16) -> String {
    format!("RETRY#{shard:02}")
}
pub(super) fn delivery_retry_pk(provider: &str, event_id: &str) -> String {
    retry_pk(delivery_shard(provider, event_id))
}
/// Fixed-width milliseconds; the delivery's pk keeps keys unique.
pub(super) fn retry_sk(at: OffsetDateTime, provider: &str, event_id: &str) -> String {
    format!("{:015}#{}", unix_ms(at), delivery_pk(provider, event_id))
}
pub(super) fn unmatched_pk(provider: &str, subject: &str) -> String {
    format!("UNM#{provider}#{subject}")
}
pub(super) fn unmatched_sk(event_id: &str) -> String {
    format!("{DELIVERY_SK}#{event_id}")
}
pub(super) fn token_key(provider: &str, token_hash: &str) -> Item {
    key(format!("TOK#{provider}#{token_hash}"), TOKEN_SK)
}

// ---- idempotency keys and reauthentications ------------------------------------------------

pub(super) fn idem_key(tenant: &str, idem_key: &str) -> Item {
    key(format!("IDEM#{tenant}#{idem_key}"), IDEM_SK)
}
pub(super) fn reauth_pk(tenant: &str, user_id: &str) -> String {
    format!("RA#{tenant}#{user_id}")
}
pub(super) fn reauth_sk(at: OffsetDateTime, event_id: &str) -> String {
    format!("{:020}#{event_id}", at.unix_timestamp_nanos().max(0))
}

// ---- outbound events ------------------------------------------------------------------------

pub(super) fn endpoint_key(tenant: &str, id: &str) -> Item {
    key(endpoints_pk(tenant), id)
}
pub(super) fn endpoints_pk(tenant: &str) -> String {
    format!("EP#{tenant}")
}
pub(super) fn events_pk(tenant: &str) -> String {
    format!("EVT#{tenant}")
}
pub(super) fn event_key(tenant: &str, id: &str) -> Item {
    key(events_pk(tenant), id)
}
pub(super) fn outbound_pk(tenant: &str, event_id: &str) -> String {
    format!("EVD#{tenant}#{event_id}")
}
pub(super) fn outbound_key(k: &OutboundKey) -> Item {
    key(outbound_pk(&k.tenant, &k.event_id), &k.endpoint_id)
}
/// The delivery an outbound item (or an index entry naming one) is: its event id holds no `#`,
/// the tenant may.
pub(super) fn outbound_key_of(item: &Item) -> Option<OutboundKey> {
    let pk = opt_s(item, "pk")?;
    let (tenant, event_id) = pk.strip_prefix("EVD#")?.rsplit_once('#')?;
    Some(OutboundKey {
        tenant: tenant.to_owned(),
        event_id: event_id.to_owned(),
        endpoint_id: opt_s(item, "sk")?,
    })
}
pub(super) fn outbound_due_pk(k: &OutboundKey) -> String {
    format!("OUT#{:02}", outbound_shard(k))
}
pub(super) fn outbound_due_pk_of(shard: u16) -> String {
    format!("OUT#{shard:02}")
}
pub(super) fn outbound_due_sk(at: OffsetDateTime, k: &OutboundKey) -> String {
    format!(
        "{:015}#{}#{}",
        unix_ms(at),
        outbound_pk(&k.tenant, &k.event_id),
        k.endpoint_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_keys_sort_as_their_times() {
        let id = SessionId::generate();
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let later = t + time::Duration::milliseconds(1);
        assert!(due_sk(t, &id) < due_sk(later, &id));
        assert!(due_sk(t, &id) <= upto(t) && upto(t) < due_sk(later, &id));
        assert!(retry_sk(t, "prove", "e") <= upto(t));
        assert_eq!(filed_ms(&due_sk(t, &id)), Some(1_800_000_000_000));
        assert!(user_sk(1, &id) < user_sk(10, &id));
        assert!(created_bound(10) <= user_sk(10, &id) && user_sk(10, &id) < created_bound(11));
        assert!(user_sk(9, &id) < created_bound(10));
        assert_eq!(
            position_of(&user_sk(42, &id)),
            Some(Position {
                created_ns: 42,
                id: id.clone()
            })
        );
        assert_eq!(position_of("42#ses_x"), None);
        assert!(reauth_sk(t, "e") < reauth_sk(later, "e"));
        assert_eq!(
            ref_key_of(&ref_pk("prove#identity#i")),
            Some("prove#identity#i")
        );
        assert_eq!(session_id_of(&session_key(&id)), Some(id));
        let k = OutboundKey {
            tenant: "a#b".into(),
            event_id: "evt_x".into(),
            endpoint_id: "ep_y".into(),
        };
        assert_eq!(outbound_key_of(&outbound_key(&k)), Some(k.clone()));
        assert!(outbound_due_sk(t, &k) <= upto(t));
    }
}
