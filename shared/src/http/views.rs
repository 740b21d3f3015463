//! The wire shapes (docs/api.md): the session object, lists, and webhook answers. A provider's
//! own fields on the session come from its adapter.

use super::ApiResponse;
use crate::clock::rfc3339;
use crate::events::{Endpoint, Event, OutboundDelivery};
use crate::flows::deliveries::Ack;
use crate::providers::Providers;
use crate::session::{HistoryEntry, IdentityEvent, Reauthentication, Session};
use crate::store::Page;
use serde_json::{Value, json};

/// The session object. `client` only in create responses.
pub fn session(providers: &Providers, s: &Session, client: Option<Value>) -> Value {
    // A session being redacted shows what the finished redaction keeps, nothing more.
    let erased;
    let s = if s.is_redacted() {
        erased = s.erased();
        &erased
    } else {
        s
    };
    let mut v = json!({
        "id": s.id.as_str(),
        "object": "verification_session",
        "provider": s.provider.as_str(),
        "user_id": s.user_id,
        "status": s.status.as_str(),
        "provider_status": s.provider_status,
        "provider_ref": s.provider_ref,
        "last_error": s.last_error.as_ref().map(|e| json!({
            "code": e.code,
            "provider_code": e.provider_code,
            "retryable": e.retryable(),
            "message": e.message,
        })),
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
        "expires_at": s.expires_at.map(rfc3339),
        // `{}` when the app gave none: always an object, never absent.
        "metadata": s.metadata,
        // The attempts before and after this one (`POST /v1/sessions/{id}/retry`).
        "previous_session_id": s.previous_session_id.as_ref().map(|id| id.as_str()),
        "next_session_id": s.next_session_id.as_ref().map(|id| id.as_str()),
    });
    if let (Ok(adapter), Some(fields)) = (providers.get(&s.provider), v.as_object_mut()) {
        adapter.view(s, fields);
    }
    if let Some(r) = &s.redaction {
        v["redaction"] = json!({
            "status": r.state.as_str(),
            "redacted_at": rfc3339(r.at),
            "provider_deletion": r.provider_deletion.as_str(),
        });
    }
    if let Some(c) = client {
        v["client"] = c;
    }
    v
}

/// A session's history (newest first): each change with its source and reason.
pub fn history(entries: &[HistoryEntry]) -> Value {
    let data: Vec<Value> = entries
        .iter()
        .map(|h| {
            json!({
                "object": "session_change",
                "version": h.version,
                "at": rfc3339(h.at),
                "from": h.from.as_str(),
                "status": h.to.as_str(),
                "provider_status": h.provider_status,
                "source": h.source,
                "reason": h.reason,
                "provider_event": h.provider_event,
            })
        })
        .collect();
    json!({"object": "list", "data": data})
}

/// A session read on its own, with the identity events recorded on it (newest first) when its
/// provider records them.
pub fn session_with_events(
    providers: &Providers,
    s: &Session,
    events: Option<&[IdentityEvent]>,
) -> Value {
    let mut v = session(providers, s, None);
    if let Some(events) = events {
        v["identity_events"] = events
            .iter()
            .map(|e| {
                json!({
                    "event_id": e.event_id,
                    "type": e.event_type,
                    "occurred_at": e.occurred_at.map(rfc3339),
                    "received_at": rfc3339(e.received_at),
                })
            })
            .collect();
    }
    v
}

/// `POST /v1/users/{user_id}/redact`: the user's sessions as redacted.
pub fn redacted_user(providers: &Providers, list: &[Session]) -> Value {
    json!({
        "object": "list",
        "data": list.iter().map(|s| session(providers, s, None)).collect::<Vec<_>>(),
    })
}

pub fn reauthentications(list: &[Reauthentication]) -> Value {
    json!({
        "object": "list",
        "data": list.iter().map(|r| json!({
            "object": "reauthentication",
            "provider": r.provider.as_str(),
            "identity_id": r.identity_id,
            "session_id": r.session_id.as_str(),
            "outcome": r.outcome,
            "at": rfc3339(r.at),
        })).collect::<Vec<_>>(),
    })
}

