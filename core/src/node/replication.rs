//! Replication: which held records a newly seen peer should get from this node. Newly seen
//! means earned (its address answered a request, see `node/verify.rs`), and what one prefix
//! gets is bounded by [`Limits::replications_per_min`]: an address that cycles ids cannot make
//! the node send it its store.
//!
//! [`Limits::replications_per_min`]: crate::limits::Limits::replications_per_min

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::routing::{Contact, ContactState};
use crate::store::{Origin, RecordMeta, RecordStore};
use crate::time::Instant;
use crate::token::Token;

use super::accept::is_live;

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
    /// Sends a newly seen peer every held record it should get from this node (see
    /// [`is_replicated`] and [`newcomer_gets`]), with the write token the peer granted.
    pub(super) fn replicate_to(&mut self, peer: NodeId, addr: PeerAddr, token: Token) {
        let mut cursor = None;
        while let Some(key) = self.store.next_key(cursor.as_ref()) {
            cursor = Some(key);
            let Some(meta) = self.store.meta(&key) else { continue };
            if !is_replicated(&meta, self.now) {
                continue;
            }
            let mut near = [Contact::new(self.id, addr, self.now); K];
            let (rt, now) = (&self.routing, self.now);
            let alive = |c: &Contact| rt.state(c, now) != ContactState::Bad;
            let n = rt.closest_where(&key, Some(&peer), &mut near, alive);
            if newcomer_gets::<K>(&key, &self.id, &peer, &near[..n]) {
                let limits = self.config.limits;
                if limits.apply_to(&addr) && !self.sources.allow_replication(addr.prefix(), &limits, self.now)
                {
                    self.stats.replications_limited += 1;
                    return;
                }
                let req = Request::Store { query: None, key, cached_ttl: None, token };
                if self.send_request(addr, Some(peer), req).is_ok() {
                    self.stats.replications += 1;
                } else {
                    return;
                }
            }
        }
    }
}

/// Whether a held record is handed on to newcomers: live primary copies are (this node's own
/// records and live replicas), cached copies and expired replicas are not.
pub(super) fn is_replicated(meta: &RecordMeta, now: Instant) -> bool {
    meta.origin != Origin::Cache && is_live(meta.origin, meta.expires_at, now)
}

/// Whether newcomer `peer` should get the record under `key` from this node (`own`), given the
/// other known nodes nearest the key (`others`, nearest first, at most `K`): when the newcomer
/// is among the `K` closest known nodes and this node is closer than every other, so that one
/// node takes care of it, as the paper says.
pub(super) fn newcomer_gets<const K: usize>(
    key: &Key,
    own: &NodeId,
    peer: &NodeId,
    others: &[Contact],
) -> bool {
    let we_are_closest = others.first().is_none_or(|c| key.distance(own) < key.distance(&c.id));
    let peer_is_close =
        others.len() < K || others.last().is_none_or(|c| key.distance(peer) < key.distance(&c.id));
    we_are_closest && peer_is_close
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    /// The node at distance `d` (in its first byte) from the zero key.
    fn id(d: u8) -> NodeId {
        let mut b = [0u8; 20];
        b[0] = d;
        NodeId::from_bytes(b)
    }

    fn known(ds: &[u8]) -> heapless::Vec<Contact, 4> {
        ds.iter().map(|&d| Contact::new(id(d), PeerAddr::V4([10, 0, 0, d], 4000), Instant::ZERO)).collect()
    }

    crate::selftest::unit_tests! {
        fn a_newcomer_among_the_k_closest_gets_the_record_from_the_closest_node() {
            let key = Key::from_bytes([0; 20]);
            // K = 3: this node (1) is the closest; the newcomer (5) beats the third known (9).
            assert!(newcomer_gets::<3>(&key, &id(1), &id(5), &known(&[2, 3, 9])));
            // Fewer than K known: any newcomer is among the K closest.
            assert!(newcomer_gets::<3>(&key, &id(1), &id(50), &known(&[2, 3])));
            assert!(newcomer_gets::<3>(&key, &id(1), &id(50), &known(&[])));
        }

        fn a_newcomer_gets_nothing_from_a_node_that_is_not_the_closest() {
            let key = Key::from_bytes([0; 20]);
            // Another known node (2) is closer than this one (3): that node sends it.
            assert!(!newcomer_gets::<3>(&key, &id(3), &id(5), &known(&[2, 4, 9])));
        }

        fn a_newcomer_outside_the_k_closest_gets_nothing() {
            let key = Key::from_bytes([0; 20]);
            assert!(!newcomer_gets::<3>(&key, &id(1), &id(10), &known(&[2, 3, 9])));
        }

        fn a_prefix_gets_at_most_its_replication_burst_at_once() {
            use crate::config::Config;
            use crate::limits::Limits;
            use crate::node::testpeer::{at, drain, node, peer};
            use crate::stats::RequestKind;
            use crate::store::{Record, ValueKind};
            let limits = Limits { replication_burst: 2, replications_per_min: 0, ..Limits::default() };
            let mut n = node(Config { limits, ..Config::default() });
            for i in 0..4u8 {
                let rec = Record {
                    key: Key::hash(&[i]),
                    kind: ValueKind::Bytes,
                    data: heapless::Vec::from_slice(&[i]).unwrap(),
                    signer: None,
                    origin: Origin::Publisher,
                    expires_at: at(3_600_000),
                    stored_at: at(0),
                    republished_at: at(0),
                    source: None,
                };
                n.store_mut().put(rec).unwrap();
            }
            // The table is empty: the first newcomer should get all four.
            n.advance(at(1));
            n.saw_peer(peer(1).id, peer(1).addr, Some(Default::default()));
            let d = drain(&mut n);
            let stores = d.requests_to(peer(1).addr).filter(|s| s.request == Some(RequestKind::Store)).count();
            assert_eq!(stores, 2);
            assert_eq!(n.stats().replications_limited, 1, "counted once, the rest wait for republish");
        }

        fn only_live_primary_copies_are_replicated() {
            let meta = |origin, expires| RecordMeta {
                key: Key::hash(b"k"),
                origin,
                expires_at: Instant::from_millis(expires),
                stored_at: Instant::ZERO,
                republished_at: Instant::ZERO,
                seq: None,
                source: None,
            };
            let now = Instant::from_millis(100);
            assert!(is_replicated(&meta(Origin::Replica, 101), now));
            assert!(!is_replicated(&meta(Origin::Replica, 100), now));
            assert!(is_replicated(&meta(Origin::Publisher, 50), now));
            assert!(!is_replicated(&meta(Origin::Cache, 200), now));
        }
    }
}
