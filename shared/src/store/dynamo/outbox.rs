//! Outbound events. A tenant's endpoints under `EP#<tenant>` / `<id>`; its events under
//! `EVT#<tenant>` / `<event id>` (ids sort by time: newest first by query); each delivery under
//! `EVD#<tenant>#<event id>` / `<endpoint id>`, filed in `gsi2` under `OUT#<shard>` /
//! `<due ms>#...` while pending. An event and its deliveries are one transaction; every
//! attempt is one conditional put of its delivery under the attempt's lease.

use super::super::shard::SHARDS;
use super::super::{EventFilter, Outbox, StoreError, StoreResult};
use super::DynamoStore;
use super::attr::*;
use super::errors::{is_condition_failure, read_error, write_error};
use super::keys::*;
use crate::events::model::{EVENT_RETENTION, MAX_ATTEMPTS_KEPT};
use crate::events::{
    AttemptRecord, Endpoint, Event, EventType, OutboundDelivery, OutboundKey, OutboundState,
};
use crate::session::SessionId;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;
use time::OffsetDateTime;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what}"))
}

/// DynamoDB's TTL: Unix seconds.
fn ttl(at: OffsetDateTime) -> AttributeValue {
    n((at + EVENT_RETENTION).unix_timestamp())
}

// ---- endpoints -------------------------------------------------------------------------------

fn endpoint_item(e: &Endpoint, version: u64) -> Item {
    let mut item = endpoint_key(&e.tenant, &e.id);
    item.insert("tenant".into(), s(&e.tenant));
    item.insert("url".into(), s(&e.url));
    item.insert(
        "event_types".into(),
        strings(
            &e.event_types
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect::<Vec<_>>(),
        ),
    );
    put_opt(&mut item, "description", e.description.clone().map(s));
    item.insert("enabled".into(), AttributeValue::Bool(e.enabled));
    put_opt(
        &mut item,
        "disabled_reason",
        e.disabled_reason.clone().map(s),
    );
    item.insert("secret".into(), s(&e.secret));
    if let Some((sealed, until)) = &e.previous_secret {
        item.insert("previous_secret".into(), s(sealed));
        item.insert("previous_until".into(), ts(*until));
    }
    put_opt(&mut item, "failing_since", e.failing_since.map(ts));
    item.insert("created_at".into(), ts(e.created_at));
    item.insert("updated_at".into(), ts(e.updated_at));
    item.insert("version".into(), n(version));
    item
}

fn endpoint_from(item: &Item) -> StoreResult<Endpoint> {
    let event_types = get_strings(item, "event_types")
        .iter()
        .map(|t| EventType::parse(t).ok_or_else(|| corrupt("event type")))
        .collect::<StoreResult<_>>()?;
    let previous_secret = match (
        opt_s(item, "previous_secret"),
        opt_ts(item, "previous_until")?,
    ) {
        (Some(sealed), Some(until)) => Some((sealed, until)),
        _ => None,
    };
    Ok(Endpoint {
        id: get_s(item, "sk")?.to_owned(),
        tenant: get_s(item, "tenant")?.to_owned(),
        url: get_s(item, "url")?.to_owned(),
        event_types,
        description: opt_s(item, "description"),
        enabled: matches!(item.get("enabled"), Some(AttributeValue::Bool(true))),
        disabled_reason: opt_s(item, "disabled_reason"),
        secret: get_s(item, "secret")?.to_owned(),
        previous_secret,
        failing_since: opt_ts(item, "failing_since")?,
        created_at: get_ts(item, "created_at")?,
        updated_at: get_ts(item, "updated_at")?,
        version: get_n(item, "version")?,
    })
}

// ---- events ------------------------------------------------------------------------------------

fn event_item(e: &Event) -> Item {
    let mut item = event_key(&e.tenant, &e.id);
    item.insert("tenant".into(), s(&e.tenant));
    item.insert("type".into(), s(e.event_type.as_str()));
    put_opt(
        &mut item,
        "session_id",
        e.session_id.as_ref().map(|id| s(id.as_str())),
    );
    item.insert("created_at".into(), ts(e.created_at));
    item.insert("body".into(), s(&e.body));
    item.insert("ttl".into(), ttl(e.created_at));
    item
}

