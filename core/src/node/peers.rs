//! Routing upkeep: a peer heard from enters the table (or a full bucket's oldest contact is
//! probed), and peer changes are queued as events.

use crate::addr::PeerAddr;
use crate::id::NodeId;
use crate::routing::{Failure, Insert};
use crate::store::RecordStore;
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
    /// contact, and hand a new peer the records it should hold.
    pub(super) fn saw_peer(&mut self, id: NodeId, addr: PeerAddr, verified: bool) {
        if !addr.is_routable() {
            return;
        }
        match self.routing.insert(id, addr, verified, self.now) {
            Insert::Added => {
                self.push_event(PeerChange::Added(Peer { id, addr }));
                self.replicate_to(id, addr);
            }
            Insert::Cached { ping: Some(lrs) } => {
                let timeout = self.rpc_timeout(&lrs.id);
                let _ =
                    self.send_request(lrs.addr, Some(lrs.id), Request::Ping { query: None }, Some(timeout));
            }
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

    /// Queues a peer change for [`Node::poll_output`], counting it when the queue is full.
    pub(super) fn push_event(&mut self, e: PeerChange) {
        if self.events.push_back(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }
}
