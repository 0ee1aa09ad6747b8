//! The node: the public engine, its state, and the dispatch of inputs and outputs. Each rule
//! it follows lives in a file of its own (see the module map in the crate docs).
//!
//! Inputs: [`Node::handle_datagram`], [`Node::handle_timeout`] and the commands
//! ([`Node::bootstrap`], [`Node::get`], [`Node::put`], ...). Output: [`Node::poll_output`],
//! called after any input until it returns [`Output::Timeout`].

use heapless::{Deque, Vec};
use rand_core::{RngCore, SeedableRng};

use crate::addr::PeerAddr;
use crate::config::Config;
use crate::id::NodeId;
use crate::limits::Sources;
use crate::providers::Providers;
use crate::rng::NodeRng;
use crate::routing::RoutingTable;
use crate::rtt::RttEstimator;
use crate::stats::Stats;
use crate::store::RecordStore;
use crate::time::Instant;
use crate::token::{Secrets, Token};
use crate::wire::{self, DecodeError, Peer};

pub(crate) mod accept;
pub(crate) mod amplification;
pub(crate) mod caching;
pub(crate) mod codec;
pub(crate) mod commands;
pub(crate) mod maintenance;
pub(crate) mod outcome;
pub(crate) mod peers;
pub(crate) mod queries;
pub(crate) mod quorum;
pub(crate) mod quota;
pub(crate) mod rejoin;
pub(crate) mod replication;
pub(crate) mod requests;
pub(crate) mod responses;
pub(crate) mod rpc;
#[cfg(any(test, feature = "selftest"))]
pub(crate) mod testpeer;
pub(crate) mod verify;

pub use commands::{Error, SignedPut};
pub use outcome::{Acks, Outcome, QueryError, QueryStats};
pub use queries::QueryId;
pub use rejoin::MAX_SEEDS;
pub use rpc::REQUEST_ATTEMPTS;

use peers::PeerChange;
use queries::{Phase, Query};
use rejoin::Rejoin;
use requests::Reply;
use rpc::Pending;

/// Something the front end may want to know.
#[derive(Clone, Debug, PartialEq, Eq)]
// No allocator to box the large variant; every variant is bounded by the capacities.
#[allow(clippy::large_enum_variant)]
pub enum Event<const V: usize> {
    /// A query started by a command finished.
    QueryDone {
        /// The id the command returned.
        id: QueryId,
        /// Its counters.
        stats: QueryStats,
        /// Its result.
        outcome: Outcome<V>,
    },
    /// A peer entered the routing table.
    PeerAdded(Peer),
    /// A peer left the routing table (it stopped answering).
    PeerRemoved(Peer),
}

/// What the node wants done next, from [`Node::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
// No allocator to box the large variant; every variant is bounded by the capacities.
#[allow(clippy::large_enum_variant)]
pub enum Output<const V: usize> {
    /// Send the first `len` bytes of the buffer given to `poll_output` to `to`.
    Transmit(Transmit),
    /// Hand this to the user (a finished query) or log it (a peer change).
    Event(Event<V>),
    /// Nothing more to do now: call [`Node::handle_timeout`] at this time, or earlier when a
    /// datagram arrives or a command is given. Always the last output of a drain.
    Timeout(Instant),
}

/// A datagram to send, written into the caller's buffer by [`Node::poll_output`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: PeerAddr,
    /// Bytes written at the start of the buffer.
    pub len: usize,
}

/// A Kademlia node with fixed capacities:
///
/// | parameter | bounds |
/// |---|---|
/// | `S` | the record store (its own capacity; [`crate::store::MemoryStore`] by default in presets) |
/// | `B` | buckets in the routing table |
/// | `K` | contacts per bucket, lookup width and replication factor |
/// | `R` | replacement contacts per bucket |
/// | `Q` | queries at once (user and maintenance; maintenance takes at most half) |
/// | `P` | requests awaiting an answer, and answers waiting to be sent |
/// | `V` | bytes of a stored value (salt included); at most [`MAX_VALUE_LEN`] travel on the wire |
/// | `PV` | provider records |
/// | `E` | peer events waiting to be taken |
///
/// See [`crate::presets`] for tested combinations and their sizes.
///
/// [`MAX_VALUE_LEN`]: crate::store::MAX_VALUE_LEN
pub struct Node<
    S,
    const B: usize,
    const K: usize,
    const R: usize,
    const Q: usize,
    const P: usize,
    const V: usize,
    const PV: usize,
    const E: usize,
