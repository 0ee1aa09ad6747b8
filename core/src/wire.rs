//! The wire format: one postcard-encoded message per UDP datagram, at most 1200 bytes.
//!
//! Every message carries a version byte, a random transaction id, the sender's id and flags
//! (client mode). Decoding borrows values from the datagram (no copy, no allocation) and
//! rejects anything malformed with a [`DecodeError`] the node counts. The size bounds are
//! checked by tests that encode the largest message of each kind.

use core::fmt;

use heapless::Vec;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::signed::{PublicKey, Signature};
use crate::store::{ValueKind, MAX_SALT_LEN, MAX_VALUE_LEN};
use crate::token::Token;

/// Protocol version carried by every message. Version 2 added the write token to the header
/// (see [`crate::token`]).
pub const VERSION: u8 = 2;
/// Largest datagram sent or accepted, in bytes: fits any IPv4/IPv6 path unfragmented.
pub const MAX_DATAGRAM: usize = 1200;
/// Most contacts in one reply.
pub const MAX_CONTACTS: usize = 20;
/// Most providers in one GET_PROVIDERS reply.
pub const MAX_PROVIDERS: usize = 8;

/// A transaction id: random per request, echoed by the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxId(#[serde(with = "fixed")] pub [u8; 4]);

/// Message flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flags(pub u8);

impl Flags {
    /// The sender is in client mode: do not add it to routing tables.
    pub const CLIENT: u8 = 1;

    /// True when the sender is a client.
    pub fn is_client(&self) -> bool {
        self.0 & Self::CLIENT != 0
    }
}

/// The part of every message before its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`VERSION`].
    pub version: u8,
    /// Transaction id.
    pub txid: TxId,
    /// The sender's id.
    pub sender: NodeId,
    /// Flags.
    pub flags: Flags,
    /// In an answer: the write token the responder grants the requester's IP address. In a
    /// STORE or ADD_PROVIDER: the token the target granted the sender. Zeros otherwise.
    pub token: Token,
}

/// Bytes borrowed from the datagram, encoded as a length-prefixed byte string.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", self.0.len())
    }
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("borrowed bytes")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Fixed-size byte arrays (`[u8; N]`) on the wire: N bytes in a row, serde's tuple form, as
/// serde's own array impls write them. Read with one loop shared by every N: serde's impls
/// unroll N reads for each size (2.5 KB of wasm for `[u8; 32]` alone). Use it with
/// `#[serde(with = "crate::wire::fixed")]`.
pub(crate) mod fixed {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(N)?;
        for b in bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let mut out = [0u8; N];
        d.deserialize_tuple(N, Fill(&mut out))?;
        Ok(out)
    }

    struct Fill<'b>(&'b mut [u8]);

    impl<'de> Visitor<'de> for Fill<'_> {
        type Value = ();
        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("a fixed number of bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            for (i, b) in self.0.iter_mut().enumerate() {
                *b = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(i, &"a fixed number of bytes"))?;
            }
            Ok(())
        }
    }
}

/// A peer: its id and address, as named in replies and results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its id.
    pub id: NodeId,
    /// Its address.
    pub addr: PeerAddr,
}

/// The signature part of a signed record on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSignature {
    /// Ed25519 public key.
    pub public_key: PublicKey,
    /// Leading bytes of `data` that are salt.
    pub salt_len: u8,
    /// Sequence number.
    pub seq: u64,
    /// Ed25519 signature.
    pub signature: Signature,
    /// Compare-and-swap: store only if the current sequence number equals this.
    pub cas: Option<u64>,
}

/// A record on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecord<'a> {
    /// The key.
    pub key: Key,
    /// Bytes or text.
    pub kind: ValueKind,
    /// Seconds the record has left to live.
    pub ttl_secs: u32,
    /// True for a cached copy (shorter TTL, never republished).
    pub cached: bool,
    /// The value, or salt ‖ value for a signed record.
    #[serde(borrow)]
    pub data: Bytes<'a>,
    /// Present for signed records.
    pub signature: Option<WireSignature>,
}

/// How a STORE went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreStatus {
    /// Stored (durably, if the node has a persistent store).
    Stored,
    /// Refused: the value is larger than this node accepts.
    TooLarge,
    /// Refused: the store is full of records this node prefers.
    Full,
    /// Refused: the signature does not verify, the key does not match the public key, or an
    /// unsigned record would replace a signed one.
    BadSignature,
    /// Refused: a record with a higher sequence number is held.
    StaleSeq,
    /// Refused: compare-and-swap did not match the held sequence number.
    CasMismatch,
    /// Refused: this node cannot verify signed records (built without the `signed` feature).
    Unsupported,
    /// Refused: the storage backend failed.
    StorageError,
    /// Refused: no write token, or not one this node granted the sender's IP address in the
    /// last 5 to 10 minutes (see [`crate::token`]).
    BadToken,
    /// Refused: the sender's network already holds its share of the store (see
    /// [`crate::limits::Limits::store_share`]).
    OverShare,
}

