//! Logs: JSON for CloudWatch (SAM sets `LogFormat: JSON`), text locally. Never personal data or
//! secrets: handlers log ids and outcomes only.

pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(&level))
        .with_target(false);
    let result = if json {
        builder.json().without_time().try_init() // CloudWatch stamps each line itself
    } else {
        builder.try_init()
    };
    // A second init (tests, local server) keeps the first subscriber.
    let _ = result;
}

/// What gets logged at `level` (`info`, `debug`, `trace`, or a directive list): at debug/trace
/// the runtime and HTTP crates log whole events and headers (API keys, digests, provider
/// answers), so they stay at info whatever the level asked for. Tests that check what reaches
/// the logs capture through this same filter.
pub fn filter(level: &str) -> tracing_subscriber::EnvFilter {
    const CAPPED: &str = ",lambda_runtime=info,lambda_http=info,hyper=info,hyper_util=info,reqwest=info,aws_smithy_runtime=info,aws_sigv4=info,h2=info";
    tracing_subscriber::EnvFilter::try_new(format!("{}{CAPPED}", level.to_lowercase()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info{CAPPED}")))
}
