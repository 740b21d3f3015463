//! Cold-start baseline 2: only the AWS work every gateway function cannot avoid. At init: the SDK
//! configuration, a DynamoDB and a Secrets Manager client, one secret read; per request: one
//! GetItem. Same environment as the functions (`IDV_TABLE_NAME`, `IDV_SECRET_ID`).

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("IDV_TABLE_NAME")?;
    let secret_id = std::env::var("IDV_SECRET_ID")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    let secret = sm.get_secret_value().secret_id(secret_id).send().await?;
    let secret_len = secret.secret_string().map_or(0, str::len);
    let (ddb, table) = (&ddb, table.as_str());
    lambda_http::run(service_fn(move |_req: Request| async move {
        let item = ddb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("BENCH".into()))
            .key("sk", AttributeValue::S("BENCH".into()))
            .send()
            .await?;
        let body = format!(
            "{{\"found\":{},\"secret_len\":{secret_len}}}",
            item.item.is_some()
        );
        Ok::<_, Error>(Response::new(Body::Text(body)))
    }))
    .await
}
