//! One delivery attempt: vet the destination, sign, POST, and say what happened.
//!
//! Two seams keep the SSRF guarantee testable without sending a packet anywhere but loopback:
//! `Resolve` turns a host into addresses, `Dial` POSTs to one address. The sender resolves,
//! drops every address the guard refuses, and hands `Dial` only a vetted address; the production
//! `HttpDial` pins its connection to exactly that address (no DNS of its own), so the address
//! checked is the address connected to and DNS rebinding gains nothing. Redirects are never
//! followed, proxies never used, and at most `MAX_RESPONSE_BYTES` of a response are kept.

use super::guard::{self, GuardError, Policy};
use super::secret::SigningSecret;
use super::sign::sign;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::{Host, Url};

/// The most of a response body read and kept (for the attempt record).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024;
/// Default total time for one attempt. Standard Webhooks recommends 15-30 s; a Lambda delivering a
/// batch cannot wait that long per endpoint, and a receiver should answer fast and work later.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most `retry-after` reported: a receiver cannot park an event beyond the retry schedule.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Vetted addresses tried in turn when a connection cannot be opened (e.g. IPv6 unreachable).
const MAX_ADDRS_TRIED: usize = 3;
/// Pinned clients kept for connection reuse (keyed by host and vetted address).
const CLIENT_CACHE: usize = 16;

/// One message to one endpoint.
#[derive(Clone, Debug)]
pub struct Message {
    /// `webhook-id`: the same on every retry (the receiver's dedupe key). Must not contain `.`.
    pub id: String,
    /// `webhook-timestamp`: Unix seconds of THIS attempt (the caller passes its clock's now).
    pub timestamp: i64,
    /// The JSON payload, sent and signed byte for byte.
    pub body: Bytes,
    pub url: Url,
    /// Every active secret of the endpoint, newest first (two during a rotation).
    pub secrets: Vec<SigningSecret>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Anything else: a non-2xx status (3xx included: never followed), a timeout, a connection or
    /// DNS failure. Retry per schedule.
    Failed,
    /// `410 Gone`: the receiver asks for the endpoint to be disabled.
    Gone,
    /// The guard refused the URL or every address its host resolves to. Nothing was sent.
    /// Retrying is allowed (DNS may change) but the caller may also count it toward disabling.
    Refused,
}

/// What one attempt did, for the caller's schedule and the attempt record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// From the start of the attempt (resolution included) to its end.
    pub latency_ms: u64,
    /// A short reason when not delivered: no secrets, no URL query, fit for the API.
    pub error: Option<String>,
    /// The receiver's `retry-after`, at most `MAX_RETRY_AFTER`.
    pub retry_after: Option<Duration>,
    /// 429, 502, 503 or 504: the receiver is overloaded; slow down for this endpoint.
    pub throttle: bool,
    /// True on 410: disable the endpoint.
    pub disable: bool,
    /// The start of the response body, at most `MAX_RESPONSE_BYTES`.
    pub response: Bytes,
}

/// Host name to addresses (the port is the URL's, passed for resolvers that want it).
#[async_trait]
pub trait Resolve: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver (tokio's `lookup_host`, getaddrinfo on a blocking thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// The request as the dialler sends it.
#[derive(Debug)]
pub struct DialRequest<'a> {
    pub url: &'a Url,
    pub headers: &'a [(&'static str, String)],
    pub body: &'a Bytes,
}

/// The receiver's answer.
#[derive(Clone, Debug, Default)]
pub struct DialResponse {
    pub status: u16,
    pub retry_after: Option<String>,
    /// At most `MAX_RESPONSE_BYTES` (the sender truncates again, whatever the dialler did).
    pub body: Bytes,
}

#[derive(Debug)]
pub enum DialError {
    /// No connection was opened, so nothing was sent: the next vetted address may be tried.
    Connect(String),
    Timeout,
    /// Anything after the connection opened (TLS, protocol, reset).
    Request(String),
}

