//! Signed (mutable) records as in BEP 44: key = SHA-1(public key ‖ salt), an ed25519 signature
//! over (salt, seq, value), and sequence numbers that only move forward.
//!
//! The crate is `ed25519-dalek` 2 without default features: pure Rust, `no_std` without
//! `alloc`, constant-time, and the implementation most of the Rust ecosystem relies on; its
//! curve arithmetic (curve25519-dalek) was audited by Quarkslab in 2019. Without the
//! precomputed tables (the `fast` feature, off here) it costs tens of KiB of flash, not
//! hundreds. Nodes built without the `signed` feature refuse signed records as `Unsupported`.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{decode_hex, write_hex, Key};
use crate::store::{MAX_SALT_LEN, MAX_VALUE_LEN};

/// Largest message that is signed: the BEP 44 bencoded form of salt, seq and value.
pub const MAX_SIGNABLE: usize = 32 + MAX_SALT_LEN + MAX_VALUE_LEN;

/// An ed25519 public key (32 bytes): the writer of signed records.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct PublicKey(#[serde(with = "crate::wire::fixed")] pub [u8; 32]);

/// An ed25519 signature (64 bytes). On the wire it is 64 bytes in a row, as `[[u8; 32]; 2]`
/// was in version 1 of the protocol.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

/// Text that is not the hexadecimal form of a key or signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HexError {
    /// What was being parsed: "public key" or "signature".
    pub what: &'static str,
    /// Hexadecimal digits expected.
    pub digits: usize,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an ed25519 {} is {} hexadecimal digits", self.what, self.digits)
    }
}

macro_rules! hex_newtype {
    ($name:ident, $len:expr, $what:expr) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, &self.0[..4])?;
                f.write_str("..)")
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            /// Parses the hexadecimal form (either case).
            fn from_str(s: &str) -> Result<Self, HexError> {
                decode_hex::<$len>(s).map($name).ok_or(HexError { what: $what, digits: 2 * $len })
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl $name {
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }
    };
}
hex_newtype!(PublicKey, 32, "public key");
hex_newtype!(Signature, 64, "signature");

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::wire::fixed::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::wire::fixed::deserialize(d).map(Signature)
    }
}

/// Why a signed record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature does not verify, or the key is not SHA-1(public key ‖ salt).
    Invalid,
    /// Built without the `signed` feature.
    Unsupported,
}

/// The key under which a signed record with this public key and salt lives.
pub fn key_for(public_key: &PublicKey, salt: &[u8]) -> Key {
    Key::hash_parts(&[&public_key.0, salt])
}

#[cfg(feature = "signed")]
struct Buf {
    bytes: [u8; MAX_SIGNABLE],
    len: usize,
}

#[cfg(feature = "signed")]
impl Buf {
    fn push(&mut self, s: &[u8]) {
        let end = (self.len + s.len()).min(MAX_SIGNABLE);
        let n = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&s[..n]);
        self.len = end;
    }

    fn push_num(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

#[cfg(feature = "signed")]
/// Writes the BEP 44 signable form `[4:salt<n>:<salt>]3:seqi<seq>e1:v<n>:<value>` and calls `f`
/// with it. Inputs are bounded by the caller (salt ≤ 64, value ≤ 1000 bytes).
fn with_signable<T>(salt: &[u8], seq: u64, value: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    let mut b = Buf { bytes: [0; MAX_SIGNABLE], len: 0 };
    if !salt.is_empty() {
        b.push(b"4:salt");
        b.push_num(salt.len() as u64);
        b.push(b":");
        b.push(salt);
    }
    b.push(b"3:seqi");
    b.push_num(seq);
    b.push(b"e1:v");
    b.push_num(value.len() as u64);
    b.push(b":");
    b.push(value);
    f(&b.bytes[..b.len])
}

/// Checks that `signature` by `public_key` covers (salt, seq, value) and that `key` is the
/// record's key.
pub fn verify(
    key: &Key,
    public_key: &PublicKey,
    salt: &[u8],
    seq: u64,
    value: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    if key_for(public_key, salt) != *key {
        return Err(SignatureError::Invalid);
    }
    verify_signature(public_key, salt, seq, value, signature)
}

#[cfg(feature = "signed")]
fn verify_signature(
    public_key: &PublicKey,
    salt: &[u8],
    seq: u64,
    value: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public_key.0).map_err(|_| SignatureError::Invalid)?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    with_signable(salt, seq, value, |m| vk.verify_strict(m, &sig)).map_err(|_| SignatureError::Invalid)
}

