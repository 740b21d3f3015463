//! Listing a tenant's sessions, newest first. Two indexes, the same sort key (`gsi1sk`:
//! `<created ns>#<id>`), so one cursor and one creation-time range fit both:
//! - with a `user_id`, the user index `gsi1` (`USR#<tenant>#<user>`, keys only): a user has few
//!   sessions, and a status or provider filter is applied to their `status` and `provider`,
//!   read alone with one BatchGetItem a round;
//! - otherwise the tenant index `gsi3` (`tenant`, projecting `status` and `provider`), where a
//!   status or provider filter is a `FilterExpression`, so an entry it passes over costs its
//!   index entry (about 190 bytes), never a read of its session.
//!
//! The creation-time range is the key condition. A filter applied after DynamoDB's `Limit` can
//! pass over many entries for each one it keeps: a listing reads at most `ROUNDS` rounds of
//! `ROUND` entries, then answers what it found with a cursor at the last entry it read, so a
//! page may be short (even empty) and still lead on; it never ends while entries are left.
//! The sessions a page answers are read with one BatchGetItem, eventually consistent (half the
//! units of a strongly consistent read; the index they are found through lags the table by a
//! moment anyway), and checked against the filter again.

use super::super::cursor::{self, Position};
use super::super::{Listing, Page, SessionFilter, StoreError, StoreResult, Stored};
use super::DynamoStore;
use super::attr::{Item, opt_s, s};
use super::batch::BatchRead;
use super::errors::read_error;
use super::keys::{
    SESSION_SK, TENANT_INDEX, USER_INDEX, created_bound, position_of, session_id_of, session_key,
    session_pk, user_pk, user_sk,
};
use crate::session::SessionId;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};

/// What a user's listing filters on, read alone.
const FILTERED_ATTRIBUTES: BatchRead = BatchRead {
    consistent: false,
    projection: Some(("pk, #st, #pr", &[("#st", "status"), ("#pr", "provider")])),
};

/// Index entries one round of a filtered listing reads (its `Limit`)...
const ROUND: usize = 100;
/// ...and how many rounds one page reads at most, before it answers with a cursor.
const ROUNDS: usize = 3;

/// What one listing asks of which index.
struct Plan {
    index: &'static str,
    /// The index's partition key attribute and value.
    pk: (&'static str, String),
    /// `status` and `provider` filters: in the index (`FilterExpression`), or on those attributes
    /// of the sessions, read alone.
    in_index: bool,
    filtered: bool,
    /// The creation-time range as `gsi1sk` bounds: at or after `lo`, before `hi`.
    lo: Option<String>,
    hi: Option<String>,
}

impl Plan {
    fn of(tenant: &str, f: &SessionFilter) -> Plan {
        let bound =
            |t: Option<time::OffsetDateTime>| t.map(|t| created_bound(t.unix_timestamp_nanos()));
        let (index, pk, in_index) = match &f.user_id {
            Some(user) => (USER_INDEX, ("gsi1pk", user_pk(tenant, user)), false),
            None => (TENANT_INDEX, ("tenant", tenant.to_owned()), true),
        };
        Plan {
            index,
            pk,
            in_index,
            filtered: f.status.is_some() || f.provider.is_some(),
            lo: bound(f.created_from),
            hi: bound(f.created_until),
        }
    }

    /// Whether a position (a cursor's) lies in the range: DynamoDB refuses a start key outside
    /// the key condition.
    fn below(&self, sk: &str) -> bool {
        self.lo.as_deref().is_some_and(|lo| sk < lo)
    }
    fn above(&self, sk: &str) -> bool {
        self.hi.as_deref().is_some_and(|hi| sk >= hi)
    }

    /// The index entry a listing starts after (DynamoDB's exclusive start key).
    fn start_key(&self, at: &Position) -> Item {
        HashMap::from([
            ("pk".to_owned(), s(session_pk(&at.id))),
            ("sk".to_owned(), s(SESSION_SK)),
            (self.pk.0.to_owned(), s(&self.pk.1)),
            ("gsi1sk".to_owned(), s(user_sk(at.created_ns, &at.id))),
        ])
    }
}

impl DynamoStore {
    /// One round: up to `limit` index entries after `start`, newest first, and where it stopped.
    async fn listing_round(
        &self,
        plan: &Plan,
        f: &SessionFilter,
        limit: usize,
        start: Option<Item>,
    ) -> StoreResult<(Vec<Item>, Option<Item>)> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(plan.index)
            .expression_attribute_names("#pk", plan.pk.0)
            .expression_attribute_values(":pk", s(&plan.pk.1))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        let range = match (&plan.lo, &plan.hi) {
            (None, None) => "",
            (Some(_), None) => " AND gsi1sk >= :lo",
            (None, Some(_)) => " AND gsi1sk < :hi",
            // Inclusive, but neither bound is a key: the range is [lo, hi).
            (Some(_), Some(_)) => " AND gsi1sk BETWEEN :lo AND :hi",
        };
        for (k, v) in [(":lo", &plan.lo), (":hi", &plan.hi)] {
            if let Some(v) = v {
                q = q.expression_attribute_values(k, s(v));
            }
        }
        q = q.key_condition_expression(format!("#pk = :pk{range}"));
        if plan.in_index && plan.filtered {
            let mut conditions = Vec::new();
            if let Some(st) = f.status {
                conditions.push("#st = :st");
                q = q
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(st.as_str()));
            }
            if let Some(p) = &f.provider {
                conditions.push("#pr = :pr");
                q = q
                    .expression_attribute_names("#pr", "provider")
                    .expression_attribute_values(":pr", s(p.as_str()));
            }
            q = q.filter_expression(conditions.join(" AND "));
        }
        let out = q.send().await.map_err(read_error)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }
}

