//! The due index: open sessions with a next check are filed in the sparse `gsi2` under
//! `DUE#<shard>` / `<filed ms>#<id>`, at or before their next check (a write that postpones the
//! check keeps the filing: `update`). A session found early is re-filed where it belongs.

use super::super::shard::SHARDS;
use super::super::{DueIndex, StoreError, StoreResult, Stored, is_scheduled};
use super::DynamoStore;
use super::attr::{Item, n, s};
use super::errors::{read_error, write_error};
use super::keys::{DUE_INDEX, due_pk, due_sk, session_id_of, session_key, upto};
use crate::session::{Session, SessionId};
use async_trait::async_trait;
use time::OffsetDateTime;

impl DynamoStore {
    /// The keys filed under `pk` of the sparse index at or before `now`, earliest first, at most
    /// `limit` (one page: what does not fit is due on the next run, earliest first, so nothing
    /// starves). Every due read (sessions, webhook retries, outbound deliveries) is this query.
    pub(super) async fn due_keys(
        &self,
        pk: String,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("gsi2pk = :pk AND gsi2sk <= :upto")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":upto", s(upto(now)))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(read_error)?;
        Ok(out.items.unwrap_or_default())
    }

    /// Moves a session's due filing to `at`, if its version is still the one read.
    async fn refile(&self, session: &Stored<Session>, at: OffsetDateTime) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(&session.id)))
            .update_expression("SET #dsk = :dsk")
            .condition_expression("#v = :v AND attribute_exists(#dsk)")
            .expression_attribute_names("#dsk", "gsi2sk")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":dsk", s(due_sk(at, &session.id)))
            .expression_attribute_values(":v", n(session.version))
            .send()
            .await
            .map(|_| ())
            .map_err(write_error)
    }
}

#[async_trait]
impl DueIndex for DynamoStore {
    fn due_shards(&self) -> u16 {
        SHARDS
    }

    async fn due_sessions(
        &self,
        shard: u16,
        now: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<Stored<Session>>> {
        let keys = self.due_keys(due_pk(shard), now, limit).await?;
        let ids: Vec<SessionId> = keys.iter().filter_map(session_id_of).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut due = Vec::with_capacity(ids.len());
        for session in self.sessions_by_id(&ids).await? {
            let filed_by_now = session.filing.due.is_some_and(|filed| filed <= now);
            let Some(at) = session
                .next_check_at
                .filter(|_| filed_by_now && is_scheduled(&session))
            else {
                // The index lags the table (it is eventually consistent): nothing to do.
                continue;
            };
            if at <= now {
                due.push(session);
                continue;
            }
            // Filed early (a write postponed its check and kept the filing): file it where it
            // belongs. A lost race means a writer filed it itself.
            match self.refile(&session, at).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(due)
    }
}
