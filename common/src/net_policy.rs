//! Which network destinations a delivery may reach (SSRF protection).
//!
//! A tenant chooses the URL, so without a policy Hookfleet would POST
//! wherever a tenant points it: the cloud metadata service, Redis, an admin
//! panel on the private network. Two checks use this one policy:
//! the API refuses URLs whose host is a restricted address in any spelling
//! (the `url` crate normalises `127.1`, `0x7f.0.0.1` and `2130706433` to
//! `127.0.0.1`) or a `localhost` name; the worker checks every address a
//! name resolves to when it connects, so a public-looking name that resolves
//! to an internal address is refused too. `HOOKFLEET_ALLOW_CIDRS` opens
//! ranges (the tests open 127.0.0.0/8 for their local receivers).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network, `addr/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a bare address (a /32 or /128).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has an invalid prefix length"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::from(net)),
        prefix,
    }
    .contains(IpAddr::V4(ip))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    Cidr {
        addr: IpAddr::V6(net),
        prefix,
    }
    .contains(IpAddr::V6(ip))
}

/// Whether `ip` is not a public unicast address: loopback, private,
/// link-local, CGNAT, multicast, unspecified, broadcast, reserved,
/// documentation, benchmarking, unique-local, and IPv6 forms that embed or
/// translate to IPv4 (mapped, compatible, NAT64, 6to4, Teredo).
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            const RANGES: &[([u8; 4], u8)] = &[
                ([0, 0, 0, 0], 8),       // "this network", unspecified
                ([10, 0, 0, 0], 8),      // private
                ([100, 64, 0, 0], 10),   // CGNAT
                ([127, 0, 0, 0], 8),     // loopback
                ([169, 254, 0, 0], 16),  // link-local (cloud metadata)
                ([172, 16, 0, 0], 12),   // private
                ([192, 0, 0, 0], 24),    // IETF protocol assignments
                ([192, 0, 2, 0], 24),    // documentation
                ([192, 88, 99, 0], 24),  // 6to4 relay anycast
                ([192, 168, 0, 0], 16),  // private
                ([198, 18, 0, 0], 15),   // benchmarking
                ([198, 51, 100, 0], 24), // documentation
                ([203, 0, 113, 0], 24),  // documentation
                ([224, 0, 0, 0], 4),     // multicast
                ([240, 0, 0, 0], 4),     // reserved, broadcast
            ];
            RANGES.iter().any(|(net, prefix)| in_v4(v4, *net, *prefix))
        }
        IpAddr::V6(v6) => {
            let ranges: [(Ipv6Addr, u8); 12] = [
                (Ipv6Addr::UNSPECIFIED, 128),
                (Ipv6Addr::LOCALHOST, 128),
                (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96), // IPv4-mapped
                (Ipv6Addr::UNSPECIFIED, 96),                      // IPv4-compatible
                (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), // NAT64
                (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local NAT64
                (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),  // discard
                (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocols, Teredo
                (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
                (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4
                (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),  // unique-local
                (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
            ];
            v6.is_multicast()
                || in_v6(v6, Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10) // site-local
                || ranges.iter().any(|(net, prefix)| in_v6(v6, *net, *prefix))
        }
    }
}

/// The destination policy: restricted ranges are refused unless an
/// operator's allow-list opens them; optionally only https.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    allow: Vec<Cidr>,
    https_only: bool,
}

impl AddressPolicy {
    pub fn new(allow: Vec<Cidr>, https_only: bool) -> Self {
        Self { allow, https_only }
    }

    /// Parses a comma-separated CIDR list (`HOOKFLEET_ALLOW_CIDRS`).
    pub fn parse_allow_list(text: &str) -> Result<Vec<Cidr>, String> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Cidr::parse)
            .collect()
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let embedded = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        if self
            .allow
            .iter()
            .any(|cidr| cidr.contains(ip) || embedded.is_some_and(|v4| cidr.contains(v4)))
        {
            return true;
        }
        !is_restricted(ip)
    }

    /// Checks a URL before it is stored or used: scheme, and a host that
    /// is a literal address or a `localhost` name. Names are checked again,
    /// after resolution, when the worker connects.
    pub fn check_url(&self, url: &url::Url) -> Result<(), String> {
        match url.scheme() {
            "https" => {}
            "http" if !self.https_only => {}
            "http" => return Err("only https URLs are allowed (HOOKFLEET_HTTPS_ONLY)".into()),
            _ => return Err("the scheme must be http or https".into()),
        }
        let refused =
            || "points to a private, loopback or otherwise restricted address".to_string();
        match url.host() {
            Some(url::Host::Ipv4(ip)) if !self.allows(IpAddr::V4(ip)) => Err(refused()),
            Some(url::Host::Ipv6(ip)) if !self.allows(IpAddr::V6(ip)) => Err(refused()),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let local = name == "localhost" || name.ends_with(".localhost");
                if local && !self.allows(IpAddr::V4(Ipv4Addr::LOCALHOST)) {
                    return Err(refused());
                }
                Ok(())
            }
            Some(_) => Ok(()),
            None => Err("must have a host".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap()
    }

    #[test]
    fn restricted_addresses_in_every_spelling_are_refused() {
        let policy = AddressPolicy::default();
        for bad in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://017700000001/",
            "http://0.0.0.0/",
            "http://0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://240.0.0.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:7f00:1::]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            assert!(
                policy.check_url(&url(bad)).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn public_destinations_pass() {
        let policy = AddressPolicy::default();
        for good in [
            "https://example.com/hook",
            "http://93.184.216.34/",
            "https://[2606:2800:220:1::1]/",
            "http://8.8.8.8:8080/x",
        ] {
            assert!(policy.check_url(&url(good)).is_ok(), "{good}");
        }
        assert!(policy.allows("1.1.1.1".parse().unwrap()));
    }

    #[test]
    fn the_allow_list_opens_ranges() {
        let allow = AddressPolicy::parse_allow_list("127.0.0.0/8, fd00::/8").unwrap();
        let policy = AddressPolicy::new(allow, false);
        assert!(policy.check_url(&url("http://127.0.0.1:9000/")).is_ok());
        assert!(policy.check_url(&url("http://localhost:9000/")).is_ok());
        assert!(policy.check_url(&url("http://[::ffff:127.0.0.1]/")).is_ok());
        assert!(policy.check_url(&url("http://[fd00::1]/")).is_ok());
        assert!(policy.check_url(&url("http://10.0.0.1/")).is_err());
        assert!(policy.check_url(&url("http://[::1]/")).is_err());
        assert!(AddressPolicy::parse_allow_list("10.0.0.0/33").is_err());
        assert!(AddressPolicy::parse_allow_list("nope").is_err());
    }

    #[test]
    fn https_only() {
        let policy = AddressPolicy::new(Vec::new(), true);
        assert!(policy.check_url(&url("http://example.com/")).is_err());
        assert!(policy.check_url(&url("https://example.com/")).is_ok());
    }
}
