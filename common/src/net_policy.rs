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

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        prefix,
    }
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16, prefix: u8) -> Cidr {
    Cidr {
        addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
        prefix,
    }
}

/// Every range a delivery may not reach unless `HOOKFLEET_ALLOW_CIDRS`
/// opens it, with why. Checked against IANA's IPv4 and IPv6 Special-Purpose
/// Address Registries (2024 editions): every entry that is not "globally
/// reachable" is here, or inside a wider range here. Wider than the
/// registries on purpose: all of `2001::/23` (a few of its blocks are
/// reachable anycast services, none a webhook receiver), every IPv6 form
/// that embeds or translates to an IPv4 address (mapped, translated,
/// compatible, NAT64, 6to4, Teredo), whose IPv4 half may be private, and
/// deprecated site-local space. Public relays and anycast services (AS112,
/// AMT) stay reachable.
pub const RESTRICTED: &[(Cidr, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\", unspecified"),
    (v4(10, 0, 0, 0, 8), "private-use"),
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local (cloud metadata)"),
    (v4(172, 16, 0, 0, 12), "private-use"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation (TEST-NET-1)"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast (deprecated)"),
    (v4(192, 168, 0, 0, 16), "private-use"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation (TEST-NET-2)"),
    (v4(203, 0, 113, 0, 24), "documentation (TEST-NET-3)"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved, limited broadcast"),
    (
        v6(0, 0, 0, 0, 0, 0, 0, 0, 96),
        "unspecified, loopback, IPv4-compatible",
    ),
    (v6(0, 0, 0, 0, 0, 0xffff, 0, 0, 96), "IPv4-mapped"),
    (
        v6(0, 0, 0, 0, 0xffff, 0, 0, 0, 96),
        "IPv4-translated (SIIT)",
    ),
    (
        v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0, 96),
        "NAT64 well-known prefix",
    ),
    (v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0, 48), "local-use NAT64"),
    (v6(0x100, 0, 0, 0, 0, 0, 0, 0, 64), "discard-only"),
    (v6(0x100, 0, 0, 1, 0, 0, 0, 0, 64), "dummy IPv6 prefix"),
    (
        v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 23),
        "IETF protocol assignments (Teredo, benchmarking, ORCHID)",
    ),
    (v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32), "documentation"),
    (v6(0x2002, 0, 0, 0, 0, 0, 0, 0, 16), "6to4"),
    (v6(0x3fff, 0, 0, 0, 0, 0, 0, 0, 20), "documentation"),
    (
        v6(0x5f00, 0, 0, 0, 0, 0, 0, 0, 16),
        "segment routing (SRv6) SIDs",
    ),
    (v6(0xfc00, 0, 0, 0, 0, 0, 0, 0, 7), "unique-local"),
    (v6(0xfe80, 0, 0, 0, 0, 0, 0, 0, 10), "link-local"),
    (
        v6(0xfec0, 0, 0, 0, 0, 0, 0, 0, 10),
        "site-local (deprecated)",
    ),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0, 8), "multicast"),
];