/// POSTs to one address the guard has vetted, and nowhere else.
#[async_trait]
pub trait Dial: Send + Sync {
    async fn post(&self, addr: SocketAddr, req: DialRequest<'_>)
    -> Result<DialResponse, DialError>;
}

/// Makes attempts. Cheap to share (`&self`); one per process is enough.
pub struct Sender<R = SystemResolver, D = HttpDial> {
    policy: Policy,
    timeout: Duration,
    resolver: R,
    dial: D,
}

impl Sender {
    /// The real thing: system DNS and a pinned reqwest client. `timeout` bounds a whole attempt.
    pub fn production(policy: Policy, timeout: Duration) -> Self {
        Self::new(policy, timeout, SystemResolver, HttpDial::new(timeout))
    }
}

enum Failure {
    Refused(GuardError),
    Failed(String),
}

impl<R: Resolve, D: Dial> Sender<R, D> {
    pub fn new(policy: Policy, timeout: Duration, resolver: R, dial: D) -> Self {
        Self {
            policy,
            timeout,
            resolver,
            dial,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// One attempt, never longer than the configured timeout (plus scheduling).
    pub async fn send(&self, msg: &Message) -> Attempt {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.attempt(msg)).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut attempt = Attempt {
            outcome: Outcome::Failed,
            status: None,
            latency_ms,
            error: None,
            retry_after: None,
            throttle: false,
            disable: false,
            response: Bytes::new(),
        };
        match result {
            Err(_) => {
                attempt.error = Some(format!("timed out after {} ms", self.timeout.as_millis()));
            }
            Ok(Err(Failure::Refused(e))) => {
                attempt.outcome = Outcome::Refused;
                attempt.error = Some(e.to_string());
            }
            Ok(Err(Failure::Failed(e))) => attempt.error = Some(e),
            Ok(Ok(resp)) => judge(resp, &mut attempt),
        }
        attempt
    }

    async fn attempt(&self, msg: &Message) -> Result<DialResponse, Failure> {
        if msg.secrets.is_empty() {
            // Never send an unsigned webhook: that is a bug upstream, not the receiver's problem.
            return Err(Failure::Failed("no signing secret".into()));
        }
        if msg.id.is_empty() || msg.id.contains('.') {
            return Err(Failure::Failed(
                "the message id is empty or has a `.`".into(),
            ));
        }
        guard::check_url(&msg.url, self.policy).map_err(Failure::Refused)?;
        let addrs = self.vetted_addrs(&msg.url).await?;

        let secrets: Vec<&SigningSecret> = msg.secrets.iter().collect();
        let headers = [
            ("webhook-id", msg.id.clone()),
            ("webhook-timestamp", msg.timestamp.to_string()),
            (
                "webhook-signature",
                sign(&secrets, &msg.id, msg.timestamp, &msg.body),
            ),
            ("content-type", "application/json".to_owned()),
        ];
        let mut last = String::new();
        for addr in addrs.into_iter().take(MAX_ADDRS_TRIED) {
            let req = DialRequest {
                url: &msg.url,
                headers: &headers,
                body: &msg.body,
            };
            match self.dial.post(addr, req).await {
                Ok(mut resp) => {
                    resp.body.truncate(MAX_RESPONSE_BYTES);
                    return Ok(resp);
                }
                // Nothing was sent: another vetted address of the same host may answer.
                Err(DialError::Connect(e)) => last = format!("could not connect: {e}"),
                Err(DialError::Timeout) => {
                    return Err(Failure::Failed(format!(
                        "timed out after {} ms",
                        self.timeout.as_millis()
                    )));
                }
                Err(DialError::Request(e)) => return Err(Failure::Failed(e)),
            }
        }
        Err(Failure::Failed(last))
    }

    /// The addresses the request may go to: an IP literal as it is, a name resolved; every one
    /// checked by the guard, with the URL's port.
    async fn vetted_addrs(&self, url: &Url) -> Result<Vec<SocketAddr>, Failure> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Failure::Failed("the URL has no port".into()))?;
        let resolved = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(Host::Domain(name)) => self
                .resolver
                .resolve(name, port)
                .await
                .map_err(|e| Failure::Failed(format!("could not resolve the host: {e}")))?,
            None => return Err(Failure::Refused(GuardError::NoHost)),
        };
        let mut refused = None;
        let mut vetted: Vec<SocketAddr> = Vec::new();
        for a in resolved {
            let a = SocketAddr::new(a.ip(), port);
            match guard::check_addr(a.ip(), self.policy) {
                Ok(()) if !vetted.contains(&a) => vetted.push(a),
                Ok(()) => {}
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        if !vetted.is_empty() {
            return Ok(vetted);
        }
        Err(match (refused, url.host()) {
            // A literal the app typed: say which address.
            (Some(e), Some(Host::Ipv4(_) | Host::Ipv6(_))) => Failure::Refused(e),
            // A name: do not echo what a (perhaps private) DNS zone answered.
            (Some(GuardError::Address { class, .. }), _) => {
                Failure::Refused(GuardError::ResolvesToRefused(class))
            }
            (Some(e), _) => Failure::Refused(e),
            (None, _) => Failure::Failed("the host has no addresses".into()),
        })
    }
}

/// A response into an outcome (Standard Webhooks §3.1).
fn judge(resp: DialResponse, attempt: &mut Attempt) {
    let status = resp.status;
    attempt.status = Some(status);
    attempt.response = resp.body;
    attempt.throttle = matches!(status, 429 | 502 | 503 | 504);
    attempt.retry_after = resp.retry_after.as_deref().and_then(parse_retry_after);
    match status {
        200..=299 => attempt.outcome = Outcome::Delivered,
        410 => {
            attempt.outcome = Outcome::Gone;
            attempt.disable = true;
            attempt.error = Some("410 Gone: the receiver asks to disable the endpoint".into());
        }
        300..=399 => {
            attempt.error = Some(format!(
                "status {status}: redirects are not followed; update the endpoint's URL"
            ));
        }
        _ => attempt.error = Some(format!("status {status}")),
    }
}

/// `retry-after` is delta-seconds or an HTTP-date (RFC 9110 §10.2.3); capped at a day.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let fmt = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let at = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
        let wait = at - time::OffsetDateTime::now_utc();
        Duration::try_from(wait).unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// The production dialler: reqwest, pinned to the vetted address. Its own DNS is switched off
/// (`NoDns`), so the only name it can connect to is the one pinned to the vetted address.
pub struct HttpDial {
    timeout: Duration,
    clients: Mutex<Vec<(String, SocketAddr, reqwest::Client)>>,
}

impl HttpDial {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            clients: Mutex::new(Vec::new()),
        }
    }

    /// A client that connects `host` to `addr` only; kept for reuse of its connections (which all
    /// go to `addr`).
    fn client(&self, host: Option<&str>, addr: SocketAddr) -> Result<reqwest::Client, DialError> {
        let key = host.unwrap_or("").to_ascii_lowercase();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, c)) = clients.iter().find(|(h, a, _)| *h == key && *a == addr) {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .retry(reqwest::retry::never())
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("idv-gateway-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(NoDns));
        if let Some(host) = host {
            b = b.resolve_to_addrs(host, &[addr]);
        }
        let client = b
            .build()
            .map_err(|_| DialError::Request("could not build the HTTP client".into()))?;
        if clients.len() >= CLIENT_CACHE {
            clients.remove(0);
        }
        clients.push((key, addr, client.clone()));
        Ok(client)
    }
}

