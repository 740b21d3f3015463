//! The table's definition, the same as `template.yaml`'s (for DynamoDB Local and tests).

use super::keys::{DUE_INDEX, TENANT_INDEX, USER_INDEX};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};

/// Why a table was not created.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    /// A table of that name exists already (e.g. the local server started again).
    #[error("the table exists already")]
    Exists,
    #[error("creating the table: {0}")]
    Failed(String),
}

/// Creates the table: keys `pk`/`sk`, and the indexes `gsi1` (a user's sessions) and `gsi2` (the
/// due index), keys `<name>pk` / `<name>sk`, projecting keys only: a write that does not move an
/// index key then writes nothing to the index, and the sessions an index names are read with
/// one BatchGetItem. `gsi3` (a tenant's sessions) is keyed by the session's `tenant` and its
/// `gsi1sk`, and projects `status` and `provider` besides: a listing filters on them in the
/// index, at the price of one index write when a session's status changes (docs/operate.md).
pub async fn create_table(client: &Client, table: &str) -> Result<(), SchemaError> {
    let failed = |e: aws_sdk_dynamodb::error::BuildError| SchemaError::Failed(e.to_string());
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(failed)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(failed)
    };
    let index = |name: &str| -> Result<GlobalSecondaryIndex, SchemaError> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash)?)
            .key_schema(key(&format!("{name}sk"), KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(failed)
    };
    let tenant_index = GlobalSecondaryIndex::builder()
        .index_name(TENANT_INDEX)
        .key_schema(key("tenant", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("status")
                .non_key_attributes("provider")
                .build(),
        )
        .build()
        .map_err(failed)?;
    let out = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .attribute_definitions(attr("gsi2pk")?)
        .attribute_definitions(attr("gsi2sk")?)
        .attribute_definitions(attr("tenant")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index(USER_INDEX)?)
        .global_secondary_indexes(index(DUE_INDEX)?)
        .global_secondary_indexes(tenant_index)
        .stream_specification(stream()?)
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceInUseException") => Err(SchemaError::Exists),
        Err(e) => Err(SchemaError::Failed(format!("{}", DisplayErrorContext(e)))),
    }
}

/// The table's stream: new images only (outbound events are derived from what was committed).
fn stream() -> Result<StreamSpecification, SchemaError> {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewImage)
        .build()
        .map_err(|e| SchemaError::Failed(e.to_string()))
}

/// The table's stream ARN, switching the stream on if it is off (a table made before outbound
/// events).
pub async fn ensure_stream(client: &Client, table: &str) -> Result<String, SchemaError> {
    let failed = |e: String| SchemaError::Failed(e);
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| failed(format!("{}", DisplayErrorContext(e))))?;
    if let Some(arn) = described
        .table
        .as_ref()
        .filter(|t| {
            t.stream_specification
                .as_ref()
                .is_some_and(|s| s.stream_enabled)
        })
        .and_then(|t| t.latest_stream_arn.clone())
    {
        return Ok(arn);
    }
    let updated = client
        .update_table()
        .table_name(table)
        .stream_specification(stream()?)
        .send()
        .await
        .map_err(|e| failed(format!("{}", DisplayErrorContext(e))))?;
    updated
        .table_description
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| failed("no stream after switching it on".into()))
}
