//! The sender through its seams. The SSRF cases use a scripted resolver and a dialler that
//! records what it would dial and dials nothing; the cases that need a real socket use loopback
//! only, with the production dialler and a tiny HTTP/1.1 receiver.

use super::send::{DialError, DialRequest, DialResponse};
use super::*;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

const BODY: &[u8] = br#"{"type":"session.verified","data":{"id":"ses_1"}}"#;

fn message(url: &str) -> Message {
    Message {
        id: "evt_2KWPBgLlAfxdpx2AI54pPJ85f4W".into(),
        timestamp: 1_700_000_000,
        body: Bytes::from_static(BODY),
        url: Url::parse(url).unwrap(),
        secrets: vec![SigningSecret::generate()],
    }
}

/// Answers from a table and counts the questions.
#[derive(Default)]
struct Script {
    answers: HashMap<String, Vec<Vec<IpAddr>>>,
    asked: Mutex<Vec<String>>,
}

impl Script {
    fn with(host: &str, ips: &[&str]) -> Self {
        let mut s = Self::default();
        s.push(host, ips);
        s
    }
    /// Each push is the answer to the next query (the last one repeats): rebinding.
    fn push(&mut self, host: &str, ips: &[&str]) {
        self.answers
            .entry(host.into())
            .or_default()
            .push(ips.iter().map(|ip| ip.parse().unwrap()).collect());
    }
}

#[async_trait::async_trait]
impl Resolve for Arc<Script> {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let mut asked = self.asked.lock().unwrap();
        let n = asked.iter().filter(|h| *h == host).count();
        asked.push(host.into());
        let answers = self
            .answers
            .get(host)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))?;
        let ips = &answers[n.min(answers.len() - 1)];
        Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
    }
}

type Headers = Vec<(&'static str, String)>;

/// Records every address it is asked to dial; dials nothing; answers `status` (and refuses to
/// connect to the addresses in `unreachable`).
struct Recorder {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    unreachable: Vec<SocketAddr>,
    dialled: Mutex<Vec<(SocketAddr, Headers)>>,
}

impl Recorder {
    fn answering(status: u16) -> Arc<Self> {
        Self::with(status, &[], &[])
    }
    fn with(
        status: u16,
        headers: &[(&'static str, &'static str)],
        unreachable: &[&str],
    ) -> Arc<Self> {
        Arc::new(Self {
            status,
            headers: headers.to_vec(),
            unreachable: unreachable.iter().map(|a| a.parse().unwrap()).collect(),
            dialled: Mutex::default(),
        })
    }
    fn addrs(&self) -> Vec<SocketAddr> {
        self.dialled
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| *a)
            .collect()
    }
}

#[async_trait::async_trait]
impl Dial for Arc<Recorder> {
    async fn post(
        &self,
        addr: SocketAddr,
        req: DialRequest<'_>,
    ) -> Result<DialResponse, DialError> {
        self.dialled
            .lock()
            .unwrap()
            .push((addr, req.headers.to_vec()));
        if self.unreachable.contains(&addr) {
            return Err(DialError::Connect("connection refused".into()));
        }
        let retry_after = self
            .headers
            .iter()
            .find(|(n, _)| *n == "retry-after")
            .map(|(_, v)| v.to_string());
        Ok(DialResponse {
            status: self.status,
            retry_after,
            body: Bytes::from(vec![b'x'; 10_000]), // more than the cap: the sender truncates
        })
    }
}

fn recording(
    policy: Policy,
    script: Script,
    dial: &Arc<Recorder>,
) -> (Sender<Arc<Script>, Arc<Recorder>>, Arc<Script>) {
    let script = Arc::new(script);
    let sender = Sender::new(policy, Duration::from_secs(5), script.clone(), dial.clone());
    (sender, script)
}