#[cfg(not(feature = "signed"))]
fn verify_signature(
    _public_key: &PublicKey,
    _salt: &[u8],
    _seq: u64,
    _value: &[u8],
    _signature: &Signature,
) -> Result<(), SignatureError> {
    Err(SignatureError::Unsupported)
}

/// An ed25519 key pair for writing signed records.
#[cfg(feature = "signed")]
#[derive(Clone)]
pub struct Keypair(ed25519_dalek::SigningKey);

#[cfg(feature = "signed")]
impl Keypair {
    /// The key pair of a 32-byte secret seed (keep it secret; store it to keep the identity).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Keypair(ed25519_dalek::SigningKey::from_bytes(secret))
    }

    /// The 32-byte secret seed.
    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs (salt, seq, value).
    pub fn sign(&self, salt: &[u8], seq: u64, value: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature(with_signable(salt, seq, value, |m| self.0.sign(m).to_bytes()))
    }
}

#[cfg(feature = "signed")]
impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Keypair({:?})", self.public_key())
    }
}

#[cfg(all(any(test, feature = "selftest"), feature = "signed"))]
pub(crate) mod tests {
    use super::*;

    crate::selftest::unit_tests! {
        fn the_signable_form_is_bep44() {
            with_signable(b"foobar", 1, b"Hello World!", |m| {
                assert_eq!(m, b"4:salt6:foobar3:seqi1e1:v12:Hello World!");
            });
            with_signable(b"", 42, b"", |m| assert_eq!(m, b"3:seqi42e1:v0:"));
        }

        fn keys_and_signatures_round_trip_through_hex_and_say_what_they_expect() {
            let kp = Keypair::from_secret(&[7; 32]);
            let pk = kp.public_key();
            let mut text = heapless::String::<128>::new();
            core::fmt::write(&mut text, format_args!("{pk}")).unwrap();
            assert_eq!(text.parse::<PublicKey>(), Ok(pk));
            let err = "02ab".parse::<PublicKey>().unwrap_err();
            assert_eq!(err, HexError { what: "public key", digits: 64 });
            let sig = kp.sign(b"", 1, b"v");
            text.clear();
            core::fmt::write(&mut text, format_args!("{sig}")).unwrap();
            assert_eq!(text.parse::<Signature>(), Ok(sig));
        }

        fn a_signature_is_sixty_four_bytes_in_a_row_on_the_wire() {
            let sig = Signature(core::array::from_fn(|i| i as u8));
            let mut buf = [0u8; 80];
            let n = postcard::to_slice(&sig, &mut buf).unwrap().len();
            assert_eq!(&buf[..n], &sig.0[..]);
            assert_eq!(postcard::from_bytes::<Signature>(&buf[..n]).unwrap(), sig);
            assert!(postcard::from_bytes::<Signature>(&buf[..63]).is_err());
        }

        fn a_signature_verifies_and_any_change_breaks_it() {
            let kp = Keypair::from_secret(&[7; 32]);
            let pk = kp.public_key();
            let key = key_for(&pk, b"salt");
            let sig = kp.sign(b"salt", 3, b"value");
            assert_eq!(verify(&key, &pk, b"salt", 3, b"value", &sig), Ok(()));
            assert_eq!(verify(&key, &pk, b"salt", 4, b"value", &sig), Err(SignatureError::Invalid));
            assert_eq!(verify(&key, &pk, b"salt", 3, b"valuE", &sig), Err(SignatureError::Invalid));
            let other = key_for(&pk, b"other");
            assert_eq!(verify(&other, &pk, b"salt", 3, b"value", &sig), Err(SignatureError::Invalid));
            let mut bad = sig;
            bad.0[0] ^= 1;
            assert_eq!(verify(&key, &pk, b"salt", 3, b"value", &bad), Err(SignatureError::Invalid));
        }
    }
}