impl fmt::Display for StoreStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreStatus::Stored => "stored",
            StoreStatus::TooLarge => "the value is larger than the peer accepts",
            StoreStatus::Full => "the peer's store is full of records it prefers",
            StoreStatus::BadSignature => {
                "the signature does not verify for the key, or an unsigned \
                                          value would replace a signed one"
            }
            StoreStatus::StaleSeq => {
                "the peer holds a higher sequence number (or the same one with \
                                      another value): publish with a higher seq"
            }
            StoreStatus::CasMismatch => "compare-and-swap failed: the peer holds another sequence number",
            StoreStatus::Unsupported => "the peer cannot verify signed records",
            StoreStatus::StorageError => "the peer's storage failed",
            StoreStatus::BadToken => "no valid write token: look the key up again, then store",
            StoreStatus::OverShare => "the sender's network already holds its share of the peer's store",
        })
    }
}

/// The body of a message: requests and their responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
// No allocator to box the large variant; every variant is bounded by the capacities.
#[allow(clippy::large_enum_variant)]
pub enum Body<'a> {
    /// Liveness request.
    Ping,
    /// Answer to `Ping`; tells the requester the address it was seen at.
    Pong {
        /// The requester's address as seen by the responder.
        observed: PeerAddr,
    },
    /// FIND_NODE.
    FindNode {
        /// The target.
        target: Key,
    },
    /// The closest peers the responder knows (answer to FIND_NODE, or FIND_VALUE without value).
    Nodes {
        /// Nearest first.
        contacts: Vec<Peer, MAX_CONTACTS>,
    },
    /// FIND_VALUE.
    FindValue {
        /// The key.
        key: Key,
    },
    /// Answer to FIND_VALUE: the record, and as many of the closest peers as fit in the
    /// datagram beside it, so that a get can go on to other holders (see `node/quorum.rs`).
    Value {
        /// The record.
        #[serde(borrow)]
        record: WireRecord<'a>,
        /// Closer peers, nearest first (trimmed to fit).
        closer: Vec<Peer, MAX_CONTACTS>,
    },
    /// STORE.
    Store {
        /// The record to store.
        #[serde(borrow)]
        record: WireRecord<'a>,
    },
    /// Answer to STORE.
    Stored {
        /// Whether it was stored.
        status: StoreStatus,
    },
    /// ADD_PROVIDER: the sender provides `key` at the address it sends from.
    AddProvider {
        /// The key.
        key: Key,
    },
    /// Answer to ADD_PROVIDER.
    ProviderAdded {
        /// Whether it was kept.
        stored: bool,
    },
    /// GET_PROVIDERS.
    GetProviders {
        /// The key.
        key: Key,
    },
    /// Answer to GET_PROVIDERS.
    Providers {
        /// Known providers of the key. The responder names itself, when it provides the key,
        /// with the unspecified address (0.0.0.0:0): the requester knows where it reached it.
        providers: Vec<Peer, MAX_PROVIDERS>,
        /// Closer peers to continue the lookup.
        closer: Vec<Peer, MAX_CONTACTS>,
    },
}

impl Body<'_> {
    /// True for request bodies (the ones that expect an answer).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Body::Ping
                | Body::FindNode { .. }
                | Body::FindValue { .. }
                | Body::Store { .. }
                | Body::AddProvider { .. }
                | Body::GetProviders { .. }
        )
    }
}

/// A whole message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<'a> {
    /// Version, transaction, sender, flags.
    pub header: Header,
    /// What it says.
    #[serde(borrow)]
    pub body: Body<'a>,
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Larger than [`MAX_DATAGRAM`].
    TooLong,
    /// Not a postcard message of this protocol, or trailing bytes.
    Malformed,
    /// A version this node does not speak.
    Version,
    /// A value or salt over the limits.
    TooLarge,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::TooLong => "datagram longer than 1200 bytes",
            DecodeError::Malformed => "not a kad message",
            DecodeError::Version => "unsupported protocol version",
            DecodeError::TooLarge => "value or salt over the protocol limit",
        })
    }
}

/// Decodes and validates a datagram. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(DecodeError::TooLong);
    }
    // The version is the first byte: check it before anything else, so a future version's
    // message is reported as such rather than as garbage.
    if bytes.first() != Some(&VERSION) {
        return Err(if bytes.is_empty() { DecodeError::Malformed } else { DecodeError::Version });
    }
    let (msg, rest): (Message<'_>, _) =
        postcard::take_from_bytes(bytes).map_err(|_| DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed);
    }
    if let Body::Value { record, .. } | Body::Store { record } = &msg.body {
        if record.data.0.len() > MAX_VALUE_LEN {
            return Err(DecodeError::TooLarge);
        }
        if let Some(sig) = &record.signature {
            if sig.salt_len as usize > MAX_SALT_LEN || sig.salt_len as usize > record.data.0.len() {
                return Err(DecodeError::TooLarge);
            }
        }
    }
    Ok(msg)
}

