//! `cargo run -p idv-local`: every route of template.yaml on http://127.0.0.1:8080 with the
//! in-memory store and the provider simulators, and the demo app at `/`. See `--help`.

use idv_local::{Options, StoreChoice};

const HELP: &str = "idv-local: the gateway on localhost, with provider simulators and a demo app at /

USAGE: cargo run -p idv-local -- [--port N] [--dynamodb-endpoint URL [--table NAME]] [--api-key KEY]

  --port N                 listen on 127.0.0.1:N (default 8080; 0 = any free port)
  --dynamodb-endpoint URL  keep state in DynamoDB (e.g. DynamoDB Local) instead of memory
                           (also IDV_DYNAMODB_ENDPOINT)
  --table NAME             table to use/create there (default idv-local)
  --api-key KEY            accept this API key (default: a new random one, printed)
  --reconcile-every SECS   run the scheduled reconciliation every SECS seconds (default 5; 0 = never;
                           also IDV_LOCAL_RECONCILE_SECONDS), as EventBridge does every minute
  --nevis-processing-ms MS how long the Nevis simulator takes to decide a finished capture (3000)
  --secrets-file PATH      the gateway secret as JSON (same shape as in Secrets Manager; also
                           IDV_SECRETS_FILE): its API-key digests and Authento and Prove
                           credentials are used instead of generated ones

Settings of the functions (IDV_REFRESH_AFTER_SECONDS, IDV_TOKEN_TTL_SECONDS, ...) are read from the
environment as in Lambda.";

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        port: 8080,
        ..Options::default()
    };
    let mut endpoint = std::env::var("IDV_DYNAMODB_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    let mut table = "idv-local".to_owned();
    let mut reconcile_secs: u64 = match std::env::var("IDV_LOCAL_RECONCILE_SECONDS") {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| "IDV_LOCAL_RECONCILE_SECONDS must be a number")?,
        Err(_) => 5,
    };
    opts.nevis_processing_ms = 3000;
    opts.secrets_file = std::env::var("IDV_SECRETS_FILE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Into::into);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                opts.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port must be a number")?
            }
            "--dynamodb-endpoint" => endpoint = Some(value("--dynamodb-endpoint")?),
            "--table" => table = value("--table")?,
            "--reconcile-every" => {
                reconcile_secs = value("--reconcile-every")?
                    .parse()
                    .map_err(|_| "--reconcile-every must be a number")?
            }
            "--nevis-processing-ms" => {
                opts.nevis_processing_ms = value("--nevis-processing-ms")?
                    .parse()
                    .map_err(|_| "--nevis-processing-ms must be a number")?
            }
            "--secrets-file" => opts.secrets_file = Some(value("--secrets-file")?.into()),
            "--api-key" => opts.api_keys = vec![("local-app".into(), value("--api-key")?)],
            "-h" | "--help" => return Err(HELP.to_owned()),
            other => return Err(format!("unknown argument {other}\n\n{HELP}")),
        }
    }
    opts.reconcile_every =
        (reconcile_secs > 0).then(|| std::time::Duration::from_secs(reconcile_secs));
    // Outbound events arrive within a second, as the table's stream brings them in AWS.
    opts.notify_every = Some(std::time::Duration::from_secs(1));
    if let Some(endpoint) = endpoint {
        opts.store = StoreChoice::DynamoDb { endpoint, table };
    }
    Ok(opts)
}

#[tokio::main]
async fn main() {
    idv::logging::init();
    let opts = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let store = match &opts.store {
        StoreChoice::Memory => "in-memory store".to_owned(),
        StoreChoice::DynamoDb { endpoint, table } => format!("DynamoDB {endpoint}, table {table}"),
    };
    let every = opts.reconcile_every;
    let running = match idv_local::start(opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("idv-local: {e}");
            std::process::exit(1);
        }
    };
    let base = running.base_url.clone();
    let reconcile = match every {
        Some(d) => format!("{}s", d.as_secs()),
        None => "never: disabled".into(),
    };
    let (tenant, key) = running.api_keys.first().cloned().unwrap_or_else(|| {
        (
            "(from the secrets file)".into(),
            "(one of the secrets file's keys)".into(),
        )
    });
    // Generated per start, like the others: printed so the simulator can be called directly.
    let (stripe_key, stripe_whsec) = (
        running.stripe.secret_key().to_owned(),
        running.stripe.webhook_secret(),
    );
    // Authento knows the user by its subject (unique per tenant and user), not by "user-42".
    let subject = match running.api_keys.first() {
        Some((tenant, _)) => idv::session::Subject::of(tenant, "user-42").to_string(),
        None => "<the subject: python3 scripts/subject.py TENANT user-42>".into(),
    };
    println!(
        "idv-gateway local server on {base} ({store})
  Demo app:                 {base}/  (open it in a browser: start a verification and click through)
  API key (tenant {tenant}): {key}
  Authento simulator:       {base}/sandbox/authento
  Prove simulator:          {base}/sandbox/prove (test user +12001004011 Sheilakathryn Butrimovich)
  Nevis simulator:          {base}/sandbox/nevis (reconcile runs every {reconcile})
  Passbase simulator:       {base}/sandbox/passbase
  Stripe Identity simulator: {base}/sandbox/stripe (secret key {stripe_key}, webhook secret {stripe_whsec})

Try:
  export IDV=\"{base}\" KEY=\"{key}\"
  curl -s -X POST $IDV/v1/tokens -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' \\
       -d '{{\"user_id\":\"user-42\",\"verification_type\":\"BASIC\"}}'
  # open the verify_url it returns in a browser and approve, or drive the simulator (Authento
  # knows user-42 of this tenant as {subject}):
  curl -s -X POST $IDV/sandbox/authento/control/users/{subject} -H 'Content-Type: application/json' \\
       -d '{{\"verification_type\":\"BASIC\",\"action\":\"approve\"}}'
  curl -s $IDV/v1/users/user-42/sessions -H \"Authorization: Bearer $KEY\"
  # Nevis: start a session, open client.start_url in a browser and complete the capture
  curl -s -X POST $IDV/v1/sessions -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' \
       -d '{{\"provider\":\"nevis\",\"user_id\":\"user-42\"}}'
  # Outbound events (docs/events.md): register a receiver on this machine (plain http to
  # loopback is allowed here only); every session change arrives within a second
  curl -s -X POST $IDV/v1/endpoints -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' \\
       -d '{{\"url\":\"http://127.0.0.1:9000/events\"}}'
"
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = running.wait() => {}
    }
}
