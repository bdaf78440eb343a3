//! SSRF protection: a third party's endpoint is configured by an entity admin, so without a
//! check an admin could make Revisit call its own loopback services, the cloud metadata address
//! or the private network it runs in. Every address is checked at call time, after resolution
//! (a name that resolves to a public address today may resolve to 127.0.0.1 tomorrow).
//!
//! Two doors, both guarded: names go through [`GuardedResolver`] (reqwest's DNS hook), and IP
//! literals, which reqwest connects to without resolving, are checked by [`check_literal`].

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// A target refused because it is not a public address.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} is {ip}, a loopback, private or otherwise non-public address")]
pub(crate) struct Blocked {
    pub host: String,
    pub ip: IpAddr,
}

/// Whether `ip` is an address a third-party scheduler must not be on (unless private networks
/// are allowed): loopback, private, link-local, CGNAT, multicast, unspecified, broadcast,
/// reserved, and the IPv6 forms that embed such an IPv4 address.
pub(crate) fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_loopback()              // 127.0.0.0/8
        || ip.is_private()        // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()     // 169.254/16 (cloud metadata)
        || ip.is_multicast()      // 224/4
        || ip.is_broadcast()
        || a == 0                 // 0/8 "this network", including 0.0.0.0
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10 CGNAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0/24 IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15 benchmarking networks
        || a >= 240 // 240/4 reserved
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_blocked_v4(v4);
    }
    let seg = ip.segments();
    // 64:ff9b::/96, NAT64: the embedded IPv4 address is what is reached.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        let o = ip.octets();
        return is_blocked_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // 6to4 (2002::/16) embeds an IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        let o = ip.octets();
        return is_blocked_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1) // 64:ff9b:1::/48 local NAT64
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        // ::/96, IPv4-compatible (deprecated): ::a.b.c.d
        || (seg[..6] == [0, 0, 0, 0, 0, 0])
}

/// Refuses an IP-literal host that is not public. The `url` crate has already normalised the
/// odd spellings (`2130706433`, `0x7f000001`, `0177.0.0.1` are all `127.0.0.1`); names pass
/// here and are checked by the resolver.
pub(crate) fn check_literal(url: &Url, allow_private: bool) -> Result<(), Blocked> {
    if allow_private {
        return Ok(());
    }
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_blocked(ip) {
        Err(Blocked {
            host: url.host_str().unwrap_or_default().to_string(),
            ip,
        })
    } else {
        Ok(())
    }
}

/// The outbound client's DNS resolver: the system's resolution, refused as a whole when any
/// resolved address is not public (a name with one public and one private address could
/// otherwise be steered to the private one).
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(allow_private: bool) -> Arc<Self> {
        Arc::new(Self { allow_private })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && let Some(bad) = addrs.iter().find(|a| is_blocked(a.ip())) {
                return Err(Box::new(Blocked { host, ip: bad.ip() }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The [`Blocked`] refusal somewhere in an error's chain of causes, if there is one.
pub(crate) fn find_blocked(err: &(dyn std::error::Error + 'static)) -> Option<Blocked> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(b) = e.downcast_ref::<Blocked>() {
            return Some(b.clone());
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_blocked_and_public_ones_are_not() {
        for s in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
        ] {
            assert!(is_blocked(s.parse().unwrap()), "{s} should be blocked");
        }
        for s in [
            "8.8.8.8",
            "93.184.216.34",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_blocked(s.parse().unwrap()), "{s} should be allowed");
        }
    }

    #[test]
    fn odd_spellings_of_loopback_are_literals_after_parsing() {
        for u in [
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://0177.0.0.1/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[::1]:8080/x",
        ] {
            let url = Url::parse(u).unwrap();
            assert!(check_literal(&url, false).is_err(), "{u}");
            assert!(check_literal(&url, true).is_ok(), "{u}");
        }
        assert!(check_literal(&Url::parse("http://example.com/").unwrap(), false).is_ok());
    }
}

#[cfg(test)]
mod more_ranges {
    use super::*;

    #[test]
    fn six_to_four_local_nat64_and_benchmark_ranges_are_blocked() {
        for ip in [
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "64:ff9b:1::a00:1",
            "198.18.0.1",
            "198.19.255.1",
        ] {
            assert!(is_blocked(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["2002:808:808::1", "198.20.0.1", "8.8.8.8"] {
            assert!(!is_blocked(ip.parse().unwrap()), "{ip}");
        }
    }
}
