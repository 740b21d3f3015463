//! Time budgets: what one invocation of each function may spend, and the guard that answers
//! before the runtime's deadline.
//!
//! An invocation that outlives its Lambda timeout is killed; API Gateway then answers its own
//! 503, which is not problem+json and carries no `Retry-After`, and whatever the function was
//! doing stops at an arbitrary point. Two things keep that from happening:
//!
//! 1. **The arithmetic** (`worst_case`): every wait an invocation can make is bounded by
//!    configuration (the secret read, each provider operation with its retries and backoffs,
//!    the reserve for the store writes that follow), and their sum stays below the function's
//!    timeout (tests/integration/deadlines.rs checks it against template.yaml).
//! 2. **The guard** (`handle_before`): whatever still runs long (a hung DynamoDB connection) is
//!    answered 503 problem+json with `Retry-After`, `ANSWER_MARGIN` before the deadline; the
//!    provider clients stop starting work `STORE_RESERVE` before that (`providers_until`).

use crate::config::Config;
use crate::http::{ApiRequest, ApiResponse, Function, handle, problem};
use crate::{App, Error};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Kept between the guard's answer and the runtime's deadline: the 503 is written and returned.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);
/// Kept after the last provider call for the store writes that follow it (one conditional write
/// is a few milliseconds; this covers SDK retries of a throttled one).
pub const STORE_RESERVE: Duration = Duration::from_millis(1500);

tokio::task_local! {
    /// When the current invocation's guard answers (absent outside `handle_before`).
    static ANSWER_BY: Instant;
}

/// Until when provider calls of the current invocation may run: the guard's moment less the
/// store reserve. `None` outside an HTTP invocation (reconcile's tasks, tests calling flows):
/// then only each operation's own budget applies.
pub fn providers_until() -> Option<Instant> {
    ANSWER_BY
        .try_with(|at| at.checked_sub(STORE_RESERVE).unwrap_or(*at))
        .ok()
}

/// Serves one request, answering 503 problem+json `ANSWER_MARGIN` before `deadline` if it is
/// still running then.
///
/// Cutting it there drops the request's future wherever it waits, which is what a crash at that
/// point would do, and the design already survives crashes: every session write is conditional
/// on the version it read, so a write either landed whole or not at all, and the next request
/// re-reads and decides again; a webhook delivery recorded but not applied is processed again
/// on redelivery. What a cut cannot undo is a provider call that was sent: that is why a call
/// that must not be repeated (Prove `/v3/verify`, `/v3/identity`, Nevis create) is only started
/// with its full timeout and the store reserve still ahead (`providers::transport`), so the cut
/// never lands between such a call and the write that records it, short of the store itself
/// hanging for longer than `STORE_RESERVE`.
pub async fn handle_before(
    app: &App,
    function: Function,
    req: ApiRequest,
    deadline: Instant,
) -> ApiResponse {
    let answer_by = deadline.checked_sub(ANSWER_MARGIN).unwrap_or(deadline);
    let work = ANSWER_BY.scope(answer_by, handle(app, function, req));
    match tokio::time::timeout_at(answer_by, work).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::error!(
                function = function.binary(),
                "request cut at its deadline (the store or a dependency hung)"
            );
            // By then provider calls have stopped (`providers_until`): what still runs is the store.
            problem::response(&Error::StoreUnavailable(
                "the request ran out of time".into(),
            ))
        }
    }
}

/// Longest invocation Lambda allows.
const LAMBDA_MAX: Duration = Duration::from_secs(900);

/// The runtime's deadline (wall clock: a Lambda context's) as a monotonic instant. One that is
/// already past or beyond Lambda's 15 minutes cannot be real (`cargo lambda watch` sends
/// 600000, i.e. 1970): then the function's own timeout from now.
pub fn instant_of(deadline: SystemTime, function: Function) -> Instant {
    let left = deadline
        .duration_since(SystemTime::now())
        .ok()
        .filter(|left| !left.is_zero() && *left <= LAMBDA_MAX)
        .unwrap_or_else(|| function_timeout(function));
    Instant::now() + left
}

/// Each function's `Timeout` in template.yaml (tests/integration/deadlines.rs keeps them equal);
/// the local server uses it where Lambda would give the invocation's deadline.
pub fn function_timeout(function: Function) -> Duration {
    if function == Function::RECONCILE || function == Function::NOTIFY {
        Duration::from_secs(60)
    } else if provider_operations(function) > 1 {
        // A start may make two provider calls in a row (Prove: its flow, then the identity).
        Duration::from_secs(15)
    } else {
        Duration::from_secs(10)
    }
}

/// Provider operations one invocation makes one after another, at most (each bounded by
/// `Config::provider_budget`, Prove's token fetch included in its operation): what the
/// providers registered for the function's routes.
pub fn provider_operations(function: Function) -> u32 {
    if function == Function::RECONCILE {
        // Reads run side by side; the last ones start before the run's budget ends.
        return 1;
    }
    let mut most = 0;
    for r in crate::providers::ALL {
        let ops = [
            // Starts (a retry is one), links and resumes (one read of the provider's id or
            // session).
            (Function::START_SESSION, r.start_operations.max(1)),
            // One refresh.
            (Function::GET_SESSION, 1),
        ]
        .into_iter()
        .chain(
            r.webhook
                .iter()
                .map(|w| (Function::named_unchecked(w.function), w.operations)),
        )
        .chain(
            r.routes
                .iter()
                .map(|e| (Function::named_unchecked(e.function), e.operations)),
        );
        for (f, n) in ops {
            if f == function {
                most = most.max(n);
            }
        }
    }
    most
}

/// The longest one invocation of `function` can take under `config`, retries and backoffs
/// included: the secret read (on a cold or expired cache), its provider operations, the store
/// reserve after them and the answer margin; for reconcile, its run budget first.
pub fn worst_case(config: &Config, function: Function) -> Duration {
    let one = config.secrets_policy.fetch_timeout
        + config.provider_budget * provider_operations(function)
        + STORE_RESERVE
        + ANSWER_MARGIN;
    if function == Function::RECONCILE {
        config.reconcile.budget + one
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_impossible_runtime_deadline_falls_back_to_the_functions_timeout() {
        let now = Instant::now();
        let past = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        let far = SystemTime::now() + Duration::from_secs(86_400);
        for d in [past, far] {
            let at = instant_of(d, Function::GET_SESSION);
            assert!(at >= now + Duration::from_secs(10), "{d:?}");
        }
        let real = instant_of(
            SystemTime::now() + Duration::from_secs(3),
            Function::GET_SESSION,
        );
        assert!(real <= Instant::now() + Duration::from_secs(3));
    }

    #[tokio::test]
    async fn provider_calls_stop_a_store_reserve_before_the_answer() {
        assert!(providers_until().is_none(), "no invocation, no limit");
        let at = Instant::now() + Duration::from_secs(5);
        ANSWER_BY
            .scope(at, async {
                assert_eq!(providers_until(), Some(at - STORE_RESERVE));
            })
            .await;
    }
}
