//! Refs: one item per provider identity (`REF#<key>` / `REF`) naming its session; claimed with a
//! conditional put (where it points now, or nowhere), read alone or in one batch.

use super::super::{ProviderRef, RefClaim, Refs, StoreResult};
use super::DynamoStore;
use super::attr::s;
use super::codec::ref_from;
use super::errors::write_error;
use super::keys::ref_key;
use crate::session::Session;
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};

#[async_trait]
impl Refs for DynamoStore {
    async fn get_ref(&self, key: &str) -> StoreResult<Option<ProviderRef>> {
        let item = self.get(ref_key(key)).await?;
        item.as_ref().map(ref_from).transpose()
    }

    async fn get_refs(&self, keys: &[String]) -> StoreResult<Vec<Option<ProviderRef>>> {
        match keys {
            [] => return Ok(Vec::new()),
            // One key: a plain read (a batch of one costs the same and says less).
            [one] => return Ok(vec![self.get_ref(one).await?]),
            _ => {}
        }
        // BatchGetItem refuses a key asked twice.
        let unique: BTreeSet<&String> = keys.iter().collect();
        let wanted = unique.into_iter().map(|k| ref_key(k)).collect();
        let mut found: HashMap<String, ProviderRef> = HashMap::new();
        for item in self.batch_get(wanted).await? {
            let r = ref_from(&item)?;
            found.insert(r.key.clone(), r);
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn claim_ref(&self, c: &RefClaim, session: &Session) -> StoreResult<()> {
        let session_id = &session.id;
        let item = self.claimed_ref(c, session);
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_values(":sid", s(session_id.as_str()));
        req = match &c.replaces {
            None => req.condition_expression("attribute_not_exists(pk) OR session_id = :sid"),
            Some(old) => req
                .condition_expression(
                    "attribute_not_exists(pk) OR session_id = :sid OR session_id = :old",
                )
                .expression_attribute_values(":old", s(old.as_str())),
        };
        req.send().await.map(|_| ()).map_err(write_error)
    }
}