/// A webhook's answer: received (recorded); `duplicate` when it was applied before (or a twin
/// delivery holds it right now); `deferred` when the gateway could not apply it yet and retries
/// it itself.
pub fn ack(ack: &Ack) -> ApiResponse {
    let mut body = json!({"received": true, "duplicate": ack.duplicate});
    if ack.deferred {
        body["deferred"] = json!(true);
    }
    ApiResponse::json(http::StatusCode::OK, &body)
}

pub fn list(providers: &Providers, page: &Page) -> Value {
    json!({
        "object": "list",
        "data": page.sessions.iter().map(|s| session(providers, s, None)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })
}

/// An endpoint; `secret` only when it was just made (create, rotate): never shown again.
pub fn endpoint(e: &Endpoint, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": e.id,
        "object": "webhook_endpoint",
        "url": e.url,
        "event_types": e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "description": e.description,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "failing_since": e.failing_since.map(rfc3339),
        "previous_secret_expires_at": e.previous_secret.as_ref().map(|(_, until)| rfc3339(*until)),
        "created_at": rfc3339(e.created_at),
        "updated_at": rfc3339(e.updated_at),
    });
    if let Some(s) = secret {
        v["secret"] = json!(s);
    }
    v
}

pub fn endpoints(list: &[Endpoint]) -> Value {
    json!({
        "object": "list",
        "data": list.iter().map(|e| endpoint(e, None)).collect::<Vec<_>>(),
    })
}

/// An event as sent (its body's `type`, `timestamp` and `data`), with its deliveries when read
/// on its own.
pub fn event(e: &Event, deliveries: Option<&[OutboundDelivery]>) -> Value {
    let sent: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    let mut v = json!({
        "id": e.id,
        "object": "event",
        "type": e.event_type.as_str(),
        "created_at": rfc3339(e.created_at),
        "session_id": e.session_id.as_ref().map(|s| s.as_str()),
        "data": sent["data"],
    });
    if let Some(list) = deliveries {
        v["deliveries"] = list
            .iter()
            .map(|d| {
                json!({
                    "endpoint_id": d.key.endpoint_id,
                    "state": d.state.as_str(),
                    "reason": d.reason,
                    "next_attempt_at": d.next_at.map(rfc3339),
                    "attempts": d.attempts.iter().map(|a| json!({
                        "at": rfc3339(a.at),
                        "status": a.status,
                        "latency_ms": a.latency_ms,
                        "error": a.error,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
    }
    v
}

/// A read of verified data: the session it is of, what the provider verified (the one shape of
/// docs/api.md#verified-data), and the id of the access record it left. Answered with
/// `Cache-Control: no-store`, as every answer is.
pub fn verified_data(read: &crate::flows::verified_data::Read) -> Value {
    let d = &read.data;
    json!({
        "object": "verified_data",
        "session_id": read.session.id.as_str(),
        "provider": read.session.provider.as_str(),
        "status": read.session.status.as_str(),
        "verified_at": read.verified_at.map(rfc3339),
        // When the provider was read: the time its access record holds.
        "retrieved_at": rfc3339(read.access.at),
        "access_id": read.access.id,
        "person": d.person,
        "document": d.document,
        "email": d.email,
        "phone": d.phone,
    })
}

/// A session's access records (who read its verified data, when), newest first.
pub fn accesses(list: &[crate::verified::DataAccess], next_cursor: Option<&str>) -> Value {
    json!({
        "object": "list",
        "data": list.iter().map(|a| json!({
            "object": "verified_data_access",
            "id": a.id,
            "session_id": a.session_id.as_str(),
            "key_id": a.key_id,
            "at": rfc3339(a.at),
        })).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })
}

pub fn events(list: &[Event], next_cursor: Option<&str>) -> Value {
    json!({
        "object": "list",
        "data": list.iter().map(|e| event(e, None)).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })
}
