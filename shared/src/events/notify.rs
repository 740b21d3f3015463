//! A batch of committed changes in, events out: each change's event is stored with its
//! deliveries (one write), in the batch's order, then the new deliveries are attempted. The
//! same path serves the table's stream in AWS (a Lambda event) and the local server (the stream
//! of DynamoDB Local, or the memory store's log).

use super::deliver::{self, Report};
use super::derive;
use super::model::{Endpoint, Event, OutboundDelivery, OutboundKey};
use crate::store::Change;
use crate::{App, Error};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notified {
    /// Events stored by this batch (a change read before counts in the batch that stored it).
    pub events: u32,
    /// Events this batch found stored already.
    pub repeated: u32,
    pub attempts: Report,
}

/// Where a batch stopped: the changes before `index` are stored; this one and those after are
/// not (the stream gives them again).
#[derive(Debug)]
pub struct Stopped {
    pub index: usize,
    pub error: Error,
}

/// The event a change announces, if any.
async fn event_of(app: &App, change: &Change) -> Result<Option<Event>, Error> {
    Ok(match change {
        Change::Session { session, entry } => {
            derive::session_event(&app.providers, session, entry.as_ref())
        }
        Change::IdentityEvent(e) => {
            // The session as it stands: the event recommends acting on it now.
            let session =
                app.store.get_session(&e.session_id).await?.ok_or_else(|| {
                    Error::Internal("an identity event without its session".into())
                })?;
            Some(derive::reverification_event(&app.providers, &session, e))
        }
        Change::Reauthentication(r) => Some(derive::reauthentication_event(r)),
    })
}

/// Stores the events of `changes` in order, then attempts their new deliveries. `Err` names the
/// first change whose event could not be stored.
pub async fn on_changes(app: &Arc<App>, changes: &[Change]) -> Result<Notified, Stopped> {
    let mut done = Notified::default();
    let mut work = Vec::new();
    let stored = store_events(app, changes, &mut done, &mut work).await;
    // What was stored is attempted even when the batch stopped part way.
    done.attempts = deliver::run(app, work).await;
    let a = done.attempts;
    crate::metrics::outbound(done.events, a.delivered, a.retrying, a.failed);
    stored.map(|()| done)
}

/// Stores each change's event with its deliveries, in order, collecting the new deliveries.
async fn store_events(
    app: &Arc<App>,
    changes: &[Change],
    done: &mut Notified,
    work: &mut Vec<(OutboundKey, Option<(Event, Endpoint)>)>,
) -> Result<(), Stopped> {
    let mut endpoints: HashMap<String, Vec<Endpoint>> = HashMap::new();
    for (index, change) in changes.iter().enumerate() {
        let stop = |error: Error| Stopped { index, error };
        let Some(event) = event_of(app, change).await.map_err(stop)? else {
            continue;
        };
        if !endpoints.contains_key(&event.tenant) {
            let list = app
                .store
                .list_endpoints(&event.tenant)
                .await
                .map_err(|e| stop(e.into()))?;
            endpoints.insert(event.tenant.clone(), list);
        }
        let now = app.clock.now();
        let wanting: Vec<&Endpoint> = endpoints[&event.tenant]
            .iter()
            .filter(|e| e.wants(event.event_type))
            .collect();
        let deliveries: Vec<OutboundDelivery> = wanting
            .iter()
            .map(|e| {
                OutboundDelivery::new(
                    OutboundKey {
                        tenant: event.tenant.clone(),
                        event_id: event.id.clone(),
                        endpoint_id: e.id.clone(),
                    },
                    now,
                )
            })
            .collect();
        match app.store.add_event(&event, &deliveries).await {
            Ok(true) => {
                done.events += 1;
                for (d, e) in deliveries.into_iter().zip(wanting) {
                    work.push((d.key, Some((event.clone(), e.clone()))));
                }
            }
            // Stored by an earlier read of this change: its deliveries are due, the sweep has them.
            Ok(false) => done.repeated += 1,
            Err(e) => return Err(stop(e.into())),
        }
        tracing::info!(event = %event.id, r#type = event.event_type.as_str(), "event");
    }
    Ok(())
}

/// A DynamoDB stream event (as Lambda delivers it, and as the local server builds it from the
/// Streams API): its records' changes, and the answer Lambda expects with partial batch
/// responses (`batchItemFailures`: the first record not stored and every one after it).
pub async fn on_stream_event(app: &Arc<App>, event: &Value) -> Value {
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    let mut changes = Vec::with_capacity(records.len());
    let mut sequence = Vec::with_capacity(records.len());
    let mut unreadable = None;
    for (i, r) in records.iter().enumerate() {
        let seq = r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default();
        let inserted = r["eventName"] == "INSERT";
        let Some(image) = crate::store::item_from_json(&r["dynamodb"]["NewImage"]) else {
            // REMOVE (TTL expiry, a deleted endpoint) has no new image: nothing to announce.
            continue;
        };
        match crate::store::change_of(inserted, &image) {
            Ok(Some(c)) => {
                changes.push(c);
                sequence.push(seq.to_owned());
            }
            Ok(None) => {}
            Err(e) => {
                // Unreadable: not skipped (it would be lost), reported, so that Lambda retries it
                // and then hands it to the dead-letter queue.
                tracing::error!(record = i, error = %e, "stream record unreadable");
                unreadable = Some(seq.to_owned());
                break;
            }
        }
    }
    let failed_from = match on_changes(app, &changes).await {
        Ok(_) => unreadable,
        Err(Stopped { index, error }) => {
            tracing::warn!(change = index, error = %error, "batch stopped");
            sequence.get(index).cloned()
        }
    };
    let failures: Vec<Value> = failed_from
        .map(|seq| json!({"itemIdentifier": seq}))
        .into_iter()
        .collect();
    json!({"batchItemFailures": failures})
}
