//! Listing a tenant's sessions in memory: the DynamoDB adapter's order (creation time, then id,
//! newest first) and cursor, over every session at once.

use super::super::cursor::{self, Position};
use super::super::{Listing, Page, SessionFilter, StoreResult};
use super::MemoryStore;
use crate::session::Session;
use async_trait::async_trait;

fn position(s: &Session) -> Position {
    Position {
        created_ns: s.created_at.unix_timestamp_nanos().max(0),
        id: s.id.clone(),
    }
}

fn order(p: &Position) -> (i128, &str) {
    (p.created_ns, p.id.as_str())
}

#[async_trait]
impl Listing for MemoryStore {
    async fn list_sessions(
        &self,
        tenant: &str,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page>> {
        let after = match cursor {
            None => None,
            Some(c) => match cursor::decode(tenant, filter, c) {
                Some(at) => Some(at),
                None => return Ok(None),
            },
        };
        let g = self.lock();
        let mut mine: Vec<(Position, &Session)> = g
            .sessions
            .values()
            .map(|s| &s.value)
            .filter(|s| s.tenant == tenant && filter.matches(s))
            .map(|s| (position(s), s))
            .collect();
        mine.sort_by(|(a, _), (b, _)| order(b).cmp(&order(a)));
        // Everything strictly older than the position, as DynamoDB's start key reads.
        let start = after.map_or(0, |at| {
            mine.iter()
                .position(|(p, _)| order(p) < order(&at))
                .unwrap_or(mine.len())
        });
        let page: Vec<&(Position, &Session)> = mine.iter().skip(start).take(limit).collect();
        let next_cursor = (start + page.len() < mine.len())
            .then(|| page.last().map(|(p, _)| cursor::encode(tenant, filter, p)))
            .flatten();
        Ok(Some(Page {
            sessions: page.into_iter().map(|(_, s)| (*s).clone()).collect(),
            next_cursor,
        }))
    }
}
