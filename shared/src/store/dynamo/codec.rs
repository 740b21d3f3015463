//! Items to values and back, one record type at a time. Short attribute names in the session's
//! history list: it is part of every write of the session, which should stay within one 1 KB
//! write unit.

use super::super::{
    Delivery, DeliveryState, FIRST_VERSION, Filing, HistoryMark, IdempotencyRecord,
    IdempotencyState, ProviderRef, StoreError, StoreResult, Stored, is_scheduled,
};
use super::attr::*;
use super::keys::*;
use crate::session::{
    FailureCode, HistoryEntry, IdentityEvent, LastError, Metadata, Provider, ProviderData,
    ProviderDeletion, Reauthentication, Redaction, RedactionState, Session, SessionId, Source,
    StartOptions, Status,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use time::OffsetDateTime;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what}"))
}

fn provider(item: &Item) -> StoreResult<Provider> {
    Provider::parse(get_s(item, "provider")?).ok_or_else(|| corrupt("provider"))
}

fn session_id(item: &Item, k: &str) -> StoreResult<SessionId> {
    SessionId::parse(get_s(item, k)?).ok_or_else(|| corrupt("session id"))
}

// ---- sessions ------------------------------------------------------------------------------

/// Attributes of `session_item` that a session may lack: an update removes those its new state
/// lacks (the test `every_optional_session_attribute_is_listed` keeps this list whole).
pub(super) const SESSION_OPTIONAL: &[&str] = &[
    "provider_status",
    "failure_code",
    "error_code",
    "error_message",
    "provider_ref",
    "expires_at",
    "last_checked_at",
    "provider_seen_ms",
    "pd",
    "next_check_at",
    "check_attempts",
    "unclear",
    // `next_session_id`: the session that retried this one, set by the retry's transaction.
    "next",
    // A redaction (`session::redaction`): its state, when, and the provider's deletion.
    "rdx",
    "redacted_at",
    "provider_deletion",
    "deletion_ref",
    "deletion_attempts",
];

/// Written once, when the session is created: an update leaves them (and so the user index,
/// which projects only keys) untouched.
pub(super) const SESSION_FIXED: &[&str] = &[
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "tenant",
    "provider",
    "user_id",
    "created_at",
    // `metadata`, set at creation only (absent when empty, and on items written before it).
    "md",
    // `previous_session_id` and the kept start options (`start_options`, a JSON object), set at
    // creation only; absent when none.
    "prev",
    "so",
    // The retention's end, set at creation only (`DynamoStore::retain`): a write never moves it.
    "ttl",
];

/// A session's state as an item (without its version, its history and its due filing).
pub(super) fn session_item(x: &Session) -> Item {
    let mut item = session_key(&x.id);
    item.insert("gsi1pk".into(), s(user_pk(&x.tenant, &x.user_id)));
    item.insert(
        "gsi1sk".into(),
        s(user_sk(x.created_at.unix_timestamp_nanos().max(0), &x.id)),
    );
    item.insert("tenant".into(), s(&x.tenant));
    item.insert("provider".into(), s(x.provider.as_str()));
    item.insert("user_id".into(), s(&x.user_id));
    item.insert("status".into(), s(x.status.as_str()));
    put_opt(
        &mut item,
        "provider_status",
        x.provider_status.clone().map(s),
    );
    // `last_error`: the vocabulary's code, the provider's own word (`error_code`, as before the
    // vocabulary), the message.
    put_opt(
        &mut item,
        "failure_code",
        x.last_error.as_ref().map(|e| s(e.code.as_str())),
    );
    put_opt(
        &mut item,
        "error_code",
        x.last_error
            .as_ref()
            .and_then(|e| e.provider_code.clone().map(s)),
    );
    put_opt(
        &mut item,
        "error_message",
        x.last_error.as_ref().map(|e| s(&e.message)),
    );
    put_opt(&mut item, "provider_ref", x.provider_ref.clone().map(s));
    item.insert("created_at".into(), ts(x.created_at));
    item.insert("updated_at".into(), ts(x.updated_at));
    put_opt(&mut item, "expires_at", x.expires_at.map(ts));
    put_opt(&mut item, "last_checked_at", x.last_checked_at.map(ts));
    put_opt(&mut item, "provider_seen_ms", x.provider_seen_ms.map(n));
    if !x.data.is_empty() {
        // The provider's own facts, as its adapter wrote them (one JSON object).
        item.insert("pd".into(), s(x.data.to_json()));
    }
    put_opt(&mut item, "next_check_at", x.next_check_at.map(ts));
    if x.check_attempts > 0 {
        item.insert("check_attempts".into(), n(x.check_attempts));
    }
    put_opt(&mut item, "unclear", x.unclear.clone().map(s));
    if !x.metadata.is_empty() {
        let m = x.metadata.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        item.insert("md".into(), AttributeValue::M(m));
    }
    put_opt(
        &mut item,
        "prev",
        x.previous_session_id.as_ref().map(|id| s(id.as_str())),
    );
    put_opt(
        &mut item,
        "next",
        x.next_session_id.as_ref().map(|id| s(id.as_str())),
    );
    if !x.start_options.is_empty() {
        item.insert(
            "so".into(),
            s(serde_json::Value::Object(x.start_options.clone()).to_string()),
        );
    }
    if let Some(r) = &x.redaction {
        item.insert("rdx".into(), s(r.state.as_str()));
        item.insert("redacted_at".into(), ts(r.at));
        item.insert("provider_deletion".into(), s(r.provider_deletion.as_str()));
        put_opt(&mut item, "deletion_ref", r.deletion_ref.clone().map(s));
        if r.deletion_attempts > 0 {
            item.insert("deletion_attempts".into(), n(r.deletion_attempts));
        }
    }
    item
}