#[tokio::test]
async fn production_refuses_the_issue_s_urls_before_any_dial() {
    for url in [
        "http://127.0.0.1",
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1",
        "https://[::ffff:10.0.0.1]",
        "https://[::1]:8443",
        "https://localhost/",
    ] {
        let dial = Recorder::answering(200);
        let (sender, script) = recording(Policy::Production, Script::default(), &dial);
        let attempt = sender.send(&message(url)).await;
        assert_eq!(attempt.outcome, Outcome::Refused, "{url}: {attempt:?}");
        assert!(attempt.error.is_some() && attempt.status.is_none(), "{url}");
        assert!(dial.addrs().is_empty(), "{url} was dialled");
        assert!(
            script.asked.lock().unwrap().is_empty(),
            "{url} was resolved"
        );
    }
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_refused_without_echoing_it() {
    for ips in [
        &["10.1.2.3"][..],
        &["169.254.169.254"],
        &["127.0.0.1", "::1"],
        &["fd00:ec2::254"],
        &["::ffff:192.168.0.10"],
    ] {
        let dial = Recorder::answering(200);
        let (sender, _) = recording(
            Policy::Production,
            Script::with("hooks.example.com", ips),
            &dial,
        );
        let attempt = sender.send(&message("https://hooks.example.com/idv")).await;
        assert_eq!(attempt.outcome, Outcome::Refused, "{ips:?}");
        let error = attempt.error.unwrap();
        assert!(
            error.starts_with("the host resolves only to refused addresses"),
            "{error}"
        );
        assert!(!error.contains(ips[0]), "{error}");
        assert!(dial.addrs().is_empty(), "{ips:?} dialled");
    }
}

#[tokio::test]
async fn of_a_public_and_a_private_address_only_the_public_one_is_dialled() {
    let dial = Recorder::answering(204);
    let script = Script::with(
        "hooks.example.com",
        &["10.0.0.7", "93.184.215.14", "fe80::1"],
    );
    let (sender, _) = recording(Policy::Production, script, &dial);
    let attempt = sender.send(&message("https://hooks.example.com/idv")).await;
    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    assert_eq!(attempt.status, Some(204));
    assert_eq!(dial.addrs(), vec!["93.184.215.14:443".parse().unwrap()]);
}

#[tokio::test]
async fn rebinding_gains_nothing_each_send_dials_only_what_it_vetted() {
    // First answer public, then private (a rebinding DNS server).
    let mut script = Script::with("rebind.example.com", &["93.184.215.14"]);
    script.push("rebind.example.com", &["169.254.169.254"]);
    let dial = Recorder::answering(200);
    let (sender, _) = recording(Policy::Production, script, &dial);
    let msg = message("https://rebind.example.com:8443/h");
    assert_eq!(sender.send(&msg).await.outcome, Outcome::Delivered);
    assert_eq!(sender.send(&msg).await.outcome, Outcome::Refused);
    assert_eq!(dial.addrs(), vec!["93.184.215.14:8443".parse().unwrap()]);
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_a_failure_dialled_once() {
    let dial = Recorder::with(302, &[("location", "https://10.0.0.1/")], &[]);
    let script = Script::with("hooks.example.com", &["93.184.215.14"]);
    let (sender, _) = recording(Policy::Production, script, &dial);
    let attempt = sender.send(&message("https://hooks.example.com/idv")).await;
    assert_eq!(attempt.outcome, Outcome::Failed);
    assert_eq!(attempt.status, Some(302));
    assert!(
        attempt
            .error
            .unwrap()
            .contains("redirects are not followed")
    );
    assert_eq!(dial.addrs().len(), 1);
}

/// status, headers, outcome, disable, throttle, retry-after seconds.
type Case = (
    u16,
    &'static [(&'static str, &'static str)],
    Outcome,
    bool,
    bool,
    Option<u64>,
);

#[tokio::test]
async fn statuses_map_to_outcomes_and_hints() {
    let cases: &[Case] = &[
        (200, &[], Outcome::Delivered, false, false, None),
        (299, &[], Outcome::Delivered, false, false, None),
        (301, &[], Outcome::Failed, false, false, None),
        (400, &[], Outcome::Failed, false, false, None),
        (410, &[], Outcome::Gone, true, false, None),
        (
            429,
            &[("retry-after", "120")],
            Outcome::Failed,
            false,
            true,
            Some(120),
        ),
        (500, &[], Outcome::Failed, false, false, None),
        (502, &[], Outcome::Failed, false, true, None),
        (
            503,
            &[("retry-after", "999999")],
            Outcome::Failed,
            false,
            true,
            Some(86_400),
        ),
        (
            503,
            &[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")],
            Outcome::Failed,
            false,
            true,
            Some(0),
        ),
        (
            504,
            &[("retry-after", "soon")],
            Outcome::Failed,
            false,
            true,
            None,
        ),
    ];
    for &(status, headers, outcome, disable, throttle, retry_after) in cases {
        let dial = Recorder::with(status, headers, &[]);
        let (sender, _) = recording(Policy::Production, Script::default(), &dial);
        let a = sender.send(&message("https://93.184.215.14/h")).await;
        assert_eq!(a.outcome, outcome, "{status}");
        assert_eq!(a.status, Some(status));
        assert_eq!(a.disable, disable, "{status}");
        assert_eq!(a.throttle, throttle, "{status}");
        assert_eq!(
            a.retry_after,
            retry_after.map(Duration::from_secs),
            "{status}"
        );
        assert_eq!(a.error.is_none(), outcome == Outcome::Delivered, "{status}");
        assert_eq!(a.response.len(), send::MAX_RESPONSE_BYTES, "{status}");
    }
}

#[tokio::test]
async fn an_unreachable_address_falls_back_to_the_next_vetted_one() {
    let dial = Recorder::with(200, &[], &["[2606:4700::1]:443"]);
    let script = Script::with("hooks.example.com", &["2606:4700::1", "93.184.215.14"]);
    let (sender, _) = recording(Policy::Production, script, &dial);
    let a = sender.send(&message("https://hooks.example.com/")).await;
    assert_eq!(a.outcome, Outcome::Delivered);
    assert_eq!(
        dial.addrs(),
        vec![
            "[2606:4700::1]:443".parse().unwrap(),
            "93.184.215.14:443".parse().unwrap()
        ]
    );
}

#[tokio::test]
async fn headers_carry_the_id_the_attempt_s_timestamp_and_every_secret_s_signature() {
    let dial = Recorder::answering(200);
    let (sender, _) = recording(Policy::Production, Script::default(), &dial);
    let mut msg = message("https://93.184.215.14/h");
    msg.secrets.push(SigningSecret::generate());
    sender.send(&msg).await;
    let dialled = dial.dialled.lock().unwrap();
    let headers: HashMap<_, _> = dialled[0].1.iter().cloned().collect();
    assert_eq!(headers["webhook-id"], msg.id);
    assert_eq!(headers["webhook-timestamp"], "1700000000");
    let secrets: Vec<&SigningSecret> = msg.secrets.iter().collect();
    assert_eq!(
        headers["webhook-signature"],
        sign(&secrets, &msg.id, msg.timestamp, BODY)
    );
    assert_eq!(headers["webhook-signature"].split(' ').count(), 2);
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn nothing_unsigned_or_with_a_bad_id_is_sent() {
    let dial = Recorder::answering(200);
    let (sender, _) = recording(Policy::Production, Script::default(), &dial);
    let mut unsigned = message("https://93.184.215.14/h");
    unsigned.secrets.clear();
    let mut dotted = message("https://93.184.215.14/h");
    dotted.id = "evt.1".into();
    for msg in [unsigned, dotted] {
        assert_eq!(sender.send(&msg).await.outcome, Outcome::Failed);
    }
    assert!(dial.addrs().is_empty());
}

// ---- real sockets, loopback only ----

/// One HTTP/1.1 request as a receiver saw it.
#[derive(Debug)]
struct Received {
    head: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let text = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = text.split("\r\n");
    let head = lines.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        head,
        headers,
        body,
    })
}

/// A receiver on 127.0.0.1 that records each request and answers `reply` (raw HTTP bytes),
/// then, if `stall`, keeps the connection open without writing more.
async fn receiver(reply: Vec<u8>, stall: bool) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            let reply = reply.clone();
            tokio::spawn(async move {
                if let Some(r) = read_request(&mut sock).await {
                    seen.lock().unwrap().push(r);
                    // The sender may hang up after its 4 KiB: a failed write is expected.
                    let _ = sock.write_all(&reply).await;
                    if stall {
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    (port, got)
}

fn ok_reply() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_vec()
}

fn local(timeout: Duration) -> Sender {
    Sender::production(Policy::Local, timeout)
}

#[tokio::test]
async fn a_loopback_receiver_gets_the_signed_post_in_the_local_policy() {
    let (port, got) = receiver(ok_reply(), false).await;
    let msg = message(&format!("http://127.0.0.1:{port}/hook?x=1"));
    let a = local(Duration::from_secs(5)).send(&msg).await;
    assert_eq!(a.outcome, Outcome::Delivered, "{a:?}");
    assert_eq!(a.status, Some(200));
    assert_eq!(&a.response[..], b"ok");
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.head, "POST /hook?x=1 HTTP/1.1");
    assert_eq!(r.body, BODY);
    assert_eq!(r.headers["webhook-id"], msg.id);
    assert_eq!(r.headers["webhook-timestamp"], "1700000000");
    assert_eq!(
        r.headers["webhook-signature"],
        sign(&[&msg.secrets[0]], &msg.id, msg.timestamp, BODY)
    );
}

#[tokio::test]
async fn the_production_dialler_connects_a_name_only_to_the_vetted_address() {
    // `.invalid` never resolves (RFC 6761): the request can only arrive through the pin.
    let (port, got) = receiver(ok_reply(), false).await;
    let script = Arc::new(Script::with("receiver.invalid", &["127.0.0.1"]));
    let sender = Sender::new(
        Policy::Local,
        Duration::from_secs(5),
        script,
        HttpDial::new(Duration::from_secs(5)),
    );
    let a = sender
        .send(&message(&format!("http://receiver.invalid:{port}/h")))
        .await;
    assert_eq!(a.outcome, Outcome::Delivered, "{a:?}");
    let got = got.lock().unwrap();
    assert_eq!(got[0].headers["host"], format!("receiver.invalid:{port}"));
}

/// A std listener on loopback, non-blocking: `accept` says at once whether anyone connected
/// (the kernel completes a TCP handshake before the connecting side sends anything).
fn untouched_listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn assert_untouched(l: &std::net::TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("something connected: {other:?}"),
    }
}

#[tokio::test]
async fn production_policy_does_not_connect_to_loopback_even_through_a_name() {
    let (l, port) = untouched_listener();
    let script = Arc::new(Script::with("receiver.invalid", &["127.0.0.1"]));
    let sender = Sender::new(
        Policy::Production,
        Duration::from_secs(5),
        script,
        HttpDial::new(Duration::from_secs(5)),
    );
    let a = sender
        .send(&message(&format!("https://receiver.invalid:{port}/h")))
        .await;
    assert_eq!(a.outcome, Outcome::Refused, "{a:?}");
    assert_untouched(&l);
}

#[tokio::test]
async fn a_real_redirect_is_not_followed() {
    let (target, port_b) = untouched_listener();
    let reply = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port_b}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (port_a, got) = receiver(reply.into_bytes(), false).await;
    let a = local(Duration::from_secs(5))
        .send(&message(&format!("http://127.0.0.1:{port_a}/")))
        .await;
    assert_eq!(a.outcome, Outcome::Failed);
    assert_eq!(a.status, Some(302));
    assert_eq!(got.lock().unwrap().len(), 1);
    assert_untouched(&target);
}

#[tokio::test]
async fn at_most_4_kib_of_a_1_mib_answer_is_read() {
    // The receiver promises 1 MiB, sends 64 KiB of it and stalls: reading it all would time out.
    let mut stalled = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n".to_vec();
    stalled.extend(vec![b'a'; 64 * 1024]);
    // And one that sends the whole MiB.
    let mut whole = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n".to_vec();
    whole.extend(vec![b'b'; 1024 * 1024]);
    for (reply, stall) in [(stalled, true), (whole, false)] {
        let (port, _) = receiver(reply, stall).await;
        let a = local(Duration::from_secs(5))
            .send(&message(&format!("http://127.0.0.1:{port}/")))
            .await;
        assert_eq!(a.outcome, Outcome::Delivered, "{a:?}");
        assert_eq!(a.response.len(), send::MAX_RESPONSE_BYTES);
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    // Accepts and reads, never writes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let a = local(Duration::from_millis(300))
        .send(&message(&format!("http://127.0.0.1:{port}/")))
        .await;
    assert_eq!(a.outcome, Outcome::Failed, "{a:?}");
    assert_eq!(a.status, None);
    assert_eq!(a.error.as_deref(), Some("timed out after 300 ms"));
}

#[tokio::test]
async fn a_closed_port_is_a_failure_to_connect() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let a = local(Duration::from_secs(5))
        .send(&message(&format!("http://127.0.0.1:{port}/")))
        .await;
    assert_eq!(a.outcome, Outcome::Failed);
    let error = a.error.unwrap();
    assert!(error.starts_with("could not connect"), "{error}");
    assert!(!error.contains("127.0.0.1"), "{error}");
}

#[test]
fn the_sender_and_its_attempts_can_cross_tasks() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let sender = Sender::production(Policy::Production, send::DEFAULT_TIMEOUT);
    send_sync(&sender);
    let msg = message("https://93.184.215.14/h");
    send(sender.send(&msg)); // the future, never polled
}
