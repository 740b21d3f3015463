//! Control routes (tests and testers only): drive a session to an outcome with or without
//! delivering its events (answering the signed bodies so a test can deliver, replay, tamper with
//! or delay them itself), resend an event, inject API faults, roll the webhook secret, change
//! the webhook endpoint, and count API requests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::events::{self, EVENT_TYPES, Secret};
use super::{Action, Refusal, StripeSim, new_id};

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| format!("invalid request: {e}"))
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// `submit`, `verify`, `fail`, `abandon`, `cancel` or `finish_redaction`.
    action: String,
    /// For `fail`: any `last_error.code` (default `document_unverified_other`).
    error_code: Option<String>,
    reason: Option<String>,
    /// `false`: only answer the signed events, for the test to deliver.
    #[serde(default = "yes")]
    deliver: bool,
    /// Sign at this Unix time instead of now (an old one tests the receiver's tolerance).
    timestamp: Option<i64>,
}

/// The signed events, delivered (status) or not (`delivered: null`).
async fn report(
    sim: &StripeSim,
    ids: &[String],
    deliver: bool,
    force: bool,
    timestamp: Option<i64>,
) -> Vec<Value> {
    let sent = if deliver {
        sim.deliver(ids, force, timestamp).await
    } else {
        vec![None; ids.len()]
    };
    ids.iter()
        .zip(sent)
        .filter_map(|(id, sent)| {
            let mut v = sim.signed(id, timestamp)?;
            if let Some((status, signature)) = sent {
                v["stripe_signature"] = json!(signature);
                v["delivered"] = json!(status);
            } else {
                v["delivered"] = Value::Null;
            }
            Some(v)
        })
        .collect()
}

pub async fn session(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let r: SessionRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let action = match r.action.as_str() {
        "submit" => Action::Submit,
        "verify" => Action::Verify,
        "fail" => Action::Fail {
            code: r
                .error_code
                .unwrap_or_else(|| "document_unverified_other".into()),
            reason: r.reason,
        },
        "abandon" => Action::Abandon,
        "cancel" => Action::Cancel,
        "finish_redaction" => Action::FinishRedaction,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "action: submit, verify, fail, abandon, cancel or finish_redaction",
            );
        }
    };
    match sim.act(&id, &action, None) {
        Ok((session, ids)) => {
            let events = report(&sim, &ids, r.deliver, false, r.timestamp).await;
            Json(json!({"session": session, "events": events})).into_response()
        }
        Err(Refusal::NotFound) => error(StatusCode::NOT_FOUND, "no such verification_session"),
        Err(Refusal::Invalid(why)) => error(StatusCode::BAD_REQUEST, &why),
        Err(Refusal::State(why)) => error(StatusCode::CONFLICT, &why),
    }
}

#[derive(Deserialize)]
pub struct EventsQuery {
    session: Option<String>,
}