/// Encodes `msg` into `buf`, returning the length. Fails only if `buf` is too small (a buffer of
/// [`MAX_DATAGRAM`] bytes always suffices for messages within the limits).
pub fn encode(msg: &Message<'_>, buf: &mut [u8]) -> Result<usize, postcard::Error> {
    postcard::to_slice(msg, buf).map(|b| b.len())
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            version: VERSION,
            txid: TxId([1, 2, 3, 4]),
            sender: NodeId::from_bytes([0xee; 20]),
            flags: Flags(1),
            token: Token([0xff; 8]),
        }
    }

    const V6: PeerAddr = PeerAddr::V6([0xff; 16], u16::MAX);

    fn full_contacts() -> Vec<Peer, MAX_CONTACTS> {
        let c = Peer { id: NodeId::from_bytes([0xff; 20]), addr: V6 };
        core::iter::repeat_n(c, MAX_CONTACTS).collect()
    }

    fn largest_record(data: &[u8], signed: bool) -> WireRecord<'_> {
        WireRecord {
            key: Key::from_bytes([0xff; 20]),
            kind: ValueKind::Text,
            ttl_secs: u32::MAX,
            cached: true,
            data: Bytes(data),
            signature: signed.then_some(WireSignature {
                public_key: PublicKey([0xff; 32]),
                salt_len: MAX_SALT_LEN as u8,
                seq: u64::MAX,
                signature: Signature([0xff; 64]),
                cas: Some(u64::MAX),
            }),
        }
    }

    crate::selftest::unit_tests! {
        /// The largest message of every kind fits in one datagram and decodes back.
        fn every_message_fits_in_a_datagram() {
            let data = [0xffu8; MAX_VALUE_LEN];
            let bodies = [
                Body::Ping,
                Body::FindNode { target: Key::from_bytes([1; 20]) },
                Body::Nodes { contacts: full_contacts() },
                Body::Providers {
                    providers: full_contacts().into_iter().take(MAX_PROVIDERS).collect(),
                    closer: full_contacts(),
                },
                Body::Store { record: largest_record(&data, false) },
                Body::Store { record: largest_record(&data, true) },
                Body::Value { record: largest_record(&data, true), closer: Vec::new() },
                Body::Value { record: largest_record(&data[..100], false), closer: full_contacts() },
                Body::Pong { observed: V6 },
            ];
            let mut buf = [0u8; MAX_DATAGRAM];
            for body in bodies {
                let msg = Message { header: header(), body };
                let n = encode(&msg, &mut buf).expect("fits in MAX_DATAGRAM");
                assert!(n <= MAX_DATAGRAM);
                assert_eq!(decode(&buf[..n]).unwrap(), msg);
            }
        }

        fn wrong_version_trailing_bytes_and_oversized_values_are_rejected() {
            let mut buf = [0u8; MAX_DATAGRAM];
            let msg = Message { header: header(), body: Body::Ping };
            let n = encode(&msg, &mut buf).unwrap();
            assert_eq!(decode(&buf[..n]), Ok(msg));
            assert_eq!(decode(&buf[..n + 1]), Err(DecodeError::Malformed));
            buf[0] = 9;
            assert_eq!(decode(&buf[..n]), Err(DecodeError::Version));
            assert_eq!(decode(&[]), Err(DecodeError::Malformed));
            assert_eq!(decode(&[0u8; MAX_DATAGRAM + 1]), Err(DecodeError::TooLong));

            let big = [0u8; MAX_VALUE_LEN + 1];
            let mut wide = [0u8; 1400];
            let msg = Message { header: header(), body: Body::Store { record: largest_record(&big, false) } };
            let n = encode(&msg, &mut wide).unwrap();
            assert!(decode(&wide[..n.min(MAX_DATAGRAM)]).is_err());
        }

        /// Valid messages with bytes flipped, and pure noise: decoding returns, it never panics.
        fn random_bytes_never_decode_into_a_panic() {
            use rand_core::{RngCore, SeedableRng};
            let mut rng = crate::NodeRng::seed_from_u64(11);
            let mut buf = [0u8; MAX_DATAGRAM];
            let msg = Message { header: header(), body: Body::Nodes { contacts: full_contacts() } };
            let n = encode(&msg, &mut buf).unwrap();
            let mut decoded_ok = 0u32;
            for round in 0..2000u32 {
                let mut b = buf;
                let at = (rng.next_u32() as usize) % n;
                b[at] ^= 1 << (round % 8);
                if decode(&b[..n]).is_ok() {
                    decoded_ok += 1;
                }
                let len = (rng.next_u32() as usize) % 200;
                let mut noise = [0u8; 200];
                rng.fill_bytes(&mut noise[..len]);
                let _ = decode(&noise[..len]);
            }
            // Flipping one bit of an id keeps a message valid; flipping a length byte does not.
            assert!(decoded_ok > 0 && decoded_ok < 2000, "{decoded_ok}");
        }
    }
}
