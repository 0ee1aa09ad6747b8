//! Contacts are earned: a request from a stranger (an id not in the routing table) does not
//! put it there. If its bucket has room for it, the node pings the address back once (no
//! retries, at most a quarter of the pending slots at once, each costing the source one
//! request of its limit) and the id enters the table when the answer comes, so that an
//! address that never asked (a forged source) gets one small ping at most and never the
//! records replication would send a new contact. One address holds one id: an id that
//! answers from the address of another contact takes its place, so one address, whatever
//! the ids it sends under, holds one contact.

use crate::addr::PeerAddr;
use crate::id::NodeId;
use crate::store::RecordStore;

use super::peers::PeerChange;
use super::rpc::Request;
use super::Node;
use crate::wire::Peer;

/// Verification pings in flight at once, at most: a quarter of the pending slots `p` (at
/// least one), so that strangers never crowd out the node's own requests.
pub(super) const fn max_verifying(p: usize) -> usize {
    if p >= 4 {
        p / 4
    } else {
        1
    }
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
    /// A stranger `id` sent a request from `addr`: ping the address back if the id could
    /// enter the table and no verification of that address is under way.
    pub(super) fn verify(&mut self, id: NodeId, addr: PeerAddr) {
        if !self.routing.has_room_for(&id, &addr, self.now) {
            return;
        }
        let verifying = || self.pending.iter().filter(|p| p.request == Request::Verify);
        if verifying().count() >= max_verifying(P) || verifying().any(|p| p.to == addr) {
            return;
        }
        if self.send_request(addr, Some(id), Request::Verify).is_ok() {
            self.stats.verify_pings += 1;
        }
    }

    /// `id` answered from `addr`: any other contact at that address leaves the table.
    pub(super) fn release_address(&mut self, id: &NodeId, addr: &PeerAddr) {
        let Some((gone, replacement)) = self.routing.release_address(id, addr) else { return };
        self.stats.address_reused += 1;
        self.push_event(PeerChange::Removed(Peer { id: gone.id, addr: gone.addr }));
        if let Some(r) = replacement {
            self.push_event(PeerChange::Added(Peer { id: r.id, addr: r.addr }));
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::max_verifying;
    use crate::config::Config;
    use crate::node::testpeer::{at, deliver, drain, meet, node, peer, pong};
    use crate::stats::RequestKind;
    use crate::wire::{Body, Peer, TxId};

    crate::selftest::unit_tests! {
        fn a_stranger_enters_the_table_only_when_its_address_answers_a_ping() {
            let mut n = node(Config::default());
            deliver(&mut n, at(0), peer(1), TxId([1; 4]), Body::Ping);
            assert!(n.routing().get(&peer(1).id).is_none(), "a request alone does not insert");
            let d = drain(&mut n);
            let pings: heapless::Vec<_, 2> = d.requests_to(peer(1).addr).cloned().collect();
            assert_eq!(pings.len(), 1);
            assert_eq!(pings[0].request, Some(RequestKind::Ping));
            pong(&mut n, at(10), peer(1), pings[0].txid);
            assert!(n.routing().get(&peer(1).id).is_some());
            assert_eq!(n.stats().verify_pings, 1);
        }

        fn a_forged_source_gets_one_ping_and_no_retry() {
            let mut n = node(Config::default());
            for i in 0..3 {
                deliver(&mut n, at(0), peer(1), TxId([i; 4]), Body::Ping);
            }
            assert_eq!(drain(&mut n).requests_to(peer(1).addr).count(), 1, "one verification at a time");
            n.handle_timeout(at(1000));
            let d = drain(&mut n);
            assert_eq!(d.requests_to(peer(1).addr).count(), 0, "no retries");
            assert!(n.routing().is_empty());
        }

        fn one_address_holds_one_id_whatever_ids_it_answers_under() {
            let mut n = node(Config::default());
            let addr = peer(1).addr;
            for i in 1..=5u8 {
                let fake = Peer { id: peer(0x80 | i).id, addr };
                deliver(&mut n, at(i.into()), fake, TxId([i; 4]), Body::Ping);
                let d = drain(&mut n);
                let txid = d.requests_to(addr).next().expect("a verification ping").txid;
                pong(&mut n, at(u64::from(i) + 1), fake, txid);
            }
            assert_eq!(n.routing().len(), 1);
            assert_eq!(n.routing().iter().next().map(|c| c.id), Some(peer(0x85).id));
            assert_eq!(n.stats().address_reused, 4);
        }

        fn verification_pings_take_at_most_a_quarter_of_the_pending_slots() {
            // The test node has 16 pending slots: at most 4 strangers are verified at once.
            let mut n = node(Config::default());
            for i in 1..=8u8 {
                deliver(&mut n, at(0), peer(i), TxId([i; 4]), Body::Ping);
            }
            let d = drain(&mut n);
            let pings = d.sent.iter().filter(|s| s.request == Some(RequestKind::Ping)).count();
            assert_eq!(pings, max_verifying(16));
            assert_eq!(max_verifying(16), 4);
            assert_eq!(max_verifying(2), 1);
            // Known peers are not pinged back.
            let mut n = node(Config::default());
            meet(&mut n, at(0), &[peer(1)]);
            deliver(&mut n, at(5), peer(1), TxId([9; 4]), Body::Ping);
            assert_eq!(drain(&mut n).requests_to(peer(1).addr).count(), 0);
        }
    }
}