fn event_from(item: &Item) -> StoreResult<Event> {
    Ok(Event {
        id: get_s(item, "sk")?.to_owned(),
        tenant: get_s(item, "tenant")?.to_owned(),
        event_type: EventType::parse(get_s(item, "type")?).ok_or_else(|| corrupt("event type"))?,
        session_id: opt_s(item, "session_id")
            .map(|id| SessionId::parse(&id).ok_or_else(|| corrupt("session id")))
            .transpose()?,
        created_at: get_ts(item, "created_at")?,
        body: get_s(item, "body")?.to_owned(),
    })
}

// ---- deliveries ----------------------------------------------------------------------------

fn attempt_value(a: &AttemptRecord) -> AttributeValue {
    let mut m = HashMap::from([
        ("at".to_owned(), ts(a.at)),
        ("ms".to_owned(), n(a.latency_ms)),
    ]);
    put_opt(&mut m, "st", a.status.map(n));
    put_opt(&mut m, "err", a.error.clone().map(s));
    AttributeValue::M(m)
}

fn attempt_from(v: &AttributeValue) -> StoreResult<AttemptRecord> {
    let m = v.as_m().map_err(|_| corrupt("attempt"))?;
    Ok(AttemptRecord {
        at: get_ts(m, "at")?,
        status: opt_n(m, "st"),
        latency_ms: get_n(m, "ms")?,
        error: opt_s(m, "err"),
    })
}

/// A delivery as an item, filed in the retry index at `due` if it is pending.
fn outbound_item(d: &OutboundDelivery, due: Option<OffsetDateTime>) -> Item {
    let mut item = outbound_key(&d.key);
    item.insert("tenant".into(), s(&d.key.tenant));
    item.insert("state".into(), s(d.state.as_str()));
    let kept = d.attempts.len().saturating_sub(MAX_ATTEMPTS_KEPT);
    item.insert(
        "attempts".into(),
        AttributeValue::L(d.attempts[kept..].iter().map(attempt_value).collect()),
    );
    item.insert("round".into(), n(d.round));
    put_opt(&mut item, "next_at", d.next_at.map(ts));
    put_opt(&mut item, "reason", d.reason.clone().map(s));
    item.insert("created_at".into(), ts(d.created_at));
    item.insert("ttl".into(), ttl(d.created_at));
    if let Some(at) = due.filter(|_| d.state == OutboundState::Pending) {
        item.insert("gsi2pk".into(), s(outbound_due_pk(&d.key)));
        item.insert("gsi2sk".into(), s(outbound_due_sk(at, &d.key)));
    }
    item
}

fn outbound_from(item: &Item) -> StoreResult<OutboundDelivery> {
    let attempts = match item.get("attempts") {
        Some(AttributeValue::L(l)) => l.iter().map(attempt_from).collect::<StoreResult<_>>()?,
        _ => Vec::new(),
    };
    Ok(OutboundDelivery {
        key: outbound_key_of(item).ok_or_else(|| corrupt("delivery key"))?,
        state: OutboundState::parse(get_s(item, "state")?).ok_or_else(|| corrupt("state"))?,
        attempts,
        round: get_n(item, "round")?,
        next_at: opt_ts(item, "next_at")?,
        reason: opt_s(item, "reason"),
        created_at: get_ts(item, "created_at")?,
    })
}

