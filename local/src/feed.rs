//! What the table's stream and Lambda's event source mapping do in AWS, on localhost: committed
//! changes read in order and handed to the same `notify` code as the deployed function. With
//! DynamoDB Local, the table's real stream through the Streams API, each batch as the Lambda
//! event AWS would send (so the decoding is the deployed one too); with the memory store, its
//! log of changes. A batch that reports a failure is read again from the failed record.

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use base64::Engine;
use idv::App;
use idv::events::notify;
use idv::store::MemoryStore;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub enum Feed {
    Memory {
        store: Arc<MemoryStore>,
        seen: usize,
    },
    Dynamo {
        client: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        shards: BTreeMap<String, Shard>,
    },
}

/// Where the feed stands in one shard of the stream.
#[derive(Default)]
pub struct Shard {
    /// Where to read next (`None` with `closed`: read to its end).
    iterator: Option<String>,
    /// The last record handed over: an expired iterator is renewed after it.
    last: Option<String>,
    closed: bool,
}

/// What one pump did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pumped {
    /// Changes read (or stream records).
    pub records: usize,
    /// Batches that reported a failed record (read again next time).
    pub failed_batches: usize,
}

impl Feed {
    /// Reads everything committed since the last pump and notifies it.
    pub async fn pump(&mut self, app: &Arc<App>) -> Result<Pumped, String> {
        match self {
            Feed::Memory { store, seen } => {
                let (changes, next) = store.changes_after(*seen);
                let mut out = Pumped {
                    records: changes.len(),
                    ..Pumped::default()
                };
                match notify::on_changes(app, &changes).await {
                    Ok(_) => *seen = next,
                    Err(stopped) => {
                        *seen += stopped.index;
                        out.failed_batches = 1;
                    }
                }
                Ok(out)
            }
            Feed::Dynamo {
                client,
                stream_arn,
                shards,
            } => pump_stream(client, stream_arn, shards, app).await,
        }
    }
}

async fn pump_stream(
    client: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    shards: &mut BTreeMap<String, Shard>,
    app: &Arc<App>,
) -> Result<Pumped, String> {
    let described = client
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .map_err(|e| format!("describe stream: {e}"))?;
    for shard in described
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default()
    {
        if let Some(id) = shard.shard_id {
            shards.entry(id).or_default();
        }
    }
    let mut out = Pumped::default();
    for (id, shard) in shards.iter_mut().filter(|(_, s)| !s.closed) {
        loop {
            let it = match shard.iterator.take() {
                Some(it) => it,
                None => {
                    let (kind, seq) = match &shard.last {
                        None => (ShardIteratorType::TrimHorizon, None),
                        Some(seq) => (ShardIteratorType::AfterSequenceNumber, Some(seq.clone())),
                    };
                    iterator(client, arn, id, kind, seq).await?
                }
            };
            let got = match client
                .get_records()
                .shard_iterator(it)
                .limit(100)
                .send()
                .await
            {
                Ok(got) => got,
                // An iterator lives 15 minutes: renewed after the last record on the next pump.
                Err(e) => return Err(format!("get records: {e}")),
            };
            let records = got.records.unwrap_or_default();
            let next = got.next_shard_iterator;
            if records.is_empty() {
                shard.closed = next.is_none();
                shard.iterator = next;
                break;
            }
            out.records += records.len();
            let event = json!({"Records": records.iter().map(lambda_record).collect::<Vec<_>>()});
            let answer = notify::on_stream_event(app, &event).await;
            match answer["batchItemFailures"][0]["itemIdentifier"].as_str() {
                None => {
                    shard.last = records
                        .last()
                        .and_then(|r| r.dynamodb.as_ref())
                        .and_then(|d| d.sequence_number.clone());
                    shard.iterator = next;
                }
                Some(failed) => {
                    // Lambda retries from the failed record; so does this, on the next pump.
                    out.failed_batches += 1;
                    shard.iterator = Some(
                        iterator(
                            client,
                            arn,
                            id,
                            ShardIteratorType::AtSequenceNumber,
                            Some(failed.to_owned()),
                        )
                        .await?,
                    );
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

async fn iterator(
    client: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<String>,
) -> Result<String, String> {
    client
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_sequence_number(seq)
        .send()
        .await
        .map_err(|e| format!("shard iterator: {e}"))?
        .shard_iterator
        .ok_or_else(|| "no shard iterator".to_owned())
}

/// A Streams API record as the Lambda event's record (the shape `notify` reads in AWS).
fn lambda_record(r: &aws_sdk_dynamodbstreams::types::Record) -> Value {
    let d = r.dynamodb.as_ref();
    let image = d
        .and_then(|d| d.new_image.as_ref())
        .map(|img| Value::Object(img.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()));
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|n| n.as_str()),
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "NewImage": image,
            "SequenceNumber": d.and_then(|d| d.sequence_number.clone()),
            "StreamViewType": "NEW_IMAGE",
        },
    })
}

/// An attribute value as DynamoDB's JSON.
fn to_json(v: &AttributeValue) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::B(b) => json!({"B": b64(b.as_ref())}),
        AttributeValue::Ss(l) => json!({"SS": l}),
        AttributeValue::Ns(l) => json!({"NS": l}),
        AttributeValue::Bs(l) => {
            json!({"BS": l.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::L(l) => json!({"L": l.iter().map(to_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<Map<_, _>>()})
        }
        _ => Value::Null,
    }
}
