//! An app's webhook endpoint URL (`idv::outbound::validate_url`, what `POST /v1/endpoints`
//! checks). Never panics; what production accepts is `https`, has a host, no credentials, and an
//! IP-literal host that is a public address; what the local policy accepts beyond that is plain
//! `http` or a loopback address, never a private one.
#![no_main]

use idv::outbound::guard::{AddrClass, classify};
use idv::outbound::{Policy, validate_url};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fn literal(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(url) = validate_url(&raw, Policy::Production) {
        assert_eq!(url.scheme(), "https", "{raw}");
        assert!(url.host().is_some() && url.username().is_empty() && url.password().is_none());
        if let Some(ip) = literal(&url) {
            assert_eq!(classify(ip), None, "{raw}: {ip} is not public");
        }
    }
    if let Ok(url) = validate_url(&raw, Policy::Local) {
        assert!(matches!(url.scheme(), "https" | "http"), "{raw}");
        if let Some(ip) = literal(&url) {
            assert!(
                matches!(classify(ip), None | Some(AddrClass::Loopback)),
                "{raw}: {ip}"
            );
        }
    }
});
