//! The endpoints API and the events API, as use cases: validate, read or write the store, and
//! hand back what the views show. Every read and write is scoped to the caller's tenant: another
//! tenant's endpoint or event is simply not found.

use super::model::{Endpoint, Event, EventType, OutboundDelivery, OutboundKey};
use crate::error::FieldError;
use crate::store::{EventFilter, StoreError};
use crate::{App, Error};
use serde_json::{Map, Value};

/// Most endpoints a tenant may have: every event is written with one delivery per endpoint in
/// one transaction (DynamoDB allows 100 items), and fan-out costs a write per endpoint.
pub const MAX_ENDPOINTS: usize = 10;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 256;
/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

const FIELDS: [&str; 4] = ["url", "event_types", "description", "enabled"];

const ENDPOINT_PREFIX: &str = "ep_";

/// Whether `s` has the shape of an endpoint id (`ep_` + 26 base32 characters, as `create` makes
/// them). Anything else is simply not found, before the store sees it: an id of any length
/// would otherwise reach DynamoDB's key, whose size limit answers a (retryable) store error.
pub fn is_endpoint_id(s: &str) -> bool {
    s.strip_prefix(ENDPOINT_PREFIX).is_some_and(|r| {
        r.len() == 26
            && r.bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
    })
}

/// What a create or an update asks for, checked.
#[derive(Debug, Default)]
struct Fields {
    url: Option<String>,
    event_types: Option<Vec<EventType>>,
    description: Option<Option<String>>,
    enabled: Option<bool>,
}

fn fields(app: &App, body: &Map<String, Value>) -> Result<Fields, Error> {
    let mut errors = Vec::new();
    let mut out = Fields::default();
    for k in body.keys() {
        if !FIELDS.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k,
                "unknown_field",
                "not a field of an endpoint",
            ));
        }
    }
    match body.get("url") {
        None => {}
        Some(Value::String(u)) => {
            match crate::outbound::validate_url(u, app.config.outbound.policy()) {
                Ok(url) => out.url = Some(url.to_string()),
                Err(e) => errors.push(FieldError::new("url", "invalid_url", e.to_string())),
            }
        }
        Some(_) => errors.push(FieldError::new("url", "invalid_type", "a string")),
    }
    match body.get("event_types") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            let mut types = Vec::new();
            for v in list {
                match v.as_str().and_then(EventType::parse) {
                    Some(t) if !types.contains(&t) => types.push(t),
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        "event_types",
                        "invalid_value",
                        format!("unknown event type {v}; see docs/events.md#types"),
                    )),
                }
            }
            types.sort();
            out.event_types = Some(types);
        }
        Some(_) => errors.push(FieldError::new(
            "event_types",
            "invalid_type",
            "a list of event types (empty: every type)",
        )),
    }
    match body.get("description") {
        None => {}
        Some(Value::Null) => out.description = Some(None),
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION => {
            out.description = Some(Some(d.clone()).filter(|d| !d.is_empty()))
        }
        Some(Value::String(_)) => errors.push(FieldError::new(
            "description",
            "too_long",
            format!("at most {MAX_DESCRIPTION} characters"),
        )),
        Some(_) => errors.push(FieldError::new("description", "invalid_type", "a string")),
    }
    match body.get("enabled") {
        None => {}
        Some(Value::Bool(b)) => out.enabled = Some(*b),
        Some(_) => errors.push(FieldError::new("enabled", "invalid_type", "true or false")),
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::InvalidRequest(errors))
    }
}

/// A new signing secret, sealed for its endpoint; the secret itself is shown once.
fn new_secret(fingerprint_key: &str, tenant: &str, id: &str) -> (String, String) {
    let secret = crate::outbound::SigningSecret::generate()
        .expose()
        .to_owned();
    let sealed = super::seal::seal(fingerprint_key, tenant, id, &secret);
    (secret, sealed)
}

