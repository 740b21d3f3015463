//! The session write as one conditional UpdateItem, compiled from the new state: every attribute
//! set or removed, the history entry appended to the item's own list (no second item, so no
//! transaction), and the due filing moved only when it must.

use super::super::{Filing, HistoryMark, SessionWrite, is_scheduled};
use super::attr::*;
use super::codec::{SESSION_FIXED, SESSION_OPTIONAL, history_value, session_item};
use super::keys::{due_sk, session_due_pk};
use crate::session::MAX_HISTORY;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An update expression with its condition and placeholders.
#[derive(Default)]
pub(super) struct Expr {
    pub update: String,
    pub condition: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
    /// Where the session stands filed once the write lands (the next write's hints).
    pub filing: Filing,
}

impl super::DynamoStore {
    /// Sends a compiled session write as one conditional UpdateItem; the session as now stored.
    pub(super) async fn write_session(
        &self,
        w: &SessionWrite<'_>,
        e: Expr,
    ) -> crate::store::StoreResult<crate::store::Stored<crate::session::Session>> {
        let written = crate::store::Stored {
            value: w.session.clone(),
            version: w.version(),
            filing: e.filing,
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::keys::session_key(&w.session.id)))
            .update_expression(e.update)
            .condition_expression(e.condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .send()
            .await
            .map(|_| written)
            .map_err(super::errors::write_error)
    }
}

/// One session write, conditional on the version read. A write that postpones the next check
/// keeps the current filing (checked here: `gsi2sk <= ` the new one), since moving an index key
/// costs a delete and a put in the index; reconcile re-files a session it finds early. A wrong
/// filing hint (`Filing::due`) fails the condition, and the caller re-reads and writes again. A
/// filing already due when the write is made is moved: kept, reconcile would find the session
/// early and re-file it, a write of its own.
pub(super) fn session_update(w: &SessionWrite<'_>) -> Expr {
    let x = w.session;
    let mut e = Expr::default();
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    e.filing = w.read.filing;
    let item = session_item(x);
    for (i, k) in SESSION_OPTIONAL
        .iter()
        .filter(|k| !item.contains_key(**k))
        .enumerate()
    {
        removes.push(format!("#r{i}"));
        e.names.insert(format!("#r{i}"), (*k).to_owned());
    }
    let mut state: Vec<(String, AttributeValue)> = item
        .into_iter()
        .filter(|(k, _)| !SESSION_FIXED.contains(&k.as_str()) && k != "version")
        .collect();
    state.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (k, v)) in state.into_iter().enumerate() {
        sets.push(format!("#a{i} = :a{i}"));
        e.names.insert(format!("#a{i}"), k);
        e.values.insert(format!(":a{i}"), v);
    }
    sets.push("#v = :next".into());
    e.names.insert("#v".into(), "version".into());
    e.values.insert(":next".into(), n(w.version()));
    e.values.insert(":expected".into(), n(w.read.version));
    e.condition = "#v = :expected".into();
    if let Some(h) = w.history {
        e.names.insert("#h".into(), "h".into());
        let mark = w.read.filing.history;
        // The layout hint must be the stored one: a write never grows the history past its cap.
        e.condition.push_str(" AND size(#h) = :hlen");
        e.values.insert(":hlen".into(), n(mark.len));
        if mark.len >= MAX_HISTORY && mark.oldest_slot > 0 {
            // Full: the oldest entry after the first (creation) makes room. The version
            // condition guarantees the layout read is the one stored.
            sets.push(format!("#h[{}] = :h", mark.oldest_slot));
            e.values.insert(":h".into(), history_value(h));
            // The entries after the first rotate: the next oldest follows the one replaced.
            let next = mark.oldest_slot + 1;
            e.filing.history.oldest_slot = if next < mark.len { next } else { 1 };
        } else {
            sets.push("#h = list_append(if_not_exists(#h, :nil), :h)".into());
            e.values
                .insert(":h".into(), AttributeValue::L(vec![history_value(h)]));
            e.values
                .insert(":nil".into(), AttributeValue::L(Vec::new()));
            // Appended in version order: the oldest after the first is the second.
            e.filing.history = HistoryMark {
                len: mark.len + 1,
                oldest_slot: usize::from(mark.len >= 1),
            };
        }
    }
    e.names.insert("#dsk".into(), "gsi2sk".into());
    match (is_scheduled(x), x.next_check_at) {
        (true, Some(at)) => {
            e.values.insert(":dsk".into(), s(due_sk(at, &x.id)));
            match w.read.filing.due {
                Some(filed) if filed <= at && filed > w.at => {
                    e.condition.push_str(" AND #dsk <= :dsk")
                }
                _ => {
                    sets.push("#dpk = :dpk, #dsk = :dsk".into());
                    e.names.insert("#dpk".into(), "gsi2pk".into());
                    e.values.insert(":dpk".into(), s(session_due_pk(&x.id)));
                    e.filing.due = Some(at);
                }
            }
        }
        _ => {
            // Closed or nothing left to check: out of the (sparse) due index.
            removes.push("#dpk, #dsk".into());
            e.names.insert("#dpk".into(), "gsi2pk".into());
            e.filing.due = None;
        }
    }
    e.update = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        e.update
            .push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::super::codec::full_session;
    use super::*;
    use crate::session::{Session, Status};
    use crate::store::Stored;

    #[test]
    fn a_postponed_check_keeps_the_filing_and_an_earlier_one_moves_it() {
        let mut x = full_session();
        // A redaction keeps any session filed (its provider deletion is retried): none here.
        x.redaction = None;
        let at = x.next_check_at.unwrap();
        x.status = Status::Pending;
        let mut read = Stored::created(x.clone());
        let w = |read: &Stored<Session>, x: &Session, when| {
            session_update(&SessionWrite {
                read,
                session: x,
                history: None,
                at: when,
            })
        };
        let before = at - time::Duration::seconds(60);
        read.filing.due = Some(at - time::Duration::seconds(5));
        let kept = w(&read, &x, before);
        assert!(!kept.update.contains("#dpk"), "{}", kept.update);
        assert!(
            kept.condition.contains("#dsk <= :dsk"),
            "{}",
            kept.condition
        );
        // A filing already due when the write is made moves, though it is not later.
        let due_by_then = w(&read, &x, at);
        assert!(
            due_by_then.update.contains("#dpk = :dpk, #dsk = :dsk"),
            "{}",
            due_by_then.update
        );
        read.filing.due = Some(at + time::Duration::seconds(5));
        let moved = w(&read, &x, before);
        assert!(
            moved.update.contains("#dpk = :dpk, #dsk = :dsk"),
            "{}",
            moved.update
        );
        // A decided session with an open reason to re-read stays filed; a final one leaves.
        x.status = Status::Verified;
        let decided = w(&read, &x, before);
        assert!(
            !decided.update.contains("REMOVE #dpk"),
            "{}",
            decided.update
        );
        x.status = Status::Canceled;
        let closed = w(&read, &x, before);
        assert!(closed.update.contains("REMOVE") && closed.update.contains("#dpk, #dsk"));
    }
}
