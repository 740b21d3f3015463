//! Warm cost in-process (criterion), run by scripts/bench (never by `cargo test`):
//! - each webhook's authenticity check + parse at 1 KiB and 16 KiB, beside its cryptographic floor
//!   (the bare HMAC-SHA256 / AES-256-CBC of the same bytes);
//! - token issuing and a status read through the full handler (`idv::http::handle`) on the
//!   in-memory store, with the local server's simulators behind it.

use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, Method};
use idv::http::{ApiRequest, Function, handle};
use idv::providers::{authento, passbase};
use idv::webhooks::{aes_cbc_body, hmac_digest};
use serde_json::json;
use sha2::Sha256;
use std::hint::black_box;

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("16KiB", 16 * 1024)];
const HMAC_SECRET: &str = "whsec_bench_0123456789abcdef0123456789";
const AES_KEY: &str = "0123456789abcdef0123456789abcdef";

/// A JSON body of exactly `size` bytes: the event padded by a field nobody reads.
fn padded(event: serde_json::Value, size: usize) -> Vec<u8> {
    let mut e = event;
    e["padding"] = json!("");
    let base = serde_json::to_vec(&e).unwrap().len();
    e["padding"] = json!("x".repeat(size.saturating_sub(base)));
    let out = serde_json::to_vec(&e).unwrap();
    assert_eq!(out.len(), size);
    out
}

fn webhooks(c: &mut Criterion) {
    let mut g = c.benchmark_group("webhook");
    for (name, size) in SIZES {
        // Authento: X-PAYLOAD-DIGEST (hex HMAC-SHA256 of the raw body), then the JSON.
        let body = padded(
            json!({"event": "applicantReviewed", "userIdentifier": "user-bench"}),
            size,
        );
        let digest = hmac_digest::sign_hex(HMAC_SECRET, &body);
        g.bench_with_input(
            BenchmarkId::new("authento_check_parse", name),
            &body,
            |b, body| {
                b.iter(|| {
                    assert!(authento::webhook::is_authentic(
                        [HMAC_SECRET],
                        black_box(body),
                        Some(&digest),
                        None
                    ));
                    authento::webhook::parse(black_box(body)).unwrap()
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("floor_hmac_sha256", name),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_SECRET.as_bytes()).unwrap();
                    mac.update(black_box(body));
                    mac.finalize().into_bytes()
                })
            },
        );

        // Passbase: base64(IV || AES-256-CBC(body)); authentic iff it decrypts and parses.
        let plain = padded(
            json!({"event": "VERIFICATION_REVIEWED", "key": "6c7a4b8e-1d2f-4a3b-9c8d-0e1f2a3b4c5d",
                   "status": "approved", "created": 1_700_000_000, "updated": 1_700_000_060}),
            size,
        );
        let sealed = aes_cbc_body::encrypt(AES_KEY, [7; 16], &plain).unwrap();
        assert!(passbase::webhook::open([AES_KEY], false, sealed.as_bytes()).is_some());
        g.bench_with_input(
            BenchmarkId::new("passbase_check_parse", name),
            &sealed,
            |b, sealed| {
                b.iter(|| {
                    passbase::webhook::open([AES_KEY], false, black_box(sealed.as_bytes())).unwrap()
                })
            },
        );
        // The wire format's own floor: base64 decoding of the body, then the same decryption.
        g.bench_with_input(
            BenchmarkId::new("floor_base64_aes256cbc", name),
            &sealed,
            |b, sealed| {
                b.iter(|| {
                    let raw = STANDARD.decode(black_box(sealed.as_bytes())).unwrap();
                    let (iv, ct) = raw.split_at(16);
                    cbc::Decryptor::<aes::Aes256>::new_from_slices(AES_KEY.as_bytes(), iv)
                        .unwrap()
                        .decrypt_padded_vec::<Pkcs7>(ct)
                        .unwrap()
                })
            },
        );
        let raw = STANDARD.decode(&sealed).unwrap();
        g.bench_with_input(BenchmarkId::new("floor_aes256cbc", name), &raw, |b, raw| {
            b.iter(|| {
                let (iv, ct) = raw.split_at(16);
                cbc::Decryptor::<aes::Aes256>::new_from_slices(AES_KEY.as_bytes(), iv)
                    .unwrap()
                    .decrypt_padded_vec::<Pkcs7>(black_box(ct))
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn handlers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key = "idv_sk_bench_0123456789abcdef".to_owned();
    let running = rt.block_on(async {
        idv_local::start(idv_local::Options {
            port: 0,
            store: idv_local::StoreChoice::Memory,
            api_keys: vec![("app-bench".into(), key.clone())],
            settings: Default::default(),
            authento_rate_limit: 1_000_000,
            // Credentials generated per start, no secret file, no background reconcile.
            ..idv_local::Options::default()
        })
        .await
        .unwrap()
    });
    let app = running.app.clone();
    let request = |method: Method, path: &str, body: String| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        ApiRequest {
            method,
            path: path.to_owned(),
            query: ApiRequest::parse_query(Some(query)),
            headers,
            body: bytes::Bytes::from(body),
        }
    };
    let mut g = c.benchmark_group("handler_memory_store");
    let mut n = 0u64;
    g.bench_function("issue_token_new_user", |b| {
        b.iter(|| {
            n += 1;
            let body = json!({"user_id": format!("user-b{n}"), "verification_type": "BASIC"});
            let r = rt.block_on(handle(
                &app,
                Function::named("issue-token").unwrap(),
                request(Method::POST, "/v1/tokens", body.to_string()),
            ));
            assert_eq!(r.status, 201);
        })
    });
    let r = rt.block_on(handle(
        &app,
        Function::named("issue-token").unwrap(),
        request(
            Method::POST,
            "/v1/tokens",
            json!({"user_id": "user-read", "verification_type": "BASIC"}).to_string(),
        ),
    ));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let path = format!(
        "/v1/sessions/{}?refresh=false",
        v["session"]["id"].as_str().unwrap()
    );
    g.bench_function("get_session_stored", |b| {
        b.iter(|| {
            let r = rt.block_on(handle(
                &app,
                Function::GET_SESSION,
                request(Method::GET, &path, String::new()),
            ));
            assert_eq!(r.status, 200);
        })
    });
    g.finish();
    rt.block_on(running.stop());
}

criterion_group!(benches, webhooks, handlers);
criterion_main!(benches);
