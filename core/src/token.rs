//! Write tokens, as BEP 5's announce tokens: a node takes a STORE or ADD_PROVIDER only with a
//! token it handed to the sender's IP address in a recent answer, so that a forged source
//! address cannot write.
//!
//! A token is the first 8 bytes of SHA-1(secret ‖ IP address). The secret is drawn from the
//! node's RNG and replaced every [`ROTATION`]; tokens made with the previous secret are still
//! accepted, so a token is good for 5 to 10 minutes. There is no per-peer state: two secrets
//! of [`SECRET_LEN`] bytes.

use core::time::Duration;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::addr::PeerAddr;
use crate::time::Instant;

/// How often the secret is replaced.
pub const ROTATION: Duration = Duration::from_secs(5 * 60);
/// Bytes of a secret.
pub const SECRET_LEN: usize = 16;

/// A write token: what an answer grants its requester's IP address, and what a STORE or
/// ADD_PROVIDER shows (all zeros: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Token(pub [u8; 8]);

/// The current and the previous secret, and when the current one was drawn.
#[derive(Clone, Debug)]
pub struct Secrets {
    current: [u8; SECRET_LEN],
    previous: [u8; SECRET_LEN],
    drawn_at: Instant,
}

impl Secrets {
    /// Fresh secrets drawn from `rng` at `now`.
    pub fn new(rng: &mut impl RngCore, now: Instant) -> Self {
        let mut s = Secrets { current: [0; SECRET_LEN], previous: [0; SECRET_LEN], drawn_at: now };
        rng.fill_bytes(&mut s.current);
        rng.fill_bytes(&mut s.previous);
        s
    }

    /// Draws a new secret if the current one is [`ROTATION`] old; the current one becomes the
    /// previous one.
    pub fn rotate(&mut self, now: Instant, rng: &mut impl RngCore) {
        if now >= self.drawn_at + ROTATION {
            self.previous = self.current;
            rng.fill_bytes(&mut self.current);
            self.drawn_at = now;
        }
    }

    /// The token for the IP address of `to` (its port does not matter).
    pub fn issue(&self, to: &PeerAddr) -> Token {
        digest(&self.current, to)
    }

    /// Whether `token` was issued to the IP address of `from` with the current or the previous
    /// secret.
    pub fn accepts(&self, from: &PeerAddr, token: &Token) -> bool {
        *token == digest(&self.current, from) || *token == digest(&self.previous, from)
    }
}

fn digest(secret: &[u8; SECRET_LEN], addr: &PeerAddr) -> Token {
    let mut h = crate::sha1::Sha1::new();
    h.update(secret);
    match addr {
        PeerAddr::V4(ip, _) => h.update(ip),
        PeerAddr::V6(ip, _) => h.update(ip),
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&h.digest()[..8]);
    Token(t)
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use rand_core::SeedableRng;

    crate::selftest::unit_tests! {
        fn a_token_is_accepted_from_the_ip_it_was_issued_to_whatever_the_port() {
            let mut rng = crate::rng::NodeRng::seed_from_u64(1);
            let s = Secrets::new(&mut rng, Instant::ZERO);
            let t = s.issue(&PeerAddr::V4([10, 0, 0, 1], 4000));
            assert!(s.accepts(&PeerAddr::V4([10, 0, 0, 1], 5000), &t));
            assert!(!s.accepts(&PeerAddr::V4([10, 0, 0, 2], 4000), &t));
            assert!(!s.accepts(&PeerAddr::V4([10, 0, 0, 1], 4000), &Token::default()));
            let v6 = PeerAddr::V6([1; 16], 1);
            assert!(s.accepts(&v6, &s.issue(&v6)));
            assert!(!s.accepts(&v6, &t));
        }

        fn a_token_lives_one_to_two_rotations() {
            let mut rng = crate::rng::NodeRng::seed_from_u64(2);
            let a = PeerAddr::V4([10, 0, 0, 1], 4000);
            let mut s = Secrets::new(&mut rng, Instant::ZERO);
            let t = s.issue(&a);
            s.rotate(Instant::ZERO + ROTATION - Duration::from_millis(1), &mut rng);
            assert_eq!(s.issue(&a), t, "not rotated before its time");
            s.rotate(Instant::ZERO + ROTATION, &mut rng);
            assert_ne!(s.issue(&a), t);
            assert!(s.accepts(&a, &t), "the previous secret still counts");
            s.rotate(Instant::ZERO + ROTATION * 2, &mut rng);
            assert!(!s.accepts(&a, &t), "two rotations later it is gone");
        }

        fn different_nodes_issue_different_tokens() {
            let mut rng = crate::rng::NodeRng::seed_from_u64(3);
            let a = PeerAddr::V4([10, 0, 0, 1], 4000);
            let (s1, s2) = (Secrets::new(&mut rng, Instant::ZERO), Secrets::new(&mut rng, Instant::ZERO));
            assert!(!s2.accepts(&a, &s1.issue(&a)));
        }
    }
}
