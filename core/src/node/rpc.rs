//! Requests this node sends: the pending table, transaction ids, timeouts and retries, and
//! what a request that is never answered does to its query.

use core::time::Duration;

use rand_core::RngCore;

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::lookup::PeerState;
use crate::routing::ContactState;
use crate::rtt;
use crate::stats::RequestKind;
use crate::store::RecordStore;
use crate::time::Instant;
use crate::token::Token;
use crate::wire::TxId;

use super::queries::{Phase, QueryId};
use super::Node;

/// Attempts of one request before its peer counts as not answering. Under 10% packet loss a
/// request and its answer both get through 81% of the time: with one attempt a lookup would
/// miss the closest node once in five, with four once in 770. The retries go out together
/// when the first attempt times out, so a dead peer costs two timeouts, not four, and a lookup
/// stops holding an α slot for it after the first (see [`crate::lookup`]).
pub const REQUEST_ATTEMPTS: u8 = 4;

/// A request this node sends, and the query it serves (if any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Request {
    Ping {
        query: Option<QueryId>,
    },
    /// A PING to a stranger's address before its id may enter the routing table (see
    /// `node/verify.rs`): one attempt, no retries.
    Verify,
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
    /// STORE of a query's record (`query` set) or of a held record (replication), with the
    /// write token the target granted this node.
    Store {
        query: Option<QueryId>,
        key: Key,
        cached_ttl: Option<u32>,
        token: Token,
    },
    AddProvider {
        query: Option<QueryId>,
        key: Key,
        token: Token,
    },
}

impl Request {
    pub(super) fn query(&self) -> Option<QueryId> {
        match *self {
            Request::Ping { query } => query,
            Request::Verify => None,
            Request::FindNode { query, .. }
            | Request::FindValue { query, .. }
            | Request::GetProviders { query, .. } => Some(query),
            Request::Store { query, .. } | Request::AddProvider { query, .. } => query,
        }
    }

    /// A lookup's request (FIND_NODE, FIND_VALUE, GET_PROVIDERS).
    pub(super) fn is_lookup(&self) -> bool {
        matches!(self, Request::FindNode { .. } | Request::FindValue { .. } | Request::GetProviders { .. })
    }

