//! Capacity units as DynamoDB bills them, read from its answers: an SDK interceptor asks every
//! request for `ReturnConsumedCapacity: INDEXES` (whatever code path sent it) and adds up the
//! `ConsumedCapacity` of each answer, by operation, and the share of each index. A write refused by its condition answers
//! no figure; AWS still bills it (at least 1 WCU), so those are counted apart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Units {
    /// Capacity units DynamoDB reported, by operation.
    pub by_operation: BTreeMap<String, f64>,
    /// Requests answered with an error (e.g. a failed condition): billed, but not reported.
    pub refused: u64,
    /// Of those units, what each global secondary index consumed (`gsi1`, ...).
    pub by_index: BTreeMap<String, f64>,
}

impl Units {
    pub fn total(&self) -> f64 {
        self.by_operation.values().sum()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConsumedCapacity(Arc<Mutex<Units>>);

impl ConsumedCapacity {
    /// A DynamoDB Local client whose every operation is counted (`DynamoCalls`) and measured.
    pub async fn client() -> (
        aws_sdk_dynamodb::Client,
        crate::DynamoCalls,
        ConsumedCapacity,
    ) {
        let calls = crate::DynamoCalls::default();
        let units = ConsumedCapacity::default();
        let base = crate::dynamo_client().await;
        let conf = base
            .config()
            .to_builder()
            .interceptor(calls.clone())
            .interceptor(units.clone())
            .build();
        (aws_sdk_dynamodb::Client::from_conf(conf), calls, units)
    }

    pub fn units(&self) -> Units {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Units::default();
    }
}

/// The operation the orchestrator is running (`GetItem`, `TransactWriteItems`, ...).
fn operation(cfg: &aws_sdk_dynamodb::config::ConfigBag) -> String {
    cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
        .map_or_else(|| "unknown".to_owned(), |m| m.name().to_owned())
}

impl aws_sdk_dynamodb::config::Intercept for ConsumedCapacity {
    fn name(&self) -> &'static str {
        "ConsumedCapacity"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request_mut();
        let Some(bytes) = request.body().bytes() else {
            return Ok(());
        };
        let mut input: serde_json::Value = serde_json::from_slice(bytes)?;
        if let Some(o) = input.as_object_mut() {
            o.entry("ReturnConsumedCapacity")
                .or_insert("INDEXES".into());
        }
        let body = serde_json::to_vec(&input)?;
        request
            .headers_mut()
            .insert("content-length", body.len().to_string());
        *request.body_mut() = body.into();
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Some(response) = context.response() else {
            return Ok(());
        };
        let op = operation(cfg);
        let mut units = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !response.status().is_success() {
            units.refused += 1;
            return Ok(());
        }
        let answer: serde_json::Value = response
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        // One object (single-item operations) or one per table (transactions, batches).
        let all = match &answer["ConsumedCapacity"] {
            serde_json::Value::Array(a) => a.iter().collect(),
            c => vec![c],
        };
        let consumed: f64 = all.iter().filter_map(|c| c["CapacityUnits"].as_f64()).sum();
        *units.by_operation.entry(op).or_default() += consumed;
        for c in all {
            if let Some(indexes) = c["GlobalSecondaryIndexes"].as_object() {
                for (name, i) in indexes {
                    *units.by_index.entry(name.clone()).or_default() +=
                        i["CapacityUnits"].as_f64().unwrap_or(0.0);
                }
            }
        }
        Ok(())
    }
}
