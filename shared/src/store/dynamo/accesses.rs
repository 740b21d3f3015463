//! Reads of a session's verified data, as items under their session (`SES#<id>` /
//! `VDA#<access id>`): who read (`tenant`, `key_id`) and when (`at`), never what; deleted by TTL.
//! Newest first by query: access ids sort as their times.

use super::super::{Accesses, StoreError, StoreResult};
use super::DynamoStore;
use super::attr::{Item, get_n, get_s, get_ts, n, s, ts};
use super::errors::{read_error, write_error};
use super::keys::{ACCESS_PREFIX, access_sk, key, session_pk};
use crate::session::SessionId;
use crate::verified::DataAccess;
use async_trait::async_trait;

fn access_item(a: &DataAccess) -> Item {
    let mut item = key(session_pk(&a.session_id), &access_sk(&a.id));
    item.insert("tenant".into(), s(&a.tenant));
    item.insert("key_id".into(), s(&a.key_id));
    item.insert("at".into(), ts(a.at));
    item.insert("ttl".into(), n(a.expires_at.unix_timestamp()));
    item
}

fn access_from(session: &SessionId, item: &Item) -> StoreResult<DataAccess> {
    let id = get_s(item, "sk")?
        .strip_prefix(ACCESS_PREFIX)
        .ok_or_else(|| StoreError::Corrupt("access record key".into()))?;
    let expires = time::OffsetDateTime::from_unix_timestamp(get_n(item, "ttl")?)
        .map_err(|_| StoreError::Corrupt("access record ttl".into()))?;
    Ok(DataAccess {
        id: id.to_owned(),
        session_id: session.clone(),
        tenant: get_s(item, "tenant")?.to_owned(),
        key_id: get_s(item, "key_id")?.to_owned(),
        at: get_ts(item, "at")?,
        expires_at: expires,
    })
}

#[async_trait]
impl Accesses for DynamoStore {
    async fn record_access(&self, access: &DataAccess) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(access_item(access)))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    async fn list_accesses(
        &self,
        session: &SessionId,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<DataAccess>, Option<String>)> {
        // One more than the page: whether another follows, without an empty last page.
        let asked = i32::try_from(limit.saturating_add(1)).unwrap_or(101);
        let pk = session_pk(session);
        let start = after.map(|a| key(pk.clone(), &access_sk(a)));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :vda)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":vda", s(ACCESS_PREFIX))
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .limit(asked)
            .send()
            .await
            .map_err(read_error)?;
        let mut page = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|i| access_from(session, i))
            .collect::<StoreResult<Vec<_>>>()?;
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|a| a.id.clone())
        });
        Ok((page, next.flatten()))
    }
}
