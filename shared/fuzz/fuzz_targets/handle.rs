//! One whole request through `idv::http::handle`, as a Lambda function serves it: an in-memory
//! store, known secrets, providers on a closed loopback port (so every provider call fails fast
//! and retryably). Input: `flags \0 method \0 path \0 query \0 headers \0 body`, headers as
//! `name: value` lines; the flags are a function's binary name (the seeds: `webhook-stripe`), or a
//! byte that picks the function and one that may add a valid API key, a valid webhook signature or
//! a real encryption of the body, so the input reaches past authentication.
//! Every answer is well-formed (JSON, problem+json for errors) and input alone never makes a 500.
//! `FUZZ_SHOW=1 BINARY -runs=0 CORPUS` prints each answer: how deep a corpus reaches.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use idv::App;
use idv::clock::ManualClock;
use idv::config::Config;
use idv::http::{ApiRequest, Function, handle};
use idv::secrets::{SecretDoc, SecretSource};
use idv::store::MemoryStore;
use idv::webhooks::{aes_cbc_body, hmac_digest};
use idv_fuzz::{fields, problem_body};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::sync::Arc;

// The sample secrets of events/ (events/README.md), so its requests are seeds that authenticate.
const API_KEY: &str = "idv_sk_events_sample_key";
const AUTHENTO_SECRET: &str = "events-sample-webhook-secret";
const PROVE_SECRET: &str = "events-sample-prove-webhook-secret";
const STRIPE_SECRET: &str = "whsec_events-sample-stripe-secret";
const PASSBASE_SECRET: &str = "events-sample-passbase-secret-32";
/// Just after the sample Prove token's `iat`.
const NOW: i64 = 1_795_000_060;
/// A fresh store now and then, so a long run does not grow one without bound.
const REQUESTS_PER_APP: usize = 20_000;

/// Every HTTP function (reconcile is not one), as the registry derives them.
static FUNCTIONS: std::sync::LazyLock<Vec<Function>> = std::sync::LazyLock::new(|| {
    Function::all()
        .into_iter()
        .filter(|f| *f != Function::RECONCILE)
        .collect()
});

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    served: usize,
    /// `FUZZ_SHOW=1`: print every answer (to see how deep a corpus reaches).
    show: bool,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

fn harness() -> Harness {
    // A port that was free a moment ago and is closed now: connections are refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = format!("http://127.0.0.1:{closed}");
    let env = [
        ("IDV_STORE", "memory"),
        ("IDV_SECRETS_FILE", "unused"),
        ("IDV_AUTHENTO_API_URL", &provider),
        ("IDV_AUTHENTO_VERIFY_URL", &provider),
        ("IDV_PROVE_NA_URL", &provider),
        ("IDV_PROVE_EU_URL", &provider),
        ("IDV_PASSBASE_API_URL", &provider),
        ("IDV_NEVIS_API_URL", &provider),
        ("IDV_STRIPE_API_URL", &provider),
        ("IDV_AUTHENTO_ISSUER", "fuzz.example"),
        ("IDV_ALLOW_HTTP_PROVIDERS", "true"),
        ("IDV_PROVIDER_TIMEOUT_MS", "100"),
    ];
    let config = Config::from_lookup(|k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(API_KEY));
    let doc = SecretDoc::parse(
        &json!({
            "fingerprint_key": "fuzz-fingerprint-key-0123456789abcdef",
            "api_keys": [{"tenant": "fuzz", "sha256": digest}],
            "authento": {"api_key": "k", "api_secret": "s", "jwt_secret": "fuzz-jwt-secret", "webhook_secret": AUTHENTO_SECRET},
            "prove": {"client_id": "c", "client_secret": "s", "webhook_secret": PROVE_SECRET},
            "nevis": {"access_key": "a"},
            "passbase": {"api_key": "k", "webhook_secret": PASSBASE_SECRET},
            "stripe": {"api_key": "sk_test_k", "webhook_secret": STRIPE_SECRET},
        })
        .to_string(),
    )
    .unwrap();
    let clock = ManualClock::new(time::OffsetDateTime::from_unix_timestamp(NOW).unwrap());
    let app = App::new(
        config,
        Arc::new(MemoryStore::new()),
        SecretSource::Static(Arc::new(doc)),
        Arc::new(clock),
    );
    // Paused time: retry backoffs and timeouts pass at once instead of sleeping.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    Harness {
        rt,
        app: Arc::new(app),
        served: 0,
        show: std::env::var_os("FUZZ_SHOW").is_some(),
    }
}

