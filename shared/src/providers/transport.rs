//! One way to talk HTTP to a provider, shared by the four clients: the attempt loop with its
//! deadline, retries and backoff, and the rules every answer meets before a client reads it.
//!
//! - **Deadline.** One provider operation (every attempt, backoff, `Retry-After` wait, pacing
//!   and, for Prove, its token) ends by `Config::provider_budget`, and in an HTTP invocation also
//!   `deadline::STORE_RESERVE` before the invocation's own deadline. No attempt starts with less
//!   than `MIN_ATTEMPT` left, no wait is taken that would leave less, each attempt's timeout is
//!   what is left (at most `Config::provider_timeout`). `deadline::worst_case` adds these up.
//! - **Sent at most once.** A request that is not safe to repeat (`Resend::IfNotSent`: Prove
//!   `/v3/verify` and `/v3/identity`, Nevis create) is sent again only when it provably never
//!   left (the connection was refused), and it is not sent at all unless a full attempt fits in
//!   what is left: it is never cut short by our own deadline after it may have reached the
//!   provider.
//! - **No redirects.** The client follows none (`app::provider_http`); a 3xx is a provider error.
//!   A redirect would carry our API keys and signatures (`X-API-KEY`, `X-AUTHENTO-APIKEY`) to
//!   wherever it points.
//! - **Bounded answers.** A body is read in chunks up to `MAX_BODY`; a longer one is a provider
//!   error (502), not a memory spike.
//! - **Bounded waits.** `Retry-After` is read saturating and clamped; the wait we pass on to our
//!   own callers is at most `MAX_RETRY_AFTER`.

use crate::error::Error;
use crate::providers::retry;
use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Largest provider answer read (none of them is near it: user-info, identity and status JSON).
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest `Retry-After` we hand on to our callers in a 503.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// No attempt starts, and no wait is taken, with less than this left before the deadline.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(100);
/// Attempts of one operation at most (the deadline usually ends it first on slow answers).
pub const ATTEMPTS: u32 = 3;
/// The `Retry-After` of our 503 when the provider gave none.
const DEFAULT_RETRY: Duration = Duration::from_secs(2);

/// Whether a request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// A read: again after transport errors, 5xx and short 429s.
    Safe,
    /// A create: again only when the connection was never made (it cannot have arrived); a
    /// 5xx, 429 or timeout is the caller's to retry, with its own idempotency.
    IfNotSent,
}

/// When one operation must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// `budget` from now, and no later than the invocation's deadline allows for providers.
    pub fn after(budget: Duration) -> Self {
        let own = Instant::now() + budget;
        Self {
            at: crate::deadline::providers_until().map_or(own, |d| d.min(own)),
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether waiting `d` still leaves time for an attempt.
    pub fn can_wait(&self, d: Duration) -> bool {
        self.remaining()
            .checked_sub(d)
            .is_some_and(|left| left >= MIN_ATTEMPT)
    }
}

/// A provider's answer, its body read (capped).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// `Retry-After`, clamped (`retry::retry_after`).
    pub fn retry_after(&self) -> Option<Duration> {
        retry::retry_after(&self.headers)
    }
}

/// What the attempt loop does with an answer.
pub enum Step {
    /// The caller reads it.
    Done,
    /// Sent again after `wait` (`None`: jittered backoff), if the deadline, the attempts and
    /// `Call::max_wait` allow; else `or_else`.
    Again {
        wait: Option<Duration>,
        or_else: Error,
    },
    /// Over: this error.
    Fail(Error),
}

/// How one operation is run.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub provider: &'static str,
    pub resend: Resend,
    /// The longest `Retry-After` (or pacing) waited out inside the operation.
    pub max_wait: Duration,
}

/// The HTTP client and the two limits every operation runs under.
#[derive(Clone)]
pub struct Transport {
    http: reqwest::Client,
    attempt_timeout: Duration,
    budget: Duration,
}

impl Transport {
    pub fn new(http: reqwest::Client, attempt_timeout: Duration, budget: Duration) -> Self {
        Self {
            http,
            attempt_timeout,
            budget: budget.max(attempt_timeout),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The deadline of an operation starting now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.budget)
    }

