//! Shared pieces of provider clients: jittered backoff and `Retry-After` parsing.

use rand::Rng;
use std::time::Duration;

/// Backoff before retry `attempt` (1-based): 100 ms doubling, with full jitter, capped at 1 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1 << attempt.min(4)).min(1000);
    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs; treated as absent).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
