//! Authento's signed user-info API: `GET {api}/userinfo/basic?id=<user id>` with
//! `X-AUTHENTO-SIGNATURE = hex(HMAC-SHA256(api secret, TS + METHOD + FULL_URL))`.
//! Authento answers 429 beyond about 5 requests a second: calls go through a per-container pacer
//! and a 429 pauses every caller for `Retry-After`.

use crate::error::Error;
use crate::providers::retry;
use crate::secrets::AuthentoSecrets;
use crate::webhooks::hmac_digest;
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PROVIDER: &str = "authento";
/// Longest we make a caller wait for a slot before answering 503 instead.
const MAX_WAIT: Duration = Duration::from_millis(1500);
const ATTEMPTS: u32 = 3;

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

#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    result: Option<UserInfo>,
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
        *next = slot + self.interval;
        Ok(wait)
    }

    fn pause_for(&self, d: Duration) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *next = (*next).max(Instant::now() + d);
    }
}

pub struct AuthentoClient {
    http: reqwest::Client,
    api_url: String,
    pacer: Pacer,
}

/// The signature of one request (Authento's "API authentication").
pub fn signature(api_secret: &str, ts_ms: &str, method: &str, full_url: &str) -> String {
    hmac_digest::sign_hex(api_secret, format!("{ts_ms}{method}{full_url}").as_bytes())
}

impl AuthentoClient {
    pub fn new(http: reqwest::Client, api_url: &str, max_rps: u32) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            pacer: Pacer::new(max_rps),
        }
    }

    /// The authoritative state of one user. Safe to retry: a read.
    pub async fn basic_user_info(
        &self,
        creds: &AuthentoSecrets,
        user_id: &str,
    ) -> Result<Lookup, Error> {
        let mut url = url::Url::parse(&format!("{}/userinfo/basic", self.api_url))
            .map_err(|e| Error::Internal(format!("authento url: {e}")))?;
        url.query_pairs_mut().append_pair("id", user_id);
        let full_url = url.to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.pacer.reserve() {
                Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
                Ok(_) => {}
                Err(wait) => return Err(unavailable("rate limit budget exhausted", wait)),
            }
            let ts = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let ts = ts.to_string();
            let sent = self
                .http
                .get(&full_url)
                .header("X-AUTHENTO-APIKEY", &creds.api_key)
                .header("X-AUTHENTO-TS", &ts)
                .header(
                    "X-AUTHENTO-SIGNATURE",
                    signature(&creds.api_secret, &ts, "GET", &full_url),
                )
                .header("Accept", "application/json")
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    let why = if e.is_timeout() {
                        "timed out"
                    } else {
                        "unreachable"
                    };
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(retry::backoff(attempt)).await;
                        continue;
                    }
                    return Err(unavailable(why, Duration::from_secs(2)));
                }
            };
            let status = resp.status();
            if status.as_u16() == 429 {
                let wait = retry::retry_after(resp.headers()).unwrap_or(Duration::from_secs(1));
                self.pacer.pause_for(wait);
                if attempt < ATTEMPTS && wait <= MAX_WAIT {
                    continue; // the pacer makes us wait it out
                }
                return Err(unavailable("rate limited", wait));
            }
            if status.is_server_error() {
                if attempt < ATTEMPTS {
                    tokio::time::sleep(retry::backoff(attempt)).await;
                    continue;
                }
                return Err(unavailable(
                    &format!("answered {status}"),
                    Duration::from_secs(2),
                ));
            }
            if status.as_u16() == 404 {
                return Ok(Lookup::NotFound);
            }
            if !status.is_success() {
                // 401/403: our credentials or allow-listed IP are wrong: an operator must act.
                return Err(Error::Provider {
                    provider: PROVIDER,
                    detail: format!("answered {status}"),
                });
            }
            let body = resp
                .bytes()
                .await
                .map_err(|_| unavailable("body cut short", Duration::from_secs(1)))?;
            let env: Envelope = serde_json::from_slice(&body).map_err(|_| Error::Provider {
                provider: PROVIDER,
                detail: "unreadable user-info body".into(),
            })?;
            return match (env.success, env.result) {
                (true, Some(info)) => Ok(Lookup::Found(info)),
                (true, None) => Ok(Lookup::NotFound),
                (false, _) => Err(Error::Provider {
                    provider: PROVIDER,
                    detail: "user-info answered success=false".into(),
                }),
            };
        }
    }
}

fn unavailable(detail: &str, retry_after: Duration) -> Error {
    Error::ProviderUnavailable {
        provider: PROVIDER,
        detail: detail.to_owned(),
        retry_after,
    }
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
}