/// A stored link to another session (`prev`, `next`), if any.
fn linked_session(item: &Item, k: &str) -> StoreResult<Option<SessionId>> {
    match opt_s(item, k) {
        Some(id) => SessionId::parse(&id)
            .map(Some)
            .ok_or_else(|| corrupt("linked session id")),
        None => Ok(None),
    }
}

/// Stored start options: none on an item written before retries, or started without any.
fn start_options_from(item: &Item) -> StoreResult<StartOptions> {
    match opt_s(item, "so") {
        Some(json) => match serde_json::from_str(&json) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            _ => Err(corrupt("start options")),
        },
        None => Ok(StartOptions::new()),
    }
}

/// A stored redaction, if the session has one.
fn redaction_from(item: &Item) -> StoreResult<Option<Redaction>> {
    let Some(state) = opt_s(item, "rdx") else {
        return Ok(None);
    };
    Ok(Some(Redaction {
        state: RedactionState::parse(&state).ok_or_else(|| corrupt("redaction"))?,
        at: get_ts(item, "redacted_at")?,
        provider_deletion: ProviderDeletion::parse(get_s(item, "provider_deletion")?)
            .ok_or_else(|| corrupt("provider deletion"))?,
        deletion_ref: opt_s(item, "deletion_ref"),
        deletion_attempts: opt_n(item, "deletion_attempts").unwrap_or(0),
    }))
}

/// A stored `metadata`: none on an item written before it existed, or created without it.
fn metadata_from(item: &Item) -> StoreResult<Metadata> {
    let Some(md) = item.get("md") else {
        return Ok(Metadata::new());
    };
    let m = md.as_m().map_err(|_| corrupt("metadata"))?;
    m.iter()
        .map(|(k, v)| match v.as_s() {
            Ok(v) => Ok((k.clone(), v.clone())),
            Err(_) => Err(corrupt("metadata")),
        })
        .collect()
}

/// The item that creates a session: its state at its first version, its first history entry,
/// and its filing in the due index when it has a next check.
pub(super) fn new_session_item(x: &Session, first: &HistoryEntry) -> Item {
    let mut item = session_item(x);
    item.insert("version".into(), n(FIRST_VERSION));
    item.insert("h".into(), AttributeValue::L(vec![history_value(first)]));
    if let (true, Some(at)) = (is_scheduled(x), x.next_check_at) {
        item.insert("gsi2pk".into(), s(session_due_pk(&x.id)));
        item.insert("gsi2sk".into(), s(due_sk(at, &x.id)));
    }
    item
}

