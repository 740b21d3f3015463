//! The table's stream, read back as the store's changes: a record's new image (DynamoDB's JSON,
//! as a Lambda event or the Streams API carries it) decoded by the same codec that wrote it.
//! Only sessions, identity events and reauthentications are changes; everything else in the
//! table (refs, deliveries, events themselves) is bookkeeping and decodes to `None`.

use super::super::{Change, StoreError, StoreResult};
use super::attr::{Item, opt_s};
use super::codec::{history_from, identity_event_from, reauth_from, session_from};
use super::keys::{IDENTITY_EVENT_PREFIX, SESSION_SK};
use crate::session::SessionId;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use serde_json::Value;

/// One attribute value from DynamoDB's JSON (`{"S": "..."}`, `{"N": "1"}`, `{"M": {...}}`, ...).
pub fn attribute_from_json(v: &Value) -> Option<AttributeValue> {
    let (tag, inner) = v.as_object()?.iter().next()?;
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok();
    Some(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "B" => AttributeValue::B(Blob::new(b64(inner.as_str()?)?)),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "BS" => AttributeValue::Bs(
            strings(inner)?
                .iter()
                .map(|s| b64(s).map(Blob::new))
                .collect::<Option<_>>()?,
        ),
        "L" => AttributeValue::L(
            inner
                .as_array()?
                .iter()
                .map(attribute_from_json)
                .collect::<Option<_>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        _ => return None,
    })
}

/// An item (an image) from DynamoDB's JSON.
pub fn item_from_json(v: &Value) -> Option<Item> {
    v.as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), attribute_from_json(v)?)))
        .collect()
}

/// What one stream record says was committed. `inserted`: the record is an `INSERT` (an item
/// new to the table); identity events and reauthentications count only then (written again
/// unchanged they make no record; changed, they are not new).
pub fn change_of(inserted: bool, image: &Item) -> StoreResult<Option<Change>> {
    let (Some(pk), Some(sk)) = (opt_s(image, "pk"), opt_s(image, "sk")) else {
        return Ok(None);
    };
    if let Some(id) = pk.strip_prefix("SES#") {
        let id =
            SessionId::parse(id).ok_or_else(|| StoreError::Corrupt("bad session id".into()))?;
        if sk == SESSION_SK {
            let session = session_from(image)?;
            let entry = match image.get("h") {
                Some(AttributeValue::L(entries)) => entries
                    .iter()
                    .filter_map(|e| e.as_m().ok())
                    .map(|m| history_from(&id, m))
                    .collect::<StoreResult<Vec<_>>>()?
                    .into_iter()
                    .find(|h| h.version == session.version),
                _ => None,
            };
            return Ok(Some(Change::Session { session, entry }));
        }
        if sk.starts_with(IDENTITY_EVENT_PREFIX) && inserted {
            return identity_event_from(&id, image).map(|e| Some(Change::IdentityEvent(e)));
        }
        return Ok(None);
    }
    if pk.starts_with("RA#") && inserted {
        let (Some(tenant), Some(user)) = (opt_s(image, "tenant"), opt_s(image, "user_id")) else {
            return Err(StoreError::Corrupt(
                "reauthentication without its owner".into(),
            ));
        };
        return reauth_from(&tenant, &user, image).map(|r| Some(Change::Reauthentication(r)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dynamodb_json_reads_every_type() {
        let item = item_from_json(&json!({
            "s": {"S": "x"}, "n": {"N": "1.5"}, "b": {"B": "AAE="}, "t": {"BOOL": true},
            "z": {"NULL": true}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1"]},
            "l": {"L": [{"S": "y"}, {"M": {"k": {"N": "2"}}}]}
        }))
        .unwrap();
        assert_eq!(item["s"], AttributeValue::S("x".into()));
        assert_eq!(item["b"], AttributeValue::B(Blob::new(vec![0, 1])));
        assert_eq!(item["l"].as_l().unwrap().len(), 2);
        assert!(item_from_json(&json!({"x": {"Q": 1}})).is_none());
        assert!(item_from_json(&json!({"x": "plain"})).is_none());
    }

    #[test]
    fn bookkeeping_items_are_no_change() {
        let image = item_from_json(&json!({"pk": {"S": "REF#x"}, "sk": {"S": "REF"}})).unwrap();
        assert!(change_of(true, &image).unwrap().is_none());
        let event = item_from_json(&json!({"pk": {"S": "EVT#t"}, "sk": {"S": "evt_x"}})).unwrap();
        assert!(change_of(true, &event).unwrap().is_none());
    }
}