fuzz_target!(|data: &[u8]| {
    let ([flags, method, path, query, headers], body) = fields::<5>(data);
    let named = std::str::from_utf8(flags).ok().and_then(Function::named);
    let (function, flags) = match flags {
        _ if named.is_some() => (named.unwrap(), 0),
        [f, rest @ ..] => (
            FUNCTIONS[usize::from(*f) % FUNCTIONS.len()],
            rest.first().copied().unwrap_or(0),
        ),
        [] => (Function::START_SESSION, 0),
    };
    let Ok(method) = Method::from_bytes(if method.is_empty() { b"POST" } else { method }) else {
        return;
    };
    let path = String::from_utf8_lossy(path);
    let query = String::from_utf8_lossy(query);
    let mut body = Bytes::copy_from_slice(body);

    let mut map = HeaderMap::new();
    for line in headers.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) {
            map.append(n, v);
        }
    }
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            map.insert(name, v);
        }
    };
    if flags & 1 != 0 {
        set("authorization", format!("Bearer {API_KEY}"));
        set("content-type", "application/json".into());
    }
    if flags & 2 != 0 {
        set(
            "x-payload-digest",
            hmac_digest::sign_hex(AUTHENTO_SECRET, &body),
        );
    }
    if flags & 4 != 0 {
        let claims = json!({"iss": "Prove Identity", "iat": NOW - 5, "exp": NOW + 300});
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(PROVE_SECRET.as_bytes()),
        )
        .unwrap();
        set("x-prove-authorization", format!("Bearer {jwt}"));
    }
    if flags & 16 != 0 {
        let mut signed = format!("{NOW}.").into_bytes();
        signed.extend_from_slice(&body);
        set(
            "stripe-signature",
            format!(
                "t={NOW},v1={}",
                hmac_digest::sign_hex(STRIPE_SECRET, &signed)
            ),
        );
    }
    if flags & 8 != 0 {
        let iv: [u8; 16] = std::array::from_fn(|i| i as u8);
        body = Bytes::from(aes_cbc_body::encrypt(PASSBASE_SECRET, iv, &body).unwrap());
    }

    let req = ApiRequest {
        method,
        path: path.into_owned(),
        query: ApiRequest::parse_query(Some(&query)),
        headers: map,
        body,
    };
    HARNESS.with_borrow_mut(|h| {
        let h = h.get_or_insert_with(harness);
        if h.served == REQUESTS_PER_APP {
            *h = harness();
        }
        h.served += 1;
        let resp = h.rt.block_on(handle(&h.app, function, req));
        if h.show {
            eprintln!(
                "{function:?} -> {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            );
        }
        well_formed(&resp);
    });
});

fn well_formed(resp: &idv::http::ApiResponse) {
    let status = resp.status.as_u16();
    assert_ne!(
        status,
        500,
        "input alone made a 500: {}",
        String::from_utf8_lossy(&resp.body)
    );
    assert!(
        matches!(status, 200..=299 | 400..=499 | 502 | 503),
        "status {status}"
    );
    if status >= 400 {
        problem_body(resp, status);
        if status >= 502 {
            assert!(
                resp.headers.contains_key(http::header::RETRY_AFTER) || status == 502,
                "a retryable answer says when"
            );
        }
    } else {
        assert_eq!(
            resp.headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        serde_json::from_slice::<Value>(&resp.body).expect("a JSON body");
    }
}