#[async_trait]
impl Dial for HttpDial {
    async fn post(
        &self,
        addr: SocketAddr,
        req: DialRequest<'_>,
    ) -> Result<DialResponse, DialError> {
        let host = match req.url.host() {
            Some(Host::Domain(name)) => Some(name),
            // A literal is connected to as it is: it must be the vetted address.
            Some(Host::Ipv4(ip)) if std::net::IpAddr::from(ip) == addr.ip() => None,
            Some(Host::Ipv6(ip)) if std::net::IpAddr::from(ip) == addr.ip() => None,
            _ => return Err(DialError::Connect("address does not match the URL".into())),
        };
        let client = self.client(host, addr)?;
        let mut rb = client.post(req.url.clone()).body(req.body.clone());
        for (name, value) in req.headers {
            rb = rb.header(*name, value);
        }
        let mut resp = rb.send().await.map_err(dial_error)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read chunks until the cap, then drop the response (and its connection) unread.
        let mut body = BytesMut::new();
        while body.len() < MAX_RESPONSE_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // The status is what counts; a body cut short is still an answer.
                Ok(None) | Err(_) => break,
            }
        }
        Ok(DialResponse {
            status,
            retry_after,
            body: body.freeze(),
        })
    }
}

/// A short reason without the URL (it may carry a token in its query).
fn dial_error(e: reqwest::Error) -> DialError {
    if e.is_timeout() {
        return DialError::Timeout;
    }
    let connect = e.is_connect();
    let mut innermost: &dyn std::error::Error = &e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let mut reason = if std::ptr::addr_eq(innermost, &e as &dyn std::error::Error) {
        e.without_url().to_string()
    } else {
        innermost.to_string()
    };
    if let Some((cut, _)) = reason.char_indices().nth(200) {
        reason.truncate(cut);
    }
    if connect {
        DialError::Connect(reason)
    } else {
        DialError::Request(reason)
    }
}

/// reqwest's resolver for names not pinned: there are none, so refuse.
struct NoDns;

impl reqwest::dns::Resolve for NoDns {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async { Err("webhook deliveries resolve names only through the guard".into()) })
    }
}
