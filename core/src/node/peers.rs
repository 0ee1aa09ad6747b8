//! Routing upkeep: a peer heard from enters the table (or a full bucket's oldest contact is
//! probed; a stranger's address is verified first, see `node/verify.rs`), and peer changes
//! are queued as events.

use crate::addr::PeerAddr;
use crate::id::NodeId;
use crate::routing::{Contact, Failure, Insert};
use crate::store::RecordStore;
use crate::token::Token;
use crate::wire::Peer;

use super::rpc::Request;
use super::Node;

/// A change of the routing table, waiting to be taken as an [`Event`](super::Event).
#[derive(Clone, Copy, Debug)]
pub(super) enum PeerChange {
    Added(Peer),
    Removed(Peer),
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
    /// A non-client peer was heard from: update the table, probe a full bucket's oldest
    /// contact, hand a new peer the records it should hold, or verify a stranger's address.
    /// `token` is the write token of its answer (`Some`: it answered a request this node sent
    /// to `addr`, a verified round trip); a peer heard only in a request gets no records (it
    /// granted no token to store them) and is pinged to verify it.
    pub(super) fn saw_peer(&mut self, id: NodeId, addr: PeerAddr, token: Option<Token>) {
        if !addr.is_routable() {
            return;
        }
        let verified = token.is_some();
        if verified {
            self.release_address(&id, &addr);
        }
        match self.routing.insert(id, addr, verified, self.now) {
            Insert::Added => {
                self.push_event(PeerChange::Added(Peer { id, addr }));
                if let Some(t) = token {
                    self.replicate_to(id, addr, t);
                }
            }
            Insert::Replaced { bad } => {
                self.push_event(PeerChange::Removed(Peer { id: bad.id, addr: bad.addr }));
                self.push_event(PeerChange::Added(Peer { id, addr }));
                if let Some(t) = token {
                    self.replicate_to(id, addr, t);
                }
            }
            Insert::Cached { ping: Some(lrs) } => {
                let _ = self.send_request(lrs.addr, Some(lrs.id), Request::Ping { query: None });
            }
            Insert::Unverified => self.verify(id, addr),
            Insert::Refused => self.stats.diversity_refused += 1,
            Insert::Cached { ping: None } | Insert::Updated | Insert::OwnId => {}
        }
    }

    /// A request to `id` went unanswered: the table counts the failure and may drop the
    /// contact for a replacement.
    pub(super) fn peer_failed(&mut self, id: &NodeId) {
        match self.routing.on_failure(id) {
            Failure::Removed { removed, replacement } => {
                self.push_event(PeerChange::Removed(Peer { id: removed.id, addr: removed.addr }));
                if let Some(r) = replacement {
                    self.push_event(PeerChange::Added(Peer { id: r.id, addr: r.addr }));
                }
            }
            Failure::Kept | Failure::Unknown => {}
        }
    }

    /// Pings, in the background, up to [`RoutingConfig::liveness_pings`] contacts about to
    /// turn questionable (the longest silent first), then bad ones: a live one answers and is
    /// good, a dead one fails and makes way for a replacement.
    ///
    /// [`RoutingConfig::liveness_pings`]: crate::routing::RoutingConfig::liveness_pings
    pub(super) fn ping_silent_contacts(&mut self) {
        for _ in 0..self.config.routing.liveness_pings {
            let pending = &self.pending;
            let pinged = |c: &Contact| {
                pending.iter().any(|p| p.expect == Some(c.id) && matches!(p.request, Request::Ping { .. }))
            };
            let Some(c) = self.routing.next_to_ping(self.now, pinged) else { return };
            if self.send_request(c.addr, Some(c.id), Request::Ping { query: None }).is_err() {
                return;
            }
            self.stats.liveness_pings += 1;
        }
    }

    /// Queues a peer change for [`Node::poll_output`], counting it when the queue is full.
    pub(super) fn push_event(&mut self, e: PeerChange) {
        if self.events.push_back(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use crate::config::Config;
    use crate::node::testpeer::{at, deliver, drain, key, meet, node, peer};
    use crate::routing::RoutingConfig;
    use crate::stats::RequestKind;
    use crate::wire::{Body, TxId};

    const MIN: u64 = 60_000;

    crate::selftest::unit_tests! {
        fn a_reply_names_only_contacts_heard_from_within_good_for() {
            let mut n = node(Config::default());
            meet(&mut n, at(0), &[peer(1)]);
            meet(&mut n, at(5 * MIN), &[peer(2)]);
            // At 16 min peer 1 has been silent for longer than 15 min, peer 2 has not.
            deliver(&mut n, at(16 * MIN), peer(9), TxId([9; 4]), Body::FindNode { target: key(1) });
            let d = drain(&mut n);
            let reply = d.sent.iter().find(|s| s.to == peer(9).addr).expect("an answer");
            assert_eq!(&reply.nodes[..], &[peer(2)]);
        }

        fn contacts_about_to_turn_questionable_are_pinged_a_few_per_maintenance_run() {
            let routing = RoutingConfig { liveness_pings: 2, ..RoutingConfig::default() };
            let mut n = node(Config { routing, ..Config::default() });
            for (i, p) in [peer(1), peer(2), peer(3)].into_iter().enumerate() {
                meet(&mut n, at(i as u64 * 1000), &[p]);
            }
            n.handle_timeout(at(12 * MIN));
            let d = drain(&mut n);
            let pinged: heapless::Vec<_, 4> =
                d.sent.iter().filter(|s| s.request == Some(RequestKind::Ping)).map(|s| s.to).collect();
            assert_eq!(&pinged[..], &[peer(1).addr, peer(2).addr], "the longest silent, at most two");
            assert_eq!(n.stats().liveness_pings, 2);
        }

        fn a_bad_contact_nothing_replaces_is_pinged_until_it_has_failed_max_failures_hard_requests() {
            let p1 = peer(1);
            let mut n = node(Config::default());
            meet(&mut n, at(0), &[p1]);
            n.find_node(key(1), at(0)).unwrap();
            let mut d = drain(&mut n);
            // Every attempt of the lookup's request fails: bad, one failure.
            for _ in 0..2 {
                n.handle_timeout(d.wake_at);
                d = drain(&mut n);
            }
            assert_eq!(n.routing().get(&p1.id).map(|c| c.failures), Some(1));
            // Then each maintenance run pings it once, and each silence counts.
            let mut pings = 0;
            for run in 1..=6u64 {
                n.handle_timeout(at(run * MIN));
                let d = drain(&mut n);
                pings += d.requests_to(p1.addr).count();
                n.handle_timeout(d.wake_at.min(at(run * MIN + 30_000)));
                drain(&mut n);
            }
            let hard = RoutingConfig::default().max_failures_hard;
            assert_eq!(pings, usize::from(hard) - 1);
            assert!(n.routing().get(&p1.id).is_none(), "dropped after {hard} failed requests");
        }
    }
}
