//! `PeerAddr`: the one network address type of the core (IPv4 or IPv6 plus UDP port), and
//! `Prefix`: the network it belongs to, the unit of every per-source limit.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// A UDP endpoint. Front ends convert their socket addresses to and from this type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerAddr {
    /// An IPv4 address and port.
    V4(#[serde(with = "crate::wire::fixed")] [u8; 4], u16),
    /// An IPv6 address and port.
    V6(#[serde(with = "crate::wire::fixed")] [u8; 16], u16),
}

impl PeerAddr {
    /// The UDP port.
    pub fn port(&self) -> u16 {
        match self {
            PeerAddr::V4(_, p) | PeerAddr::V6(_, p) => *p,
        }
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        match self {
            PeerAddr::V4(a, _) => IpAddr::V4(Ipv4Addr::from(*a)),
            PeerAddr::V6(a, _) => IpAddr::V6(Ipv6Addr::from(*a)),
        }
    }

    /// The network of this address: its IPv4 /24 or IPv6 /64 (see [`Prefix`]).
    pub fn prefix(&self) -> Prefix {
        match self {
            PeerAddr::V4(a, _) => Prefix::V4([a[0], a[1], a[2]]),
            PeerAddr::V6(a, _) => {
                let mut p = [0u8; 8];
                p.copy_from_slice(&a[..8]);
                Prefix::V6(p)
            }
        }
    }

    /// A loopback address (127.0.0.0/8 or ::1): exempt from the per-source limits unless
    /// [`crate::limits::Limits::on_loopback`].
    pub fn is_loopback(&self) -> bool {
        self.ip().is_loopback()
    }

    /// An address of a private network: IPv4 10/8, 172.16/12, 192.168/16 and link-local
    /// 169.254/16; IPv6 unique-local fc00::/7 and link-local fe80::/10.
    pub fn is_private(&self) -> bool {
        match self {
            PeerAddr::V4(a, _) => {
                let ip = Ipv4Addr::from(*a);
                ip.is_private() || ip.is_link_local()
            }
            PeerAddr::V6(a, _) => (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80),
        }
    }

    /// A usable unicast destination: not unspecified, not multicast, not broadcast, port not 0.
    pub fn is_routable(&self) -> bool {
        if self.port() == 0 {
            return false;
        }
        match self.ip() {
            IpAddr::V4(a) => !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast(),
            IpAddr::V6(a) => !a.is_unspecified() && !a.is_multicast(),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(a) => PeerAddr::V4(a.ip().octets(), a.port()),
            SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                Some(v4) => PeerAddr::V4(v4.octets(), a.port()),
                None => PeerAddr::V6(a.ip().octets(), a.port()),
            },
        }
    }
}

impl From<PeerAddr> for SocketAddr {
    fn from(a: PeerAddr) -> Self {
        match a {
            PeerAddr::V4(ip, port) => SocketAddr::V4(SocketAddrV4::new(ip.into(), port)),
            PeerAddr::V6(ip, port) => SocketAddr::V6(SocketAddrV6::new(ip.into(), port, 0, 0)),
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&SocketAddr::from(*self), f)
    }
}

/// The network an address belongs to: an IPv4 /24 or an IPv6 /64. One operator usually holds
/// a whole prefix, so limits on sources and on the routing table's diversity count prefixes,
/// not addresses (as discv5 and go-libp2p-kad-dht do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// The first three bytes of an IPv4 address.
    V4([u8; 3]),
    /// The first eight bytes of an IPv6 address.
    V6([u8; 8]),
}

/// Text that is not an `IP:PORT` address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrParseError;

impl fmt::Display for AddrParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected IP:PORT, e.g. 192.0.2.1:8468 or [2001:db8::1]:8468")
    }
}

impl FromStr for PeerAddr {
    type Err = AddrParseError;
    /// Parses `IPv4:PORT` or `[IPv6]:PORT` (no host names: the core does no DNS).
    fn from_str(s: &str) -> Result<Self, AddrParseError> {
        s.parse::<SocketAddr>().map(PeerAddr::from).map_err(|_| AddrParseError)
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    crate::selftest::unit_tests! {
        fn socket_addr_round_trip_and_v4_mapped_is_folded() {
            let v4: SocketAddr = "127.0.0.1:8468".parse().unwrap();
            let v6: SocketAddr = "[::1]:9000".parse().unwrap();
            let mapped: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
            assert_eq!(SocketAddr::from(PeerAddr::from(v4)), v4);
            assert_eq!(SocketAddr::from(PeerAddr::from(v6)), v6);
            assert_eq!(PeerAddr::from(mapped), PeerAddr::V4([10, 0, 0, 1], 5));
        }

        fn an_address_parses_from_ip_and_port_and_nothing_else() {
            assert_eq!("10.0.0.1:8468".parse(), Ok(PeerAddr::V4([10, 0, 0, 1], 8468)));
            assert_eq!("[::1]:9".parse::<PeerAddr>().map(|a| a.port()), Ok(9));
            assert_eq!("10.0.0.1".parse::<PeerAddr>(), Err(AddrParseError));
            assert_eq!("localhost:8468".parse::<PeerAddr>(), Err(AddrParseError));
        }

        fn an_address_belongs_to_its_ipv4_slash_24_or_ipv6_slash_64() {
            let a: PeerAddr = "192.0.2.7:1".parse().unwrap();
            let b: PeerAddr = "192.0.2.200:2".parse().unwrap();
            let c: PeerAddr = "192.0.3.7:1".parse().unwrap();
            assert_eq!(a.prefix(), b.prefix());
            assert_ne!(a.prefix(), c.prefix());
            let d: PeerAddr = "[2001:db8:0:1::7]:1".parse().unwrap();
            let e: PeerAddr = "[2001:db8:0:1:ffff::1]:1".parse().unwrap();
            let f: PeerAddr = "[2001:db8:0:2::7]:1".parse().unwrap();
            assert_eq!(d.prefix(), e.prefix());
            assert_ne!(d.prefix(), f.prefix());
            assert!(PeerAddr::V4([127, 0, 0, 9], 1).is_loopback());
            assert!(!a.is_loopback());
            for private in ["10.1.2.3:1", "172.16.0.1:1", "192.168.1.9:1", "169.254.0.1:1", "[fd00::1]:1", "[fe80::1]:1"] {
                assert!(private.parse::<PeerAddr>().unwrap().is_private(), "{private}");
            }
            for public in ["192.0.2.7:1", "172.32.0.1:1", "[2001:db8::1]:1", "127.0.0.1:1"] {
                assert!(!public.parse::<PeerAddr>().unwrap().is_private(), "{public}");
            }
        }

        fn unroutable_addresses_are_recognised() {
            assert!(!PeerAddr::V4([0, 0, 0, 0], 1).is_routable());
            assert!(!PeerAddr::V4([127, 0, 0, 1], 0).is_routable());
            assert!(!PeerAddr::V4([224, 0, 0, 1], 1).is_routable());
            assert!(PeerAddr::V4([127, 0, 0, 1], 1).is_routable());
        }
    }
}
