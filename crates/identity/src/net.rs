//! Which IP addresses an outbound request may reach.
//!
//! A URL that a user influences (a handle's domain, a did:web host, later an
//! OAuth client's metadata URL) must not make the server talk to itself or
//! to its private network (SSRF). [`classify`] names the special-purpose
//! range an address is in; [`AddressPolicy`] decides which of those are
//! refused. The check runs on the addresses DNS actually returned, right
//! before connecting, so a public name that points inside is refused too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a public unicast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7` (unique local),
    /// `fec0::/10` (old site-local), `64:ff9b:1::/48` (local-use NAT64).
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `0.0.0.0/8` ("this network"), `::`.
    Unspecified,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `100.64/10`, the carrier-grade NAT shared address space.
    SharedCgnat,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// Everything else that is not routable public unicast: `240/4` and the
    /// broadcast address, `192.0.0/24`, `198.18/15` (benchmarking),
    /// `192.88.99/24` (6to4 relay), IPv6 outside `2000::/3`, IPv4-compatible
    /// IPv6, Teredo and other `2001::/23` protocol assignments, 6to4
    /// `2002::/16`, discard-only `100::/64`.
    Reserved,
}

impl BlockReason {
    fn as_str(self) -> &'static str {
        match self {
            BlockReason::Loopback => "loopback",
            BlockReason::Private => "private",
            BlockReason::LinkLocal => "link-local",
            BlockReason::Unspecified => "unspecified",
            BlockReason::Multicast => "multicast",
            BlockReason::SharedCgnat => "carrier-grade NAT",
            BlockReason::Documentation => "documentation",
            BlockReason::Reserved => "reserved",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The special-purpose range `ip` is in, or `None` for a public unicast
/// address. IPv4 addresses embedded in IPv6 (IPv4-mapped `::ffff:a.b.c.d`
/// and NAT64 `64:ff9b::a.b.c.d`) are judged by the IPv4 address.
pub fn classify(ip: IpAddr) -> Option<BlockReason> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: u32, net: [u8; 4], prefix: u32) -> bool {
    let net = u32::from_be_bytes(net);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    ip & mask == net & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<BlockReason> {
    use BlockReason::*;
    let n = u32::from(ip);
    // Ordered by specificity where ranges nest (none do here, but keep the
    // loopback and private checks first: they are the common cases).
    let table: &[([u8; 4], u32, BlockReason)] = &[
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([0, 0, 0, 0], 8, Unspecified),
        ([100, 64, 0, 0], 10, SharedCgnat),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved), // includes 255.255.255.255
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 88, 99, 0], 24, Reserved),
        ([198, 18, 0, 0], 15, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v4(n, *net, *prefix))
        .map(|(_, _, reason)| *reason)
}

fn in_v6(ip: u128, net: u128, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    ip & mask == net & mask
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockReason> {
    use BlockReason::*;
    let n = u128::from(ip);
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    // IPv4-mapped ::ffff:0:0/96: the socket really talks IPv4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // NAT64 well-known prefix 64:ff9b::/96: the translator forwards to the
    // embedded IPv4 address.
    if in_v6(n, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return classify_v4(Ipv4Addr::from(n as u32));
    }
    let table: &[(u128, u32, BlockReason)] = &[
        (0xfc00 << 112, 7, Private),           // unique local
        (0xfe80 << 112, 10, LinkLocal),        // link-local
        (0xfec0 << 112, 10, Private),          // deprecated site-local
        (0xff00 << 112, 8, Multicast),         // multicast
        (0x0064_ff9b_0001 << 80, 48, Private), // local-use NAT64
        (0x2001_0db8 << 96, 32, Documentation),
        (0x3fff << 112, 20, Documentation),
        (0x2001 << 112, 23, Reserved), // IETF protocol assignments, Teredo
        (0x2002 << 112, 16, Reserved), // 6to4
    ];
    if let Some((_, _, reason)) = table
        .iter()
        .find(|(net, prefix, _)| in_v6(n, *net, *prefix))
    {
        return Some(*reason);
    }
    // Only 2000::/3 is allocated as global unicast; the rest (IPv4-compatible
    // ::/96, discard-only 100::/64, unassigned space) is not a web host.
    if !in_v6(n, 0x2000 << 112, 3) {
        return Some(Reserved);
    }
    None
}

/// Which addresses outbound requests may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Public unicast only: the production policy for user-influenced URLs.
    PublicOnly,
    /// Public unicast plus loopback: dev mode, so that local test servers
    /// (`did:web:localhost%3A2583`) resolve.
    PublicAndLoopback,
    /// No address check: only for URLs the operator configured (the PLC
    /// directory), which may legitimately be on a private network.
    Any,
}

impl AddressPolicy {
    /// `Ok` if `ip` may be connected to, else the reason it may not.
    pub fn check(self, ip: IpAddr) -> Result<(), BlockReason> {
        match (self, classify(ip)) {
            (AddressPolicy::Any, _) | (_, None) => Ok(()),
            (AddressPolicy::PublicAndLoopback, Some(BlockReason::Loopback)) => Ok(()),
            (_, Some(reason)) => Err(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BlockReason::*;

    fn c(s: &str) -> Option<BlockReason> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        let cases = [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.255", Some(Reserved)),
            ("192.0.0.8", Some(Reserved)),
            ("198.18.0.1", Some(Reserved)),
            ("198.19.255.255", Some(Reserved)),
            ("192.88.99.1", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            // Just outside the ranges: public.
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("169.253.0.1", None),
            ("11.0.0.1", None),
            ("192.169.0.1", None),
            ("198.20.0.1", None),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("223.255.255.255", None),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        let cases = [
            ("::1", Some(Loopback)),
            ("::", Some(Unspecified)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001::1", Some(Reserved)),        // Teredo
            ("2002:7f00:1::1", Some(Reserved)), // 6to4
            ("64:ff9b:1::1", Some(Private)),
            ("100::1", Some(Reserved)),
            ("::7f00:1", Some(Reserved)), // IPv4-compatible
            ("4000::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::200e", None),
            ("2001:4860:4860::8888", None),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv4_embedded_in_ipv6() {
        let cases = [
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:192.168.0.1", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:100.64.0.1", Some(SharedCgnat)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:224.0.0.1", Some(Multicast)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::10.0.0.1", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn policies() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped_lo: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let private: IpAddr = "192.168.0.1".parse().unwrap();
        let public: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(AddressPolicy::PublicOnly.check(lo), Err(Loopback));
        assert_eq!(AddressPolicy::PublicOnly.check(mapped_lo), Err(Loopback));
        assert_eq!(AddressPolicy::PublicOnly.check(public), Ok(()));
        assert_eq!(AddressPolicy::PublicAndLoopback.check(lo), Ok(()));
        assert_eq!(AddressPolicy::PublicAndLoopback.check(mapped_lo), Ok(()));
        assert_eq!(
            AddressPolicy::PublicAndLoopback.check(private),
            Err(Private)
        );
        assert_eq!(AddressPolicy::Any.check(private), Ok(()));
    }
}
