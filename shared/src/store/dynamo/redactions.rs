//! Redaction: the erased session written whole over its item (out of the user index, still in
//! the tenant index; its history replaced), and what hangs on it found by key and deleted or rewritten. Every step is
//! idempotent: a repeat after a crash erases what is left.

use super::super::{
    Delivery, Erasure, HistoryMark, Redactions, SessionWrite, StoreResult, Stored, scrub,
    tombstone_hash,
};
use super::DynamoStore;
use super::attr::*;
use super::codec::history_value;
use super::errors::{is_condition_failure, read_error, write_error};
use super::keys::*;
use super::update::session_update;
use crate::session::{HistoryEntry, Session};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use time::OffsetDateTime;

/// Where the deliveries about a provider identity are filed (all of them, whatever their
/// state), so that a redaction finds them: `SUB#<provider>#<subject>` / `WH#<event id>`.
pub(super) fn subject_pk(provider: &str, subject: &str) -> String {
    format!("SUB#{provider}#{subject}")
}

/// A redacted provider identity's tombstone: `TOMB#<provider>#<SHA-256 of the subject>` / `TOMB`.
fn tombstone_key(provider: &str, subject: &str) -> Item {
    key(
        format!("TOMB#{provider}#{}", tombstone_hash(subject)),
        "TOMB",
    )
}

impl DynamoStore {
    /// Files a delivery under each of its subjects (until its TTL), for redaction. Idempotent
    /// puts, in one BatchWriteItem per 25.
    pub(super) async fn file_by_subject(
        &self,
        provider: &str,
        event_id: &str,
        subjects: &[String],
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let puts: Vec<WriteRequest> = subjects
            .iter()
            .map(|subject| {
                let mut item = key(subject_pk(provider, subject), &unmatched_sk(event_id));
                item.insert("event_id".into(), s(event_id));
                item.insert("ttl".into(), n(expires_at.unix_timestamp()));
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| super::super::StoreError::Corrupt(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<StoreResult<_>>()?;
        for chunk in puts.chunks(25) {
            let mut pending = Some(chunk.to_vec());
            // Unprocessed items are sent again (throttling); a lasting failure is an error.
            for _ in 0..5 {
                let Some(batch) = pending.take().filter(|b| !b.is_empty()) else {
                    break;
                };
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, batch)
                    .send()
                    .await
                    .map_err(write_error)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table));
            }
            if pending.is_some_and(|b| !b.is_empty()) {
                return Err(super::super::StoreError::Unavailable(
                    "filings left unprocessed".into(),
                ));
            }
        }
        Ok(())
    }

    /// Every item of a partition (its sort keys starting with `prefix`).
    async fn partition(&self, pk: &str, prefix: Option<&str>) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = match prefix {
                Some(p) => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(p)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let out = q.send().await.map_err(read_error)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    async fn delete(
        &self,
        k: Item,
        condition: Option<(&str, &str, AttributeValue)>,
    ) -> StoreResult<()> {
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(k));
        if let Some((cond, name, value)) = condition {
            req = req
                .condition_expression(cond)
                .expression_attribute_values(name, value);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            // Leads elsewhere now: not this session's to erase.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(write_error(e)),
        }
    }
}

#[async_trait]
impl Redactions for DynamoStore {
    /// One conditional UpdateItem: the erased state (`session_update` without a history entry),
    /// `user_id` replaced, the user index's partition key, metadata and kept start fields
    /// removed, the history set whole. `gsi1sk` stays: it sorts the tenant index (`gsi3`), which
    /// lists the session still, as redacted; without `gsi1pk` the user index holds it no more.
    async fn write_redacted(
        &self,
        w: SessionWrite<'_>,
        history: &[HistoryEntry],
    ) -> StoreResult<Stored<Session>> {
        let mut e = session_update(&SessionWrite { history: None, ..w });
        let mut all: Vec<AttributeValue> = history.iter().map(history_value).collect();
        if let Some(h) = w.history {
            all.push(history_value(h));
        }
        let len = all.len();
        let (set, remove) = e.update.split_once(" REMOVE ").map_or_else(
            || (e.update.clone(), String::new()),
            |(a, b)| (a.to_owned(), b.to_owned()),
        );
        let mut update = format!("{set}, #rh = :rh, #ruid = :ruid REMOVE #rg1, #rmd, #rso");
        if !remove.is_empty() {
            update.push_str(", ");
            update.push_str(&remove);
        }
        e.update = update;
        for (k, v) in [
            ("#rh", "h"),
            ("#ruid", "user_id"),
            ("#rg1", "gsi1pk"),
            ("#rmd", "md"),
            ("#rso", "so"),
        ] {
            e.names.insert(k.into(), v.into());
        }
        e.values.insert(":rh".into(), AttributeValue::L(all));
        e.values.insert(":ruid".into(), s(&w.session.user_id));
        e.filing.history = HistoryMark {
            len,
            oldest_slot: usize::from(len > 1),
        };
        self.write_session(&w, e).await
    }

