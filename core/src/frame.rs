//! Relay frames: how a browser and the relay in a host node carry datagrams over a WebSocket.
//!
//! A browser cannot open UDP sockets, so it sends each datagram to the relay in one binary
//! WebSocket message, prefixed with the peer it is for; the relay sends each datagram it
//! receives for that browser back prefixed with the peer it came from. The format is a fixed
//! header, no length fields (the WebSocket message has the length):
//!
//! ```text
//! frame    = DATAGRAM addr payload          ; both ways: (peer, one kad datagram)
//!          | HELLO addr *addr               ; relay -> browser, first frame only
//! DATAGRAM = 0x00
//! HELLO    = 0x01                           ; the UDP address the relay bound for this
//!                                           ; connection, then nodes to bootstrap from
//! addr     = 0x04 ip(4 bytes) port(2 bytes, big endian)
//!          | 0x06 ip(16 bytes) port(2 bytes, big endian)
//! payload  = 1 to 1200 bytes                ; a whole kad datagram (see crate::wire)
//! ```
//!
//! A datagram frame is therefore at most [`MAX_FRAME`] = 1 + 19 + 1200 = 1220 bytes.

use crate::addr::PeerAddr;
use crate::wire::MAX_DATAGRAM;

/// Kind byte of a datagram frame.
pub const KIND_DATAGRAM: u8 = 0x00;
/// Kind byte of the relay's greeting.
pub const KIND_HELLO: u8 = 0x01;
/// Largest encoded address: family byte, IPv6 address, port.
pub const MAX_ADDR: usize = 1 + 16 + 2;
/// Largest datagram frame: kind byte, address, largest datagram.
pub const MAX_FRAME: usize = 1 + MAX_ADDR + MAX_DATAGRAM;
/// Most bootstrap addresses in a HELLO frame (the rest are not sent).
pub const MAX_HELLO_PEERS: usize = 16;
/// Largest HELLO frame.
pub const MAX_HELLO: usize = 1 + MAX_ADDR * (1 + MAX_HELLO_PEERS);

/// A decoded frame, borrowing from the message it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A datagram to (browser to relay) or from (relay to browser) `peer`.
    Datagram {
        /// The other end of the datagram.
        peer: PeerAddr,
        /// The datagram, not yet validated as a kad message.
        payload: &'a [u8],
    },
    /// The relay's greeting: where this connection's UDP socket is, and whom to bootstrap from.
    Hello {
        /// The UDP address the relay bound for this connection.
        local: PeerAddr,
        /// Encoded addresses of nodes to bootstrap from; read them with [`Frame::hello_peers`].
        peers: &'a [u8],
    },
}

/// Why bytes are not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Empty, an unknown kind or address family, or cut short.
    Malformed,
    /// A datagram frame with an empty payload.
    Empty,
    /// A datagram frame whose payload is over [`MAX_DATAGRAM`] bytes.
    TooLong,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::Malformed => "not a relay frame",
            FrameError::Empty => "relay frame without a datagram",
            FrameError::TooLong => "relay frame with a datagram over 1200 bytes",
        })
    }
}

fn decode_addr(b: &[u8]) -> Result<(PeerAddr, &[u8]), FrameError> {
    match b.first() {
        Some(4) if b.len() >= 7 => {
            let ip = [b[1], b[2], b[3], b[4]];
            Ok((PeerAddr::V4(ip, u16::from_be_bytes([b[5], b[6]])), &b[7..]))
        }
        Some(6) if b.len() >= 19 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[1..17]);
            Ok((PeerAddr::V6(ip, u16::from_be_bytes([b[17], b[18]])), &b[19..]))
        }
        _ => Err(FrameError::Malformed),
    }
}

/// Writes `addr` at the start of `out`, returning the bytes written (7 or 19), or `None` if
/// `out` is too short.
pub fn encode_addr(addr: &PeerAddr, out: &mut [u8]) -> Option<usize> {
    let (n, port) = match addr {
        PeerAddr::V4(ip, port) => {
            out.get_mut(..7)?[1..5].copy_from_slice(ip);
            out[0] = 4;
            (7, port)
        }
        PeerAddr::V6(ip, port) => {
            out.get_mut(..19)?[1..17].copy_from_slice(ip);
            out[0] = 6;
            (19, port)
        }
    };
    out[n - 2..n].copy_from_slice(&port.to_be_bytes());
    Some(n)
}

/// Decodes a frame. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    match bytes.split_first() {
        Some((&KIND_DATAGRAM, rest)) => {
            let (peer, payload) = decode_addr(rest)?;
            if payload.is_empty() {
                return Err(FrameError::Empty);
            }
            if payload.len() > MAX_DATAGRAM {
                return Err(FrameError::TooLong);
            }
            Ok(Frame::Datagram { peer, payload })
        }
        Some((&KIND_HELLO, rest)) => {
            let (local, peers) = decode_addr(rest)?;
            let mut check = peers;
            while !check.is_empty() {
                check = decode_addr(check)?.1;
            }
            Ok(Frame::Hello { local, peers })
        }
        _ => Err(FrameError::Malformed),
    }
}

