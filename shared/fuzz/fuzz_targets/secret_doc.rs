//! The gateway's secret document (`SecretDoc::parse`). Input: the secret's JSON text. A parsed
//! document meets the documented rules; a refusal's message is one of the fixed messages, quoting
//! at most a valid tenant name, never a secret value.
#![no_main]

use idv::secrets::{MIN_FINGERPRINT_KEY, SecretDoc};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SecretDoc::parse(text) {
        Ok(doc) => {
            assert!(doc.fingerprint_key.trim().len() >= MIN_FINGERPRINT_KEY);
            let mut digests: Vec<String> = Vec::new();
            for k in &doc.api_keys {
                assert!(tenant_rule(&k.tenant), "{:?}", k.tenant);
                assert!(k.sha256.len() == 64 && k.sha256.bytes().all(|c| c.is_ascii_hexdigit()));
                let d = k.sha256.to_ascii_lowercase();
                assert!(!digests.contains(&d), "a digest listed twice");
                digests.push(d);
            }
            use idv::providers::{authento, passbase};
            if let Some(p) = doc.provider::<passbase::Secrets>("passbase").unwrap() {
                assert_eq!(p.webhook_secret.expose().len(), 32);
                assert!(!p.api_key.expose().trim().is_empty());
            }
            if let Some(a) = doc.provider::<authento::Secrets>("authento").unwrap() {
                assert!(
                    !a.webhook_secret.expose().trim().is_empty(),
                    "an empty HMAC key"
                );
            }
            let shown = format!("{doc:?}");
            assert!(
                !shown.contains(&doc.fingerprint_key),
                "Debug shows the fingerprint key"
            );
        }
        Err(msg) => fixed_message(&msg, text),
    }
});

/// `[a-z0-9][a-z0-9_-]{0,62}`, written out again.
fn tenant_rule(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

/// The message is one of `SecretDoc::parse`'s: a position, a field name, an entry's index, or a
/// tenant name that is in the document and a valid one (so never a secret someone put there).
fn fixed_message(msg: &str, text: &str) {
    if let Some(rest) = msg.strip_prefix("secret JSON is invalid at line ") {
        // "<n> column <n> (<category>)": numbers and a serde category only.
        assert!(
            rest.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '(' || c == ')'),
            "{msg}"
        );
        return;
    }
    let quoted_tenant = |quoted: &str| {
        let tenants = tenants(text);
        assert!(
            tenants
                .iter()
                .any(|t| tenant_rule(t) && format!("{t:?}") == quoted),
            "{msg} quotes no valid tenant of {tenants:?}"
        );
    };
    if let Some(rest) = msg.strip_prefix("api key digest of tenant ") {
        quoted_tenant(
            rest.strip_suffix(" is not 64 hex chars")
                .expect("the digest message"),
        );
        return;
    }
    if let Some(rest) = msg.strip_prefix("api_keys[") {
        let (index, rest) = rest.split_once(']').expect("an index");
        assert!(index.parse::<usize>().is_ok(), "{msg}");
        if let Some(q) = rest.strip_prefix(" (tenant ") {
            quoted_tenant(
                q.strip_suffix(") repeats the digest of an earlier entry")
                    .expect("the repeat message"),
            );
        } else {
            assert_eq!(rest, ".tenant must match [a-z0-9][a-z0-9_-]{0,62}", "{msg}");
        }
        return;
    }
    // A provider's part: its check names `<provider>.<field>` and states the rule, a fixed text
    // of the provider's (it interpolates no value: the unit tests of each provider's check and of
    // `secrets` hold that); here, that the message is shaped so and names a registered provider.
    let provider_rule = idv::providers::registry::names().iter().any(|name| {
        msg.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.split_once(' '))
            .is_some_and(|(field, rule)| {
                !field.is_empty()
                    && field.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
                    && rule.contains("must ")
            })
    });
    if provider_rule {
        return;
    }
    assert!(
        msg == format!("fingerprint_key must be at least {MIN_FINGERPRINT_KEY} characters"),
        "unexpected message {msg:?}"
    );
}

/// The tenant names, read as leniently as `SecretDoc` reads them (unknown fields ignored, unchecked).
fn tenants(text: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        api_keys: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        tenant: String,
    }
    serde_json::from_str::<Doc>(text).map_or_else(
        |_| Vec::new(),
        |d| d.api_keys.into_iter().map(|e| e.tenant).collect(),
    )
}
