//! The wire shapes of api.md.

use super::ApiResponse;
use crate::clock::rfc3339;
use crate::flows::deliveries::Ack;
use crate::session::{IdentityEvent, Reauthentication, Session};
use crate::store::Page;
use serde_json::{Value, json};

/// The session object. `client` only in create responses.
pub fn session(s: &Session, client: Option<Value>) -> Value {
    let mut v = json!({
        "id": s.id.as_str(),
        "object": "verification_session",
        "provider": s.provider.as_str(),
        "user_id": s.user_id,
        "status": s.status.as_str(),
        "provider_status": s.provider_status,
        "last_error": s.last_error.as_ref().map(|e| json!({"code": e.code, "message": e.message})),
        "verification_type": s.verification_type.map(|t| t.as_str()),
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
        "expires_at": s.expires_at.map(rfc3339),
    });
    if let Some(p) = &s.prove {
        v["reverification_recommended"] = json!(p.reverification_recommended);
    }
    if let Some(e) = &s.evidence {
        // Passbase: what the document check concluded, never who the person is.
        v["score"] = json!(e.score);
        v["document_type"] = json!(e.document_type);
        v["document_country"] = json!(e.document_country);
    }
    if let Some(c) = client {
        v["client"] = c;
    }
    v
}

/// A Prove session read on its own: with its Identity Manager events (newest first).
pub fn session_with_events(s: &Session, events: &[IdentityEvent]) -> Value {
    let mut v = session(s, None);
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
    v
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

pub fn list(page: &Page) -> Value {
    json!({
        "object": "list",
        "data": page.sessions.iter().map(|s| session(s, None)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })
}
