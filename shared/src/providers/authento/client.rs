//! Authento's signed user-info API: `GET {api}/userinfo/{basic,full}?id=<user id>` with
//! `X-AUTHENTO-SIGNATURE = hex(HMAC-SHA256(api secret, TS + METHOD + FULL_URL))`.
//!
//! Authento answers 429 beyond about 5 requests a second: calls go through a pacer and a 429
//! pauses every caller for `Retry-After`. Both are per container (Lambda keeps no shared state):
//! N warm containers may together send N × `IDV_AUTHENTO_MAX_RPS`, and a 429 pauses only the
//! container that received it. The pause is capped at `MAX_PAUSE`: a `Retry-After` of hours
//! (or of `u64::MAX` seconds) must not switch Authento reads off in a container for that long.
//! Transport rules (deadline, no redirects, bounded bodies) are `providers::transport`'s.

use super::settings::Secrets;
use crate::error::Error;
use crate::providers::transport::{
    self, Call, Deadline, MAX_WORD, Resend, Step, Transport, capped, provider_error,
};
use crate::webhooks::hmac_digest;
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PROVIDER: &str = "authento";
/// Longest we make a caller wait for a slot (or a 429's pause) before answering 503 instead.
const MAX_WAIT: Duration = Duration::from_millis(1500);
/// Longest a 429 pauses a container's reads, whatever its `Retry-After` says.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tracks {
    pub basic: String,
    pub poa: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserInfo {
    /// Authento's own id for the user.
    pub id: String,
    pub status: Tracks,
    #[serde(rename = "timeUpdated", default)]
    pub time_updated: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found(UserInfo),
    /// ASSUMPTION: 404 means the user never opened the flow.
    NotFound,
}

/// `{"success": true, "result": {...}}`.
#[derive(Deserialize)]
pub(super) struct Envelope<T> {
    pub(super) success: bool,
    #[serde(default = "none")]
    pub(super) result: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// Spaces calls `1/rps` apart and holds everyone back after a 429.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rps: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / rps.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// How long to wait for our slot, or `Err(wait)` if that is longer than we should hold a caller.
    fn reserve(&self) -> Result<Duration, Duration> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let slot = (*next).max(now);
        let wait = slot - now;
        if wait > MAX_WAIT {
            return Err(wait);
        }
        *next = slot.checked_add(self.interval).unwrap_or(slot);
        Ok(wait)
    }

    /// Holds every caller back for `d`, at most `MAX_PAUSE`.
    fn pause_for(&self, d: Duration) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let until = now.checked_add(d.min(MAX_PAUSE)).unwrap_or(now);
        *next = (*next).max(until);
    }
}

pub struct AuthentoClient {
    transport: Transport,
    api_url: String,
    pacer: Pacer,
}

/// The signature of one request (Authento's "API authentication").
pub fn signature(api_secret: &str, ts_ms: &str, method: &str, full_url: &str) -> String {
    hmac_digest::sign_hex(api_secret, format!("{ts_ms}{method}{full_url}").as_bytes())
}

impl AuthentoClient {
    pub fn new(transport: Transport, api_url: &str, max_rps: u32) -> Self {
        Self {
            transport,
            api_url: api_url.trim_end_matches('/').to_owned(),
            pacer: Pacer::new(max_rps),
        }
    }

    /// The authoritative state of one user. Safe to retry: a read.
    pub async fn basic_user_info(&self, creds: &Secrets, user_id: &str) -> Result<Lookup, Error> {
        let Some(body) = self.user_info(creds, "basic", user_id).await? else {
            return Ok(Lookup::NotFound);
        };
        let env: Envelope<UserInfo> = serde_json::from_slice(&body)
            .map_err(|_| provider_error(PROVIDER, "unreadable user-info body"))?;
        match (env.success, env.result) {
            (true, Some(info)) => Ok(Lookup::Found(bounded(info)?)),
            (true, None) => Ok(Lookup::NotFound),
            (false, _) => Err(provider_error(PROVIDER, "user-info answered success=false")),
        }
    }

    /// `GET {api}/userinfo/full?id=<user id>`: the user with `fullInfo` (names, identity
    /// documents), which needs Authento's "full permission to user information". The body is
    /// the caller's to read (`verified::full`); `None`: Authento knows no such user.
    pub async fn full_user_info(
        &self,
        creds: &Secrets,
        user_id: &str,
    ) -> Result<Option<bytes::Bytes>, Error> {
        self.user_info(creds, "full", user_id).await
    }

