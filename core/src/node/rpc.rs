//! Requests this node sends: the pending table, transaction ids, timeouts and retries, and
//! what a request that is never answered does to its query.

use core::time::Duration;

use rand_core::RngCore;

use crate::addr::PeerAddr;
use crate::config::Config;
use crate::id::{Key, NodeId};
use crate::lookup::PeerState;
use crate::stats::RequestKind;
use crate::store::RecordStore;
use crate::time::Instant;
use crate::wire::TxId;

use super::queries::{Phase, QueryId};
use super::Node;

/// Attempts of one request before its peer counts as not answering. Under 10% packet loss a
/// request and its answer both get through 81% of the time: with one attempt a lookup would
/// miss the closest node once in five, with four once in 770. Each attempt costs a dead peer
/// another timeout, which slows lookups under churn (see examples/simulate).
pub const REQUEST_ATTEMPTS: u8 = 4;

/// A request this node sends, and the query it serves (if any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Request {
    Ping {
        query: Option<QueryId>,
    },
    FindNode {
        query: QueryId,
        target: Key,
    },
    FindValue {
        query: QueryId,
        key: Key,
    },
    GetProviders {
        query: QueryId,
        key: Key,
    },
    /// STORE of a query's record (`query` set) or of a held record (replication).
    Store {
        query: Option<QueryId>,
        key: Key,
        cached_ttl: Option<u32>,
    },
    AddProvider {
        query: Option<QueryId>,
        key: Key,
    },
}

impl Request {
    pub(super) fn query(&self) -> Option<QueryId> {
        match *self {
            Request::Ping { query } => query,
            Request::FindNode { query, .. }
            | Request::FindValue { query, .. }
            | Request::GetProviders { query, .. } => Some(query),
            Request::Store { query, .. } | Request::AddProvider { query, .. } => query,
        }
    }

    pub(super) fn kind(&self) -> RequestKind {
        match self {
            Request::Ping { .. } => RequestKind::Ping,
            Request::FindNode { .. } => RequestKind::FindNode,
            Request::FindValue { .. } => RequestKind::FindValue,
            Request::Store { .. } => RequestKind::Store,
            Request::AddProvider { .. } => RequestKind::AddProvider,
            Request::GetProviders { .. } => RequestKind::GetProviders,
        }
    }
}

