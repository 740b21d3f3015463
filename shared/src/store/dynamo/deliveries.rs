//! Webhook deliveries: one item per delivery (`WH#<provider>#<event id>` / `WH`) holding its
//! state, its lease and what a later attempt needs; filed in the sparse `gsi2` under
//! `RETRY#<shard>` while it is not settled, so that the scheduled run finds the ones whose
//! processing failed or died; kept ones filed under `UNM#<provider>#<subject>` to be matched
//! later; and the tokens a delivery came with (`TOK#<provider>#<hash>`), to refuse a captured
//! token over another body.

use super::super::shard::SHARDS;
use super::super::{
    Deliveries, Delivery, DeliveryState, DueDelivery, Recorded, StoreError, StoreResult,
};
use super::DynamoStore;
use super::attr::*;
use super::codec::{delivery_from, delivery_state_of, unmatched_item};
use super::errors::{is_condition_failure, read_error, write_error};
use super::keys::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use time::OffsetDateTime;

impl DynamoStore {
    /// The update that settles a delivery: its state, out of the retry index (also a
    /// transaction item of an identity event).
    pub(super) fn settle_update(&self, d: &Delivery, state: DeliveryState) -> StoreResult<Update> {
        let mut set = String::from(
            "SET #st = :st, #lease = :zero, #p = :p, #e = :e, \
             #subj = if_not_exists(#subj, :subj), #pl = if_not_exists(#pl, :pl), \
             #ra = if_not_exists(#ra, :ra), #ttl = if_not_exists(#ttl, :ttl), \
             #att = if_not_exists(#att, :one)",
        );
        let mut b = Update::builder();
        if let Some(mark) = &d.mark {
            set.push_str(", #mark = :mark");
            b = b
                .expression_attribute_names("#mark", "mark")
                .expression_attribute_values(":mark", s(mark));
        }
        set.push_str(" REMOVE #rpk, #rsk");
        b.table_name(&self.table)
            .set_key(Some(delivery_key(d.provider.as_str(), &d.event_id)))
            .update_expression(set)
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_names("#p", "provider")
            .expression_attribute_names("#e", "event_id")
            .expression_attribute_names("#subj", "subjects")
            .expression_attribute_names("#pl", "payload")
            .expression_attribute_names("#ra", "received_at")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#att", "attempts")
            .expression_attribute_names("#rpk", "gsi2pk")
            .expression_attribute_names("#rsk", "gsi2sk")
            .expression_attribute_values(":st", s(state.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":p", s(d.provider.as_str()))
            .expression_attribute_values(":e", s(&d.event_id))
            .expression_attribute_values(":subj", strings(&d.subjects))
            .expression_attribute_values(":pl", s(&d.payload))
            .expression_attribute_values(":ra", ts(d.received_at))
            .expression_attribute_values(":ttl", n(d.expires_at.unix_timestamp()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

#[async_trait]
impl Deliveries for DynamoStore {
    /// One UpdateItem: creates the delivery or takes it again (not applied, lease run out),
    /// keeping its state, and files it as due when the lease ends. A refused condition returns
    /// the stored item, which tells a duplicate from a twin in flight without another read.
    async fn record_delivery(
        &self,
        d: &Delivery,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Recorded> {
        let (provider, event_id) = (d.provider.as_str(), d.event_id.as_str());
        let mut set = String::from(
            "SET #p = :p, #e = :e, #subj = :subj, #pl = :pl, #ra = if_not_exists(#ra, :ra), \
             #ttl = :ttl, #st = :received, #lease = :lease, \
             #att = if_not_exists(#att, :zero) + :one, #rpk = :rpk, #rsk = :rsk",
        );
        let mut condition =
            String::from("attribute_not_exists(pk) OR (#st <> :applied AND #lease < :now)");
        let mut req = self.client.update_item();
        if let Some(mark) = &d.mark {
            // Applied, but what it concerns moved since: the same body is news again. Not when
            // they stand where the applied attempt found them (`mark_in`): a twin that read them
            // before that attempt applied brings the same news.
            set.push_str(", #mark = :mark, #min = :mark");
            condition.push_str(
                " OR (#st = :applied AND #mark <> :mark \
                 AND (attribute_not_exists(#min) OR #min <> :mark))",
            );
            req = req
                .expression_attribute_names("#mark", "mark")
                .expression_attribute_names("#min", "mark_in")
                .expression_attribute_values(":mark", s(mark));
        }
        let out = req
            .table_name(&self.table)
            .set_key(Some(delivery_key(provider, event_id)))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_names("#p", "provider")
            .expression_attribute_names("#e", "event_id")
            .expression_attribute_names("#subj", "subjects")
            .expression_attribute_names("#pl", "payload")
            .expression_attribute_names("#ra", "received_at")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_names("#att", "attempts")
            .expression_attribute_names("#rpk", "gsi2pk")
            .expression_attribute_names("#rsk", "gsi2sk")
            .expression_attribute_values(":p", s(provider))
            .expression_attribute_values(":e", s(event_id))
            .expression_attribute_values(":subj", strings(&d.subjects))
            .expression_attribute_values(":pl", s(&d.payload))
            .expression_attribute_values(":ra", ts(d.received_at))
            .expression_attribute_values(":ttl", n(d.expires_at.unix_timestamp()))
            .expression_attribute_values(":received", s(DeliveryState::Received.as_str()))
            .expression_attribute_values(":applied", s(DeliveryState::Applied.as_str()))
            .expression_attribute_values(":lease", n(unix_ms(lease_until)))
            .expression_attribute_values(":now", n(unix_ms(now)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":rpk", s(delivery_retry_pk(provider, event_id)))
            .expression_attribute_values(":rsk", s(retry_sk(lease_until, provider, event_id)))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => {
                // Filed under its subjects before it is acted on, so that a redaction of one of
                // them finds it (a failure here fails the attempt, which is retried).
                self.file_by_subject(provider, event_id, &d.subjects, d.expires_at)
                    .await?;
                Ok(Recorded::Process {
                    attempts: out
                        .attributes
                        .as_ref()
                        .and_then(|a| opt_n(a, "attempts"))
                        .unwrap_or(1),
                })
            }
            Err(e) if is_condition_failure(&e) => {
                let stored = match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                    _ => None,
                };
                let stored = match stored {
                    Some(item) => Some(item),
                    None => self.get(delivery_key(provider, event_id)).await?,
                };
                Ok(match stored.as_ref().and_then(delivery_state_of) {
                    Some(DeliveryState::Applied) => Recorded::Duplicate,
                    _ => Recorded::InFlight,
                })
            }
            Err(e) => Err(write_error(e)),
        }
    }

    async fn lease_delivery(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(provider, event_id)))
            .update_expression("SET #lease = :lease, #att = #att + :one, #rsk = :rsk")
            .condition_expression("attribute_exists(#rpk) AND #st <> :applied AND #lease < :now")
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_names("#att", "attempts")
            .expression_attribute_names("#rpk", "gsi2pk")
            .expression_attribute_names("#rsk", "gsi2sk")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":lease", n(unix_ms(lease_until)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":rsk", s(retry_sk(lease_until, provider, event_id)))
            .expression_attribute_values(":applied", s(DeliveryState::Applied.as_str()))
            .expression_attribute_values(":now", n(unix_ms(now)))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(write_error(e)),
        }
    }

    /// A kept delivery is filed under each of its subjects in the same transaction as its state
    /// (so that linking finds it).
    async fn settle_delivery(&self, d: &Delivery, state: DeliveryState) -> StoreResult<()> {
        let update = self.settle_update(d, state)?;
        if state != DeliveryState::Unmatched || d.subjects.is_empty() {
            return self.update_one(update).await;
        }
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        for subject in &d.subjects {
            items.push(self.put(unmatched_item(d, subject), None).build()?);
        }
        self.transact(items).await
    }

    async fn defer_delivery(
        &self,
        provider: &str,
        event_id: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(provider, event_id)))
            .update_expression("SET #lease = :zero, #rpk = :rpk, #rsk = :rsk")
            .condition_expression("attribute_exists(pk) AND #st <> :applied")
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_names("#rpk", "gsi2pk")
            .expression_attribute_names("#rsk", "gsi2sk")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":rpk", s(delivery_retry_pk(provider, event_id)))
            .expression_attribute_values(":rsk", s(retry_sk(retry_at, provider, event_id)))
            .expression_attribute_values(":applied", s(DeliveryState::Applied.as_str()))
            .send()
            .await;
        match out {
            // Settled meanwhile by another attempt: nothing left to retry.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(write_error(e)),
        }
    }

    fn retry_shards(&self) -> u16 {
        SHARDS
    }

    async fn due_deliveries(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<DueDelivery>> {
        let filed = self.due_keys(retry_pk(shard), now, limit).await?;
        let keys: Vec<Item> = filed
            .iter()
            .filter_map(|i| Some(key(opt_s(i, "pk")?, DELIVERY_SK)))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut due = Vec::with_capacity(keys.len());
        for item in self.batch_get(keys).await? {
            // The index lags the table: only what is still filed as due counts.
            let filed = opt_s(&item, "gsi2sk").and_then(|k| filed_ms(&k));
            if delivery_state_of(&item) == Some(DeliveryState::Applied)
                || filed.is_none_or(|ms| ms > unix_ms(now))
            {
                continue;
            }
            due.push(DueDelivery {
                delivery: delivery_from(&item)?,
                attempts: opt_n(&item, "attempts").unwrap_or(1),
            });
        }
        due.sort_by_key(|d| d.delivery.received_at);
        Ok(due)
    }

    async fn bind_delivery_token(
        &self,
        provider: &str,
        token_hash: &str,
        body_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut item = token_key(provider, token_hash);
        item.insert("body".into(), s(body_hash));
        item.insert("ttl".into(), n(expires_at.unix_timestamp()));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #b = :b")
            .expression_attribute_names("#b", "body")
            .expression_attribute_values(":b", s(body_hash))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(write_error(e)),
        }
    }

    async fn unmatched_deliveries(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Vec<Delivery>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(unmatched_pk(provider, subject)))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_error)?;
        let filed = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|i| get_s(i, "event_id").map(str::to_owned))
            .collect::<StoreResult<Vec<String>>>()?;
        if filed.is_empty() {
            return Ok(Vec::new());
        }
        // The filing stays behind once matched; the delivery's own state is the truth, read for
        // all of them at once.
        let keys = filed.iter().map(|id| delivery_key(provider, id)).collect();
        let mut kept: Vec<Delivery> = self
            .batch_get(keys)
            .await?
            .iter()
            .filter(|d| delivery_state_of(d) == Some(DeliveryState::Unmatched))
            .map(delivery_from)
            .collect::<StoreResult<_>>()?;
        kept.sort_by_key(|d| d.received_at);
        Ok(kept)
    }
}
