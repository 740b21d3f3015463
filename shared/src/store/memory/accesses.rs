//! Access records of verified data in memory.

use super::super::{Accesses, StoreResult};
use super::MemoryStore;
use crate::session::SessionId;
use crate::verified::DataAccess;
use async_trait::async_trait;

#[async_trait]
impl Accesses for MemoryStore {
    async fn record_access(&self, access: &DataAccess) -> StoreResult<()> {
        let mut g = self.lock();
        g.accesses.insert(
            (access.session_id.to_string(), access.id.clone()),
            access.clone(),
        );
        Ok(())
    }

    async fn list_accesses(
        &self,
        session: &SessionId,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<(Vec<DataAccess>, Option<String>)> {
        let g = self.lock();
        let id = session.to_string();
        // Ids sort by time: newest first is the range backwards, from before the cursor.
        let upper = after.map_or_else(|| "~".to_owned(), str::to_owned);
        let mut page: Vec<DataAccess> = g
            .accesses
            .range((id.clone(), String::new())..(id, upper))
            .rev()
            .take(limit + 1)
            .map(|(_, a)| a.clone())
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|a| a.id.clone())
        });
        Ok((page, next.flatten()))
    }
}
