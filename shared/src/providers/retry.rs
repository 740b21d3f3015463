//! Shared pieces of provider clients: jittered backoff and `Retry-After` parsing.

use rand::Rng;
use std::time::Duration;

/// Longest `Retry-After` believed: a provider (or anything between) may say anything, and a
/// duration near `u64::MAX` seconds overflows time arithmetic (a panic; the profile aborts).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Backoff before retry `attempt` (1-based): 100 ms doubling, with full jitter, capped at 1 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1 << attempt.min(4)).min(1000);
    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
}

/// `Retry-After` in seconds, at most `MAX_RETRY_AFTER` (any longer number, however long, reads
/// as that). The HTTP-date form is rare for APIs; treated as absent.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs = v.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", v.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_saturates_and_is_clamped() {
        assert_eq!(retry_after(&header("3")), Some(Duration::from_secs(3)));
        for huge in ["18446744073709551615", "99999999999999999999999999"] {
            assert_eq!(retry_after(&header(huge)), Some(MAX_RETRY_AFTER), "{huge}");
        }
        for bad in ["-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", ""] {
            assert_eq!(retry_after(&header(bad)), None, "{bad:?}");
        }
    }
}
