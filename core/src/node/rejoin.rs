//! Joining the network, and joining it again: the bootstrap command, the addresses the node
//! remembers for it, and the re-bootstrap (with backoff) when the routing table runs dry.
//!
//! Every address given to [`Node::bootstrap`] or [`Node::add_seeds`] is remembered (at most
//! [`MAX_SEEDS`], the latest kept). A bootstrap succeeds when its lookup of the own id reached a
//! peer. When one fails, or when fewer than [`Config::rejoin_floor`] contacts are left that are
//! not bad and fewer than right after the last successful bootstrap (partition, sleep, every
//! contact gone), the node bootstraps again on its own from the remembered addresses and the
//! addresses of its contacts, waiting [`Config::rejoin_backoff`] after a failed attempt, twice
//! as long after each further one, at most [`Config::rejoin_backoff_max`]. [`Stats::rebootstraps`]
//! counts these attempts.
//!
//! [`Config::rejoin_floor`]: crate::config::Config::rejoin_floor
//! [`Config::rejoin_backoff`]: crate::config::Config::rejoin_backoff
//! [`Config::rejoin_backoff_max`]: crate::config::Config::rejoin_backoff_max
//! [`Stats::rebootstraps`]: crate::stats::Stats::rebootstraps

use core::time::Duration;

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::config::Config;
use crate::id::Key;
use crate::routing::ContactState;
use crate::store::RecordStore;
use crate::time::Instant;

use super::commands::Error;
use super::queries::{Kind, Phase, QueryId};
use super::rpc::Request;
use super::Node;

/// Bootstrap addresses a node remembers for rejoining.
pub const MAX_SEEDS: usize = 8;

/// What the node remembers for joining again.
#[derive(Clone, Debug)]
pub(super) struct Rejoin {
    /// Addresses given to `bootstrap` and `add_seeds`, oldest first.
    pub(super) seeds: Vec<PeerAddr, MAX_SEEDS>,
    /// When to bootstrap again, if the node should.
    pub(super) due: Option<Instant>,
    /// The wait after the next failed attempt.
    pub(super) backoff: Duration,
    /// Contacts not bad right after the last successful bootstrap.
    pub(super) mark: usize,
}

impl Rejoin {
    pub(super) fn new(config: &Config) -> Self {
        Rejoin { seeds: Vec::new(), due: None, backoff: config.rejoin_backoff, mark: 0 }
    }