/// A request waiting to be sent or answered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub(super) txid: TxId,
    pub(super) to: PeerAddr,
    pub(super) expect: Option<NodeId>,
    pub(super) sent: bool,
    pub(super) sent_at: Instant,
    pub(super) deadline: Instant,
    pub(super) request: Request,
    /// 0 for the first attempt.
    pub(super) attempt: u8,
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
    /// Timeout of a request to `id` (see [`rpc_timeout`]).
    pub(super) fn rpc_timeout(&self, id: &NodeId) -> Duration {
        rpc_timeout(self.routing.get(id).map_or(0, |c| c.srtt_ms), &self.config)
    }

    pub(super) fn send_request(
        &mut self,
        to: PeerAddr,
        expect: Option<NodeId>,
        request: Request,
        timeout: Option<Duration>,
    ) -> Result<(), ()> {
        let timeout = timeout.unwrap_or(self.config.rpc_timeout_initial);
        self.push_pending(to, expect, request, timeout, 0)
    }

    /// Queues attempt `attempt` of a request with a fresh transaction id.
    pub(super) fn push_pending(
        &mut self,
        to: PeerAddr,
        expect: Option<NodeId>,
        request: Request,
        timeout: Duration,
        attempt: u8,
    ) -> Result<(), ()> {
        if self.pending.is_full() {
            self.stats.requests_dropped += 1;
            return Err(());
        }
        // Unique among pending requests; 2^-32 collisions are retried a bounded number of times.
        let mut txid = TxId(self.rng.next_u32().to_le_bytes());
        for _ in 0..4 {
            if !self.pending.iter().any(|p| p.txid == txid) {
                break;
            }
            txid = TxId(self.rng.next_u32().to_le_bytes());
        }
        let p = Pending {
            txid,
            to,
            expect,
            sent: false,
            sent_at: self.now,
            deadline: self.now + timeout,
            request,
            attempt,
        };
        self.pending.push(p).map_err(|_| ())
    }

    pub(super) fn on_request_failed(&mut self, p: Pending) {
        self.stats.timeouts += 1;
        let retry = p.attempt + 1 < REQUEST_ATTEMPTS && self.still_awaited(&p);
        // A probe of a full bucket's oldest contact is judged on its last attempt only.
        let probe = matches!(p.request, Request::Ping { query: None });
        if let Some(id) = p.expect.filter(|_| !(retry && probe)) {
            self.peer_failed(&id);
        }
        if let Some(qid) = p.request.query() {
            if let Some(q) = self.query_mut(qid) {
                q.stats.timeouts += 1;
            }
        }
        if retry {
            let timeout = p.deadline.saturating_since(p.sent_at);
            if self.push_pending(p.to, p.expect, p.request, timeout, p.attempt + 1).is_ok() {
                self.stats.retries += 1;
                if let Some(q) = p.request.query().and_then(|qid| self.query_mut(qid)) {
                    q.stats.requests += 1;
                }
                return;
            }
        }
        self.request_failed_for_query(p);
        if let Some(qid) = p.request.query() {
            self.drive(qid);
        }
        self.drive_starved();
    }

    /// Whether a timed-out request still serves a purpose: its query waits for it in the same
    /// phase (for a lookup: the peer is still among its closest candidates), or it serves no
    /// query (a probe, a replication).
    pub(super) fn still_awaited(&self, p: &Pending) -> bool {
        let Some(qid) = p.request.query() else { return true };
        self.queries.iter().find(|q| q.id == qid).is_some_and(|q| match (p.request, q.phase) {
            (Request::Ping { .. }, Phase::Pinging) => true,
            (
                Request::FindNode { .. } | Request::FindValue { .. } | Request::GetProviders { .. },
                Phase::Lookup,
            ) => {
                q.lookup.candidates().iter().any(|c| Some(c.id) == p.expect && c.state == PeerState::Waiting)
            }
            (Request::Store { cached_ttl: None, .. } | Request::AddProvider { .. }, Phase::Storing) => true,
            _ => false,
        })
    }

    pub(super) fn request_failed_for_query(&mut self, p: Pending) {
        let Some(qid) = p.request.query() else { return };
        let start = {
            let Some(q) = self.query_mut(qid) else { return };
            match (p.request, q.phase) {
                (Request::Ping { .. }, Phase::Pinging) => {
                    q.outstanding = q.outstanding.saturating_sub(1);
                    q.outstanding == 0
                }
                (
                    Request::FindNode { .. } | Request::FindValue { .. } | Request::GetProviders { .. },
                    Phase::Lookup,
                ) => {
                    if let Some(id) = p.expect {
                        q.lookup.on_failure(&id);
                    }
                    false
                }
                (Request::Store { .. } | Request::AddProvider { .. }, Phase::Storing) => {
                    q.outstanding = q.outstanding.saturating_sub(1);
                    false
                }
                _ => false,
            }
        };
        if start {
            self.start_lookup(qid);
        }
    }
}

/// Timeout of a request to a peer with smoothed round trip `srtt_ms` (0 while unmeasured):
/// three round trips within `rpc_timeout_min` and `rpc_timeout_max`; `rpc_timeout_initial`
/// while the round trip is unknown.
pub(super) fn rpc_timeout(srtt_ms: u16, config: &Config) -> Duration {
    if srtt_ms == 0 {
        return config.rpc_timeout_initial;
    }
    (Duration::from_millis(srtt_ms as u64) * 3).clamp(config.rpc_timeout_min, config.rpc_timeout_max)
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    crate::selftest::unit_tests! {
        fn a_request_times_out_after_three_round_trips_within_floor_and_ceiling() {
            let c = Config::default();
            assert_eq!(rpc_timeout(100, &c), Duration::from_millis(300));
            assert_eq!(rpc_timeout(10, &c), c.rpc_timeout_min);
            assert_eq!(rpc_timeout(5000, &c), c.rpc_timeout_max);
        }

        fn a_request_to_a_peer_never_measured_gets_the_initial_timeout() {
            let c = Config::default();
            assert_eq!(rpc_timeout(0, &c), c.rpc_timeout_initial);
        }
    }
}