> {
    id: NodeId,
    config: Config,
    rng: NodeRng,
    now: Instant,
    routing: RoutingTable<B, K, R>,
    store: S,
    providers: Providers<PV>,
    queries: Vec<Query<K, V>, Q>,
    pending: Vec<Pending, P>,
    replies: Deque<Reply, P>,
    events: Deque<PeerChange, E>,
    next_query: u64,
    next_maintenance: Instant,
    rtt: RttEstimator,
    rejoin: Rejoin,
    /// Token buckets of the latest `P` source prefixes (see [`crate::limits`]).
    sources: Sources<P>,
    /// The secrets write tokens are made from (see [`crate::token`]).
    tokens: Secrets,
    stats: Stats,
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
    /// A node with identity `id` that keeps records in `store`, seeded from the caller's RNG
    /// (transaction ids and refresh targets are drawn from it).
    ///
    /// Inlined, so that a front end that places the node on the heap (`Box::write`) builds it
    /// there: the tables are then written only as they fill, and their unused slots cost no
    /// memory until then.
    #[inline(always)]
    pub fn new(id: NodeId, config: Config, store: S, rng: &mut impl RngCore, now: Instant) -> Self {
        const { assert!(Q >= 1 && P >= 1, "Q and P must be at least 1") };
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut rng = NodeRng::from_seed(seed);
        let tokens = Secrets::new(&mut rng, now);
        Node {
            id,
            config,
            rng,
            now,
            routing: RoutingTable::new(id, config.routing, now).with_limits(config.limits),
            store,
            providers: Providers::new(),
            queries: Vec::new(),
            pending: Vec::new(),
            replies: Deque::new(),
            events: Deque::new(),
            next_query: 1,
            next_maintenance: now + config.maintenance_interval,
            rtt: RttEstimator::new(),
            rejoin: Rejoin::new(&config),
            sources: Sources::new(),
            tokens,
            stats: Stats::default(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The routing table.
    pub fn routing(&self) -> &RoutingTable<B, K, R> {
        &self.routing
    }

    /// The record store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The record store, mutably (for example to delete a record).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The node-wide round-trip estimate (the timeout of peers never measured).
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Provider records held.
    pub fn providers(&self) -> &Providers<PV> {
        &self.providers
    }

    /// Queries in progress (user and maintenance).
    pub fn queries_in_flight(&self) -> usize {
        self.queries.len()
    }

    /// Whether a command that starts a query would start now: one of the `Q` query slots is
    /// free. Otherwise the command would be refused with [`Error::Busy`]; front ends wait for
    /// this instead (see [`crate::backlog`]).
    pub fn can_start_query(&self) -> bool {
        self.queries_in_flight() < Q
    }

    /// The write token this node grants the IP address of `to` now (every answer carries it;
    /// see [`crate::token`]).
    pub fn write_token(&self, to: &PeerAddr) -> Token {
        self.tokens.issue(to)
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        self.tokens.rotate(self.now, &mut self.rng);
    }

    // ----- inputs --------------------------------------------------------------------------

    /// A datagram arrived from `from`. Malformed input, and requests over their source's limit
    /// (see [`crate::limits`]), are dropped and counted; never panics.
    pub fn handle_datagram(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        self.advance(now);
        self.stats.datagrams_in += 1;
        let msg = match wire::decode(bytes) {
            Ok(m) => m,
            Err(DecodeError::Malformed) => return self.stats.dropped_malformed += 1,
            Err(DecodeError::Version) => return self.stats.dropped_version += 1,
            Err(DecodeError::TooLarge | DecodeError::TooLong) => return self.stats.dropped_too_large += 1,
        };
        if msg.header.sender == self.id {
            self.stats.dropped_own_id += 1;
            return;
        }
        if msg.body.is_request() {
            self.handle_request(from, &msg, bytes.len());
        } else {
            self.handle_response(from, &msg);
        }
    }

    /// Time passed: expires requests, runs maintenance when due, advances queries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        while let Some(i) = self.pending.iter().position(|p| p.deadline <= now) {
            let p = self.pending.swap_remove(i);
            self.on_request_failed(p);
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + self.config.maintenance_interval;
            self.maintenance();
        } else if self.rejoin.due.is_some_and(|due| due <= now) {
            self.check_rejoin();
        }
        let mut i = 0;
        while i < self.queries.len() {
            let qid = self.queries[i].id;
            self.drive(qid);
            i += 1;
        }
    }

    // ----- outputs -------------------------------------------------------------------------

    /// Writes the next datagram into `buf` (give it [`wire::MAX_DATAGRAM`] bytes) and says
    /// where to send it; `None` when nothing is waiting.
    fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(reply) = self.replies.pop_front() {
            if let Some(len) = self.encode_reply_fitted(&reply, buf) {
                self.stats.datagrams_out += 1;
                return Some(Transmit { to: reply.to, len });
            }
        }
        while let Some(i) = self.pending.iter().position(|p| !p.sent) {
            self.pending[i].sent = true;
            let p = self.pending[i];
            match self.encode_request(&p, buf) {
                Some(len) => {
                    self.stats.datagrams_out += 1;
                    self.stats.requests_out[p.request.kind()] += 1;
                    return Some(Transmit { to: p.to, len });
                }
                None => {
                    // The record vanished or the buffer is too small: drop the request (and
                    // its other attempts) without blaming the peer.
                    self.pending.swap_remove(i);
                    self.pending.retain(|o| !o.same_request(&p));
                    self.stats.requests_abandoned += 1;
                    self.request_failed_for_query(p);
                    if let Some(qid) = p.request.query() {
                        self.drive(qid);
                    }
                }
            }
        }
        None
    }

    /// When `handle_timeout` should be called next: the earliest request deadline, the next
    /// maintenance run, or the next attempt to rejoin.
    pub fn poll_timeout(&self) -> Instant {
        let rpc = self.pending.iter().map(|p| p.deadline).min();
        let next = rpc.map_or(self.next_maintenance, |d| d.min(self.next_maintenance));
        self.rejoin.due.map_or(next, |due| due.min(next))
    }

    /// The next thing to do, written for the one loop every front end runs after each input
    /// (a datagram, a timeout, a command): datagrams to send first, then events, and last the
    /// time to wake up. Call it until it returns [`Output::Timeout`]; `buf` must hold
    /// [`wire::MAX_DATAGRAM`] bytes.
    ///
    /// ```
    /// # use kad_core::{presets::host, Config, Instant, NodeId, Output, wire::MAX_DATAGRAM};
    /// # use rand::SeedableRng;
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// # let mut node: host::Node = host::Node::new(NodeId::random(&mut rng), Config::default(),
    /// #                                            host::Store::new(), &mut rng, Instant::ZERO);
    /// let mut buf = [0u8; MAX_DATAGRAM];
    /// let wake_at = loop {
    ///     match node.poll_output(&mut buf) {
    ///         Output::Transmit(t) => { /* socket.send_to(&buf[..t.len], t.to) */ }
    ///         Output::Event(e) => { /* hand results to the user */ }
    ///         Output::Timeout(at) => break at,
    ///     }
    /// };
    /// ```
    pub fn poll_output(&mut self, buf: &mut [u8]) -> Output<V> {
        if let Some(t) = self.poll_transmit(buf) {
            return Output::Transmit(t);
        }
        if let Some(e) = self.poll_event() {
            return Output::Event(e);
        }
        Output::Timeout(self.poll_timeout())
    }

    /// The next event: finished queries first, then peer changes.
    fn poll_event(&mut self) -> Option<Event<V>> {
        // A result is delivered once the query's last datagram (a cache store) has left.
        let ready = self.queries.iter().position(|q| {
            q.phase == Phase::Done
                && q.user
                && !self.pending.iter().any(|p| !p.sent && p.request.query() == Some(q.id))
        });
        if let Some(i) = ready {
            let q = self.queries.swap_remove(i);
            return Some(Event::QueryDone { id: q.id, stats: q.stats, outcome: self.outcome(q) });
        }
        self.events.pop_front().map(|c| match c {
            PeerChange::Added(p) => Event::PeerAdded(p),
            PeerChange::Removed(p) => Event::PeerRemoved(p),
        })
    }
}
