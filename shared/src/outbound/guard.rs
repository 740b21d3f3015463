//! The SSRF guard: which webhook URLs an app may register and which addresses a delivery may
//! connect to. Apps choose the URL, so without this a delivery could reach the cloud metadata
//! service, the VPC or the function's own loopback.
//!
//! Two checks, one policy: `validate_url` when an endpoint is created or updated (the URL's shape
//! and a literal-IP host), and `check_addr` on every address a name resolves to at send time. The
//! sender connects only to an address that passed `check_addr` (see `send`), so a name that
//! resolves differently the second time (DNS rebinding) gains nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Longest URL an endpoint may have (browsers and most servers cope with 2 KiB).
pub const MAX_URL_LEN: usize = 2048;

/// Where deliveries may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The deployed gateway: `https` only, public addresses only.
    Production,
    /// The local server and tests: also plain `http`, and loopback addresses (and the name
    /// `localhost`), so a developer's receiver on their machine works. Private and link-local
    /// addresses stay refused.
    Local,
}

/// Why a URL or an address is refused. The messages are written for a problem+json `detail`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the URL is not a valid absolute URL")]
    Unparseable,
    #[error("the URL's scheme must be {allowed}, not `{scheme}`")]
    Scheme {
        scheme: String,
        allowed: &'static str,
    },
    #[error("the URL must not contain a user name or password")]
    Userinfo,
    #[error("the URL must have a host")]
    NoHost,
    #[error("the URL's port must not be 0")]
    PortZero,
    #[error("the URL must not name a port (only a loopback receiver of the local server may)")]
    Port,
    #[error(
        "the URL may hold only URL characters (RFC 3986: letters, digits, `-._~:/?[]@!$&'()*+,;=`, and `%` before two hex digits) and no `#` fragment"
    )]
    Characters,
    #[error(
        "the host `{0}` is not a host name: dot-separated labels of letters and digits with single inner hyphens, the last starting with a letter"
    )]
    HostName(String),
    #[error("the host `{0}` is refused: it names this machine")]
    LocalName(String),
    #[error("the address {addr} is refused: it is {class}")]
    Address { addr: IpAddr, class: AddrClass },
    /// At send time: the name resolved, but only to refused addresses. The addresses are not
    /// shown (they may come from a private DNS zone); the class of the first is.
    #[error("the host resolves only to refused addresses ({0})")]
    ResolvesToRefused(AddrClass),
}

/// The kinds of address a webhook may not reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrClass {
    Unspecified,
    Loopback,
    Private,
    SharedAddressSpace,
    LinkLocal,
    UniqueLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    Reserved,
}

impl std::fmt::Display for AddrClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::LinkLocal => "a link-local address (this includes cloud metadata services)",
            Self::UniqueLocal => "a unique-local address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Reserved => "a reserved address",
        })
    }
}

/// Checks a webhook URL's shape and, when its host is an IP literal, the address. Names are
/// checked again at every send, after resolution.
pub fn validate_url(raw: &str, policy: Policy) -> Result<Url, GuardError> {
    if raw.len() > MAX_URL_LEN {
        return Err(GuardError::TooLong);
    }
    check_characters(raw)?;
    let url = Url::parse(raw).map_err(|_| GuardError::Unparseable)?;
    check_url(&url, policy)?;
    check_receiver(&url, policy)?;
    Ok(url)
}

/// What a saved endpoint may name beyond what a send may dial: a deployment's receivers are
/// named and listen on 443 (the API's schema says so); an address or a port is the local
/// server's, a port only for a receiver on this machine.
fn check_receiver(url: &Url, policy: Policy) -> Result<(), GuardError> {
    let (ip, loopback) = match url.host() {
        Some(Host::Ipv4(v4)) => (Some(IpAddr::V4(v4)), v4.is_loopback()),
        Some(Host::Ipv6(v6)) => (Some(IpAddr::V6(v6)), v6.is_loopback()),
        Some(Host::Domain(name)) => (None, is_local_name(name)),
        None => return Err(GuardError::NoHost),
    };
    match (policy, ip) {
        (Policy::Production, Some(ip)) => Err(GuardError::HostName(ip.to_string())),
        _ if url.port().is_some() && !(policy == Policy::Local && loopback) => {
            Err(GuardError::Port)
        }
        _ => Ok(()),
    }
}

fn is_local_name(name: &str) -> bool {
    let bare = name.trim_end_matches('.').to_ascii_lowercase();
    bare == "localhost" || bare.ends_with(".localhost")
}

