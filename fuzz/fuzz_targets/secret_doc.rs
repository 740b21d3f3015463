//! The gateway's secret document (`SecretDoc::parse`). Input: the secret's JSON text. A parsed
//! document meets the documented rules; a refusal's message is one of the fixed messages, quoting
//! at most a tenant name, never a secret value.
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
            for k in &doc.api_keys {
                assert!(k.sha256.len() == 64 && k.sha256.bytes().all(|c| c.is_ascii_hexdigit()));
            }
            if let Some(p) = &doc.passbase {
                assert_eq!(p.webhook_secret.len(), 32);
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

/// The message is one of `SecretDoc::parse`'s, and the only text it takes from the input is a
/// tenant name (quoted as Rust's `{:?}` does).
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
    if let Some(rest) = msg.strip_prefix("api key digest of tenant ") {
        let quoted = rest
            .strip_suffix(" is not 64 hex chars")
            .expect("the digest message");
        let tenants = tenants(text);
        assert!(
            tenants.iter().any(|t| format!("{t:?}") == quoted),
            "{msg} quotes no tenant of {tenants:?}"
        );
        return;
    }
    assert!(
        msg == format!("fingerprint_key must be at least {MIN_FINGERPRINT_KEY} characters")
            || msg == "passbase.webhook_secret must be exactly 32 characters (the AES-256 key)",
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