/// A session item as read: the session, with its version and filing beside it.
pub(super) fn session_from(item: &Item) -> StoreResult<Stored<Session>> {
    let id = session_id_of(item).ok_or_else(|| corrupt("id"))?;
    let last_error = last_error_from(item);
    let value = Session {
        id,
        tenant: get_s(item, "tenant")?.to_owned(),
        provider: provider(item)?,
        user_id: get_s(item, "user_id")?.to_owned(),
        status: Status::parse(get_s(item, "status")?).ok_or_else(|| corrupt("status"))?,
        provider_status: opt_s(item, "provider_status"),
        last_error,
        provider_ref: opt_s(item, "provider_ref"),
        created_at: get_ts(item, "created_at")?,
        updated_at: get_ts(item, "updated_at")?,
        expires_at: opt_ts(item, "expires_at")?,
        last_checked_at: opt_ts(item, "last_checked_at")?,
        provider_seen_ms: opt_n(item, "provider_seen_ms"),
        next_check_at: opt_ts(item, "next_check_at")?,
        check_attempts: opt_n(item, "check_attempts").unwrap_or(0),
        data: match opt_s(item, "pd") {
            Some(json) => ProviderData::from_json(&json).map_err(|_| corrupt("provider data"))?,
            None => ProviderData::default(),
        },
        unclear: opt_s(item, "unclear"),
        metadata: metadata_from(item)?,
        previous_session_id: linked_session(item, "prev")?,
        next_session_id: linked_session(item, "next")?,
        start_options: start_options_from(item)?,
        redaction: redaction_from(item)?,
    };
    Ok(Stored {
        value,
        version: get_n(item, "version")?,
        filing: Filing {
            due: filed_due(item),
            history: history_mark(item),
        },
    })
}

/// A stored `last_error`. An item written before the one vocabulary has no `failure_code`: its
/// `error_code` (the provider's word, or the gateway's older name for it) is the provider's
/// code, and the code is the vocabulary's when that word is one, else `unknown`.
fn last_error_from(item: &Item) -> Option<LastError> {
    let provider_code = opt_s(item, "error_code");
    let code = match (opt_s(item, "failure_code"), &provider_code) {
        // A code this version does not know (written by a newer one) is still a failure.
        (Some(code), _) => FailureCode::parse(&code).unwrap_or(FailureCode::Unknown),
        (None, Some(old)) => FailureCode::parse(old).unwrap_or(FailureCode::Unknown),
        (None, None) => return None,
    };
    Some(LastError {
        code,
        provider_code,
        message: opt_s(item, "error_message").unwrap_or_default(),
    })
}

/// When the item is filed in the due index (`gsi2sk`'s time), if it is.
fn filed_due(item: &Item) -> Option<OffsetDateTime> {
    let ms = filed_ms(&opt_s(item, "gsi2sk")?)?;
    // An item is data from outside this process (the stream, a restore): no arithmetic on it
    // may overflow.
    OffsetDateTime::from_unix_timestamp_nanos(ms.checked_mul(1_000_000)?).ok()
}

/// How the item's history list is laid out: its length, and the slot of the oldest entry after
/// the first (by version), which a write replaces once the list is full.
fn history_mark(item: &Item) -> HistoryMark {
    let Some(AttributeValue::L(entries)) = item.get("h") else {
        return HistoryMark::default();
    };
    let version = |e: &AttributeValue| -> u64 {
        e.as_m()
            .ok()
            .and_then(|m| opt_n(m, "v"))
            .unwrap_or(u64::MAX)
    };
    let oldest_slot = entries
        .iter()
        .enumerate()
        .skip(1)
        .min_by_key(|(_, e)| version(e))
        .map_or(0, |(i, _)| i);
    HistoryMark {
        len: entries.len(),
        oldest_slot,
    }
}

/// One history entry as an element of the session item's `h` list.
pub(super) fn history_value(h: &HistoryEntry) -> AttributeValue {
    let mut m: Item = HashMap::new();
    m.insert("v".into(), n(h.version));
    m.insert("at".into(), ts(h.at));
    m.insert("from".into(), s(h.from.as_str()));
    m.insert("to".into(), s(h.to.as_str()));
    put_opt(&mut m, "ps", h.provider_status.clone().map(s));
    m.insert("src".into(), s(source_str(h.source)));
    put_opt(&mut m, "why", h.reason.clone().map(s));
    put_opt(&mut m, "pe", h.provider_event.clone().map(s));
    AttributeValue::M(m)
}

fn source_str(x: Source) -> &'static str {
    match x {
        Source::Webhook => "webhook",
        Source::ProviderRead => "provider_read",
        Source::App => "app",
        Source::Deadline => "deadline",
    }
}