/// The URL as given holds only what RFC 3986 allows, and no fragment: the parser would quietly
/// encode a space or a non-ASCII letter, and keep a `#...` the sender never sends, so an URL the
/// API's schema refuses would be taken as another one.
fn check_characters(raw: &str) -> Result<(), GuardError> {
    let b = raw.as_bytes();
    let ok_char = |c: u8| c.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=".contains(&c);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if b.len() > i + 2
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                i += 3;
                continue;
            }
            c if ok_char(c) => {}
            _ => return Err(GuardError::Characters),
        }
        i += 1;
    }
    Ok(())
}

/// The checks of `validate_url` on an already-parsed URL (the sender repeats them: a stored
/// URL may predate a stricter policy).
pub fn check_url(url: &Url, policy: Policy) -> Result<(), GuardError> {
    let allowed = match policy {
        Policy::Production => "`https`",
        Policy::Local => "`https` or `http`",
    };
    match (url.scheme(), policy) {
        ("https", _) | ("http", Policy::Local) => {}
        (scheme, _) => {
            return Err(GuardError::Scheme {
                scheme: scheme.to_owned(),
                allowed,
            });
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::Userinfo);
    }
    if url.port() == Some(0) {
        return Err(GuardError::PortZero);
    }
    // `url` has already normalised IPv4 in decimal, octal or hex (`http://2130706433/`) to an
    // address, so a literal cannot hide as a name.
    match url.host() {
        None => Err(GuardError::NoHost),
        Some(Host::Ipv4(v4)) => check_addr(IpAddr::V4(v4), policy),
        Some(Host::Ipv6(v6)) => check_addr(IpAddr::V6(v6), policy),
        Some(Host::Domain(name)) => check_name(name, policy),
    }
}

/// `localhost` and `*.localhost` always mean this machine (RFC 6761), whatever DNS says. Any
/// other name is a DNS host name (the parser lets `*`, `_` and a trailing dot through); the
/// last label starts with a letter, as no top-level domain is numeric.
fn check_name(name: &str, policy: Policy) -> Result<(), GuardError> {
    if name.is_empty() {
        return Err(GuardError::NoHost);
    }
    let local = is_local_name(name);
    if local && policy == Policy::Production {
        return Err(GuardError::LocalName(name.to_owned()));
    }
    if local {
        return Ok(());
    }
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric()))
    };
    let labels: Vec<&str> = name.split('.').collect();
    let last_starts_with_a_letter = labels
        .last()
        .and_then(|l| l.bytes().next())
        .is_some_and(|c| c.is_ascii_alphabetic());
    if !labels.iter().all(|l| label(l)) || !last_starts_with_a_letter {
        return Err(GuardError::HostName(name.to_owned()));
    }
    Ok(())
}

/// May a delivery connect to `ip` under `policy`?
pub fn check_addr(ip: IpAddr, policy: Policy) -> Result<(), GuardError> {
    match classify(ip) {
        None => Ok(()),
        Some(AddrClass::Loopback) if policy == Policy::Local => Ok(()),
        Some(class) => Err(GuardError::Address { addr: ip, class }),
    }
}

