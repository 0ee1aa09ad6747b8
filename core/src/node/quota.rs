//! Store quotas: one source network ([`Prefix`]: an IPv4 /24, an IPv6 /64) holds at most one
//! [`Limits::store_share`](crate::limits::Limits::store_share)-th of the store, so that a
//! flood from one source never fills it and never evicts the records this node is
//! responsible for; with many sources, a full store still prefers keys close to its own id
//! (see [`crate::store`]). Loopback sources are exempt unless
//! [`Limits::on_loopback`](crate::limits::Limits::on_loopback).

use crate::addr::{PeerAddr, Prefix};
use crate::limits::Limits;
use crate::store::{Record, RecordStore};

use super::Node;

/// Records one source may hold in a store of `capacity` records: one `share`-th of it, and at
/// least one.
pub(super) fn share_of(capacity: usize, share: u16) -> usize {
    (capacity / usize::from(share.max(1))).max(1)
}

/// The source a record from `from` is counted under, or `None` when `from` is exempt (a
/// loopback address while the limits spare loopback).
pub(super) fn limited_source(from: &PeerAddr, limits: &Limits) -> Option<Prefix> {
    (limits.on_loopback || !from.is_loopback()).then(|| from.prefix())
}

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
    /// Whether `rec`, from `source`, would take more than its source's share of the store: a
    /// record replacing one the same source stored takes no new place.
    pub(super) fn over_share(&self, rec: &Record<V>, held: Option<&Record<V>>) -> bool {
        let Some(source) = rec.source else { return false };
        if held.is_some_and(|h| h.source == Some(source)) {
            return false;
        }
        let limit = share_of(self.store.capacity(), self.config.limits.store_share);
        self.store.count_from(&source) >= limit
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::node::testpeer::{at, deliver, drain, node, peer};
    use crate::store::{Origin, ValueKind};
    use crate::wire::{Body, Bytes, TxId, WireRecord};

    fn store(n: &mut crate::node::testpeer::TestNode, from: crate::wire::Peer, k: u8) {
        let record = WireRecord {
            key: crate::id::Key::from_bytes([k; 20]),
            kind: ValueKind::Bytes,
            ttl_secs: 600,
            cached: false,
            data: Bytes(b"v"),
            signature: None,
        };
        deliver(n, at(0), from, TxId([k; 4]), Body::Store { record });
        drain(n);
    }

    crate::selftest::unit_tests! {
        fn a_source_holds_one_share_of_the_store_and_at_least_one_record() {
            assert_eq!(share_of(1024, 16), 64);
            assert_eq!(share_of(4, 16), 1);
            assert_eq!(share_of(65_536, 0), 65_536);
        }

        fn loopback_sources_are_exempt_unless_the_limits_say_otherwise() {
            let lo = PeerAddr::V4([127, 0, 0, 2], 1);
            let far = PeerAddr::V4([10, 0, 0, 2], 1);
            let mut limits = Limits::default();
            assert_eq!(limited_source(&lo, &limits), None);
            assert_eq!(limited_source(&far, &limits), Some(far.prefix()));
            limits.on_loopback = true;
            assert_eq!(limited_source(&lo, &limits), Some(lo.prefix()));
        }

        fn a_source_over_its_share_is_refused_and_counted_while_others_still_store() {
            // The test node stores 4 records: with a share of 1/2, one /24 holds at most 2.
            let limits = Limits { store_share: 2, ..Limits::default() };
            let mut n = node(Config { limits, ..Config::default() });
            for k in 1..=3 {
                store(&mut n, peer(1), k);
            }
            assert_eq!(n.store().len(), 2);
            assert_eq!(n.stats().stores_over_share, 1);
            // Replacing its own record takes no new place.
            store(&mut n, peer(1), 1);
            assert_eq!(n.stats().stores_over_share, 1);
            // Another /24 still stores.
            let other = crate::wire::Peer { addr: PeerAddr::V4([10, 0, 9, 1], 4000), ..peer(2) };
            store(&mut n, other, 4);
            assert_eq!(n.store().len(), 3);
            let held = n.store().get(&crate::id::Key::from_bytes([4; 20])).unwrap();
            assert_eq!((held.origin, held.source), (Origin::Replica, Some(other.addr.prefix())));
        }
    }
}