pub(super) fn history_from(id: &SessionId, item: &Item) -> StoreResult<HistoryEntry> {
    let source = match get_s(item, "src")? {
        "webhook" => Source::Webhook,
        "provider_read" => Source::ProviderRead,
        "app" => Source::App,
        "deadline" => Source::Deadline,
        _ => return Err(corrupt("history source")),
    };
    Ok(HistoryEntry {
        session_id: id.clone(),
        version: get_n(item, "v")?,
        at: get_ts(item, "at")?,
        from: Status::parse(get_s(item, "from")?).ok_or_else(|| corrupt("history from"))?,
        to: Status::parse(get_s(item, "to")?).ok_or_else(|| corrupt("history to"))?,
        provider_status: opt_s(item, "ps"),
        source,
        reason: opt_s(item, "why"),
        provider_event: opt_s(item, "pe"),
    })
}

// ---- refs ----------------------------------------------------------------------------------

pub(super) fn ref_item(ref_key: &str, session_id: &SessionId, tenant: &str) -> Item {
    let mut item = super::keys::ref_key(ref_key);
    item.insert("session_id".into(), s(session_id.as_str()));
    item.insert("tenant".into(), s(tenant));
    item
}

pub(super) fn ref_from(item: &Item) -> StoreResult<ProviderRef> {
    Ok(ProviderRef {
        key: ref_key_of(get_s(item, "pk")?)
            .ok_or_else(|| corrupt("ref key"))?
            .to_owned(),
        session_id: session_id(item, "session_id")?,
        tenant: get_s(item, "tenant")?.to_owned(),
    })
}

// ---- the journal ---------------------------------------------------------------------------

pub(super) fn identity_event_item(e: &IdentityEvent) -> Item {
    let mut item = key(session_pk(&e.session_id), &identity_event_sk(&e.event_id));
    item.insert("event_id".into(), s(&e.event_id));
    item.insert("event_type".into(), s(&e.event_type));
    put_opt(&mut item, "occurred_at", e.occurred_at.map(ts));
    item.insert("received_at".into(), ts(e.received_at));
    item
}

pub(super) fn identity_event_from(id: &SessionId, item: &Item) -> StoreResult<IdentityEvent> {
    Ok(IdentityEvent {
        session_id: id.clone(),
        event_id: get_s(item, "event_id")?.to_owned(),
        event_type: get_s(item, "event_type")?.to_owned(),
        occurred_at: opt_ts(item, "occurred_at")?,
        received_at: get_ts(item, "received_at")?,
    })
}

pub(super) fn reauth_item(r: &Reauthentication) -> Item {
    let mut item = key(
        reauth_pk(&r.tenant, &r.user_id),
        &reauth_sk(r.at, &r.event_id),
    );
    // Whose, beside the key: the table's stream decodes the item alone (`stream`).
    item.insert("tenant".into(), s(&r.tenant));
    item.insert("user_id".into(), s(&r.user_id));
    item.insert("provider".into(), s(r.provider.as_str()));
    item.insert("identity_id".into(), s(&r.identity_id));
    item.insert("session_id".into(), s(r.session_id.as_str()));
    item.insert("at".into(), ts(r.at));
    item.insert("outcome".into(), s(&r.outcome));
    item.insert("event_id".into(), s(&r.event_id));
    item
}

pub(super) fn reauth_from(
    tenant: &str,
    user_id: &str,
    item: &Item,
) -> StoreResult<Reauthentication> {
    Ok(Reauthentication {
        tenant: tenant.to_owned(),
        user_id: user_id.to_owned(),
        provider: provider(item)?,
        identity_id: get_s(item, "identity_id")?.to_owned(),
        session_id: session_id(item, "session_id")?,
        at: get_ts(item, "at")?,
        outcome: get_s(item, "outcome")?.to_owned(),
        event_id: get_s(item, "event_id")?.to_owned(),
    })
}

// ---- deliveries ----------------------------------------------------------------------------

pub(super) fn delivery_from(item: &Item) -> StoreResult<Delivery> {
    Ok(Delivery {
        provider: provider(item)?,
        event_id: get_s(item, "event_id")?.to_owned(),
        subjects: get_strings(item, "subjects"),
        payload: opt_s(item, "payload").unwrap_or_default(),
        mark: opt_s(item, "mark"),
        received_at: get_ts(item, "received_at")?,
        expires_at: OffsetDateTime::from_unix_timestamp(get_n(item, "ttl")?)
            .map_err(|_| corrupt("delivery ttl"))?,
    })
}