    /// Remembers `addr` as the latest seed (the oldest goes when full).
    pub(super) fn remember(&mut self, addr: PeerAddr) {
        if let Some(i) = self.seeds.iter().position(|a| *a == addr) {
            self.seeds.remove(i);
        } else if self.seeds.is_full() {
            self.seeds.remove(0);
        }
        let _ = self.seeds.push(addr);
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
    /// Joins the network through known addresses: pings them, looks up the own id, then
    /// refreshes the farther buckets. Finishes with [`Outcome::Bootstrap`](super::Outcome::Bootstrap):
    /// an error when the lookup reached no peer (the node then tries again on its own, see the
    /// module docs). The addresses are remembered for that.
    pub fn bootstrap(&mut self, addrs: &[PeerAddr], now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        if !addrs.iter().any(|a| a.is_routable()) {
            return Err(Error::InvalidAddress);
        }
        self.add_seeds(addrs);
        let qid = self.new_query(Kind::Bootstrap, self.id.as_key(), true)?;
        self.start_bootstrap(qid, addrs.iter().copied().filter(|a| a.is_routable()));
        Ok(qid)
    }

    /// Remembers addresses to join through again when the routing table runs dry (for example
    /// the contacts a front end saved), without bootstrapping now. Unroutable ones are ignored;
    /// at most [`MAX_SEEDS`] are kept, the latest.
    pub fn add_seeds(&mut self, addrs: &[PeerAddr]) {
        for a in addrs.iter().filter(|a| a.is_routable()) {
            self.rejoin.remember(*a);
        }
    }

    /// The addresses remembered for bootstrapping again, oldest first.
    pub fn seeds(&self) -> &[PeerAddr] {
        &self.rejoin.seeds
    }

    /// Pings `addrs` for bootstrap query `qid`, then (or at once, if none could be sent) looks
    /// up the own id.
    fn start_bootstrap(&mut self, qid: QueryId, addrs: impl Iterator<Item = PeerAddr>) {
        let mut sent = 0u16;
        for a in addrs {
            if self.send_request(a, None, Request::Ping { query: Some(qid) }).is_ok() {
                sent += 1;
            }
        }
        let Some(q) = self.query_mut(qid) else { return };
        q.phase = Phase::Pinging;
        q.outstanding = sent;
        q.stats.requests = sent;
        if sent == 0 {
            self.pings_done(qid);
        }
    }

    /// Every bootstrap ping of `qid` was answered or failed. A server goes on to look up its own
    /// id, so that the nodes near it learn of it. A client is never looked for: it has joined
    /// once a seed answered, which spares a one-shot command a lookup that waits on whatever
    /// dead contacts the seeds still hand out; it then learns its part of the network with the
    /// same lookup in the background, which nobody waits for.
    pub(super) fn pings_done(&mut self, qid: QueryId) {
        if !self.config.client_mode || self.routing.is_empty() {
            self.start_lookup(qid);
            return;
        }
        self.finish(qid);
        self.joined();
        self.start_internal(Kind::Refresh, self.id.as_key());
    }

    /// The own-id lookup of a bootstrap finished. If it reached a peer, every bucket it did not
    /// pass through is stale, so all are refreshed, farthest first; if not, the node tries
    /// again after its backoff.
    pub(super) fn bootstrap_done(&mut self, qid: QueryId, target: Key) {
        let reached = self.query_mut(qid).is_some_and(|q| q.lookup.succeeded().next().is_some());
        self.finish(qid);
        if !reached {
            self.rejoin_later();
            return;
        }
        self.joined();
        self.routing.mark_all_stale();
        self.routing.touch(&target, self.now);
        self.refresh_buckets();
    }

    /// A bootstrap succeeded: no rejoin is due, the backoff starts over, and the contacts the
    /// node has now are the mark that "running dry" is measured against.
    fn joined(&mut self) {
        self.rejoin.due = None;
        self.rejoin.backoff = self.config.rejoin_backoff;
        self.rejoin.mark = self.usable_contacts();
    }

    /// Contacts that are not bad.
    fn usable_contacts(&self) -> usize {
        self.routing.iter().filter(|c| self.routing.state(c, self.now) != ContactState::Bad).count()
    }

    /// Schedules the next attempt after the backoff, and doubles the backoff.
    fn rejoin_later(&mut self) {
        if self.rejoin.due.is_none() {
            self.rejoin.due = Some(self.now + self.rejoin.backoff);
            self.rejoin.backoff = (self.rejoin.backoff * 2).min(self.config.rejoin_backoff_max);
        }
    }

    /// Run from maintenance and when its time comes: bootstraps again when due, or when too
    /// few contacts are left (see the module docs).
    pub(super) fn check_rejoin(&mut self) {
        if self.queries.iter().any(|q| q.kind == Kind::Bootstrap && q.phase != Phase::Done) {
            // A bootstrap under way decides: if it fails, it schedules the next attempt.
            self.rejoin.due = None;
            return;
        }
        let usable = self.usable_contacts();
        let dry = usable < self.config.rejoin_floor && usable < self.rejoin.mark;
        if dry && self.rejoin.due.is_none() {
            self.rejoin.due = Some(self.now);
        }
        if self.rejoin.due.is_none_or(|due| due > self.now) {
            return;
        }
        self.rejoin.due = None;
        let Ok(qid) = self.new_query(Kind::Bootstrap, self.id.as_key(), false) else {
            self.rejoin_later();
            return;
        };
        self.stats.rebootstraps += 1;
        // The remembered addresses, and those of the contacts (they may be back).
        let mut addrs: Vec<PeerAddr, { 2 * MAX_SEEDS }> = Vec::new();
        for a in self.rejoin.seeds.iter().copied().chain(self.routing.iter().map(|c| c.addr)) {
            if !addrs.contains(&a) && addrs.push(a).is_err() {
                break;
            }
        }
        self.start_bootstrap(qid, addrs.into_iter());
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::node::testpeer::{answer_nodes, at, drain, key, node, peer, pong, Drained, TestNode};
    use crate::node::{Event, Outcome, QueryError};
    use crate::stats::RequestKind;
    use crate::wire::Peer;

    /// The bootstrap result among the events, if any.
    fn joined(d: &Drained) -> Option<Result<usize, QueryError>> {
        d.events.iter().find_map(|e| match e {
            Event::QueryDone { outcome: Outcome::Bootstrap(r), .. } => Some(*r),
            _ => None,
        })
    }

    /// Lets the requests in flight go unanswered, retries included, until the bootstrap
    /// ends: when it ended, and the last drain.
    fn silence(n: &mut TestNode, mut d: Drained) -> (Instant, Drained) {
        let mut now = d.wake_at;
        for _ in 0..4 {
            now = d.wake_at;
            n.handle_timeout(now);
            d = drain(n);
            if n.queries_in_flight() == 0 {
                break;
            }
        }
        (now, d)
    }

    /// `p` answers the bootstrap ping in `d`, at `now`.
    fn answer_ping(n: &mut TestNode, now: Instant, p: Peer, d: &Drained) -> Drained {
        let ping = d.requests_to(p.addr).find(|s| s.request == Some(RequestKind::Ping)).expect("a ping");
        pong(n, now, p, ping.txid);
        drain(n)
    }

    crate::selftest::unit_tests! {
        fn a_client_has_joined_when_a_seed_answers_and_looks_up_nothing() {
            let seed = peer(1);
            let mut n = node(Config { client_mode: true, ..Config::default() });
            n.bootstrap(&[seed.addr], at(0)).unwrap();
            let d = drain(&mut n);
            let d = answer_ping(&mut n, at(10), seed, &d);
            assert_eq!(joined(&d), Some(Ok(1)));
            // The own-id lookup follows, in the background.
            assert!(d.requests_to(seed.addr).any(|s| s.request == Some(RequestKind::FindNode)));
            // A server asks the seed for its own neighbourhood instead.
            let mut n = node(Config::default());
            n.bootstrap(&[seed.addr], at(0)).unwrap();
            let d = drain(&mut n);
            let d = answer_ping(&mut n, at(10), seed, &d);
            assert_eq!((joined(&d), d.requests_to(seed.addr).count()), (None, 1));
        }

        fn a_bootstrap_that_reaches_no_peer_fails_and_is_tried_again_with_backoff() {
            let seed = peer(1);
            let mut n = node(Config::default());
            n.bootstrap(&[seed.addr], at(0)).unwrap();
            let d = drain(&mut n);
            // The seed answers the ping, then never again.
            let d = answer_ping(&mut n, at(10), seed, &d);
            assert_eq!(d.requests_to(seed.addr).count(), 1, "the own-id lookup asks it");
            let (t, failed) = silence(&mut n, d);
            assert_eq!(joined(&failed), Some(Err(QueryError::NoPeers)));
            // Five seconds later the node pings the seed again on its own.
            let again_at = failed.wake_at;
            assert_eq!(again_at, t + Config::default().rejoin_backoff);
            n.handle_timeout(again_at);
            let d = drain(&mut n);
            assert_eq!(d.requests_to(seed.addr).filter(|s| s.request == Some(RequestKind::Ping)).count(), 1);
            assert_eq!(n.stats().rebootstraps, 1);
            // This one fails too: the next waits twice as long.
            let (t, failed) = silence(&mut n, d);
            assert_eq!(failed.wake_at, t + Config::default().rejoin_backoff * 2);
        }

        fn a_node_whose_contacts_are_all_gone_bootstraps_again() {
            let (seed, other) = (peer(1), peer(2));
            let mut n = node(Config::default());
            n.bootstrap(&[seed.addr], at(0)).unwrap();
            let d = drain(&mut n);
            let d = answer_ping(&mut n, at(10), seed, &d);
            let ask = d.requests_to(seed.addr).next().expect("find_node").txid;
            answer_nodes(&mut n, at(20), seed, ask, &[other]);
            let d = drain(&mut n);
            let ask = d.requests_to(other.addr).next().expect("find_node").txid;
            answer_nodes(&mut n, at(30), other, ask, &[]);
            let d = drain(&mut n);
            assert_eq!(joined(&d), Some(Ok(2)));
            // Both stop answering: a lookup judges them bad.
            n.find_node(key(3), at(1000)).unwrap();
            let mut d = drain(&mut n);
            for _ in 0..6 {
                n.handle_timeout(d.wake_at);
                d = drain(&mut n);
                if n.routing().count_states(d.wake_at).0 == 0 {
                    break;
                }
            }
            assert_eq!(n.routing().count_states(at(2000)).2, 2, "both bad");
            // The next maintenance run finds no usable contact and bootstraps again.
            n.handle_timeout(at(60_000));
            let d = drain(&mut n);
            assert_eq!(n.stats().rebootstraps, 1);
            let pinged = |p: Peer| d.requests_to(p.addr).any(|s| s.request == Some(RequestKind::Ping));
            assert!(pinged(seed) && pinged(other), "the seed and the old contacts");
        }

        fn the_latest_seeds_are_remembered_each_once() {
            let mut r = Rejoin::new(&Config::default());
            for i in 0..MAX_SEEDS as u8 + 2 {
                r.remember(peer(i + 1).addr);
            }
            r.remember(peer(5).addr);
            assert_eq!(r.seeds.len(), MAX_SEEDS);
            assert_eq!(r.seeds[0], peer(3).addr, "the two oldest went");
            assert_eq!(r.seeds.last(), Some(&peer(5).addr), "given again: now the latest");
            assert_eq!(r.seeds.iter().filter(|a| **a == peer(5).addr).count(), 1);
        }
    }
}
