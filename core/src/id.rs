//! 160-bit identifiers: node ids, record keys and the XOR distance between them.

use core::fmt;
use serde::{Deserialize, Serialize};

/// Length of every identifier in bytes (160 bits, as SHA-1).
pub const ID_LEN: usize = 20;
/// Length of every identifier in bits.
pub const ID_BITS: usize = ID_LEN * 8;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        pub struct $name(#[serde(with = "crate::wire::fixed")] [u8; ID_LEN]);

        impl $name {
            /// Wraps raw bytes (for example read back from storage).
            pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }

            /// A uniformly random identifier drawn from the caller's RNG.
            pub fn random(rng: &mut impl rand_core::RngCore) -> Self {
                let mut b = [0u8; ID_LEN];
                rng.fill_bytes(&mut b);
                Self(b)
            }

            /// Parses 40 hexadecimal digits.
            pub fn from_hex(hex: &str) -> Option<Self> {
                decode_hex(hex).map(Self)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in &self.0[..4] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "..)")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }
    };
}

id_type!(
    /// The identity of a node in the 160-bit key space.
    NodeId
);
id_type!(
    /// A point in the key space: the SHA-1 of a user's key, or a lookup target.
    Key
);

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses exactly `2 × N` hexadecimal digits (either case).
pub(crate) fn decode_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let s = hex.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// Writes bytes as lowercase hexadecimal digits.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl Key {
    /// A lookup target as a person writes it: 40 hexadecimal digits name that point of the key
    /// space (a node id, or a key's hash); anything else is a user key and is hashed.
    pub fn from_target(target: &str) -> Self {
        Key::from_hex(target).unwrap_or_else(|| Key::hash(target.as_bytes()))
    }

    /// The key of a user-supplied key: SHA-1 of its bytes (as the Python library's `digest`).
    pub fn hash(user_key: &[u8]) -> Self {
        Self::hash_parts(&[user_key])
    }

    /// The key of several byte strings concatenated (used for signed records: public key ‖ salt).
    pub fn hash_parts(parts: &[&[u8]]) -> Self {
        let mut h = crate::sha1::Sha1::new();
        for p in parts {
            h.update(p);
        }
        Self(h.digest())
    }

    /// XOR distance from this key to a node.
    pub fn distance(&self, node: &NodeId) -> Distance {
        xor(&self.0, &node.0)
    }
}

impl NodeId {
    /// XOR distance between two nodes.
    pub fn distance(&self, other: &NodeId) -> Distance {
        xor(&self.0, &other.0)
    }

    /// This node id as a lookup target.
    pub const fn as_key(&self) -> Key {
        Key(self.0)
    }

    /// A random id whose common prefix with `self` is exactly `prefix_len` bits
    /// (used to refresh the bucket at that depth).
    pub fn random_at_prefix(&self, prefix_len: usize, rng: &mut impl rand_core::RngCore) -> Key {
        let mut out = Self::random(rng).0;
        let prefix_len = prefix_len.min(ID_BITS - 1);
        for bit in 0..=prefix_len {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let own = self.0[byte] & mask;
            let want = if bit == prefix_len { own ^ mask } else { own };
            out[byte] = (out[byte] & !mask) | want;
        }
        Key(out)
    }
}

fn xor(a: &[u8; ID_LEN], b: &[u8; ID_LEN]) -> Distance {
    let mut d = [0u8; ID_LEN];
    for i in 0..ID_LEN {
        d[i] = a[i] ^ b[i];
    }
    Distance(d)
}

/// XOR distance between two points of the key space; compares as a 160-bit big-endian integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Distance([u8; ID_LEN]);

impl Distance {
    /// Number of leading zero bits: the length of the common prefix of the two ids
    /// (160 when they are equal).
    pub fn leading_zeros(&self) -> usize {
        for (i, b) in self.0.iter().enumerate() {
            if *b != 0 {
                return i * 8 + b.leading_zeros() as usize;
            }
        }
        ID_BITS
    }

    /// Position of the highest set bit plus one (0 for the zero distance): roughly log2.
    pub fn bits(&self) -> usize {
        ID_BITS - self.leading_zeros()
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    trait SeedU64 {
        fn from_seed_u64(s: u64) -> Self;
    }

    impl SeedU64 for crate::NodeRng {
        fn from_seed_u64(s: u64) -> Self {
            <Self as rand_core::SeedableRng>::seed_from_u64(s)
        }
    }

    crate::selftest::unit_tests! {
        fn key_hash_is_sha1_of_the_user_key() {
            // sha1("hello") = aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d
            assert_eq!(Key::hash(b"hello"), Key::from_hex("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d").unwrap());
        }

        fn a_target_of_forty_hex_digits_is_that_id_and_anything_else_is_hashed() {
            let hex = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d";
            assert_eq!(Key::from_target(hex), Key::from_hex(hex).unwrap());
            assert_eq!(Key::from_target("hello"), Key::hash(b"hello"));
            assert_eq!(Key::from_target(&hex[1..]), Key::hash(&hex.as_bytes()[1..]));
        }

        fn distance_is_xor_and_symmetric() {
            let a = NodeId::from_bytes([0xff; 20]);
            let mut b = [0xff; 20];
            b[19] = 0xfe;
            let b = NodeId::from_bytes(b);
            assert_eq!(a.distance(&b), b.distance(&a));
            assert_eq!(a.distance(&b).leading_zeros(), 159);
            assert_eq!(a.distance(&a).leading_zeros(), 160);
            assert_eq!(a.distance(&b).bits(), 1);
        }

        fn random_at_prefix_shares_exactly_that_prefix() {
            let mut rng = crate::NodeRng::from_seed_u64(7);
            let own = NodeId::random(&mut rng);
            for p in [0, 1, 7, 8, 9, 100, 159] {
                let k = own.random_at_prefix(p, &mut rng);
                assert_eq!(k.distance(&own).leading_zeros(), p);
            }
        }

        fn hex_round_trips_and_rejects_garbage() {
            let id = NodeId::from_bytes([0xab; 20]);
            let mut s = heapless::String::<40>::new();
            core::fmt::write(&mut s, format_args!("{id}")).unwrap();
            assert_eq!(NodeId::from_hex(&s), Some(id));
            assert_eq!(NodeId::from_hex("zz"), None);
            assert_eq!(NodeId::from_hex("gggggggggggggggggggggggggggggggggggggggg"), None);
        }
    }
}