pub(super) fn delivery_state_of(item: &Item) -> Option<DeliveryState> {
    opt_s(item, "state").and_then(|v| DeliveryState::parse(&v))
}

/// A kept delivery's filing under one of its subjects.
pub(super) fn unmatched_item(d: &Delivery, subject: &str) -> Item {
    let mut item = key(
        unmatched_pk(d.provider.as_str(), subject),
        &unmatched_sk(&d.event_id),
    );
    item.insert("event_id".into(), s(&d.event_id));
    item.insert("received_at".into(), ts(d.received_at));
    item.insert("ttl".into(), n(d.expires_at.unix_timestamp()));
    item
}

// ---- idempotency keys ----------------------------------------------------------------------

pub(super) const IN_PROGRESS: &str = "in_progress";
pub(super) const DONE: &str = "done";

pub(super) fn idem_item(r: &IdempotencyRecord) -> Item {
    let mut item = idem_key(&r.tenant, &r.key);
    item.insert("fingerprint".into(), s(&r.fingerprint));
    match &r.state {
        IdempotencyState::InProgress { lease_until, owner } => {
            item.insert("state".into(), s(IN_PROGRESS));
            item.insert("lease".into(), n(unix_ms(*lease_until)));
            item.insert("owner".into(), s(owner));
        }
        IdempotencyState::Done {
            session_id,
            status,
            issued_at,
            replay,
        } => {
            item.insert("state".into(), s(DONE));
            item.insert("session_id".into(), s(session_id.as_str()));
            item.insert("status".into(), n(*status));
            put_opt(&mut item, "issued_at", issued_at.map(n));
            put_opt(&mut item, "replay", replay.clone().map(s));
        }
    }
    item.insert("created_at".into(), ts(r.created_at));
    item.insert("expires_at".into(), ts(r.expires_at));
    item.insert("ttl".into(), n(r.expires_at.unix_timestamp()));
    item
}

pub(super) fn idem_from(tenant: &str, key: &str, item: &Item) -> StoreResult<IdempotencyRecord> {
    let state = match get_s(item, "state")? {
        IN_PROGRESS => IdempotencyState::InProgress {
            lease_until: from_nanos(
                "lease",
                get_n::<i128>(item, "lease")?
                    .checked_mul(1_000_000)
                    .ok_or_else(|| corrupt("lease"))?,
            )?,
            owner: get_s(item, "owner")?.to_owned(),
        },
        DONE => IdempotencyState::Done {
            session_id: session_id(item, "session_id")?,
            status: get_n(item, "status")?,
            issued_at: opt_n(item, "issued_at"),
            replay: opt_s(item, "replay"),
        },
        _ => return Err(corrupt("idempotency state")),
    };
    Ok(IdempotencyRecord {
        tenant: tenant.to_owned(),
        key: key.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        state,
        created_at: get_ts(item, "created_at")?,
        expires_at: get_ts(item, "expires_at")?,
    })
}