    async fn erase_dependents(&self, x: &Erasure) -> StoreResult<()> {
        let id = x.session_id.as_str();
        // Tombstones first: a delivery recorded while the rest is erased finds one.
        for (provider, subject) in &x.subjects {
            let mut item = tombstone_key(provider, subject);
            item.insert("ttl".into(), n(x.tombstones_until.unix_timestamp()));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(write_error)?;
        }
        for k in &x.ref_keys {
            self.delete(ref_key(k), Some(("session_id = :s", ":s", s(id))))
                .await?;
        }
        let session_pk = session_pk(&x.session_id);
        for item in self
            .partition(&session_pk, Some(IDENTITY_EVENT_PREFIX))
            .await?
        {
            let sk = get_s(&item, "sk")?;
            self.delete(key(session_pk.clone(), sk), None).await?;
        }
        let ra = reauth_pk(&x.tenant, &x.user_id);
        for item in self.partition(&ra, None).await? {
            if opt_s(&item, "session_id").as_deref() == Some(id) {
                self.delete(key(ra.clone(), get_s(&item, "sk")?), None)
                    .await?;
            }
        }
        // The start's idempotency record: its replay value names the provider's session.
        if let Some(session) = self.get(session_key(&x.session_id)).await?
            && let Some(idem) = opt_s(&session, "idem")
        {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(idem_key(&x.tenant, &idem)))
                .update_expression("REMOVE replay")
                .condition_expression("session_id = :s")
                .expression_attribute_values(":s", s(id))
                .send()
                .await;
            match out {
                Ok(_) => {}
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(write_error(e)),
            }
        }
        for (provider, subject) in &x.subjects {
            for pk in [
                subject_pk(provider, subject),
                unmatched_pk(provider, subject),
            ] {
                for item in self.partition(&pk, None).await? {
                    if let Some(event_id) = opt_s(&item, "event_id") {
                        self.delete(delivery_key(provider, &event_id), None).await?;
                    }
                    self.delete(key(pk.clone(), get_s(&item, "sk")?), None)
                        .await?;
                }
            }
        }
        let events = events_pk(&x.tenant);
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .filter_expression("session_id = :s")
                .expression_attribute_values(":pk", s(&events))
                .expression_attribute_values(":s", s(id))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(read_error)?;
            for item in out.items.unwrap_or_default() {
                let Some(mut body) = opt_s(&item, "body") else {
                    continue;
                };
                let before = body.clone();
                scrub(&mut body, &x.values);
                if body != before {
                    self.client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(key(events.clone(), get_s(&item, "sk")?)))
                        .update_expression("SET body = :b")
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_values(":b", s(body))
                        .send()
                        .await
                        .map_err(write_error)?;
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    /// One consistent GetItem per subject (a delivery names one or two).
    async fn tombstoned(
        &self,
        provider: &str,
        subjects: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        for subject in subjects {
            if let Some(item) = self.get(tombstone_key(provider, subject)).await?
                && opt_n::<i64>(&item, "ttl").is_none_or(|t| t > now.unix_timestamp())
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn forget_delivery(&self, d: &Delivery) -> StoreResult<()> {
        let provider = d.provider.as_str();
        let sk = unmatched_sk(&d.event_id);
        for subject in &d.subjects {
            for pk in [
                subject_pk(provider, subject),
                unmatched_pk(provider, subject),
            ] {
                self.delete(key(pk, &sk), None).await?;
            }
        }
        self.delete(delivery_key(provider, &d.event_id), None).await
    }
}