/// Creates an endpoint; answers it with its secret (the only time the secret is shown).
pub async fn create(
    app: &App,
    tenant: &str,
    body: &Map<String, Value>,
) -> Result<(Endpoint, String), Error> {
    let f = fields(app, body)?;
    let Some(url) = f.url else {
        return Err(Error::invalid("url", "required", "url is required"));
    };
    if app.store.list_endpoints(tenant).await?.len() >= MAX_ENDPOINTS {
        return Err(Error::Conflict(format!(
            "a tenant has at most {MAX_ENDPOINTS} endpoints; delete one first"
        )));
    }
    let doc = app.secrets.get().await?;
    let now = app.clock.now();
    let id = format!("{ENDPOINT_PREFIX}{}", crate::ids::random_token());
    let (secret, sealed) = new_secret(doc.fingerprint_key(), tenant, &id);
    let enabled = f.enabled.unwrap_or(true);
    let endpoint = Endpoint {
        id,
        tenant: tenant.to_owned(),
        url,
        event_types: f.event_types.unwrap_or_default(),
        description: f.description.flatten(),
        enabled,
        disabled_reason: (!enabled).then(|| "disabled_by_app".to_owned()),
        secret: sealed,
        previous_secret: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    app.store.put_endpoint(&endpoint, None).await?;
    Ok((endpoint, secret))
}

pub async fn list(app: &App, tenant: &str) -> Result<Vec<Endpoint>, Error> {
    Ok(app.store.list_endpoints(tenant).await?)
}

pub async fn get(app: &App, tenant: &str, id: &str) -> Result<Endpoint, Error> {
    if !is_endpoint_id(id) {
        return Err(Error::NotFound);
    }
    app.store
        .get_endpoint(tenant, id)
        .await?
        .ok_or(Error::NotFound)
}

/// Changes an endpoint's URL, types, description or state. Enabling one clears why it was
/// disabled and its failing streak.
pub async fn update(
    app: &App,
    tenant: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Endpoint, Error> {
    let f = fields(app, body)?;
    let current = get(app, tenant, id).await?;
    let mut next = current.clone();
    if let Some(url) = f.url {
        next.url = url;
    }
    if let Some(types) = f.event_types {
        next.event_types = types;
    }
    if let Some(d) = f.description {
        next.description = d;
    }
    match f.enabled {
        Some(true) if !current.enabled => {
            next.enabled = true;
            next.disabled_reason = None;
            next.failing_since = None;
        }
        Some(false) if current.enabled => {
            next.enabled = false;
            next.disabled_reason = Some("disabled_by_app".into());
        }
        _ => {}
    }
    next.updated_at = app.clock.now();
    write(app, &next, current.version).await
}

async fn write(app: &App, next: &Endpoint, version: u64) -> Result<Endpoint, Error> {
    match app.store.put_endpoint(next, Some(version)).await {
        Ok(()) => Ok(Endpoint {
            version: version + 1,
            ..next.clone()
        }),
        Err(StoreError::Conflict) => Err(Error::Conflict(
            "the endpoint changed meanwhile; read it again and retry".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(app: &App, tenant: &str, id: &str) -> Result<(), Error> {
    if is_endpoint_id(id) && app.store.delete_endpoint(tenant, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// A new secret; the current one keeps signing beside it for `ROTATION_OVERLAP` (two signatures
/// in `webhook-signature`), so receivers can switch without missing a delivery.
pub async fn rotate(app: &App, tenant: &str, id: &str) -> Result<(Endpoint, String), Error> {
    let current = get(app, tenant, id).await?;
    let doc = app.secrets.get().await?;
    let now = app.clock.now();
    let (secret, sealed) = new_secret(doc.fingerprint_key(), tenant, id);
    let mut next = current.clone();
    next.previous_secret = Some((current.secret.clone(), now + ROTATION_OVERLAP));
    next.secret = sealed;
    next.updated_at = now;
    Ok((write(app, &next, current.version).await?, secret))
}

/// A listing's filters from the query string.
pub fn filter(event_type: Option<&str>, session_id: Option<&str>) -> Result<EventFilter, Error> {
    let event_type = event_type
        .map(|t| {
            EventType::parse(t).ok_or_else(|| {
                Error::invalid(
                    "type",
                    "invalid_value",
                    "an event type (docs/events.md#types)",
                )
            })
        })
        .transpose()?;
    let session_id = session_id
        .map(|s| {
            crate::session::SessionId::parse(s)
                .ok_or_else(|| Error::invalid("session_id", "invalid_format", "a session id"))
        })
        .transpose()?;
    Ok(EventFilter {
        event_type,
        session_id,
    })
}

/// A page of events, newest first, and the cursor of the next (the last event's id).
pub async fn list_events(
    app: &App,
    tenant: &str,
    filter: &EventFilter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<Event>, Option<String>), Error> {
    if let Some(c) = cursor
        && !super::derive::is_event_id(c)
    {
        return Err(Error::invalid(
            "cursor",
            "invalid_value",
            "a cursor this listing gave",
        ));
    }
    Ok(app.store.list_events(tenant, filter, limit, cursor).await?)
}

pub async fn get_event(
    app: &App,
    tenant: &str,
    id: &str,
) -> Result<(Event, Vec<OutboundDelivery>), Error> {
    if !super::derive::is_event_id(id) {
        return Err(Error::NotFound);
    }
    app.store
        .get_event(tenant, id)
        .await?
        .ok_or(Error::NotFound)
}

/// Sends an event again: to one endpoint (`endpoint_id`), or to every endpoint it went to. Each
/// delivery starts a new round of the schedule, due now.
pub async fn resend(
    app: &App,
    tenant: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Result<(Event, Vec<OutboundDelivery>), Error> {
    for k in body.keys() {
        if k != "endpoint_id" {
            return Err(Error::invalid(
                k,
                "unknown_field",
                "a resend takes endpoint_id only",
            ));
        }
    }
    let endpoint_id = match body.get("endpoint_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Error::invalid("endpoint_id", "invalid_type", "a string")),
    };
    let (event, deliveries) = get_event(app, tenant, id).await?;
    let now = app.clock.now();
    // The endpoints to send to: the one named; else every one it went to, and every one that
    // wants it now and had none (one added since, or one that did not want it then).
    let targets: Vec<String> = match endpoint_id {
        Some(ep) => vec![
            get(app, tenant, &ep)
                .await
                .map_err(|e| match e {
                    Error::NotFound => {
                        Error::invalid("endpoint_id", "not_found", "no such endpoint")
                    }
                    other => other,
                })?
                .id,
        ],
        None => {
            let mut all: Vec<String> = deliveries
                .iter()
                .map(|d| d.key.endpoint_id.clone())
                .collect();
            for e in app.store.list_endpoints(tenant).await? {
                if e.wants(event.event_type) && !all.contains(&e.id) {
                    all.push(e.id);
                }
            }
            all
        }
    };
    for endpoint_id in targets {
        let key = OutboundKey {
            tenant: tenant.to_owned(),
            event_id: event.id.clone(),
            endpoint_id,
        };
        // A delivery it had starts a new round; one it never had is added, due now.
        if deliveries.iter().any(|d| d.key == key) {
            app.store.requeue_outbound(&key, now).await?;
        } else {
            match app
                .store
                .add_outbound(&OutboundDelivery::new(key, now))
                .await
            {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    get_event(app, tenant, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ids_are_what_create_makes_and_nothing_else() {
        let made = format!("{ENDPOINT_PREFIX}{}", crate::ids::random_token());
        assert!(is_endpoint_id(&made), "{made}");
        for other in [
            "",
            "ep_",
            "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ep_aaaaaaaaaaaaaaaaaaaaaaaaa",
            "ep_aaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ep_AAAAAAAAAAAAAAAAAAAAAAAAAA",
            "ep_11111111111111111111111111",
            &format!("ep_{}", "a".repeat(2000)),
        ] {
            assert!(!is_endpoint_id(other), "{other}");
        }
    }
}