impl Frame<'_> {
    /// The bootstrap addresses of a HELLO frame (none for a datagram frame).
    pub fn hello_peers(&self) -> impl Iterator<Item = PeerAddr> + '_ {
        let mut rest = match self {
            Frame::Hello { peers, .. } => *peers,
            Frame::Datagram { .. } => &[],
        };
        core::iter::from_fn(move || {
            let (addr, next) = decode_addr(rest).ok()?;
            rest = next;
            Some(addr)
        })
    }
}

/// Writes a datagram frame for (`peer`, `payload`) into `out`, returning its length, or `None`
/// if the payload is empty or over [`MAX_DATAGRAM`] bytes or `out` is too short
/// ([`MAX_FRAME`] bytes always suffice).
pub fn encode_datagram(peer: &PeerAddr, payload: &[u8], out: &mut [u8]) -> Option<usize> {
    if payload.is_empty() || payload.len() > MAX_DATAGRAM {
        return None;
    }
    *out.first_mut()? = KIND_DATAGRAM;
    let n = 1 + encode_addr(peer, out.get_mut(1..)?)?;
    out.get_mut(n..n + payload.len())?.copy_from_slice(payload);
    Some(n + payload.len())
}

/// Writes a HELLO frame into `out`, returning its length, or `None` if `out` is too short
/// ([`MAX_HELLO`] bytes always suffice). At most [`MAX_HELLO_PEERS`] peers are written.
pub fn encode_hello(local: &PeerAddr, peers: &[PeerAddr], out: &mut [u8]) -> Option<usize> {
    *out.first_mut()? = KIND_HELLO;
    let mut n = 1 + encode_addr(local, out.get_mut(1..)?)?;
    for p in peers.iter().take(MAX_HELLO_PEERS) {
        n += encode_addr(p, out.get_mut(n..)?)?;
    }
    Some(n)
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    const V4: PeerAddr = PeerAddr::V4([127, 0, 0, 1], 8468);

    const V6: PeerAddr = PeerAddr::V6([0xfe; 16], 65535);

    crate::selftest::unit_tests! {
        fn datagram_frames_round_trip_for_both_families() {
            let mut buf = [0u8; MAX_FRAME];
            for peer in [V4, V6] {
                let payload = [7u8; MAX_DATAGRAM];
                let n = encode_datagram(&peer, &payload, &mut buf).unwrap();
                assert_eq!(n, if peer == V4 { 8 } else { 20 } + MAX_DATAGRAM);
                assert_eq!(decode(&buf[..n]), Ok(Frame::Datagram { peer, payload: &payload }));
            }
            assert_eq!(&buf[..4], &[0, 6, 0xfe, 0xfe]);
        }

        fn the_header_is_kind_family_address_and_big_endian_port() {
            let mut buf = [0u8; 16];
            let n = encode_datagram(&PeerAddr::V4([10, 1, 2, 3], 0x1234), b"x", &mut buf).unwrap();
            assert_eq!(&buf[..n], &[0, 4, 10, 1, 2, 3, 0x12, 0x34, b'x']);
        }

        fn hello_frames_carry_the_local_address_and_bootstrap_peers() {
            let mut buf = [0u8; MAX_HELLO];
            let n = encode_hello(&V4, &[V6, V4], &mut buf).unwrap();
            let f = decode(&buf[..n]).unwrap();
            assert!(matches!(f, Frame::Hello { local: V4, .. }));
            let peers: heapless::Vec<_, 2> = f.hello_peers().collect();
            assert_eq!(peers, [V6, V4]);
            let many = [V6; MAX_HELLO_PEERS + 3];
            let n = encode_hello(&V6, &many, &mut buf).unwrap();
            assert_eq!(decode(&buf[..n]).unwrap().hello_peers().count(), MAX_HELLO_PEERS);
        }

        fn broken_frames_are_errors_not_panics() {
            assert_eq!(decode(&[]), Err(FrameError::Malformed));
            assert_eq!(decode(&[9, 4, 1, 2, 3, 4, 0, 1, 0]), Err(FrameError::Malformed));
            assert_eq!(decode(&[0, 5, 1, 2, 3, 4, 0, 1, 0]), Err(FrameError::Malformed));
            assert_eq!(decode(&[0, 4, 1, 2, 3, 4, 0]), Err(FrameError::Malformed));
            assert_eq!(decode(&[0, 4, 1, 2, 3, 4, 0, 1]), Err(FrameError::Empty));
            assert_eq!(decode(&[1, 4, 1, 2, 3, 4, 0, 1, 6]), Err(FrameError::Malformed));
            let mut long = [1u8; MAX_FRAME + 1];
            long[0] = 0;
            long[1] = 4;
            assert_eq!(decode(&long), Err(FrameError::TooLong));
            assert_eq!(encode_datagram(&V4, &[], &mut [0; 64]), None);
            assert_eq!(encode_datagram(&V4, &[1; 8], &mut [0; 8]), None);
            assert_eq!(encode_datagram(&V4, &[1; MAX_DATAGRAM + 1], &mut [0; 2000]), None);
        }
    }
}
