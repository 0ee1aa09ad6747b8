//! `PeerAddr`: the one network address type of the core (IPv4 or IPv6 plus UDP port).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// A UDP endpoint. Front ends convert their socket addresses to and from this type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerAddr {
    /// An IPv4 address and port.
    V4([u8; 4], u16),
    /// An IPv6 address and port.
    V6([u8; 16], u16),
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

    /// The source network of this address: its IPv4 /24 or IPv6 /64, the unit of every
    /// per-source limit.
    pub fn prefix(&self) -> Prefix {
        match self {
            PeerAddr::V4([a, b, c, _], _) => Prefix::V4([*a, *b, *c]),
            PeerAddr::V6(ip, _) => {
                let mut p = [0u8; 8];
                p.copy_from_slice(&ip[..8]);
                Prefix::V6(p)
            }
        }
    }

    /// True for 127.0.0.0/8 and ::1.
    pub fn is_loopback(&self) -> bool {
        self.ip().is_loopback()
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

/// A source network: an IPv4 /24 or an IPv6 /64 (see [`PeerAddr::prefix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// The first three bytes of an IPv4 address.
    V4([u8; 3]),
    /// The first eight bytes of an IPv6 address.
    V6([u8; 8]),
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

        fn an_address_belongs_to_its_slash_24_or_slash_64() {
            let a = PeerAddr::V4([10, 1, 2, 3], 1);
            assert_eq!(a.prefix(), PeerAddr::V4([10, 1, 2, 200], 9).prefix());
            assert_ne!(a.prefix(), PeerAddr::V4([10, 1, 3, 3], 1).prefix());
            let mut ip = [0u8; 16];
            ip[7] = 1;
            let b = PeerAddr::V6(ip, 1);
            ip[15] = 7;
            assert_eq!(b.prefix(), PeerAddr::V6(ip, 2).prefix());
            ip[7] = 2;
            assert_ne!(b.prefix(), PeerAddr::V6(ip, 2).prefix());
        }

        fn unroutable_addresses_are_recognised() {
            assert!(!PeerAddr::V4([0, 0, 0, 0], 1).is_routable());
            assert!(!PeerAddr::V4([127, 0, 0, 1], 0).is_routable());
            assert!(!PeerAddr::V4([224, 0, 0, 1], 1).is_routable());
            assert!(PeerAddr::V4([127, 0, 0, 1], 1).is_routable());
        }
    }
}