    /// Runs one operation: `prepare` builds each attempt's request (it may wait, e.g. for a
    /// token or a pacing slot, within `deadline`), `judge` says what an answer means (`None`:
    /// the common rules of `default_step`). Transport failures, 3xx and oversized bodies are
    /// handled here.
    pub async fn run<P, Fut, J>(
        &self,
        call: Call,
        deadline: Deadline,
        prepare: P,
        judge: J,
    ) -> Result<Answer, Error>
    where
        P: FnMut() -> Fut,
        Fut: Future<Output = Result<reqwest::RequestBuilder, Error>>,
        J: FnMut(&Answer) -> Option<Step>,
    {
        let started = Instant::now();
        let result = self.attempts(call, deadline, prepare, judge).await;
        let failed = result
            .as_ref()
            .is_err_and(crate::metrics::is_provider_failure);
        crate::metrics::provider_call(call.provider, started.elapsed(), failed);
        result
    }

    async fn attempts<P, Fut, J>(
        &self,
        call: Call,
        deadline: Deadline,
        mut prepare: P,
        mut judge: J,
    ) -> Result<Answer, Error>
    where
        P: FnMut() -> Fut,
        Fut: Future<Output = Result<reqwest::RequestBuilder, Error>>,
        J: FnMut(&Answer) -> Option<Step>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = prepare().await?;
            let left = deadline.remaining();
            let timeout = match call.resend {
                // Sent with the time to finish, or not at all (nothing reached the provider).
                Resend::IfNotSent if left < self.attempt_timeout => {
                    return Err(out_of_time(call.provider));
                }
                _ if left < MIN_ATTEMPT => return Err(out_of_time(call.provider)),
                _ => left.min(self.attempt_timeout),
            };
            let (wait, or_else) = match send(request, timeout).await {
                Ok(answer) if answer.status.is_redirection() => {
                    // Never followed: see the module docs.
                    return Err(provider_error(
                        call.provider,
                        format!("answered a redirect ({})", answer.status),
                    ));
                }
                Ok(answer) => {
                    let step = judge(&answer)
                        .unwrap_or_else(|| default_step(call.provider, call.resend, &answer));
                    match step {
                        Step::Done => return Ok(answer),
                        Step::Fail(e) => return Err(e),
                        Step::Again { wait, or_else } => {
                            (wait.unwrap_or_else(|| retry::backoff(attempt)), or_else)
                        }
                    }
                }
                Err(Failure::TooLarge) => {
                    return Err(provider_error(
                        call.provider,
                        format!("answer larger than {MAX_BODY} bytes"),
                    ));
                }
                Err(Failure::NotSent) => (
                    retry::backoff(attempt),
                    unavailable(call.provider, "unreachable", DEFAULT_RETRY),
                ),
                Err(Failure::MaybeSent(why)) => match call.resend {
                    Resend::Safe => (
                        retry::backoff(attempt),
                        unavailable(call.provider, why, DEFAULT_RETRY),
                    ),
                    Resend::IfNotSent => {
                        return Err(unavailable(call.provider, why, DEFAULT_RETRY));
                    }
                },
            };
            if attempt >= ATTEMPTS || wait > call.max_wait || !deadline.can_wait(wait) {
                return Err(or_else);
            }
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The rules every provider shares: 429 and 5xx may pass (again, for a read; else 503), anything
/// else is for the client to read.
pub fn default_step(provider: &'static str, resend: Resend, answer: &Answer) -> Step {
    let status = answer.status;
    let (wait, error) = if status == StatusCode::TOO_MANY_REQUESTS {
        let wait = answer.retry_after().unwrap_or(Duration::from_secs(1));
        (Some(wait), unavailable(provider, "rate limited", wait))
    } else if status.is_server_error() {
        (
            None,
            unavailable(provider, &format!("answered {status}"), DEFAULT_RETRY),
        )
    } else {
        return Step::Done;
    };
    match resend {
        Resend::Safe => Step::Again {
            wait,
            or_else: error,
        },
        Resend::IfNotSent => Step::Fail(error),
    }
}

enum Failure {
    /// The connection was never made: nothing reached the provider.
    NotSent,
    /// It may have arrived (timeout, connection lost mid-way).
    MaybeSent(&'static str),
    /// The body went over `MAX_BODY`.
    TooLarge,
}

/// One attempt: the request, then its body in chunks, all within `timeout`.
async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, Failure> {
    let attempt = async {
        let mut resp = request.timeout(timeout).send().await.map_err(|e| {
            if e.is_connect() {
                Failure::NotSent
            } else if e.is_timeout() {
                Failure::MaybeSent("timed out")
            } else {
                Failure::MaybeSent("unreachable")
            }
        })?;
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(Failure::TooLarge);
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                Failure::MaybeSent("timed out")
            } else {
                Failure::MaybeSent("body cut short")
            }
        })? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Failure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: body.freeze(),
        })
    };
    // reqwest's timeout covers the body too; this one makes sure of it.
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(Failure::MaybeSent("timed out")))
}

