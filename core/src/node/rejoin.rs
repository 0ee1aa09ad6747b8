//! Joining the network: the bootstrap command, and what a finished bootstrap does next.

use crate::addr::PeerAddr;
use crate::id::Key;
use crate::store::RecordStore;
use crate::time::Instant;

use super::commands::Error;
use super::queries::{Kind, Phase, QueryId};
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
    /// Joins the network through known addresses: pings them, looks up the own id, then
    /// refreshes the farther buckets. Finishes with [`Outcome::Bootstrap`](super::Outcome::Bootstrap).
    pub fn bootstrap(&mut self, addrs: &[PeerAddr], now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        if !addrs.iter().any(|a| a.is_routable()) {
            return Err(Error::InvalidAddress);
        }
        let qid = self.new_query(Kind::Bootstrap, self.id.as_key(), true)?;
        let mut sent = 0u16;
        for a in addrs.iter().filter(|a| a.is_routable()) {
            if self.send_request(*a, None, Request::Ping { query: Some(qid) }, None).is_ok() {
                sent += 1;
            }
        }
        let q = self.query_mut(qid).expect("just created");
        q.phase = Phase::Pinging;
        q.outstanding = sent;
        q.stats.requests = sent;
        if sent == 0 {
            self.start_lookup(qid);
        }
        Ok(qid)
    }

    /// The own-id lookup of a bootstrap finished: every bucket it did not pass through is
    /// stale, so all are refreshed, farthest first.
    pub(super) fn bootstrap_done(&mut self, qid: QueryId, target: Key) {
        self.routing.mark_all_stale();
        self.routing.touch(&target, self.now);
        self.finish(qid);
        self.refresh_buckets();
    }
}
