//! Caching along the lookup path: where a found value is cached, and for how long.

use core::time::Duration;

use crate::id::{Key, NodeId};
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
    /// Caches the found value at the closest peer that answered without it, then finishes.
    pub(super) fn value_done(&mut self, qid: QueryId) {
        let now = self.now;
        let Some(q) = self.query_mut(qid) else { return };
        if let Some((from, _)) = q.value_from {
            let key = *q.lookup.target();
            // The closest peer that answered without the value; failing that, the closest peer
            // farther from the key than the holder that has not answered yet (a peer that
            // holds a primary copy ignores a cached one, so a wrong guess costs one datagram).
            let from_d = key.distance(&from);
            let lacking =
                q.lookup
                    .succeeded()
                    .find(|c| c.id != from)
                    .or_else(|| {
                        q.lookup.candidates().iter().find(|c| {
                            c.state != crate::lookup::PeerState::Failed && key.distance(&c.id) > from_d
                        })
                    })
                    .map(|c| (c.id, c.addr));
            let remaining = q.record.as_ref().map_or(Duration::ZERO, |r| r.expires_at.saturating_since(now));
            if let Some((id, addr)) = lacking {
                let ttl = self.cache_ttl(&key, &id, &from).min(remaining).as_secs() as u32;
                if ttl > 0 {
                    // Fire and forget: the answer is not awaited; the result is delivered once
                    // this request has been transmitted (see `poll_event`).
                    let req = Request::Store { query: Some(qid), key, cached_ttl: Some(ttl) };
                    let _ = self.send_request(addr, Some(id), req, None);
                }
            }
        }
        self.finish(qid);
    }

    /// TTL of a copy cached at `at`: the configured maximum halved for every bit by which
    /// `at` is farther from the key than the peer that held it (at least halved once), never
    /// below the minimum. Cached copies therefore expire sooner than primaries, and sooner
    /// the farther they are from the key.
    pub(super) fn cache_ttl(&self, key: &Key, at: &NodeId, holder: &NodeId) -> Duration {
        let extra = key.distance(at).bits().saturating_sub(key.distance(holder).bits());
        let shift = extra.clamp(1, 16) as u32 - 1;
        let ttl = self.config.cache_ttl_max / (1u32 << shift);
        ttl.max(self.config.cache_ttl_min)
    }
}