/// The refused class of `ip`, or None for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<AddrClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddrClass> {
    use AddrClass::*;
    // Most specific first; the list follows the IANA special-purpose registry.
    let table: &[([u8; 4], u32, AddrClass)] = &[
        ([255, 255, 255, 255], 32, Broadcast),
        ([0, 0, 0, 0], 32, Unspecified),
        ([0, 0, 0, 0], 8, Reserved), // "this network": 0.x.y.z reaches the local host on Linux
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal), // 169.254.169.254: the metadata service
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved), // IETF protocol assignments
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved), // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, class)| *class)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddrClass> {
    use AddrClass::*;
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    // Forms that carry an IPv4 address, which is what the packet reaches: judge that address.
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated), ::ffff:0:a.b.c.d (SIIT),
    // 64:ff9b::a.b.c.d (NAT64 well-known prefix).
    let embedded = |ip: Ipv6Addr| Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32);
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0; 8], 96)
        || in_v6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return classify_v4(embedded(ip));
    }
    // Only global unicast (2000::/3) is reachable on the internet; inside it, refuse the special
    // blocks. Outside it, name the well-known blocks and call the rest reserved.
    let table: &[([u16; 8], u32, AddrClass)] = &[
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Documentation),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Documentation),
        ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48, Benchmarking),
        // IETF protocol assignments, incl. Teredo (2001::/32, which embeds an IPv4 address).
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Reserved),
        // 6to4 embeds an IPv4 address and is deprecated: refused whole.
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, Reserved),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, UniqueLocal),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Private), // deprecated site-local
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Multicast),
    ];
    if let Some((_, _, class)) = table.iter().find(|(net, p, _)| in_v6(ip, *net, *p)) {
        return Some(*class);
    }
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some(Reserved); // incl. 64:ff9b:1::/48 local NAT64 and 100::/64 discard
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Policy::*;

    fn refused(url: &str, policy: Policy) -> GuardError {
        validate_url(url, policy).expect_err(url)
    }

    fn class(url: &str, policy: Policy) -> AddrClass {
        match refused(url, policy) {
            GuardError::Address { class, .. } => class,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn production_refuses_the_issue_s_addresses() {
        assert!(matches!(
            refused("http://127.0.0.1", Production),
            GuardError::Scheme { .. }
        ));
        assert_eq!(class("https://127.0.0.1", Production), AddrClass::Loopback);
        assert!(matches!(
            refused("http://169.254.169.254", Production),
            GuardError::Scheme { .. }
        ));
        assert_eq!(
            class("https://169.254.169.254/latest/meta-data/", Production),
            AddrClass::LinkLocal
        );
        assert_eq!(class("https://10.0.0.1", Production), AddrClass::Private);
        assert_eq!(
            class("https://[::ffff:10.0.0.1]", Production),
            AddrClass::Private
        );
        // The same addresses in the local policy: plain http is fine, the address is not.
        assert_eq!(class("http://169.254.169.254", Local), AddrClass::LinkLocal);
        assert_eq!(class("http://10.0.0.1", Local), AddrClass::Private);
        assert_eq!(class("http://[::ffff:10.0.0.1]", Local), AddrClass::Private);
    }

    #[test]
    fn refused_ranges_in_every_spelling() {
        let cases = [
            ("https://0.0.0.0", AddrClass::Unspecified),
            ("https://0.1.2.3", AddrClass::Reserved),
            ("https://2130706433", AddrClass::Loopback), // 127.0.0.1 in decimal
            ("https://0x7f.1", AddrClass::Loopback),
            ("https://0177.0.0.1", AddrClass::Loopback),
            ("https://172.16.0.1", AddrClass::Private),
            ("https://172.31.255.255", AddrClass::Private),
            ("https://192.168.1.1", AddrClass::Private),
            ("https://100.64.0.1", AddrClass::SharedAddressSpace),
            ("https://100.127.255.254", AddrClass::SharedAddressSpace),
            ("https://192.0.0.8", AddrClass::Reserved),
            ("https://192.0.2.1", AddrClass::Documentation),
            ("https://198.51.100.7", AddrClass::Documentation),
            ("https://203.0.113.9", AddrClass::Documentation),
            ("https://198.18.0.1", AddrClass::Benchmarking),
            ("https://198.19.255.1", AddrClass::Benchmarking),
            ("https://224.0.0.1", AddrClass::Multicast),
            ("https://239.255.255.250", AddrClass::Multicast),
            ("https://240.0.0.1", AddrClass::Reserved),
            ("https://255.255.255.255", AddrClass::Broadcast),
            ("https://[::]", AddrClass::Unspecified),
            ("https://[::1]", AddrClass::Loopback),
            ("https://[::ffff:127.0.0.1]", AddrClass::Loopback),
            ("https://[::ffff:169.254.169.254]", AddrClass::LinkLocal),
            ("https://[::ffff:a9fe:a9fe]", AddrClass::LinkLocal),
            ("https://[::10.0.0.1]", AddrClass::Private), // IPv4-compatible
            ("https://[::ffff:0:192.168.0.1]", AddrClass::Private), // SIIT
            ("https://[64:ff9b::10.1.2.3]", AddrClass::Private), // NAT64
            ("https://[64:ff9b:1::1]", AddrClass::Reserved),
            ("https://[fe80::1]", AddrClass::LinkLocal),
            ("https://[febf::1]", AddrClass::LinkLocal),
            ("https://[fc00::1]", AddrClass::UniqueLocal),
            ("https://[fd12:3456::1]", AddrClass::UniqueLocal),
            ("https://[fd00:ec2::254]", AddrClass::UniqueLocal), // AWS IMDS over IPv6
            ("https://[ff02::1]", AddrClass::Multicast),
            ("https://[2001:db8::1]", AddrClass::Documentation),
            ("https://[3fff::1]", AddrClass::Documentation),
            ("https://[2001:2::1]", AddrClass::Benchmarking),
            ("https://[2001::1]", AddrClass::Reserved), // Teredo
            ("https://[2002:a00:1::1]", AddrClass::Reserved), // 6to4 of 10.0.0.1
            ("https://[100::1]", AddrClass::Reserved),
        ];
        for (url, want) in cases {
            assert_eq!(class(url, Production), want, "{url}");
            if want != AddrClass::Loopback {
                assert_eq!(class(url, Local), want, "{url} (local)");
            }
        }
    }

    #[test]
    fn names_pass_and_public_addresses_only_locally() {
        for url in [
            "https://hooks.example.com/idv",
            "https://a.b-c.example/x?y=1",
        ] {
            let parsed = validate_url(url, Production).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(parsed.as_str().starts_with("https://"));
        }
        // A public address passes the address checks; as a receiver it is the local server's.
        for url in [
            "https://93.184.215.14/hooks",
            "https://172.32.0.1",
            "https://100.128.0.1",
            "https://[2606:4700::6810:84e5]/",
        ] {
            assert!(
                matches!(refused(url, Production), GuardError::HostName(_)),
                "{url}"
            );
            assert!(validate_url(url, Local).is_ok(), "{url}");
        }
    }

    #[test]
    fn url_shape_rules() {
        assert_eq!(
            refused("https://user:pw@hooks.example.com/", Production),
            GuardError::Userinfo
        );
        assert_eq!(
            refused("https://user@hooks.example.com/", Production),
            GuardError::Userinfo
        );
        assert_eq!(
            refused("https://hooks.example.com:0/", Production),
            GuardError::PortZero
        );
        assert_eq!(refused("not-a-url", Production), GuardError::Unparseable);
        assert_eq!(refused("not a url", Production), GuardError::Characters);
        assert_eq!(refused("/relative", Production), GuardError::Unparseable);
        assert!(matches!(
            refused("ftp://hooks.example.com/", Local),
            GuardError::Scheme { .. }
        ));
        assert!(matches!(
            refused("file:///etc/passwd", Local),
            GuardError::Scheme { .. }
        ));
        assert!(matches!(
            refused("http://hooks.example.com/", Production),
            GuardError::Scheme { .. }
        ));
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(refused(&long, Production), GuardError::TooLong);
    }

    #[test]
    fn localhost_names_only_in_the_local_policy() {
        for url in [
            "https://localhost/",
            "https://LOCALHOST:8443/",
            "https://localhost./",
            "https://api.localhost/",
        ] {
            assert!(
                matches!(refused(url, Production), GuardError::LocalName(_)),
                "{url}"
            );
            assert!(validate_url(url, Local).is_ok(), "{url}");
        }
        assert!(validate_url("http://127.0.0.1:8080/hook", Local).is_ok());
        assert!(validate_url("http://[::1]:8080/hook", Local).is_ok());
        assert!(validate_url("https://notlocalhost.example/", Production).is_ok());
    }

    #[test]
    fn only_what_the_api_schema_takes_is_taken() {
        for url in [
            "https://c*",
            "https://c*/",
            "https://a_b.example/",
            "https://-a.example/",
            "https://a-.example/",
            "https://a--b.example/",
            "https://a.example./",
            "https://a..example/",
            // A double hyphen, as the schema's pattern: no IDNA label to refuse later.
            "https://xn--bcher-kva.example/",
            "https://b\u{fc}cher.example/",
        ] {
            assert!(
                matches!(
                    refused(url, Production),
                    GuardError::HostName(_) | GuardError::Characters
                ),
                "{url}"
            );
            assert!(validate_url(url, Local).is_err(), "{url}");
        }
        for url in [
            "https://a.example/a b",
            "https://a.example/#frag",
            "https://a.example/%zz",
            "https://a.example/\u{e9}",
            "https://a.example/\"q\"",
        ] {
            assert!(
                matches!(refused(url, Production), GuardError::Characters),
                "{url}"
            );
        }
        assert!(matches!(
            refused("https://a.example:8443/hook", Production),
            GuardError::Port
        ));
        // A numeric last label is an address to the parser, or nothing.
        assert!(validate_url("https://example.123/", Production).is_err());
        assert!(matches!(
            refused("https://a.example:8443/hook", Local),
            GuardError::Port
        ));
        for url in [
            "https://a.example/hooks/idv?tenant=a&x=%41",
            "https://A-1.b2.Example/",
        ] {
            assert!(validate_url(url, Production).is_ok(), "{url}");
        }
    }

    #[test]
    fn details_read_well() {
        let e = refused("https://169.254.169.254", Production);
        assert_eq!(
            e.to_string(),
            "the address 169.254.169.254 is refused: it is a link-local address (this includes cloud metadata services)"
        );
        assert_eq!(
            refused("http://hooks.example.com", Production).to_string(),
            "the URL's scheme must be `https`, not `http`"
        );
    }
}
