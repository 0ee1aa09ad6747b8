//! Replication: which held records a newly seen peer should get from this node.

use crate::addr::PeerAddr;
use crate::id::NodeId;
use crate::routing::Contact;
use crate::store::{Origin, RecordStore};

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
    /// Sends a newly seen peer every held record for which it is among the `K` closest known
    /// nodes while this node is the closest (so one node takes care of it, as the paper says).
    pub(super) fn replicate_to(&mut self, peer: NodeId, addr: PeerAddr) {
        let mut cursor = None;
        while let Some(key) = self.store.next_key(cursor.as_ref()) {
            cursor = Some(key);
            let Some(meta) = self.store.meta(&key) else { continue };
            if meta.origin == Origin::Cache
                || (meta.origin != Origin::Publisher && meta.expires_at <= self.now)
            {
                continue;
            }
            let mut near = [Contact::new(self.id, addr, self.now); K];
            let n = self.routing.closest(&key, Some(&peer), &mut near);
            let own_d = key.distance(&self.id);
            let peer_d = key.distance(&peer);
            let we_are_closest = n == 0 || own_d < key.distance(&near[0].id);
            let peer_is_close = n < K || peer_d < key.distance(&near[n - 1].id);
            if we_are_closest && peer_is_close {
                let req = Request::Store { query: None, key, cached_ttl: None };
                if self.send_request(addr, Some(peer), req, None).is_ok() {
                    self.stats.replications += 1;
                } else {
                    return;
                }
            }
        }
    }
}
