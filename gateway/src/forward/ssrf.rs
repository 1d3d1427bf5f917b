//! The SSRF guard: webhook targets may not be this machine, its private networks or a cloud
//! metadata service.
//!
//! Checked at delivery time on the addresses actually connected to: an IP-literal URL is checked
//! before the request ([`check_url`]), and a host name is resolved by [`GuardedResolver`], which
//! hands the HTTP client only the permitted answers. Because the client connects to exactly the
//! addresses the resolver returned, a DNS answer that changes between a check and the connect
//! (rebinding) cannot slip through. Redirects are never followed, so a `Location` pointing inside
//! is just a failed attempt. `forward.allow_private_targets` turns the guard off for local
//! development and tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is not a permitted webhook target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Unspecified,
    Loopback,
    /// RFC 1918 (v4) and unique local `fc00::/7` (v6).
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud instance metadata service (`169.254.169.254`, `fd00:ec2::254`, …).
    Metadata,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedAddressSpace,
    Multicast,
    Broadcast,
    /// Documentation, benchmarking, protocol-assignment and reserved ranges.
    Reserved,
}

impl Forbidden {
    pub fn as_str(self) -> &'static str {
        match self {
            Forbidden::Unspecified => "unspecified address",
            Forbidden::Loopback => "loopback address",
            Forbidden::Private => "private address",
            Forbidden::LinkLocal => "link-local address",
            Forbidden::Metadata => "cloud metadata address",
            Forbidden::SharedAddressSpace => "shared (CGNAT) address",
            Forbidden::Multicast => "multicast address",
            Forbidden::Broadcast => "broadcast address",
            Forbidden::Reserved => "reserved address",
        }
    }
}

/// Whether `ip` may be a webhook target; `Some(reason)` when it may not.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        // AWS/GCP/Azure/OpenStack, and Alibaba Cloud.
        return Some(Forbidden::Metadata);
    }
    let reason = match (a, b, c) {
        (0, _, _) => Forbidden::Unspecified,
        (127, _, _) => Forbidden::Loopback,
        (10, _, _) => Forbidden::Private,
        (172, 16..=31, _) => Forbidden::Private,
        (192, 168, _) => Forbidden::Private,
        (169, 254, _) => Forbidden::LinkLocal,
        (100, 64..=127, _) => Forbidden::SharedAddressSpace,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Forbidden::Reserved,
        (198, 18..=19, _) => Forbidden::Reserved,
        (224..=239, _, _) => Forbidden::Multicast,
        _ if ip.is_broadcast() => Forbidden::Broadcast,
        (240..=255, _, _) => Forbidden::Reserved,
        _ => return None,
    };
    Some(reason)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    if ip.is_unspecified() {
        return Some(Forbidden::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Forbidden::Loopback);
    }
    // Addresses that carry an IPv4 address are judged by it: mapped `::ffff:a.b.c.d`, the
    // deprecated compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:AABB:CCDD::`.
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if segments[..6] == [0; 6] {
        return classify_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return classify_v4(embedded_v4(segments[1], segments[2]));
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Forbidden::Metadata);
    }
    let reason = match segments[0] {
        0xfc00..=0xfdff => Forbidden::Private,
        0xfe80..=0xfebf => Forbidden::LinkLocal,
        // Deprecated site-local.
        0xfec0..=0xfeff => Forbidden::Private,
        0xff00..=0xffff => Forbidden::Multicast,
        // Documentation 2001:db8::/32, Teredo 2001::/32 (tunnels to an arbitrary v4 address).
        0x2001 if segments[1] == 0x0db8 || segments[1] == 0 => Forbidden::Reserved,
        // Discard-only 100::/64.
        0x0100 if segments[1..4] == [0, 0, 0] => Forbidden::Reserved,
        _ => return None,
    };
    Some(reason)
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Why a target URL is refused before any connection is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("refused target: {0}")]
    Forbidden(&'static str),
    #[error("refused target: plain http is not allowed (set forward.allow_http)")]
    Http,
    #[error("refused target: the URL scheme must be http or https")]
    Scheme,
    #[error("refused target: the URL has no host")]
    NoHost,
}

/// The checks that need no DNS: the scheme, and the address when the host is an IP literal (the
/// URL parser has already normalised forms like `http://2130706433/` or `http://0x7f.1/`).
pub fn check_url(url: &Url, allow_http: bool, allow_private: bool) -> Result<(), TargetError> {
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(TargetError::Http),
        _ => return Err(TargetError::Scheme),
    }
    let ip = match url.host() {
        None => return Err(TargetError::NoHost),
        Some(url::Host::Domain(_)) => return Ok(()),
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    match classify(ip) {
        Some(reason) if !allow_private => Err(TargetError::Forbidden(reason.as_str())),
        _ => Ok(()),
    }
}

/// The HTTP client's DNS resolver: the system resolver (`getaddrinfo`), with every forbidden
/// answer removed unless private targets are allowed. A name with no permitted answer fails to
/// resolve, so no connection is attempted.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

/// The error a refused name resolves to; its text ends up in the attempt record.
#[derive(Debug, thiserror::Error)]
#[error("refused target: {host} resolves only to forbidden addresses ({reason})")]
pub struct ResolveRefused {
    host: String,
    reason: &'static str,
}

impl GuardedResolver {
    pub fn into_arc(self) -> Arc<GuardedResolver> {
        Arc::new(self)
    }

