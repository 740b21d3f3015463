//! When a failed delivery is tried again: Standard Webhooks' example schedule, cut where it has
//! spanned more than a day (eight attempts over 27 h 35 min), each delay with ±10 % jitter so
//! that an endpoint back from an outage is not hit by every retry in the same second. A
//! `Retry-After` longer than the scheduled delay is honoured (up to a day).

use std::time::Duration;

/// The delay after the n-th failed attempt of a round (1-based): after the last, none.
pub const DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts of a round: the first, then one after each delay.
pub const ATTEMPTS: u32 = DELAYS.len() as u32 + 1;

/// How much a delay may move either way.
pub const JITTER: f64 = 0.1;

/// How long an endpoint may fail every attempt before it is disabled (`failing`).
pub const DISABLE_AFTER: time::Duration = time::Duration::days(5);

/// The delay before the next attempt after `failed` attempts of this round, with `jitter` in
/// [0, 1) (0.5: none). `None`: the schedule has run out.
pub fn next_delay(failed: u32, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
    let base = *DELAYS.get(usize::try_from(failed.checked_sub(1)?).ok()?)?;
    let factor = 1.0 + JITTER * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
    let jittered = base.mul_f64(factor);
    let floor = retry_after.map_or(Duration::ZERO, |r| r.min(Duration::from_secs(86_400)));
    Some(jittered.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_more_than_a_day_in_eight_attempts() {
        let total: Duration = (1..ATTEMPTS)
            .map(|n| next_delay(n, None, 0.5).unwrap())
            .sum();
        assert_eq!(total, Duration::from_secs(27 * 3600 + 35 * 60 + 5));
        assert!(total > Duration::from_secs(86_400));
        assert_eq!(next_delay(ATTEMPTS, None, 0.5), None);
        assert_eq!(next_delay(0, None, 0.5), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_retry_after_can_only_lengthen() {
        let lo = next_delay(3, None, 0.0).unwrap();
        let hi = next_delay(3, None, 0.999_999).unwrap();
        assert_eq!(lo, Duration::from_secs(1620));
        assert!(hi <= Duration::from_secs(1980) && hi > Duration::from_secs(1979));
        let long = Some(Duration::from_secs(3600));
        assert_eq!(next_delay(1, long, 0.5), Some(Duration::from_secs(3600)));
        assert_eq!(
            next_delay(4, Some(Duration::from_secs(1)), 0.5),
            Some(DELAYS[3])
        );
        let huge = Some(Duration::from_secs(10 * 86_400));
        assert_eq!(next_delay(1, huge, 0.5), Some(Duration::from_secs(86_400)));
    }
}