/// Whether `ip` is in one of the [`RESTRICTED`] ranges: not a public
/// unicast address.
pub fn is_restricted(ip: IpAddr) -> bool {
    RESTRICTED.iter().any(|(range, _)| range.contains(ip))
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

    /// Every range of [`RESTRICTED`], with an address inside it and one
    /// just outside it (public).
    #[test]
    fn every_restricted_range_refuses_inside_and_passes_just_outside() {
        let cases: &[(&str, &str, &str)] = &[
            ("0.0.0.0/8", "0.255.255.255", "1.0.0.0"),
            ("10.0.0.0/8", "10.255.255.255", "11.0.0.0"),
            ("100.64.0.0/10", "100.127.255.255", "100.128.0.0"),
            ("127.0.0.0/8", "127.0.0.1", "128.0.0.0"),
            ("169.254.0.0/16", "169.254.169.254", "169.255.0.0"),
            ("172.16.0.0/12", "172.31.255.255", "172.32.0.0"),
            ("192.0.0.0/24", "192.0.0.170", "192.0.1.0"),
            ("192.0.2.0/24", "192.0.2.1", "192.0.3.0"),
            ("192.88.99.0/24", "192.88.99.1", "192.88.100.0"),
            ("192.168.0.0/16", "192.168.1.1", "192.169.0.0"),
            ("198.18.0.0/15", "198.19.255.255", "198.20.0.0"),
            ("198.51.100.0/24", "198.51.100.7", "198.51.101.0"),
            ("203.0.113.0/24", "203.0.113.9", "203.0.114.0"),
            ("224.0.0.0/4", "239.255.255.255", "223.255.255.255"),
            ("240.0.0.0/4", "255.255.255.255", "223.255.255.254"),
            ("::/96", "::1", "::1:0:0"),
            ("::ffff:0:0/96", "::ffff:7f00:1", "::1:0:0:0"),
            (
                "::ffff:0:0:0/96",
                "::ffff:0:7f00:1",
                "::fffe:ffff:ffff:ffff",
            ),
            ("64:ff9b::/96", "64:ff9b::a00:1", "64:ff9b::1:0:0"),
            ("64:ff9b:1::/48", "64:ff9b:1::a00:1", "64:ff9b:2::"),
            ("100::/64", "100::1", "100:0:0:2::"),
            ("100:0:0:1::/64", "100:0:0:1::1", "100:0:0:2::"),
            ("2001::/23", "2001::1", "2001:200::"),
            ("2001:db8::/32", "2001:db8::1", "2001:db9::"),
            ("2002::/16", "2002:7f00:1::", "2003::"),
            ("3fff::/20", "3fff:fff::1", "3fff:1000::"),
            ("5f00::/16", "5f00::1", "5f01::"),
            ("fc00::/7", "fd12:3456::1", "fe00::"),
            ("fe80::/10", "fe80::1", "fec0::"),
            ("fec0::/10", "feff::1", "ff00::"),
            ("ff00::/8", "ff02::1", "feff:ffff::"),
        ];
        let policy = AddressPolicy::default();
        // The table covers exactly the ranges in force.
        let listed: Vec<Cidr> = cases
            .iter()
            .map(|(cidr, _, _)| Cidr::parse(cidr).unwrap())
            .collect();
        assert_eq!(listed.len(), RESTRICTED.len());
        for (range, why) in RESTRICTED {
            assert!(listed.contains(range), "{range:?} ({why}) has no test case");
        }
        for (cidr, inside, outside) in cases {
            let range = Cidr::parse(cidr).unwrap();
            let inside: IpAddr = inside.parse().unwrap();
            let outside: IpAddr = outside.parse().unwrap();
            assert!(range.contains(inside), "{inside} is not in {cidr}");
            assert!(!range.contains(outside), "{outside} is in {cidr}");
            assert!(
                !policy.allows(inside),
                "{inside} ({cidr}) should be refused"
            );
        }
        // "Just outside" is public where it is not inside another range
        // (multicast and reserved space adjoin; so do link- and site-local).
        for outside in [
            "1.0.0.0",
            "11.0.0.0",
            "100.128.0.0",
            "128.0.0.0",
            "169.255.0.0",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.100.0",
            "192.169.0.0",
            "198.20.0.0",
            "198.51.101.0",
            "203.0.114.0",
            "223.255.255.255",
            "::1:0:0",
            "::1:0:0:0",
            "64:ff9b::1:0:0",
            "64:ff9b:2::",
            "100:0:0:2::",
            "2001:200::",
            "2001:db9::",
            "2003::",
            "3fff:1000::",
            "5f01::",
            "fe00::",
        ] {
            let ip: IpAddr = outside.parse().unwrap();
            assert!(policy.allows(ip), "{outside} should be allowed");
        }
        // The IPv4-translated form of loopback, as a URL (create, PATCH).
        assert!(policy.check_url(&url("http://[::ffff:0:7f00:1]/")).is_err());
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