fn position(entry: &Item) -> StoreResult<Position> {
    opt_s(entry, "gsi1sk")
        .as_deref()
        .and_then(position_of)
        .ok_or_else(|| StoreError::Corrupt("bad listing index key".into()))
}

#[async_trait]
impl Listing for DynamoStore {
    async fn list_sessions(
        &self,
        tenant: &str,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page>> {
        let empty = Page {
            sessions: Vec::new(),
            next_cursor: None,
        };
        let plan = Plan::of(tenant, filter);
        let after = match cursor {
            None => None,
            // A cursor is only good for the listing that handed it out.
            Some(c) => match cursor::decode(tenant, filter, c) {
                Some(at) => Some(at),
                None => return Ok(None),
            },
        };
        if let (Some(lo), Some(hi)) = (&plan.lo, &plan.hi)
            && lo > hi
        {
            return Ok(Some(empty));
        }
        let mut start = match &after {
            // Only a made-up cursor lies outside its own listing's range: before it, nothing
            // follows; after it, everything in the range does.
            Some(at) if plan.below(&user_sk(at.created_ns, &at.id)) => return Ok(Some(empty)),
            Some(at) if plan.above(&user_sk(at.created_ns, &at.id)) => None,
            Some(at) => Some(plan.start_key(at)),
            None => None,
        };
        let app_filter = plan.filtered && !plan.in_index;
        // The entries the filter keeps, in order.
        let mut found: Vec<Position> = Vec::new();
        for _ in 0..ROUNDS {
            // One more than asked tells whether a next page exists.
            let want = limit + 1 - found.len();
            let round = if plan.filtered { ROUND.max(want) } else { want };
            let (entries, next) = self.listing_round(&plan, filter, round, start).await?;
            start = next;
            let positions = entries
                .iter()
                .map(position)
                .collect::<StoreResult<Vec<_>>>()?;
            if app_filter {
                // The user index holds keys only: the filtered attributes of its sessions, read
                // alone (a session's metadata and history can be many kilobytes; only those
                // the filter keeps are read whole, below).
                let keys = positions.iter().map(|p| session_key(&p.id)).collect();
                let kept: HashSet<SessionId> =
                    self.batch_get_with(keys, FILTERED_ATTRIBUTES)
                        .await?
                        .iter()
                        .filter(|item| {
                            filter.status.is_none_or(|st| {
                                opt_s(item, "status").as_deref() == Some(st.as_str())
                            }) && filter.provider.as_ref().is_none_or(|p| {
                                opt_s(item, "provider").as_deref() == Some(p.as_str())
                            })
                        })
                        .filter_map(session_id_of)
                        .collect();
                found.extend(positions.into_iter().filter(|p| kept.contains(&p.id)));
            } else {
                found.extend(positions);
            }
            if found.len() > limit || start.is_none() {
                break;
            }
        }
        // Next: after the last session answered when one beyond the page was found; else after
        // the last entry read (DynamoDB's last evaluated key: a filter may have passed over it),
        // when the read stopped with entries left to look at.
        let next_at = if found.len() > limit {
            found.truncate(limit);
            found.last().cloned()
        } else {
            start.as_ref().map(position).transpose()?
        };
        let ids: Vec<SessionId> = found.into_iter().map(|p| p.id).collect();
        let sessions = self
            .sessions_by_id_with(&ids, BatchRead::EVENTUAL)
            .await?
            .into_iter()
            .map(Stored::into_value)
            // The index may lag a status change by a moment: the session as stored decides.
            .filter(|s| s.tenant == tenant && filter.matches(s))
            .collect();
        Ok(Some(Page {
            sessions,
            next_cursor: next_at.map(|at| cursor::encode(tenant, filter, &at)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    #[test]
    fn a_plan_picks_the_index_and_knows_its_range() {
        let t = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let id = SessionId::generate();
        let sk = |s: i128| user_sk(s * 1_000_000_000, &id);
        let f = SessionFilter {
            created_from: Some(t(10)),
            created_until: Some(t(20)),
            ..SessionFilter::default()
        };
        let p = Plan::of("app", &f);
        assert_eq!(
            (p.index, p.pk.0, p.in_index),
            (TENANT_INDEX, "tenant", true)
        );
        assert!(p.below(&sk(9)) && !p.below(&sk(10)));
        assert!(!p.above(&sk(19)) && p.above(&sk(20)));
        let p = Plan::of("app", &SessionFilter::user("u"));
        assert_eq!(
            (p.index, p.pk.1.as_str(), p.in_index),
            (USER_INDEX, "USR#app#u", false)
        );
        assert!(!p.below(&sk(0)) && !p.above(&sk(99_999_999_999)));
    }
}