pub fn unavailable(provider: &'static str, detail: &str, retry_after: Duration) -> Error {
    Error::ProviderUnavailable {
        provider,
        detail: detail.to_owned(),
        retry_after: retry_after.clamp(Duration::from_secs(1), MAX_RETRY_AFTER),
    }
}

pub fn provider_error(provider: &'static str, detail: impl Into<String>) -> Error {
    Error::Provider {
        provider,
        detail: detail.into(),
    }
}

fn out_of_time(provider: &'static str) -> Error {
    unavailable(
        provider,
        "no time left for the call; nothing sent",
        DEFAULT_RETRY,
    )
}

/// A provider's free-text word (a status, an error code) as it may be stored: at most `max`
/// bytes, cut at a character boundary. Ids are refused instead (`bounded_id`): a cut id would
/// name something else.
pub fn capped(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Longest provider id we store (correlation, identity and user ids).
pub const MAX_ID: usize = 128;
/// Longest provider word we store (statuses, results, error codes).
pub const MAX_WORD: usize = 64;

/// A provider id as it may be stored (it becomes part of keys): refused when over `MAX_ID`.
pub fn bounded_id(provider: &'static str, what: &str, id: &str) -> Result<(), Error> {
    if id.len() > MAX_ID {
        return Err(provider_error(
            provider,
            format!("{what} is longer than {MAX_ID} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_cut_at_a_character_boundary() {
        assert_eq!(capped("abc".into(), 64), "abc");
        assert_eq!(capped("é".repeat(40), 5), "éé");
        assert!(bounded_id("p", "id", &"x".repeat(MAX_ID)).is_ok());
        assert!(bounded_id("p", "id", &"x".repeat(MAX_ID + 1)).is_err());
    }

    #[test]
    fn the_wait_we_pass_on_is_clamped() {
        let Error::ProviderUnavailable { retry_after, .. } =
            unavailable("p", "x", Duration::from_secs(u64::MAX))
        else {
            unreachable!()
        };
        assert_eq!(retry_after, MAX_RETRY_AFTER);
    }

    #[test]
    fn a_deadline_leaves_room_for_an_attempt_or_refuses_the_wait() {
        let d = Deadline::after(Duration::from_secs(1));
        assert!(d.can_wait(Duration::from_millis(500)));
        assert!(!d.can_wait(Duration::from_millis(950)));
        assert!(!d.can_wait(Duration::MAX));
    }

    /// One connection: `head` then `body_len` bytes of spaces, with no length announced (the
    /// body ends when the connection closes).
    async fn streaming_server(body_len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let _ = c
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                .await;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < body_len {
                if c.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn an_answer_without_a_length_is_cut_at_the_cap() {
        let url = streaming_server(8 * MAX_BODY).await;
        let t = Transport::new(
            reqwest::Client::new(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        );
        let call = Call {
            provider: "p",
            resend: Resend::Safe,
            max_wait: Duration::ZERO,
        };
        let url = &url;
        let got = t
            .run(
                call,
                t.deadline(),
                || async move { Ok(reqwest::Client::new().get(url)) },
                |_| None,
            )
            .await;
        assert!(
            matches!(got, Err(Error::Provider { ref detail, .. }) if detail.contains("larger")),
            "{got:?}"
        );
    }
}
