//! Signed (mutable) records as in BEP 44: key = SHA-1(public key ‖ salt), an ed25519 signature
//! over (salt, seq, value), and sequence numbers that only move forward.
//!
//! The crate is `ed25519-dalek` 2 without default features: pure Rust, `no_std` without
//! `alloc`, constant-time, and the implementation most of the Rust ecosystem relies on; its
//! curve arithmetic (curve25519-dalek) was audited by Quarkslab in 2019. Without the
//! precomputed tables (the `fast` feature, off here) it costs tens of KiB of flash, not
//! hundreds. Nodes built without the `signed` feature refuse signed records as `Unsupported`.

use crate::id::Key;
use crate::store::{MAX_SALT_LEN, MAX_VALUE_LEN};

/// Largest message that is signed: the BEP 44 bencoded form of salt, seq and value.
pub const MAX_SIGNABLE: usize = 32 + MAX_SALT_LEN + MAX_VALUE_LEN;

/// Why a signed record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature does not verify, or the key is not SHA-1(public key ‖ salt).
    Invalid,
    /// Built without the `signed` feature.
    Unsupported,
}

/// The key under which a signed record with this public key and salt lives.
pub fn key_for(public_key: &[u8; 32], salt: &[u8]) -> Key {
    Key::hash_parts(&[public_key, salt])
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
    public_key: &[u8; 32],
    salt: &[u8],
    seq: u64,
    value: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    if key_for(public_key, salt) != *key {
        return Err(SignatureError::Invalid);
    }
    verify_signature(public_key, salt, seq, value, signature)
}

#[cfg(feature = "signed")]
fn verify_signature(
    public_key: &[u8; 32],
    salt: &[u8],
    seq: u64,
    value: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| SignatureError::Invalid)?;
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    with_signable(salt, seq, value, |m| vk.verify_strict(m, &sig)).map_err(|_| SignatureError::Invalid)
}

#[cfg(not(feature = "signed"))]
fn verify_signature(
    _public_key: &[u8; 32],
    _salt: &[u8],
    _seq: u64,
    _value: &[u8],
    _signature: &[u8; 64],
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
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs (salt, seq, value).
    pub fn sign(&self, salt: &[u8], seq: u64, value: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        with_signable(salt, seq, value, |m| self.0.sign(m).to_bytes())
    }
}

#[cfg(feature = "signed")]
impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Keypair({:02x?}..)", &self.public_key()[..4])
    }
}

#[cfg(all(test, feature = "signed"))]
mod tests {
    use super::*;

    #[test]
    fn the_signable_form_is_bep44() {
        with_signable(b"foobar", 1, b"Hello World!", |m| {
            assert_eq!(m, b"4:salt6:foobar3:seqi1e1:v12:Hello World!");
        });
        with_signable(b"", 42, b"", |m| assert_eq!(m, b"3:seqi42e1:v0:"));
    }

    #[test]
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
        bad[0] ^= 1;
        assert_eq!(verify(&key, &pk, b"salt", 3, b"value", &bad), Err(SignatureError::Invalid));
    }
}