/// Every event so far (oldest first), with its delivery attempts.
pub async fn list_events(State(sim): State<StripeSim>, Query(q): Query<EventsQuery>) -> Response {
    let st = sim.state();
    let events: Vec<Value> = st
        .events
        .iter()
        .filter(|e| q.session.as_deref().is_none_or(|s| e.session_id == s))
        .map(|e| e.summary())
        .collect();
    Json(json!({"events": events})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    #[serde(default = "yes")]
    deliver: bool,
    timestamp: Option<i64>,
}

/// Sends an event again (as the Dashboard's or the CLI's resend does), whatever the endpoint
/// subscribes to: the same body, a new timestamp and signature.
pub async fn resend(State(sim): State<StripeSim>, Path(id): Path<String>, body: Bytes) -> Response {
    let r: ResendRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let ids = [id];
    match report(&sim, &ids, r.deliver, true, r.timestamp)
        .await
        .into_iter()
        .next()
    {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such event"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsRequest {
    fail_next: Option<u32>,
    status: Option<u16>,
    delay_next: Option<u32>,
    delay_ms: Option<u64>,
}

/// The next `fail_next` API requests answer `status` (default 500); the next `delay_next` wait
/// `delay_ms` first. Counts apply to every v1 endpoint, in arrival order.
pub async fn faults(State(sim): State<StripeSim>, body: Bytes) -> Response {
    let r: FaultsRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let status = r.status.unwrap_or(500);
    if !(400..=599).contains(&status) {
        return error(StatusCode::BAD_REQUEST, "status must be an error status");
    }
    let mut st = sim.state();
    if let Some(n) = r.fail_next {
        st.faults.fail_next = n;
        st.faults.fail_status = status;
    }
    if let Some(n) = r.delay_next {
        st.faults.delay_next = n;
        st.faults.delay_ms = r.delay_ms.unwrap_or(0);
    }
    Json(st.faults).into_response()
}

/// `{"webhook_url": "http://..." | null, "enabled_events": [...], "processing_ms": N}`, each
/// optional.
pub async fn settings(State(sim): State<StripeSim>, body: Bytes) -> Response {
    let r: serde_json::Map<String, Value> = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let mut st = sim.state();
    for (k, v) in &r {
        match (k.as_str(), v) {
            ("webhook_url", Value::Null) => st.webhook_url = None,
            ("webhook_url", Value::String(u)) if url::Url::parse(u).is_ok() => {
                st.webhook_url = Some(u.clone())
            }
            ("enabled_events", Value::Array(list)) => {
                let names: Option<Vec<String>> = list
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .filter(|e| *e == "*" || EVENT_TYPES.contains(e))
                            .map(str::to_owned)
                    })
                    .collect();
                match names {
                    Some(n) => st.enabled_events = n,
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "enabled_events: identity.verification_session.* event types or \"*\"",
                        );
                    }
                }
            }
            ("processing_ms", Value::Number(n)) if n.as_u64().is_some() => {
                st.processing_ms = n.as_u64().unwrap_or(0)
            }
            _ => return error(StatusCode::BAD_REQUEST, &format!("invalid setting {k}")),
        }
    }
    Json(json!({
        "webhook_url": st.webhook_url,
        "enabled_events": st.enabled_events,
        "processing_ms": st.processing_ms,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollRequest {
    /// The new secret (default: a random `whsec_...`).
    secret: Option<String>,
    /// How long the old secret keeps signing (default 24 h; 0: it stops now).
    previous_expires_in_ms: Option<u64>,
}

/// Rolls the endpoint's signing secret: events are then signed with the new one and, until it
/// expires, the old one (two `v1`s).
pub async fn roll_secret(State(sim): State<StripeSim>, body: Bytes) -> Response {
    let r: RollRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let secret = r.secret.unwrap_or_else(|| new_id("whsec_"));
    if !secret.starts_with("whsec_") || secret.len() < 12 {
        return error(
            StatusCode::BAD_REQUEST,
            "secret must be whsec_ and a few more characters",
        );
    }
    let overlap = r
        .previous_expires_in_ms
        .map(Duration::from_millis)
        .unwrap_or(events::ROLL_OVERLAP);
    let expires = SystemTime::now() + overlap;
    let mut st = sim.state();
    let previous = st.secrets[0].value.clone();
    // Older secrets never outlive this roll's overlap.
    for s in &mut st.secrets {
        s.expires = Some(s.expires.map_or(expires, |e| e.min(expires)));
    }
    st.secrets.insert(
        0,
        Secret {
            value: secret.clone(),
            expires: None,
        },
    );
    let now = SystemTime::now();
    st.secrets.retain(|s| s.expires.is_none_or(|e| now < e));
    let expires_at = expires
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Json(json!({"secret": secret, "previous": previous, "previous_expires_at": expires_at}))
        .into_response()
}

/// API requests per endpoint (refused ones included), sessions and events so far.
pub async fn stats(State(sim): State<StripeSim>) -> Response {
    let st = sim.state();
    let deliveries: usize = st.events.iter().map(|e| e.attempts.len()).sum();
    Json(json!({
        "requests": st.requests,
        "sessions": st.sessions.len(),
        "events": st.events.len(),
        "deliveries": deliveries,
    }))
    .into_response()
}