#[async_trait]
impl Outbox for DynamoStore {
    async fn put_endpoint(&self, e: &Endpoint, version: Option<u64>) -> StoreResult<()> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_item(e, version.unwrap_or(0) + 1)));
        let put = match version {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
        };
        put.send().await.map(|_| ()).map_err(write_error)
    }

    async fn get_endpoint(&self, tenant: &str, id: &str) -> StoreResult<Option<Endpoint>> {
        self.get(endpoint_key(tenant, id))
            .await?
            .as_ref()
            .map(endpoint_from)
            .transpose()
    }

    async fn list_endpoints(&self, tenant: &str) -> StoreResult<Vec<Endpoint>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(endpoints_pk(tenant)))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        let mut all = out
            .items
            .unwrap_or_default()
            .iter()
            .map(endpoint_from)
            .collect::<StoreResult<Vec<_>>>()?;
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn delete_endpoint(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(endpoint_key(tenant, id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(write_error)?;
        Ok(out.attributes.is_some())
    }

    async fn add_event(&self, event: &Event, deliveries: &[OutboundDelivery]) -> StoreResult<bool> {
        let written = if deliveries.is_empty() {
            // No endpoint wants it: one conditional put (a transaction bills twice).
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(event_item(event)))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map(|_| ())
                .map_err(write_error)
        } else {
            let mut items = vec![
                self.put(event_item(event), Some("attribute_not_exists(pk)"))
                    .build()?,
            ];
            for d in deliveries {
                items.push(
                    self.put(
                        outbound_item(d, d.next_at),
                        Some("attribute_not_exists(pk)"),
                    )
                    .build()?,
                );
            }
            self.transact(items).await
        };
        match written {
            Ok(()) => Ok(true),
            // Stored before (a change read twice), with its deliveries.
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>> {
        self.get(event_key(tenant, id))
            .await?
            .as_ref()
            .map(event_from)
            .transpose()
    }

    async fn get_event(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<(Event, Vec<OutboundDelivery>)>> {
        let Some(event) = self.event(tenant, id).await? else {
            return Ok(None);
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(outbound_pk(tenant, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        let deliveries = out
            .items
            .unwrap_or_default()
            .iter()
            .map(outbound_from)
            .collect::<StoreResult<_>>()?;
        Ok(Some((event, deliveries)))
    }

    async fn list_events(
        &self,
        tenant: &str,
        filter: &EventFilter,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Event>, Option<String>)> {
        let pk = events_pk(tenant);
        let mut start = after.map(|a| event_key(tenant, a));
        let mut found = Vec::new();
        let filtered = filter.event_type.is_some() || filter.session_id.is_some();
        // A filter is applied after DynamoDB's limit: read pages until the page is full or
        // this many pages were read (then the caller follows the cursor).
        for _ in 0..if filtered { 10 } else { 1 } {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            let mut conditions = Vec::new();
            if let Some(t) = filter.event_type {
                conditions.push("#t = :t");
                q = q
                    .expression_attribute_names("#t", "type")
                    .expression_attribute_values(":t", s(t.as_str()));
            }
            if let Some(id) = &filter.session_id {
                conditions.push("session_id = :s");
                q = q.expression_attribute_values(":s", s(id.as_str()));
            }
            if !conditions.is_empty() {
                q = q.filter_expression(conditions.join(" AND "));
            }
            let want = limit + 1 - found.len();
            let page = if filtered { 100 } else { want };
            let out = q
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(read_error)?;
            for item in out.items.unwrap_or_default() {
                found.push(event_from(&item)?);
            }
            start = out.last_evaluated_key;
            if found.len() > limit || start.is_none() {
                break;
            }
        }
        // Next: after the last event answered when one beyond the page was found; else after the
        // last event read, when the read stopped with events left to look at.
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|e| e.id.clone())
        } else {
            start.as_ref().and_then(|k| opt_s(k, "sk"))
        };
        Ok((found, next))
    }

    async fn add_outbound(&self, d: &OutboundDelivery) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(outbound_item(d, d.next_at)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    async fn lease_outbound(
        &self,
        key: &OutboundKey,
        lease: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Option<OutboundDelivery>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(outbound_key(key)))
            .update_expression("SET lease = :l, lease_until = :u, gsi2sk = :dsk")
            .condition_expression(
                "#st = :pending AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            )
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":l", s(lease))
            .expression_attribute_values(":u", ts(until))
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":pending", s(OutboundState::Pending.as_str()))
            .expression_attribute_values(":dsk", s(outbound_due_sk(until, key)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => out.attributes.as_ref().map(outbound_from).transpose(),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(write_error(e)),
        }
    }

    async fn record_outbound(&self, d: &OutboundDelivery, lease: &str) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(outbound_item(d, d.next_at)))
            .condition_expression("lease = :l")
            .expression_attribute_values(":l", s(lease))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    async fn requeue_outbound(&self, key: &OutboundKey, at: OffsetDateTime) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(outbound_key(key)))
            .update_expression(
                "SET #st = :pending, #round = :zero, next_at = :at, gsi2pk = :dpk, \
                 gsi2sk = :dsk REMOVE lease, lease_until, #why",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#round", "round")
            .expression_attribute_names("#why", "reason")
            .expression_attribute_values(":pending", s(OutboundState::Pending.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", ts(at))
            .expression_attribute_values(":dpk", s(outbound_due_pk(key)))
            .expression_attribute_values(":dsk", s(outbound_due_sk(at, key)))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    fn outbound_shards(&self) -> u16 {
        SHARDS
    }

    async fn due_outbound(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<OutboundKey>> {
        let filed = self.due_keys(outbound_due_pk_of(shard), now, limit).await?;
        Ok(filed.iter().filter_map(outbound_key_of).collect())
    }
}