    pub(super) fn kind(&self) -> RequestKind {
        match self {
            Request::Ping { .. } | Request::Verify => RequestKind::Ping,
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
    /// 0 for the first attempt; its retries, sent together, are numbered from 1.
    pub(super) attempt: u8,
    /// The transaction id of the first attempt: every attempt of one request shares it (a
    /// lookup may ask a peer the same question twice, in two requests).
    pub(super) first: TxId,
    /// A first attempt that timed out and was retried: kept until its retries' deadline only
    /// so that its late answer still counts; its own deadline judges nothing.
    pub(super) late: bool,
}

impl Pending {
    /// A lookup's request holds an α slot until it is answered or times out: its first
    /// attempt, in time (see [`crate::lookup`]).
    pub(super) fn holds_slot(&self) -> bool {
        self.attempt == 0 && !self.late
    }

    /// Another attempt of the same request (or this one).
    pub(super) fn same_request(&self, other: &Pending) -> bool {
        self.first == other.first
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
    /// Timeout of a request to `id`, or to an address of unknown id (see [`rtt::timeout`]).
    pub(super) fn rpc_timeout(&self, id: Option<&NodeId>) -> Duration {
        let srtt_ms = id.and_then(|id| self.routing.get(id)).map_or(0, |c| c.srtt_ms);
        rtt::timeout(srtt_ms, &self.rtt, &self.config)
    }

    /// Queues a request to `to` (expected to be `expect`), with the timeout its peer gets.
    pub(super) fn send_request(
        &mut self,
        to: PeerAddr,
        expect: Option<NodeId>,
        request: Request,
    ) -> Result<(), ()> {
        let timeout = self.rpc_timeout(expect.as_ref());
        self.push_pending(to, expect, request, timeout, None)
    }

    /// Queues a request with a fresh transaction id: a first attempt, or `retry` = (attempt,
    /// transaction id of the first attempt).
    pub(super) fn push_pending(
        &mut self,
        to: PeerAddr,
        expect: Option<NodeId>,
        request: Request,
        timeout: Duration,
        retry: Option<(u8, TxId)>,
    ) -> Result<(), ()> {
        if self.pending.is_full() {
            self.stats.requests_deferred += 1;
            return Err(());
        }
        // Unique among pending requests; 2^-32 collisions are retried a bounded number of times.
        let mut txid = TxId(self.rng.next_u32().to_le_bytes());
        for _ in 0..4 {
            if !self.pending.iter().any(|p| p.txid == txid || p.first == txid) {
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
            attempt: retry.map_or(0, |(attempt, _)| attempt),
            first: retry.map_or(txid, |(_, first)| first),
            late: false,
        };
        self.pending.push(p).map_err(|_| ())
    }

    /// A request's deadline passed. At the first attempt's timeout the retries go out together
    /// and a lookup stops waiting for the peer in its α slot; the peer is judged (the routing
    /// table counts a failure) only when the last retry times out too. A peer already judged
    /// unresponsive gets no retries, and its lookup does not wait for it.
    pub(super) fn on_request_failed(&mut self, p: Pending) {
        if p.late {
            return;
        }
        self.stats.timeouts += 1;
        if let Some(q) = p.request.query().and_then(|qid| self.query_mut(qid)) {
            q.stats.timeouts += 1;
        }
        if p.attempt > 0 && self.pending.iter().any(|o| o.same_request(&p) && !o.late) {
            // Another retry is still out: the last one judges.
            return;
        }
        let unresponsive = p.expect.is_some_and(|id| self.judged_unresponsive(&id));
        if p.attempt == 0 && !unresponsive && self.still_awaited(&p) && self.retry_together(p) {
            return;
        }
        // Every attempt failed, or the one attempt a bad peer gets: the peer did not answer
        // (a bad contact nothing replaces is dropped after `max_failures_hard` of these).
        let bad = p.expect.is_some_and(|id| self.is_bad(&id));
        if let Some(id) = p.expect.filter(|_| p.attempt > 0 || bad) {
            self.peer_failed(&id);
        }
        self.request_failed_for_query(p);
        if let Some(qid) = p.request.query() {
            self.drive(qid);
        }
        self.drive_starved();
    }

    /// Sends the remaining attempts of a timed-out first attempt at once, each with its own
    /// transaction id and the same timeout, and keeps the first as late so that its answer
    /// still counts. A lookup's candidate stalls (frees its α slot). Returns false when no
    /// retry could be queued.
    fn retry_together(&mut self, p: Pending) -> bool {
        let timeout = p.deadline.saturating_since(p.sent_at);
        let mut sent = 0u16;
        for attempt in 1..REQUEST_ATTEMPTS {
            if self.push_pending(p.to, p.expect, p.request, timeout, Some((attempt, p.first))).is_ok() {
                sent += 1;
            }
        }
        if sent == 0 {
            return false;
        }
        // No room for the late copy only costs its answer.
        let _ = self.pending.push(Pending { late: true, deadline: self.now + timeout, ..p });
        self.stats.retries += u64::from(sent);
        let Some(qid) = p.request.query() else { return true };
        if let Some(q) = self.query_mut(qid) {
            q.stats.requests = q.stats.requests.saturating_add(sent);
            if let (true, Some(id)) = (p.request.is_lookup(), p.expect) {
                q.lookup.on_stall(&id);
            }
        }
        self.drive(qid);
        true
    }

    /// Whether `id` has already shown it does not answer: the routing table counts it failing,
    /// or another request to it is being retried. A lookup does not wait for such a peer.
    fn judged_unresponsive(&self, id: &NodeId) -> bool {
        self.is_bad(id) || self.pending.iter().any(|o| o.expect == Some(*id) && o.attempt > 0)
    }

    /// Whether the routing table holds `id` as bad.
    fn is_bad(&self, id: &NodeId) -> bool {
        self.routing.get(id).is_some_and(|c| self.routing.state(c, self.now) == ContactState::Bad)
    }

    /// Whether a timed-out request still serves a purpose: its query waits for it in the same
    /// phase (for a lookup: the peer is still among its closest candidates), or it serves no
    /// query (a probe, a replication) and is not a stranger's verification.
    pub(super) fn still_awaited(&self, p: &Pending) -> bool {
        if p.request == Request::Verify {
            return false;
        }
        let Some(qid) = p.request.query() else { return true };
        self.queries.iter().find(|q| q.id == qid).is_some_and(|q| match (p.request, q.phase) {
            (Request::Ping { .. }, Phase::Pinging) => true,
            (r, Phase::Lookup) if r.is_lookup() => {
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
                (r, Phase::Lookup) if r.is_lookup() => {
                    if let Some(id) = p.expect {
                        if p.holds_slot() {
                            q.lookup.on_failure(&id);
                        } else {
                            q.lookup.on_late_failure(&id);
                        }
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
            self.pings_done(qid);
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use crate::config::Config;
    use crate::node::testpeer::{answer_nodes, at, drain, key, meet, node, peer, pong, TestNode};
    use crate::node::{Event, Outcome, QueryError};
    use crate::stats::RequestKind;
    use crate::wire::Peer;

    use super::{Request, REQUEST_ATTEMPTS};

    /// The one FIND_NODE result among `events`.
    fn found(
        events: &[Event<{ crate::node::testpeer::VALUE }>],
    ) -> Option<Result<heapless::Vec<Peer, 20>, QueryError>> {
        events.iter().find_map(|e| match e {
            Event::QueryDone { outcome: Outcome::FindNode(r), .. } => Some(r.clone()),
            _ => None,
        })
    }

    /// A node that knows `peers` and has just sent a FIND_NODE for a key near peer 1.
    fn asking(config: Config, peers: &[Peer]) -> TestNode {
        let mut n = node(config);
        meet(&mut n, at(0), peers);
        n.find_node(key(1), at(0)).unwrap();
        n
    }

    crate::selftest::unit_tests! {
        fn retries_go_out_together_at_the_first_timeout_and_a_late_answer_still_counts() {
            let p1 = peer(1);
            let mut n = asking(Config::default(), &[p1]);
            let first = drain(&mut n);
            let sent: heapless::Vec<_, 4> = first.requests_to(p1.addr).cloned().collect();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].request, Some(RequestKind::FindNode));
            // The peer's round trip is unknown: the first attempt times out after 1 s.
            assert_eq!(first.wake_at, at(1000));
            n.handle_timeout(at(1000));
            let retries = drain(&mut n);
            let again: heapless::Vec<_, 4> = retries.requests_to(p1.addr).cloned().collect();
            assert_eq!(again.len(), usize::from(REQUEST_ATTEMPTS) - 1, "the retries go out at once");
            assert!(again.iter().all(|r| r.txid != sent[0].txid));
            assert!(again.iter().all(|a| again.iter().filter(|b| b.txid == a.txid).count() == 1));
            // The first attempt's answer comes late: it still counts, and settles the retries.
            answer_nodes(&mut n, at(1100), p1, sent[0].txid, &[]);
            let done = drain(&mut n);
            assert_eq!(found(&done.events), Some(Ok(heapless::Vec::from_slice(&[p1]).unwrap())));
            assert_eq!(done.wake_at, at(60_000), "no request left pending");
            assert_eq!(n.stats().retries, u64::from(REQUEST_ATTEMPTS) - 1);
        }

        fn a_peer_is_judged_only_when_every_attempt_failed() {
            let p1 = peer(1);
            let mut n = asking(Config::default(), &[p1]);
            drain(&mut n);
            n.handle_timeout(at(1000));
            let retries = drain(&mut n);
            assert_eq!(n.routing().get(&p1.id).map(|c| c.failures), Some(0), "one timeout judges nothing");
            assert_eq!(found(&retries.events), None, "the lookup waits for the retries");
            assert_eq!(retries.wake_at, at(2000), "for one more timeout");
            n.handle_timeout(at(2000));
            let done = drain(&mut n);
            assert_eq!(found(&done.events), Some(Err(QueryError::NoPeers)));
            assert_eq!(n.routing().get(&p1.id).map(|c| c.failures), Some(1));
            assert_eq!(n.stats().timeouts, u64::from(REQUEST_ATTEMPTS));
        }

        fn a_lookup_does_not_wait_for_a_peer_already_judged_unresponsive() {
            let (p1, p2) = (peer(1), peer(2));
            let mut n = asking(Config::default(), &[p2]);
            drain(&mut n);
            n.handle_timeout(at(1000));
            drain(&mut n);
            n.handle_timeout(at(2000));
            drain(&mut n);
            // Peer 2 failed every attempt: it is bad, and no lookup starts from it.
            meet(&mut n, at(3000), &[p1]);
            n.find_node(key(2), at(3000)).unwrap();
            let first = drain(&mut n);
            assert_eq!(first.requests_to(p2.addr).count(), 0);
            let to_p1: heapless::Vec<_, 1> = first.requests_to(p1.addr).cloned().collect();
            // Peer 1 names it: it is asked once, and not waited for past its first timeout.
            answer_nodes(&mut n, at(3050), p1, to_p1[0].txid, &[p2]);
            let asked = drain(&mut n);
            assert_eq!(asked.requests_to(p2.addr).count(), 1);
            n.handle_timeout(asked.wake_at);
            let done = drain(&mut n);
            assert_eq!(done.requests_to(p2.addr).count(), 0, "no retries");
            assert_eq!(found(&done.events), Some(Ok(heapless::Vec::from_slice(&[p1]).unwrap())));
        }

        fn an_answer_settles_its_own_request_not_the_same_question_asked_again() {
            let p1 = peer(1);
            let mut n = node(Config::default());
            meet(&mut n, at(0), &[p1]);
            for _ in 0..2 {
                n.send_request(p1.addr, Some(p1.id), Request::Ping { query: None }).unwrap();
            }
            let pings: heapless::Vec<_, 2> = drain(&mut n).requests_to(p1.addr).cloned().collect();
            assert_eq!(pings.len(), 2);
            pong(&mut n, at(10), p1, pings[0].txid);
            assert_eq!(drain(&mut n).wake_at, at(1000), "the second is still awaited");
        }

        fn a_peer_never_measured_gets_the_timeout_the_node_measured_of_the_network() {
            let (p1, p2) = (peer(1), peer(2));
            let mut n = asking(Config { alpha: 1, ..Config::default() }, &[p1, p2]);
            let first = drain(&mut n);
            assert_eq!(first.wake_at, at(1000), "nothing measured yet: the initial timeout");
            let to_p1: heapless::Vec<_, 1> = first.requests_to(p1.addr).cloned().collect();
            answer_nodes(&mut n, at(100), p1, to_p1[0].txid, &[]);
            let next = drain(&mut n);
            assert_eq!(next.requests_to(p2.addr).count(), 1);
            // One round trip of 100 ms: srtt 100 ms, deviation 50 ms, timeout 100 + 4 × 50.
            assert_eq!(next.wake_at, at(100 + 300));
        }

        fn a_timed_out_peer_gives_its_alpha_slot_to_the_next_candidate() {
            let (p1, p2) = (peer(1), peer(2));
            let mut n = asking(Config { alpha: 1, ..Config::default() }, &[p1, p2]);
            let first = drain(&mut n);
            assert_eq!((first.requests_to(p1.addr).count(), first.requests_to(p2.addr).count()), (1, 0));
            n.handle_timeout(at(1000));
            let next = drain(&mut n);
            assert_eq!(next.requests_to(p1.addr).count(), usize::from(REQUEST_ATTEMPTS) - 1);
            let to_p2: heapless::Vec<_, 1> = next.requests_to(p2.addr).cloned().collect();
            assert_eq!(to_p2.len(), 1, "the next candidate is asked at once");
            answer_nodes(&mut n, at(1050), p2, to_p2[0].txid, &[]);
            // Peer 1 is nearer and its retries are still out: the lookup waits for them.
            assert_eq!(found(&drain(&mut n).events), None);
            n.handle_timeout(at(2000));
            assert_eq!(found(&drain(&mut n).events), Some(Ok(heapless::Vec::from_slice(&[p2]).unwrap())));
        }
    }
}
