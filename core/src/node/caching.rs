//! Caching along the lookup path: where a found value is cached, and for how long.

use core::time::Duration;

use crate::config::Config;
use crate::id::{Key, NodeId};
use crate::lookup::{Candidate, Lookup};
use crate::store::RecordStore;

use super::queries::QueryId;
use super::rpc::Request;
use super::Node;

impl<
        S: RecordStore<V>,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
    > Node<S, B, K, R, Q, P, V, PV, E>
{
    /// Caches the found value at the closest peer that answered without it, then finishes; a
    /// value is cached only when it is signed (its signature verified) or at least two holders
    /// returned it, so that one liar on the path cannot spread its value.
    pub(super) fn value_done(&mut self, qid: QueryId) {
        let now = self.now;
        let Some(q) = self.query_mut(qid) else { return };
        let confirmed = q.votes.agreeing() >= 2 || q.record.as_ref().is_some_and(|r| r.signer.is_some());
        match q.value_from {
            Some((from, _)) if confirmed => {
                let key = *q.lookup.target();
                let remaining =
                    q.record.as_ref().map_or(Duration::ZERO, |r| r.expires_at.saturating_since(now));
                if let Some(c) = cache_target(&q.lookup) {
                    let ttl = cache_ttl(&key, &c.id, &from, &self.config).min(remaining).as_secs() as u32;
                    if ttl > 0 {
                        // Fire and forget: the answer is not awaited; the result is delivered
                        // once this request has been transmitted (see `poll_output`).
                        let req =
                            Request::Store { query: Some(qid), key, cached_ttl: Some(ttl), token: c.token };
                        let _ = self.send_request(c.addr, Some(c.id), req);
                    }
                }
            }
            Some(_) => self.stats.cache_unconfirmed += 1,
            None => {}
        }
        self.finish(qid);
    }
}

/// Where a found value is cached: the closest peer of the lookup that answered without it (it
/// granted the write token the cache store needs).
pub(super) fn cache_target<const K: usize>(lookup: &Lookup<K>) -> Option<Candidate> {
    lookup.succeeded().find(|c| !c.holds_value).copied()
}

/// TTL of a copy cached at `at`: `cache_ttl_max` when `at` is no farther from the key than
/// the peer that held it (in bits of distance), halved for every bit by which it is farther,
/// never below `cache_ttl_min`. Cached copies expire sooner than primaries (the maximum is half
/// the record TTL by default), and sooner the farther they are from the key, as the paper's
/// "exponentially inversely proportional" rule against over-caching asks.
pub(super) fn cache_ttl(key: &Key, at: &NodeId, holder: &NodeId, config: &Config) -> Duration {
    let extra = key.distance(at).bits().saturating_sub(key.distance(holder).bits());
    let ttl = config.cache_ttl_max / (1u32 << extra.min(31));
    ttl.max(config.cache_ttl_min)
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::addr::PeerAddr;

    const HOUR: Duration = Duration::from_secs(3600);

    /// The id whose distance to the zero key is `bits` bits long (0: the key itself).
    fn at_bits(bits: usize) -> NodeId {
        let mut b = [0u8; 20];
        if bits > 0 {
            let i = 160 - bits;
            b[i / 8] = 0x80 >> (i % 8);
        }
        NodeId::from_bytes(b)
    }

    fn addr(n: u8) -> PeerAddr {
        PeerAddr::V4([10, 0, 0, n], 4000)
    }

    /// A lookup of the zero key that asked its four candidates, at 10, 20, 30 and 40 bits
    /// (addresses 0 to 3), and heard from none yet.
    fn asked_all() -> Lookup<4> {
        let mut l = Lookup::new(Key::from_bytes([0; 20]));
        for (i, bits) in [10, 20, 30, 40].into_iter().enumerate() {
            l.add(at_bits(bits), addr(i as u8), 1);
        }
        for _ in 0..4 {
            l.next(4);
        }
        l
    }

    crate::selftest::unit_tests! {
        fn a_cached_copy_no_farther_than_the_holder_lives_the_maximum() {
            let c = Config::default();
            let key = Key::from_bytes([0; 20]);
            assert_eq!(cache_ttl(&key, &at_bits(40), &at_bits(50), &c), c.cache_ttl_max);
            assert_eq!(cache_ttl(&key, &at_bits(50), &at_bits(50), &c), c.cache_ttl_max);
        }

        fn a_cached_copy_lives_half_as_long_for_every_bit_farther_than_the_holder() {
            let c = Config::default();
            let key = Key::from_bytes([0; 20]);
            assert_eq!(cache_ttl(&key, &at_bits(51), &at_bits(50), &c), c.cache_ttl_max / 2);
            assert_eq!(cache_ttl(&key, &at_bits(52), &at_bits(50), &c), c.cache_ttl_max / 4);
            assert_eq!(c.cache_ttl_max, 12 * HOUR);
            assert_eq!(cache_ttl(&key, &at_bits(54), &at_bits(50), &c), Duration::from_secs(45 * 60));
        }

        fn a_cached_copy_lives_at_least_the_minimum() {
            let c = Config::default();
            let key = Key::from_bytes([0; 20]);
            assert_eq!(cache_ttl(&key, &at_bits(160), &at_bits(1), &c), c.cache_ttl_min);
            assert_eq!(cache_ttl(&key, &at_bits(70), &at_bits(50), &c), c.cache_ttl_min);
        }

        fn a_value_is_cached_at_the_closest_peer_that_answered_without_it() {
            let mut l = asked_all();
            l.on_success(&at_bits(30), core::iter::empty());
            l.on_success(&at_bits(20), core::iter::empty());
            l.on_success(&at_bits(40), core::iter::empty());
            l.set_answer(&at_bits(20), Default::default(), true);
            l.set_answer(&at_bits(30), Default::default(), true);
            // The holders (20 and 30 bits) are skipped.
            assert_eq!(cache_target(&l).map(|c| (c.id, c.addr)), Some((at_bits(40), addr(3))));
        }

        fn a_value_is_never_cached_at_a_peer_that_did_not_answer() {
            let mut l = asked_all();
            l.on_success(&at_bits(20), core::iter::empty());
            l.set_answer(&at_bits(20), Default::default(), true);
            l.on_failure(&at_bits(30));
            // 40 is still waiting and 30 failed: neither granted a write token.
            assert_eq!(cache_target(&l), None);
        }
    }
}