    /// One signed user-info read (`basic` or `full`): the body of a 2xx, `None` for a 404.
    async fn user_info(
        &self,
        creds: &Secrets,
        tier: &str,
        user_id: &str,
    ) -> Result<Option<bytes::Bytes>, Error> {
        let mut url = url::Url::parse(&format!("{}/userinfo/{tier}", self.api_url))
            .map_err(|e| Error::Internal(format!("authento url: {e}")))?;
        url.query_pairs_mut().append_pair("id", user_id);
        let full_url = &url.to_string();
        let deadline = self.transport.deadline();
        let call = Call {
            provider: PROVIDER,
            resend: Resend::Safe,
            max_wait: MAX_WAIT,
        };
        let answer = self
            .transport
            .run(
                call,
                deadline,
                move || async move {
                    self.wait_for_slot(deadline).await?;
                    let ts = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
                    let ts = ts.to_string();
                    Ok(self
                        .transport
                        .http()
                        .get(full_url)
                        .header("X-AUTHENTO-APIKEY", creds.api_key.expose())
                        .header("X-AUTHENTO-TS", &ts)
                        .header(
                            "X-AUTHENTO-SIGNATURE",
                            signature(creds.api_secret.expose(), &ts, "GET", full_url),
                        )
                        .header("Accept", "application/json"))
                },
                |answer| {
                    if answer.status.as_u16() != 429 {
                        return None;
                    }
                    let wait = answer.retry_after().unwrap_or(Duration::from_secs(1));
                    self.pacer.pause_for(wait);
                    let rate_limited = unavailable("rate limited", wait.min(MAX_PAUSE));
                    Some(if wait <= MAX_WAIT {
                        // The pacer makes the next attempt wait it out.
                        Step::Again {
                            wait: Some(Duration::ZERO),
                            or_else: rate_limited,
                        }
                    } else {
                        Step::Fail(rate_limited)
                    })
                },
            )
            .await?;
        let status = answer.status;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            // 401/403: our credentials, allow-listed IP or (full) permission are wrong: an
            // operator must act.
            return Err(provider_error(PROVIDER, format!("answered {status}")));
        }
        Ok(Some(answer.body))
    }

    /// Waits for this call's pacing slot, if that fits the caller's patience and the deadline.
    async fn wait_for_slot(&self, deadline: Deadline) -> Result<(), Error> {
        match self.pacer.reserve() {
            Ok(wait) if wait.is_zero() => Ok(()),
            Ok(wait) if deadline.can_wait(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Ok(wait) | Err(wait) => Err(unavailable("rate limit budget exhausted", wait)),
        }
    }
}

/// What gets stored of a user-info answer, bounded where it enters: the id (our ref) is refused
/// when absurdly long, the status words are cut.
fn bounded(mut info: UserInfo) -> Result<UserInfo, Error> {
    transport::bounded_id(PROVIDER, "the user id", &info.id)?;
    info.status.basic = capped(info.status.basic, MAX_WORD);
    info.status.poa = capped(info.status.poa, MAX_WORD);
    Ok(info)
}

fn unavailable(detail: &str, retry_after: Duration) -> Error {
    transport::unavailable(PROVIDER, detail, retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_construction() {
        // hex(HMAC_SHA256(secret, "1700000000000" + "GET" + url)), computed independently with
        // python: hmac.new(b"secret", b"1700000000000GEThttps://api.authento.io/v1/userinfo/basic?id=123456789", "sha256").hexdigest()
        let sig = signature(
            "secret",
            "1700000000000",
            "GET",
            "https://api.authento.io/v1/userinfo/basic?id=123456789",
        );
        assert_eq!(
            sig,
            "3dfe159aec658574498d216484e944c8f009ffac61f7c59b56740a2b9f680682"
        );
    }

    #[test]
    fn pacer_spaces_calls_and_refuses_long_waits() {
        let p = Pacer::new(2);
        assert_eq!(p.reserve().unwrap(), Duration::ZERO);
        let w = p.reserve().unwrap();
        assert!(w > Duration::from_millis(400) && w <= Duration::from_millis(500));
        p.pause_for(Duration::from_secs(5));
        assert!(p.reserve().is_err());
    }

    #[test]
    fn an_absurd_pause_neither_panics_nor_outlasts_its_cap() {
        let p = Pacer::new(5);
        p.pause_for(Duration::MAX);
        p.pause_for(Duration::from_secs(u64::MAX));
        let wait = p.reserve().expect_err("paused");
        assert!(wait <= Duration::from_secs(60), "{wait:?}");
    }

    #[test]
    fn an_absurd_retry_after_is_clamped() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "18446744073709551615".parse().unwrap());
        let d = crate::providers::retry::retry_after(&h).unwrap();
        assert!(d <= Duration::from_secs(3600), "{d:?}");
    }
}