    /// Keep the permitted answers; fail when none is left.
    pub fn filter(
        &self,
        host: &str,
        answers: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, ResolveRefused> {
        let mut refused = None;
        let permitted: Vec<SocketAddr> = answers
            .into_iter()
            .filter(|addr| match classify(addr.ip()) {
                Some(reason) if !self.allow_private => {
                    refused = Some(reason);
                    false
                }
                _ => true,
            })
            .collect();
        match (permitted.is_empty(), refused) {
            (true, Some(reason)) => Err(ResolveRefused {
                host: host.to_owned(),
                reason: reason.as_str(),
            }),
            _ => Ok(permitted),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = *self;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let answers = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted = guard.filter(&host, answers)?;
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(text: &str) -> Option<Forbidden> {
        classify(text.parse().expect("an IP address"))
    }

    #[test]
    fn refuses_every_internal_v4_range() {
        for (ip, reason) in [
            ("127.0.0.1", Forbidden::Loopback),
            ("127.255.0.9", Forbidden::Loopback),
            ("0.0.0.0", Forbidden::Unspecified),
            ("10.1.2.3", Forbidden::Private),
            ("172.16.0.1", Forbidden::Private),
            ("172.31.255.255", Forbidden::Private),
            ("192.168.1.1", Forbidden::Private),
            ("169.254.1.1", Forbidden::LinkLocal),
            ("169.254.169.254", Forbidden::Metadata),
            ("100.100.100.200", Forbidden::Metadata),
            ("100.64.0.1", Forbidden::SharedAddressSpace),
            ("100.127.255.255", Forbidden::SharedAddressSpace),
            ("224.0.0.1", Forbidden::Multicast),
            ("255.255.255.255", Forbidden::Broadcast),
            ("240.0.0.1", Forbidden::Reserved),
            ("192.0.2.10", Forbidden::Reserved),
            ("198.18.0.1", Forbidden::Reserved),
        ] {
            assert_eq!(forbidden(ip), Some(reason), "{ip}");
        }
    }

    #[test]
    fn allows_public_v4() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "192.169.0.1",
        ] {
            assert_eq!(forbidden(ip), None, "{ip}");
        }
    }

    #[test]
    fn refuses_every_internal_v6_range_and_embedded_v4() {
        for (ip, reason) in [
            ("::1", Forbidden::Loopback),
            ("::", Forbidden::Unspecified),
            ("::ffff:127.0.0.1", Forbidden::Loopback),
            ("::ffff:10.0.0.1", Forbidden::Private),
            ("::ffff:169.254.169.254", Forbidden::Metadata),
            ("::127.0.0.1", Forbidden::Loopback),
            ("64:ff9b::a9fe:a9fe", Forbidden::Metadata),
            ("2002:c0a8:0101::1", Forbidden::Private),
            ("fd00:ec2::254", Forbidden::Metadata),
            ("fd12:3456::1", Forbidden::Private),
            ("fc00::1", Forbidden::Private),
            ("fe80::1", Forbidden::LinkLocal),
            ("fec0::1", Forbidden::Private),
            ("ff02::1", Forbidden::Multicast),
            ("2001:db8::1", Forbidden::Reserved),
            ("2001:0:4136:e378::1", Forbidden::Reserved),
        ] {
            assert_eq!(forbidden(ip), Some(reason), "{ip}");
        }
    }

    #[test]
    fn allows_public_v6() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(forbidden(ip), None, "{ip}");
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a URL")
    }

    #[test]
    fn refuses_ip_literal_urls_unless_allowed() {
        for target in [
            "http://127.0.0.1:8080/hook",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://10.0.0.1/",
            "http://0.0.0.0/",
        ] {
            assert!(
                matches!(
                    check_url(&url(target), true, false),
                    Err(TargetError::Forbidden(_))
                ),
                "{target}"
            );
            assert_eq!(check_url(&url(target), true, true), Ok(()), "{target}");
        }
    }

    #[test]
    fn checks_the_scheme() {
        assert_eq!(
            check_url(&url("http://example.com/"), false, false),
            Err(TargetError::Http)
        );
        assert_eq!(
            check_url(&url("https://example.com/"), false, false),
            Ok(())
        );
        assert_eq!(
            check_url(&url("ftp://example.com/"), true, true),
            Err(TargetError::Scheme)
        );
    }

    #[test]
    fn resolver_drops_forbidden_answers() {
        let guard = GuardedResolver {
            allow_private: false,
        };
        let private: SocketAddr = "10.0.0.1:0".parse().expect("addr");
        let public: SocketAddr = "93.184.215.14:0".parse().expect("addr");
        assert_eq!(
            guard
                .filter("mixed.example", [private, public])
                .expect("one is public"),
            vec![public]
        );
        let error = guard
            .filter("inside.example", [private])
            .expect_err("only private");
        assert!(error.to_string().contains("private address"), "{error}");
        let open = GuardedResolver {
            allow_private: true,
        };
        assert_eq!(
            open.filter("inside.example", [private]).expect("allowed"),
            vec![private]
        );
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let guard = GuardedResolver {
            allow_private: false,
        };
        let name: Name = "localhost".parse().expect("a name");
        let error = match guard.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(error) => error,
        };
        assert!(error.to_string().contains("refused target"), "{error}");
    }
}
