//! Attribute values in and out of items. Times are stored as Unix nanoseconds: exact, and a third
//! of an RFC 3339 string's size (the session item must stay under the 1 KB one write unit covers).

use super::super::{StoreError, StoreResult};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use time::OffsetDateTime;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub(super) fn ts(t: OffsetDateTime) -> AttributeValue {
    n(t.unix_timestamp_nanos())
}
/// A list of strings.
pub(super) fn strings(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(s).collect())
}
pub(super) fn put_opt(item: &mut Item, k: &str, v: Option<AttributeValue>) {
    if let Some(v) = v {
        item.insert(k.into(), v);
    }
}

pub(super) fn get_s<'a>(item: &'a Item, k: &str) -> StoreResult<&'a str> {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("missing string attribute {k}")))
}
pub(super) fn opt_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}
pub(super) fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> StoreResult<T> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("missing number attribute {k}")))
}
pub(super) fn opt_n<T: std::str::FromStr>(item: &Item, k: &str) -> Option<T> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
/// A list of strings (what is not a string is left out).
pub(super) fn get_strings(item: &Item, k: &str) -> Vec<String> {
    match item.get(k) {
        Some(AttributeValue::L(l)) => l.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    }
}
pub(super) fn from_nanos(k: &str, nanos: i128) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| StoreError::Corrupt(format!("bad time {k}: {e}")))
}
pub(super) fn get_ts(item: &Item, k: &str) -> StoreResult<OffsetDateTime> {
    from_nanos(k, get_n(item, k)?)
}
pub(super) fn opt_ts(item: &Item, k: &str) -> StoreResult<Option<OffsetDateTime>> {
    opt_n::<i128>(item, k).map(|v| from_nanos(k, v)).transpose()
}
