//! When scheduled reconciliation looks at a session again. Providers that send no webhooks
//! (`Polling::Pull`) are polled: first after 5 s, then doubling up to 60 s, so that thousands of
//! open sessions do not flood a provider. Providers that push (`Polling::Push`) are read when
//! their webhook is overdue: after 10 minutes without news, then doubling up to 6 hours, so that a
//! lost or never-sent webhook still ends in the provider's state. No I/O here.

use super::model::{Session, Status};
use time::{Duration, OffsetDateTime};

/// How a provider tells the gateway of news: its adapter says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polling {
    /// Only a read of its API tells (no webhooks): reconcile polls its open sessions.
    Pull,
    /// Its webhooks say when to read: reconcile reads a session whose webhook is overdue.
    Push,
}

/// The first check's delay; each later one doubles, up to `MAX_DELAY`.
pub const FIRST_DELAY: Duration = Duration::seconds(5);
pub const MAX_DELAY: Duration = Duration::seconds(60);
/// How long a push provider's open session may go without news before reconcile reads it.
pub const PUSH_FIRST_DELAY: Duration = Duration::minutes(10);
pub const PUSH_MAX_DELAY: Duration = Duration::hours(6);

/// Delay before check number `attempt` (1-based): 5 s, 10 s, 20 s, 40 s, then 60 s.
pub fn delay(attempt: u32) -> Duration {
    let doubled = FIRST_DELAY * 2_i32.pow(attempt.saturating_sub(1).min(4));
    doubled.min(MAX_DELAY)
}

/// Delay before an overdue-webhook check number `attempt` (1-based): 10 min doubling to 6 h.
pub fn push_delay(attempt: u32) -> Duration {
    let doubled = PUSH_FIRST_DELAY * 2_i32.pow(attempt.saturating_sub(1).min(6));
    doubled.min(PUSH_MAX_DELAY)
}

/// The delay before check `attempt` of a session of a provider that polls so.
pub fn delay_for(polling: Polling, attempt: u32) -> Duration {
    match polling {
        Polling::Pull => delay(attempt),
        Polling::Push => push_delay(attempt),
    }
}

/// The first check of a new session: soon for a pull provider, when its webhook would be overdue
/// for a push provider, and never after its deadline.
pub fn first_check(session: &mut Session, polling: Polling, now: OffsetDateTime) {
    session.check_attempts = 1;
    session.next_check_at = Some(cap(now + delay_for(polling, 1), session.expires_at));
}

/// The next check after one that learnt nothing new (e.g. nothing to read yet): one step further
/// back, never after the deadline.
pub fn back_off(session: &mut Session, polling: Polling, now: OffsetDateTime) {
    session.check_attempts = session.check_attempts.saturating_add(1);
    session.next_check_at = Some(cap(
        now + delay_for(polling, session.check_attempts),
        session.expires_at,
    ));
}

/// Delays between re-reads of a session whose provider's answers settle nothing, or whose reads
/// keep failing: a minute doubling to six hours, so that such sessions never crowd out the
/// others nor hammer a provider that keeps failing.
pub const RECHECK_FIRST_DELAY: Duration = Duration::minutes(1);
pub const RECHECK_MAX_DELAY: Duration = Duration::hours(6);

/// Delay before re-read number `attempt` (1-based) of a session with an open reason to re-read.
pub fn recheck_delay(attempt: u32) -> Duration {
    let doubled = RECHECK_FIRST_DELAY * 2_i32.pow(attempt.saturating_sub(1).min(9));
    doubled.min(RECHECK_MAX_DELAY)
}

/// The next read of a session whose provider answered nothing usable (an unclear answer): one
/// step further back. Decided sessions too: that answer is their open reason to re-read.
pub fn recheck(session: &mut Session, now: OffsetDateTime) {
    session.check_attempts = session.check_attempts.saturating_add(1);
    let at = now + recheck_delay(session.check_attempts);
    session.next_check_at = Some(if session.status.is_terminal() {
        at
    } else {
        cap(at, session.expires_at)
    });
}

/// The next check of a session whose read failed (the provider or the store was down, or
/// answered what the gateway cannot use): at least as far back as an unchanged read, and further
/// back with every failure in a row, so that failing sessions never starve the others.
pub fn after_failure(session: &mut Session, polling: Polling, now: OffsetDateTime) {
    session.check_attempts = session.check_attempts.saturating_add(1);
    let n = session.check_attempts;
    let at = now + delay_for(polling, n).max(recheck_delay(n));
    session.next_check_at = Some(if session.status.is_terminal() {
        at
    } else {
        cap(at, session.expires_at)
    });
}

