//! Store quotas: one source network ([`Prefix`]: an IPv4 /24, an IPv6 /64) holds at most one
//! [`Limits::store_share`](crate::limits::Limits::store_share)-th of the store, so that a
//! flood from one source never fills it and never evicts the records this node is
//! responsible for; with many sources, a full store still prefers keys close to its own id
//! (see [`crate::store`]). Sources the limits spare are exempt (see
//! [`Limits::apply_to`](crate::limits::Limits::apply_to)).

use crate::addr::{PeerAddr, Prefix};
use crate::limits::Limits;
use crate::store::{Record, RecordStore};

use super::Node;

/// The fewest records a source may hold, whatever the share: in a small store one `share`-th
/// would be one record or none, and honest peers that share a /24 would refuse each other (the
/// 2,000-node simulation, 16-record stores, 8 nodes per /24: 99.85% of gets found their value
/// with a floor of 1, 100% with 4).
pub const MIN_SHARE: usize = 4;

/// Records one source may hold in a store of `capacity` records: one `share`-th of it, and at
/// least [`MIN_SHARE`].
pub(super) fn share_of(capacity: usize, share: u16) -> usize {
    (capacity / usize::from(share.max(1))).max(MIN_SHARE)
}

/// The source a record from `from` is counted under, or `None` when the limits spare `from`.
pub(super) fn limited_source(from: &PeerAddr, limits: &Limits) -> Option<Prefix> {
    limits.apply_to(from).then(|| from.prefix())
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
        let replaces_own = held.is_some_and(|h| h.source == Some(source));
        over(
            self.store.count_from(&source),
            replaces_own,
            self.store.capacity(),
            self.config.limits.store_share,
        )
    }
}

/// Whether a source holding `held` records of a store of `capacity` may not take one more
/// (`replaces_own`: the record replaces one it stored, and takes no new place).
pub(super) fn over(held: usize, replaces_own: bool, capacity: usize, share: u16) -> bool {
    !replaces_own && held >= share_of(capacity, share)
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
        fn a_source_holds_one_share_of_the_store_and_at_least_four_records() {
            assert_eq!(share_of(1024, 16), 64);
            assert_eq!(share_of(16, 16), MIN_SHARE);
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

        fn a_stored_record_remembers_its_source_network_and_loopback_is_spared() {
            let mut n = node(Config::default());
            let lo = crate::wire::Peer { addr: PeerAddr::V4([127, 0, 0, 2], 4000), ..peer(2) };
            store(&mut n, peer(1), 1);
            store(&mut n, lo, 2);
            let source = |k: u8| n.store().get(&crate::id::Key::from_bytes([k; 20])).map(|r| (r.origin, r.source));
            assert_eq!(source(1), Some((Origin::Replica, Some(peer(1).addr.prefix()))));
            assert_eq!(source(2), Some((Origin::Replica, None)), "loopback is exempt by default");
        }

        fn a_source_at_its_share_takes_no_new_place_but_may_replace_its_own() {
            // 1,024 records, 1/16 each: 64; the 65th new record of a source is refused.
            assert!(!over(63, false, 1024, 16));
            assert!(over(64, false, 1024, 16));
            assert!(!over(64, true, 1024, 16), "replacing its own record takes no new place");
        }
    }
}
