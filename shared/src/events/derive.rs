//! From a committed change to the event that announces it (pure). One change, at most one event,
//! always the same one: its id is a digest of what changed, so reading a change twice (a stream
//! batch retried, a crash before the checkpoint) yields the same event, stored once.

use super::model::{Event, EventType};
use crate::clock::rfc3339;
use crate::providers::Providers;
use crate::session::{HistoryEntry, IdentityEvent, Reauthentication, Session};
use crate::store::Stored;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Sortable by time, like a ULID: 10 characters of milliseconds, 16 of the change's digest
/// (Crockford's alphabet, which sorts as its values do).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

pub fn event_id(at: OffsetDateTime, seed: &str) -> String {
    let ms = (at.unix_timestamp_nanos() / 1_000_000).clamp(0, (1 << 48) - 1) as u64;
    let digest = Sha256::digest(seed.as_bytes());
    let mut out = String::with_capacity(30);
    out.push_str("evt_");
    for i in (0..10).rev() {
        out.push(ALPHABET[((ms >> (i * 5)) & 31) as usize] as char);
    }
    // 80 bits of the digest, 5 at a time.
    let mut bits: u128 = 0;
    for b in &digest[..10] {
        bits = (bits << 8) | u128::from(*b);
    }
    for i in (0..16).rev() {
        out.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
    }
    out
}

/// Whether `s` has the shape of an event id (anything else is simply not found).
pub fn is_event_id(s: &str) -> bool {
    s.strip_prefix("evt_")
        .is_some_and(|r| r.len() == 26 && r.bytes().all(|c| ALPHABET.contains(&c)))
}

fn body(id: &str, t: EventType, at: OffsetDateTime, data: Value) -> String {
    json!({"id": id, "type": t.as_str(), "timestamp": rfc3339(at), "data": data}).to_string()
}

/// The event of a session write, if it announces one: a write that committed a status change
/// (its history entry is of the version it stored), or the session's creation. A write that only
/// re-filed the session or noted something without moving it announces nothing.
pub fn session_event(
    providers: &Providers,
    stored: &Stored<Session>,
    entry: Option<&HistoryEntry>,
) -> Option<Event> {
    let entry = entry.filter(|h| h.version == stored.version)?;
    let created = entry.version == crate::store::FIRST_VERSION;
    let redacted = entry.reason.as_deref() == Some("redacted") && stored.is_redacted();
    if !created && !redacted && entry.from == entry.to {
        return None;
    }
    // A session that leaves a decision (verified or failed: a review, a reset at the provider)
    // announces that, whatever it moved to; its new status is in the session.
    let t = if redacted {
        EventType::SessionRedacted
    } else if entry.from.is_decision() {
        EventType::SessionDecisionOverturned
    } else {
        EventType::of_status(entry.to)
    };
    let s = &stored.value;
    let id = event_id(entry.at, &format!("session|{}|{}", s.id, stored.version));
    let data = json!({
        "session": crate::http::views::session(providers, s, None),
        "version": stored.version,
        "previous_status": (!created).then(|| entry.from.as_str()),
        "source": entry.source,
        "reason": entry.reason,
    });
    Some(Event {
        body: body(&id, t, entry.at, data),
        id,
        tenant: s.tenant.clone(),
        event_type: t,
        session_id: Some(s.id.clone()),
        created_at: entry.at,
    })
}

/// A Prove identity event on a verified session: its app should verify the user again.
pub fn reverification_event(
    providers: &Providers,
    stored: &Stored<Session>,
    e: &IdentityEvent,
) -> Event {
    let t = EventType::SessionReverificationRecommended;
    let s = &stored.value;
    let id = event_id(e.received_at, &format!("identity|{}|{}", s.id, e.event_id));
    let data = json!({
        "session": crate::http::views::session(providers, s, None),
        "version": stored.version,
        "identity_event": {
            "event_id": e.event_id,
            "type": e.event_type,
            "occurred_at": e.occurred_at.map(rfc3339),
        },
    });
    Event {
        body: body(&id, t, e.received_at, data),
        id,
        tenant: s.tenant.clone(),
        event_type: t,
        session_id: Some(s.id.clone()),
        created_at: e.received_at,
    }
}

/// A user's reauthentication (Passbase).
pub fn reauthentication_event(r: &Reauthentication) -> Event {
    let t = EventType::UserReauthenticated;
    let id = event_id(
        r.at,
        &format!("reauth|{}|{}|{}", r.tenant, r.user_id, r.event_id),
    );
    let data = json!({
        "user_id": r.user_id,
        "provider": r.provider.as_str(),
        "session_id": r.session_id.as_str(),
        "identity_id": r.identity_id,
        "outcome": r.outcome,
        "at": rfc3339(r.at),
    });
    Event {
        body: body(&id, t, r.at, data),
        id,
        tenant: r.tenant.clone(),
        event_type: t,
        session_id: Some(r.session_id.clone()),
        created_at: r.at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ_by_change() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let later = t + time::Duration::milliseconds(1);
        let a = event_id(t, "a");
        assert_eq!(a, event_id(t, "a"));
        assert_ne!(a, event_id(t, "b"));
        assert!(a < event_id(later, "a") && event_id(t, "z") < event_id(later, "a"));
        assert!(is_event_id(&a), "{a}");
        assert!(!is_event_id("evt_") && !is_event_id(&a.to_uppercase()));
    }
}