/// A session with every optional attribute set (for the tests of this adapter).
#[cfg(test)]
pub(super) fn full_session() -> Session {
    let now = OffsetDateTime::now_utc();
    let mut x = Session::new("t", Provider::named("p"), "u", now);
    x.provider_status = Some("p".into());
    x.last_error = Some(LastError {
        code: FailureCode::DocumentExpired,
        provider_code: Some("c".into()),
        message: "m".into(),
    });
    x.provider_ref = Some("r".into());
    x.expires_at = Some(now);
    x.last_checked_at = Some(now);
    x.provider_seen_ms = Some(1);
    x.data =
        ProviderData::of(&serde_json::json!({"masked": "+1*******011", "n": 0.5, "flag": true}));
    x.next_check_at = Some(now);
    x.check_attempts = 2;
    x.unclear = Some("not_found".into());
    x.metadata = Metadata::from([("order".to_owned(), "A-1".to_owned())]);
    x.previous_session_id = Some(SessionId::generate());
    x.next_session_id = Some(SessionId::generate());
    x.start_options = serde_json::json!({"type": "document", "allow": true})
        .as_object()
        .cloned()
        .unwrap_or_default();
    x.redaction = Some(Redaction {
        state: RedactionState::Redacting,
        at: now,
        provider_deletion: ProviderDeletion::Pending,
        deletion_ref: Some("vs_1".into()),
        deletion_attempts: 1,
    });
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn every_optional_session_attribute_is_listed() {
        // An attribute missing from SESSION_OPTIONAL would survive an update that cleared it.
        let always = ["status", "updated_at"];
        for k in session_item(&full_session()).keys() {
            assert!(
                SESSION_FIXED.contains(&k.as_str())
                    || SESSION_OPTIONAL.contains(&k.as_str())
                    || always.contains(&k.as_str()),
                "{k} is neither fixed nor listed as optional"
            );
        }
        let bare = session_item(&Session::new(
            "t",
            Provider::named("p"),
            "u",
            OffsetDateTime::now_utc(),
        ));
        for k in SESSION_OPTIONAL {
            assert!(!bare.contains_key(*k), "{k} is always written");
        }
    }

    #[test]
    fn a_session_round_trips_through_its_item() {
        let x = full_session();
        let mut item = session_item(&x);
        item.insert("version".into(), n(7_u64));
        let read = session_from(&item).unwrap();
        assert_eq!((read.value, read.version), (x, 7));
    }

    #[test]
    fn a_last_error_of_the_gateways_own_and_one_stored_before_the_vocabulary_read_back() {
        let mut x = full_session();
        x.last_error = Some(LastError {
            code: FailureCode::SessionMismatch,
            provider_code: None,
            message: "m".into(),
        });
        let mut item = session_item(&x);
        item.insert("version".into(), n(1_u64));
        assert_eq!(session_from(&item).unwrap().value.last_error, x.last_error);
        // Written before `failure_code` existed: `error_code` held the provider's word, or an
        // older name of the gateway's.
        for (old, code) in [
            ("FACE_MISMATCH", FailureCode::Unknown),
            ("possession_failed", FailureCode::PossessionFailed),
        ] {
            item.remove("failure_code");
            item.insert("error_code".into(), s(old));
            let e = session_from(&item).unwrap().value.last_error.unwrap();
            assert_eq!((e.code, e.provider_code.as_deref()), (code, Some(old)));
        }
    }

    #[test]
    fn history_refs_and_the_journal_round_trip() {
        let x = full_session();
        let mut h = HistoryEntry::created(&x);
        h.provider_status = Some("APPROVED".into());
        h.source = Source::Webhook;
        let Ok(m) = history_value(&h).as_m().cloned() else {
            panic!("a map")
        };
        assert_eq!(history_from(&x.id, &m).unwrap(), h);

        let r = ProviderRef {
            key: "prove#identity#i".into(),
            session_id: x.id.clone(),
            tenant: "t".into(),
        };
        assert_eq!(
            ref_from(&ref_item(&r.key, &r.session_id, &r.tenant)).unwrap(),
            r
        );

        let e = IdentityEvent {
            session_id: x.id.clone(),
            event_id: "e1".into(),
            event_type: "PORT".into(),
            occurred_at: Some(at(-60)),
            received_at: at(0),
        };
        assert_eq!(
            identity_event_from(&x.id, &identity_event_item(&e)).unwrap(),
            e
        );

        let ra = Reauthentication {
            tenant: "t".into(),
            user_id: "u".into(),
            provider: Provider::named("passbase"),
            identity_id: "k1".into(),
            session_id: x.id.clone(),
            at: at(5),
            outcome: "approved".into(),
            event_id: "k1#IDENTITY_AUTHENTICATED#5".into(),
        };
        assert_eq!(reauth_from("t", "u", &reauth_item(&ra)).unwrap(), ra);
    }

    #[test]
    fn idempotency_records_round_trip_in_both_states() {
        let mut r = IdempotencyRecord {
            tenant: "t".into(),
            key: "k".into(),
            fingerprint: "fp".into(),
            state: IdempotencyState::InProgress {
                lease_until: at(90),
                owner: "o".into(),
            },
            created_at: at(0),
            expires_at: at(86_400),
        };
        assert_eq!(idem_from("t", "k", &idem_item(&r)).unwrap(), r);
        r.state = IdempotencyState::Done {
            session_id: SessionId::generate(),
            status: 201,
            issued_at: Some(1_800_000_000),
            replay: Some("https://example.com/start".into()),
        };
        assert_eq!(idem_from("t", "k", &idem_item(&r)).unwrap(), r);
    }
}