/// Updates the schedule of `next` (the state about to be written over a session that had
/// `previous` status). `read` says whether the provider was just read for it.
pub fn after_write(
    next: &mut Session,
    polling: Polling,
    previous: Status,
    read: bool,
    now: OffsetDateTime,
) {
    if next.status.is_terminal() {
        if next.unclear.is_none() || next.status.is_final() {
            // Nothing left to check: the item leaves the due index.
            next.next_check_at = None;
            next.check_attempts = 0;
        }
        // Else a decided session with an open reason to re-read keeps its recheck.
        return;
    }
    if read {
        // A change means the user is active: look again soon. Otherwise back off further. For a
        // push provider a read (a webhook's or ours) is news: the overdue clock starts again.
        next.check_attempts = if next.status != previous {
            1
        } else {
            next.check_attempts.saturating_add(1)
        };
        next.next_check_at = Some(cap(
            now + delay_for(polling, next.check_attempts),
            next.expires_at,
        ));
    } else if next.next_check_at.is_none() {
        // An open session always has a next check (e.g. one stored before schedules existed).
        first_check(next, polling, now);
    }
}

/// Never later than the deadline: expiry is a check too.
fn cap(at: OffsetDateTime, deadline: Option<OffsetDateTime>) -> OffsetDateTime {
    match deadline {
        Some(d) if d < at => d,
        _ => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Polling::{Pull, Push};

    fn session() -> Session {
        Session::new(
            "t",
            crate::session::Provider::named("p"),
            "u",
            OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
        )
    }

    #[test]
    fn checks_back_off_from_5_to_60_seconds() {
        let secs: Vec<i64> = (1..=7).map(|a| delay(a).whole_seconds()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
    }

    #[test]
    fn unchanged_reads_back_off_and_a_change_starts_over() {
        let (mut s, p) = (session(), Pull);
        let now = s.created_at;
        first_check(&mut s, p, now);
        assert_eq!(s.next_check_at, Some(now + Duration::seconds(5)));
        after_write(&mut s, p, Status::Created, true, now);
        assert_eq!(s.next_check_at, Some(now + Duration::seconds(10)));
        s.status = Status::Pending;
        after_write(&mut s, p, Status::Created, true, now);
        assert_eq!(s.check_attempts, 1);
        assert_eq!(s.next_check_at, Some(now + Duration::seconds(5)));
    }

    #[test]
    fn the_deadline_caps_the_next_check_and_terminal_sessions_have_none() {
        let (mut s, p) = (session(), Pull);
        let now = s.created_at;
        s.expires_at = Some(now + Duration::seconds(2));
        first_check(&mut s, p, now);
        assert_eq!(s.next_check_at, s.expires_at);
        s.status = Status::Verified;
        after_write(&mut s, p, Status::Pending, true, now);
        assert_eq!((s.next_check_at, s.check_attempts), (None, 0));
    }

    #[test]
    fn push_providers_are_read_when_their_webhook_is_overdue() {
        let (mut s, p) = (session(), Push);
        let now = s.created_at;
        first_check(&mut s, p, now);
        assert_eq!(s.next_check_at, Some(now + Duration::minutes(10)));
        // A read that changed nothing: further back, up to six hours.
        after_write(&mut s, p, Status::Created, true, now);
        assert_eq!(s.next_check_at, Some(now + Duration::minutes(20)));
        let mins: Vec<i64> = (1..=9).map(|a| push_delay(a).whole_minutes()).collect();
        assert_eq!(mins, [10, 20, 40, 80, 160, 320, 360, 360, 360]);
        // News (a status change) starts the overdue clock again.
        s.status = Status::Processing;
        after_write(&mut s, p, Status::Created, true, now);
        assert_eq!(s.next_check_at, Some(now + Duration::minutes(10)));
    }

    #[test]
    fn rechecks_and_failures_back_off_to_six_hours_and_decided_sessions_keep_them() {
        let mins: Vec<i64> = (1..=11).map(|a| recheck_delay(a).whole_minutes()).collect();
        assert_eq!(mins, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
        let (mut s, p) = (session(), Push);
        let now = s.created_at;
        s.status = Status::Verified;
        s.expires_at = Some(now - Duration::hours(1));
        s.unclear = Some("not_found".into());
        recheck(&mut s, now);
        assert_eq!(
            s.next_check_at,
            Some(now + Duration::minutes(1)),
            "no cap by a past deadline"
        );
        after_write(&mut s, p, Status::Verified, true, now);
        assert_eq!(
            s.next_check_at,
            Some(now + Duration::minutes(1)),
            "kept while unclear"
        );
        s.unclear = None;
        after_write(&mut s, p, Status::Verified, true, now);
        assert_eq!(s.next_check_at, None);
        // A failing pull session goes further back than its polling schedule.
        let (mut n, np) = (session(), Pull);
        for _ in 0..4 {
            after_failure(&mut n, np, now);
        }
        assert_eq!(n.next_check_at, Some(now + Duration::minutes(8)));
    }

    #[test]
    fn a_check_with_nothing_to_read_backs_off_too() {
        let (mut s, p) = (session(), Push);
        let now = s.created_at;
        first_check(&mut s, p, now);
        back_off(&mut s, p, now);
        assert_eq!(s.next_check_at, Some(now + Duration::minutes(20)));
        let (mut n, np) = (session(), Pull);
        first_check(&mut n, np, now);
        back_off(&mut n, np, now);
        assert_eq!(n.next_check_at, Some(now + Duration::seconds(10)));
    }
}
