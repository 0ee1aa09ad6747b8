//! The node: ties routing, lookups, records and providers to the wire. The public engine.
//!
//! Inputs: [`Node::handle_datagram`], [`Node::handle_timeout`] and the commands
//! ([`Node::bootstrap`], [`Node::get`], [`Node::put`], ...). Outputs: [`Node::poll_transmit`],
//! [`Node::poll_timeout`], [`Node::poll_event`]. After any input, drain the outputs: transmit
//! until `None`, take events until `None`, then sleep until `poll_timeout`.

use core::fmt;
use core::time::Duration;

use heapless::{Deque, Vec};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::addr::PeerAddr;
use crate::config::Config;
use crate::id::{Key, NodeId};
use crate::lookup::{Lookup, PeerState};
use crate::providers::{Added, ProviderRecord, Providers};
use crate::routing::{Contact, Failure, Insert, RoutingTable};
use crate::signed::{self, PublicKey, Signature};
use crate::stats::{RequestKind, Stats};
use crate::store::{
    eviction_candidate, Origin, Record, RecordStore, Signer, StoreError, ValueKind, MAX_SALT_LEN,
    MAX_VALUE_LEN,
};
use crate::time::Instant;
use crate::wire::{
    self, Body, Bytes, DecodeError, Flags, Header, Message, Peer, StoreStatus, TxId, WireRecord,
    WireSignature, MAX_CONTACTS, MAX_PROVIDERS, VERSION,
};

/// Identifies a query started by a command; its result comes back in [`Event::QueryDone`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// A signed record to store: who signed it, under which salt and sequence number, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPut<'a> {
    /// Ed25519 public key of the writer.
    pub public_key: PublicKey,
    /// Salt (at most 64 bytes); the record lives at SHA-1(public key ‖ salt).
    pub salt: &'a [u8],
    /// Sequence number: peers keep only the highest.
    pub seq: u64,
    /// Ed25519 signature over the BEP 44 form of (salt, seq, value).
    pub signature: Signature,
    /// Compare-and-swap: store only where the held sequence number equals this.
    pub cas: Option<u64>,
}

/// Why a command was refused. Nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// All query slots are taken; retry when a query finishes.
    Busy {
        /// The number of slots (the `Q` capacity).
        capacity: usize,
    },
    /// The value is larger than this node or the protocol allows.
    ValueTooLarge {
        /// Bytes given (salt included for signed records).
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// The salt of a signed record is longer than 64 bytes.
    SaltTooLarge {
        /// Bytes given.
        len: usize,
    },
    /// The routing table is empty: bootstrap from a known peer first.
    NoPeers,
    /// None of the given bootstrap addresses is a usable unicast address.
    InvalidAddress,
    /// The local store is full of records this node published and cannot take this one.
    StoreFull,
    /// Signed records need the `signed` feature.
    Unsupported,
    /// The signature does not verify for this public key, salt, sequence number and value.
    BadSignature,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Busy { capacity } => {
                write!(f, "all {capacity} query slots are busy; retry when a query finishes")
            }
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes is over the limit of {max} bytes")
            }
            Error::SaltTooLarge { len } => {
                write!(f, "salt of {len} bytes is over the limit of {MAX_SALT_LEN} bytes")
            }
            Error::NoPeers => f.write_str("no known peers: bootstrap from a running node first"),
            Error::InvalidAddress => f.write_str("no usable bootstrap address (need IP and port)"),
            Error::StoreFull => f.write_str("local store is full of this node's own records"),
            Error::Unsupported => f.write_str("signed records need kad-core's `signed` feature"),
            Error::BadSignature => f.write_str("signature does not match public key, salt, seq and value"),
        }
    }
}

/// Why a query failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// No peer had a value (or provider) for the key.
    NotFound,
    /// No peer acknowledged the store. `refusal` is the last reason a peer gave, if any.
    NoAcks {
        /// Peers asked.
        tried: u16,
        /// The last refusal, if a peer refused rather than stayed silent.
        refusal: Option<StoreStatus>,
    },
    /// No peer answered at all.
    NoPeers,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::NotFound => f.write_str("not found"),
            QueryError::NoAcks { tried, refusal: Some(r) } => {
                write!(f, "no peer stored the value ({tried} asked, last refusal: {r:?})")
            }
            QueryError::NoAcks { tried, refusal: None } => {
                write!(f, "no peer stored the value ({tried} asked, none answered)")
            }
            QueryError::NoPeers => f.write_str("no peer answered"),
        }
    }
}

/// How a query went, for metrics and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Requests sent (lookup and store phases).
    pub requests: u16,
    /// Answers received.
    pub responses: u16,
    /// Requests that timed out.
    pub timeouts: u16,
    /// Lookup rounds: the deepest hop among answering peers (for a found value: the hop of the
    /// peer that returned it).
    pub rounds: u8,
    /// When the query started.
    pub started: Instant,
    /// When it finished.
    pub finished: Instant,
}

/// Acknowledgements of a put or provide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acks {
    /// Peers that stored it.
    pub stored: u16,
    /// Peers asked.
    pub tried: u16,
}

/// The result of a finished query.
#[derive(Clone, Debug, PartialEq, Eq)]
// No allocator to box the large variant; every variant is bounded by the capacities.
#[allow(clippy::large_enum_variant)]
pub enum Outcome<const V: usize> {
    /// Bootstrap: the number of contacts in the routing table.
    Bootstrap(Result<usize, QueryError>),
    /// FIND_NODE: the closest peers that answered, nearest first.
    FindNode(Result<Vec<Peer, MAX_CONTACTS>, QueryError>),
    /// FIND_VALUE: the record.
    Get(Result<Record<V>, QueryError>),
    /// STORE on the closest peers.
    Put(Result<Acks, QueryError>),
    /// ADD_PROVIDER on the closest peers.
    Provide(Result<Acks, QueryError>),
    /// GET_PROVIDERS: the providers found.
    GetProviders(Result<Vec<Peer, MAX_PROVIDERS>, QueryError>),
}

impl<const V: usize> Outcome<V> {
    /// True when the query could not do its job: any error except "not found" (a get or
    /// provider lookup that found nothing ran fine and answered the question).
    pub fn is_failure(&self) -> bool {
        let err = match self {
            Outcome::Bootstrap(r) => r.as_ref().err(),
            Outcome::FindNode(r) => r.as_ref().err(),
            Outcome::Get(r) => r.as_ref().err(),
            Outcome::Put(r) | Outcome::Provide(r) => r.as_ref().err(),
            Outcome::GetProviders(r) => r.as_ref().err(),
        };
        err.is_some_and(|e| *e != QueryError::NotFound)
    }
}

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

/// Attempts of one request before its peer counts as not answering. Under 10% packet loss a
/// request and its answer both get through 81% of the time: with one attempt a lookup would
/// miss the closest node once in five, with four once in 770. Each attempt costs a dead peer
/// another timeout, which slows lookups under churn (see examples/simulate).
pub const REQUEST_ATTEMPTS: u8 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bootstrap,
    FindNode,
    Get { signed: bool },
    Put,
    Provide,
    GetProviders,
    // Maintenance: no event.
    Refresh,
    Republish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Pinging,
    Lookup,
    Storing,
    Done,
}

#[derive(Clone, Debug)]
struct Query<const K: usize, const V: usize> {
    id: QueryId,
    kind: Kind,
    user: bool,
    phase: Phase,
    lookup: Lookup<K>,
    record: Option<Record<V>>,
    cas: Option<u64>,
    /// The peer that returned the value (FIND_VALUE) and its hop.
    value_from: Option<(NodeId, u8)>,
    providers: Vec<Peer, MAX_PROVIDERS>,
    outstanding: u16,
    /// Store phase: peers to ask (the closest that answered), and how many were asked so far.
    tried: u16,
    stores_sent: u16,
    /// A request could not be sent for lack of a pending slot: drive again when one frees.
    starved: bool,
    acks: u16,
    refusal: Option<StoreStatus>,
    stats: QueryStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
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
    fn query(&self) -> Option<QueryId> {
        match *self {
            Request::Ping { query } => query,
            Request::FindNode { query, .. }
            | Request::FindValue { query, .. }
            | Request::GetProviders { query, .. } => Some(query),
            Request::Store { query, .. } | Request::AddProvider { query, .. } => query,
        }
    }

    fn kind(&self) -> RequestKind {
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

#[derive(Clone, Copy, Debug)]
struct Pending {
    txid: TxId,
    to: PeerAddr,
    expect: Option<NodeId>,
    sent: bool,
    sent_at: Instant,
    deadline: Instant,
    request: Request,
    /// 0 for the first attempt.
    attempt: u8,
}

#[derive(Clone, Copy, Debug)]
enum ReplyBody {
    Pong,
    Nodes { target: Key },
    Value { key: Key },
    Stored(StoreStatus),
    ProviderAdded(bool),
    Providers { key: Key },
}

#[derive(Clone, Copy, Debug)]
enum PeerChange {
    Added(Peer),
    Removed(Peer),
}

#[derive(Clone, Copy, Debug)]
struct Reply {
    to: PeerAddr,
    txid: TxId,
    requester: NodeId,
    body: ReplyBody,
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
    rng: ChaCha8Rng,
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
    pub fn new(id: NodeId, config: Config, store: S, rng: &mut impl RngCore, now: Instant) -> Self {
        const { assert!(Q >= 1 && P >= 1, "Q and P must be at least 1") };
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Node {
            id,
            config,
            rng: ChaCha8Rng::from_seed(seed),
            now,
            routing: RoutingTable::new(id, config.routing, now),
            store,
            providers: Providers::new(),
            queries: Vec::new(),
            pending: Vec::new(),
            replies: Deque::new(),
            events: Deque::new(),
            next_query: 1,
            next_maintenance: now + config.maintenance_interval,
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

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    // ----- commands ------------------------------------------------------------------------

    /// Joins the network through known addresses: pings them, looks up the own id, then
    /// refreshes the farther buckets. Finishes with [`Outcome::Bootstrap`].
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

    /// Finds the `K` closest nodes to `target` (FIND_NODE).
    pub fn find_node(&mut self, target: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        self.start_user(Kind::FindNode, target)
    }

    /// Finds the value stored under `key` (FIND_VALUE); the local store answers first.
    pub fn get(&mut self, key: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        if let Some(rec) = self.live_record(&key) {
            if rec.signer.is_none() {
                let qid = self.new_query(Kind::Get { signed: false }, key, true)?;
                let q = self.query_mut(qid).expect("just created");
                q.record = Some(rec);
                self.finish(qid);
                return Ok(qid);
            }
        }
        self.start_user(Kind::Get { signed: false }, key)
    }

    /// Finds the signed record of `public_key` and `salt` with the highest sequence number,
    /// verifying every signature on the way.
    pub fn get_signed(
        &mut self,
        public_key: &PublicKey,
        salt: &[u8],
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.advance(now);
        if salt.len() > MAX_SALT_LEN {
            return Err(Error::SaltTooLarge { len: salt.len() });
        }
        let key = signed::key_for(public_key, salt);
        let local = self.live_record(&key).filter(|r| r.signer.is_some());
        let qid = self.start_user(Kind::Get { signed: true }, key)?;
        if let Some(q) = self.query_mut(qid) {
            q.record = local;
        }
        Ok(qid)
    }

    /// Stores `value` under `key` on the `K` closest nodes; this node keeps it as publisher and
    /// republishes it every `publisher_republish_interval`. Finishes with [`Outcome::Put`], an
    /// error when no peer acknowledged.
    pub fn put(&mut self, key: Key, kind: ValueKind, value: &[u8], now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        let max = V.min(MAX_VALUE_LEN);
        let data = Vec::from_slice(value).ok().filter(|_| value.len() <= max);
        let data = data.ok_or(Error::ValueTooLarge { len: value.len(), max })?;
        let record = Record {
            key,
            kind,
            data,
            signer: None,
            origin: Origin::Publisher,
            expires_at: now + self.config.record_ttl,
            stored_at: now,
            republished_at: now,
        };
        self.publish(record, None)
    }

    /// Stores a signed record: key = SHA-1(public key ‖ salt), signed over (salt, seq, value).
    /// With `cas`, peers store it only if their current sequence number equals `cas`.
    #[cfg(feature = "signed")]
    #[allow(clippy::too_many_arguments)]
    pub fn put_signed(
        &mut self,
        keypair: &signed::Keypair,
        salt: &[u8],
        seq: u64,
        kind: ValueKind,
        value: &[u8],
        cas: Option<u64>,
        now: Instant,
    ) -> Result<QueryId, Error> {
        let signature = keypair.sign(salt, seq, value);
        let signed = SignedPut { public_key: keypair.public_key(), salt, seq, signature, cas };
        self.put_presigned(&signed, kind, value, now)
    }

    /// Stores a record signed elsewhere (for example by an HTTP client holding the secret
    /// key). The signature is verified here first: a bad one is [`Error::BadSignature`].
    pub fn put_presigned(
        &mut self,
        signed: &SignedPut<'_>,
        kind: ValueKind,
        value: &[u8],
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.advance(now);
        let salt = signed.salt;
        if salt.len() > MAX_SALT_LEN {
            return Err(Error::SaltTooLarge { len: salt.len() });
        }
        let len = salt.len() + value.len();
        let max = V.min(MAX_VALUE_LEN);
        let mut data: Vec<u8, V> = Vec::new();
        if len > max || data.extend_from_slice(salt).is_err() || data.extend_from_slice(value).is_err() {
            return Err(Error::ValueTooLarge { len, max });
        }
        let key = signed::key_for(&signed.public_key, salt);
        signed::verify(&key, &signed.public_key, salt, signed.seq, value, &signed.signature).map_err(
            |e| match e {
                signed::SignatureError::Invalid => Error::BadSignature,
                signed::SignatureError::Unsupported => Error::Unsupported,
            },
        )?;
        let record = Record {
            key,
            kind,
            data,
            signer: Some(Signer {
                public_key: signed.public_key,
                seq: signed.seq,
                signature: signed.signature,
                salt_len: salt.len() as u8,
            }),
            origin: Origin::Publisher,
            expires_at: now + self.config.record_ttl,
            stored_at: now,
            republished_at: now,
        };
        self.publish(record, signed.cas)
    }

    fn publish(&mut self, record: Record<V>, cas: Option<u64>) -> Result<QueryId, Error> {
        if self.routing.is_empty() {
            return Err(Error::NoPeers);
        }
        if self.free_slots(true) == 0 {
            self.stats.queries_busy += 1;
            return Err(Error::Busy { capacity: Q });
        }
        self.store_local(record.clone()).map_err(|_| Error::StoreFull)?;
        let qid = self.start_user(Kind::Put, record.key)?;
        let q = self.query_mut(qid).expect("just created");
        q.record = Some(record);
        q.cas = cas;
        Ok(qid)
    }

    /// Announces this node as a provider of `key` to the `K` closest nodes, and keeps
    /// re-announcing it every `provider_republish_interval`.
    pub fn provide(&mut self, key: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        let qid = self.start_user(Kind::Provide, key)?;
        let own = ProviderRecord {
            key,
            provider: self.id,
            addr: PeerAddr::V4([0; 4], 0),
            expires_at: now + self.config.provider_republish_interval,
        };
        if self.providers.add(own, &self.id, now) == Added::Full {
            self.stats.providers_refused += 1;
        }
        Ok(qid)
    }

    /// Stops re-announcing `key` (peers forget it when their records expire).
    pub fn stop_providing(&mut self, key: &Key) {
        self.providers.remove_own(key, &self.id);
    }

    /// Finds providers of `key` (GET_PROVIDERS).
    pub fn get_providers(&mut self, key: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        self.start_user(Kind::GetProviders, key)
    }

    // ----- inputs --------------------------------------------------------------------------

    /// A datagram arrived from `from`. Malformed input is dropped and counted; never panics.
    pub fn handle_datagram(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        self.advance(now);
        self.stats.datagrams_in += 1;
        let msg = match wire::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                match e {
                    DecodeError::Malformed => self.stats.dropped_malformed += 1,
                    DecodeError::Version => self.stats.dropped_version += 1,
                    DecodeError::TooLarge | DecodeError::TooLong => self.stats.dropped_too_large += 1,
                }
                return;
            }
        };
        let sender = msg.header.sender;
        if sender == self.id {
            self.stats.dropped_own_id += 1;
            return;
        }
        if msg.body.is_request() {
            if !msg.header.flags.is_client() {
                self.saw_peer(sender, from, false);
            }
            self.handle_request(from, &msg);
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
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(reply) = self.replies.pop_front() {
            if let Some(len) = self.encode_reply(&reply, buf) {
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
                    // The record vanished or the buffer is too small: drop the request
                    // without blaming the peer.
                    self.pending.swap_remove(i);
                    self.stats.requests_dropped += 1;
                    self.request_failed_for_query(p);
                    if let Some(qid) = p.request.query() {
                        self.drive(qid);
                    }
                }
            }
        }
        None
    }

    /// When `handle_timeout` should be called next: the earliest request deadline, or the
    /// next maintenance run.
    pub fn poll_timeout(&self) -> Instant {
        let rpc = self.pending.iter().map(|p| p.deadline).min();
        rpc.map_or(self.next_maintenance, |d| d.min(self.next_maintenance))
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
    pub fn poll_event(&mut self) -> Option<Event<V>> {
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

    // ----- requests ------------------------------------------------------------------------

    fn handle_request(&mut self, from: PeerAddr, msg: &Message<'_>) {
        let h = msg.header;
        let (kind, body) = match &msg.body {
            Body::Ping => (RequestKind::Ping, ReplyBody::Pong),
            Body::FindNode { target } => (RequestKind::FindNode, ReplyBody::Nodes { target: *target }),
            Body::FindValue { key } => {
                let body = if self.live_record(key).is_some() {
                    ReplyBody::Value { key: *key }
                } else {
                    ReplyBody::Nodes { target: *key }
                };
                (RequestKind::FindValue, body)
            }
            Body::Store { record } => {
                let status = self.accept_store(record);
                if status == StoreStatus::Stored {
                    self.stats.stores_accepted += 1;
                } else {
                    self.stats.stores_refused += 1;
                }
                (RequestKind::Store, ReplyBody::Stored(status))
            }
            Body::AddProvider { key } => {
                let rec = ProviderRecord {
                    key: *key,
                    provider: h.sender,
                    addr: from,
                    expires_at: self.now + self.config.provider_ttl,
                };
                let added = self.providers.add(rec, &self.id, self.now) == Added::Stored;
                if !added {
                    self.stats.providers_refused += 1;
                }
                (RequestKind::AddProvider, ReplyBody::ProviderAdded(added))
            }
            Body::GetProviders { key } => (RequestKind::GetProviders, ReplyBody::Providers { key: *key }),
            _ => return,
        };
        self.stats.requests_in[kind] += 1;
        let reply = Reply { to: from, txid: h.txid, requester: h.sender, body };
        if self.replies.push_back(reply).is_err() {
            self.stats.replies_dropped += 1;
        }
    }

    /// Validates and stores a record a peer sent; the answer is sent only after the store
    /// accepted it (durably, for persistent stores).
    fn accept_store(&mut self, w: &WireRecord<'_>) -> StoreStatus {
        let Some(rec) = self.record_from_wire(w, Origin::Replica) else {
            return StoreStatus::TooLarge;
        };
        let existing = self.store.get(&rec.key);
        if let Err(status) = check_signed(&rec, existing.as_ref(), w.signature.and_then(|s| s.cas)) {
            return status;
        }
        let mut rec = rec;
        if w.cached {
            rec.origin = Origin::Cache;
            rec.expires_at = self.now + Duration::from_secs(w.ttl_secs as u64).min(self.config.cache_ttl_max);
        }
        if let Some(old) = &existing {
            let same = old.data == rec.data && old.kind == rec.kind;
            if old.origin == Origin::Publisher && same {
                return StoreStatus::Stored;
            }
            if w.cached && old.origin != Origin::Cache {
                // A cached copy never replaces a primary one.
                return StoreStatus::Stored;
            }
            if same && old.origin == Origin::Replica && old.expires_at > rec.expires_at {
                // An older copy of the same value (a holder republishing its remaining TTL)
                // must not shorten the life a fresher one (the publisher's republish) gave it.
                rec.expires_at = old.expires_at;
            }
        }
        match self.store_local(rec) {
            Ok(()) => StoreStatus::Stored,
            Err(StoreError::Full) => StoreStatus::Full,
            Err(StoreError::Io) => StoreStatus::StorageError,
        }
    }

    /// Puts a record in the store, evicting by policy when full.
    fn store_local(&mut self, rec: Record<V>) -> Result<(), StoreError> {
        let meta = rec.meta();
        match self.store.put(rec.clone()) {
            Err(StoreError::Full) => {
                let victim = eviction_candidate(&self.store, &self.id, &meta).ok_or(StoreError::Full)?;
                self.store.remove(&victim);
                self.stats.records_evicted += 1;
                self.store.put(rec)
            }
            other => other,
        }
    }

    fn record_from_wire(&self, w: &WireRecord<'_>, origin: Origin) -> Option<Record<V>> {
        let data = Vec::from_slice(w.data.0).ok()?;
        let ttl = Duration::from_secs(w.ttl_secs as u64).min(self.config.record_ttl);
        Some(Record {
            key: w.key,
            kind: w.kind,
            data,
            signer: w.signature.map(|s| Signer {
                public_key: s.public_key,
                seq: s.seq,
                signature: s.signature,
                salt_len: s.salt_len,
            }),
            origin,
            expires_at: self.now + ttl,
            stored_at: self.now,
            republished_at: self.now,
        })
    }

    fn live_record(&self, key: &Key) -> Option<Record<V>> {
        self.store.get(key).filter(|r| r.origin == Origin::Publisher || r.expires_at > self.now)
    }

    // ----- responses -----------------------------------------------------------------------

    fn handle_response(&mut self, from: PeerAddr, msg: &Message<'_>) {
        let h = msg.header;
        let matched = self.pending.iter().position(|p| {
            p.sent && p.txid == h.txid && p.to == from && p.expect.is_none_or(|e| e == h.sender)
        });
        let Some(i) = matched else {
            self.stats.dropped_unmatched += 1;
            return;
        };
        let p = self.pending.swap_remove(i);
        let rtt = self.now.saturating_since(p.sent_at);
        if !h.flags.is_client() {
            self.saw_peer(h.sender, from, true);
            self.routing.on_alive(&h.sender, Some(rtt), self.now);
        }
        let sender = h.sender;
        let ok = match (p.request, &msg.body) {
            (Request::Ping { query }, Body::Pong { .. }) => {
                if let Some(qid) = query {
                    if let Some(q) = self.query_mut(qid) {
                        q.outstanding = q.outstanding.saturating_sub(1);
                        q.stats.responses += 1;
                        if q.outstanding == 0 && q.phase == Phase::Pinging {
                            self.start_lookup(qid);
                        }
                    }
                }
                true
            }
            (Request::FindNode { query, .. }, Body::Nodes { contacts })
            | (Request::FindValue { query, .. }, Body::Nodes { contacts }) => {
                self.lookup_success(query, sender, contacts);
                true
            }
            (Request::FindValue { query, key }, Body::Value { record }) => {
                self.found_value(query, key, sender, record)
            }
            (Request::GetProviders { query, .. }, Body::Providers { providers, closer }) => {
                if let Some(q) = self.query_mut(query) {
                    for pr in providers.iter().filter(|p| p.addr.is_routable()) {
                        if !q.providers.iter().any(|x| x.id == pr.id) {
                            let _ = q.providers.push(*pr);
                        }
                    }
                }
                self.lookup_success(query, sender, closer);
                true
            }
            (Request::Store { query, .. }, Body::Stored { status }) => {
                self.store_answered(query, *status == StoreStatus::Stored, Some(*status));
                true
            }
            (Request::AddProvider { query, .. }, Body::ProviderAdded { stored }) => {
                self.store_answered(query, *stored, None);
                true
            }
            _ => false,
        };
        if !ok {
            self.stats.dropped_bad_response += 1;
            self.request_failed_for_query(p);
        }
        if let Some(qid) = p.request.query() {
            self.drive(qid);
        }
        self.drive_starved();
    }

    /// Drives the queries that could not send for lack of a pending slot.
    fn drive_starved(&mut self) {
        let mut i = 0;
        while i < self.queries.len() && !self.pending.is_full() {
            if self.queries[i].starved {
                self.queries[i].starved = false;
                let qid = self.queries[i].id;
                self.drive(qid);
            }
            i += 1;
        }
    }

    fn lookup_success(&mut self, qid: QueryId, sender: NodeId, contacts: &[Peer]) {
        let own = self.id;
        if let Some(q) = self.query_mut(qid) {
            if q.phase == Phase::Lookup {
                q.stats.responses += 1;
                let closer =
                    contacts.iter().filter(|c| c.id != own && c.addr.is_routable()).map(|c| (c.id, c.addr));
                q.lookup.on_success(&sender, closer);
            }
        }
    }

    /// A peer answered FIND_VALUE with a record: verify it, keep it, and finish (unsigned) or
    /// keep the highest sequence number (signed). Returns false for an invalid record.
    fn found_value(&mut self, qid: QueryId, key: Key, sender: NodeId, w: &WireRecord<'_>) -> bool {
        let Some(rec) = self.record_from_wire(w, Origin::Cache) else {
            return false;
        };
        if rec.key != key || check_signed(&rec, None, None).is_err() {
            return false;
        }
        let Some(q) = self.query_mut(qid) else { return true };
        if q.phase != Phase::Lookup {
            return true;
        }
        q.stats.responses += 1;
        let hop = q.lookup.candidates().iter().find(|c| c.id == sender).map_or(1, |c| c.hop);
        q.lookup.on_success(&sender, core::iter::empty());
        let better = match (&q.record, &rec.signer) {
            (None, _) => true,
            (Some(old), Some(s)) => old.signer.is_none_or(|o| s.seq > o.seq),
            (Some(_), None) => false,
        };
        if better {
            q.record = Some(rec);
            q.value_from = Some((sender, hop));
        }
        if q.kind == (Kind::Get { signed: false }) {
            self.value_done(qid);
        }
        true
    }

    /// Caches the found value at the closest peer that answered without it, then finishes.
    fn value_done(&mut self, qid: QueryId) {
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
    fn cache_ttl(&self, key: &Key, at: &NodeId, holder: &NodeId) -> Duration {
        let extra = key.distance(at).bits().saturating_sub(key.distance(holder).bits());
        let shift = extra.clamp(1, 16) as u32 - 1;
        let ttl = self.config.cache_ttl_max / (1u32 << shift);
        ttl.max(self.config.cache_ttl_min)
    }

    fn store_answered(&mut self, query: Option<QueryId>, stored: bool, status: Option<StoreStatus>) {
        let Some(qid) = query else { return };
        let Some(q) = self.query_mut(qid) else { return };
        if q.phase != Phase::Storing {
            return;
        }
        q.stats.responses += 1;
        q.outstanding = q.outstanding.saturating_sub(1);
        if stored {
            q.acks += 1;
        } else {
            q.refusal = status;
        }
    }

    // ----- failures ------------------------------------------------------------------------

    fn on_request_failed(&mut self, p: Pending) {
        self.stats.timeouts += 1;
        let retry = p.attempt + 1 < REQUEST_ATTEMPTS && self.still_awaited(&p);
        // A probe of a full bucket's oldest contact is judged on its last attempt only.
        let probe = matches!(p.request, Request::Ping { query: None });
        if let Some(id) = p.expect.filter(|_| !(retry && probe)) {
            match self.routing.on_failure(&id) {
                Failure::Removed { removed, replacement } => {
                    self.push_event(PeerChange::Removed(Peer { id: removed.id, addr: removed.addr }));
                    if let Some(r) = replacement {
                        self.push_event(PeerChange::Added(Peer { id: r.id, addr: r.addr }));
                    }
                }
                Failure::Kept | Failure::Unknown => {}
            }
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
    fn still_awaited(&self, p: &Pending) -> bool {
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

    fn request_failed_for_query(&mut self, p: Pending) {
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

    // ----- queries -------------------------------------------------------------------------

    fn free_slots(&self, user: bool) -> usize {
        let free = Q - self.queries.len();
        if user {
            return free;
        }
        let internal = self.queries.iter().filter(|q| !q.user).count();
        let internal_cap = (Q / 2).max(1);
        free.min(internal_cap.saturating_sub(internal))
    }

    fn new_query(&mut self, kind: Kind, target: Key, user: bool) -> Result<QueryId, Error> {
        if self.free_slots(user) == 0 {
            if user {
                self.stats.queries_busy += 1;
            }
            return Err(Error::Busy { capacity: Q });
        }
        let id = QueryId(self.next_query);
        self.next_query += 1;
        let q = Query {
            id,
            kind,
            user,
            phase: Phase::Lookup,
            lookup: Lookup::new(target),
            record: None,
            cas: None,
            value_from: None,
            providers: Vec::new(),
            outstanding: 0,
            tried: 0,
            stores_sent: 0,
            starved: false,
            acks: 0,
            refusal: None,
            stats: QueryStats { started: self.now, finished: self.now, ..QueryStats::default() },
        };
        self.queries.push(q).map_err(|_| Error::Busy { capacity: Q })?;
        Ok(id)
    }

    fn start_user(&mut self, kind: Kind, target: Key) -> Result<QueryId, Error> {
        if self.routing.is_empty() {
            return Err(Error::NoPeers);
        }
        let qid = self.new_query(kind, target, true)?;
        self.start_lookup(qid);
        Ok(qid)
    }

    fn start_internal(&mut self, kind: Kind, target: Key) -> Option<QueryId> {
        if self.routing.is_empty() {
            return None;
        }
        let qid = self.new_query(kind, target, false).ok()?;
        self.start_lookup(qid);
        Some(qid)
    }

    /// Seeds the lookup from the routing table and sends the first α requests.
    fn start_lookup(&mut self, qid: QueryId) {
        let Some(target) = self.query_mut(qid).map(|q| *q.lookup.target()) else { return };
        let mut seeds = [Contact::new(self.id, PeerAddr::V4([0; 4], 0), self.now); K];
        let n = self.routing.closest(&target, None, &mut seeds);
        let q = self.query_mut(qid).expect("checked above");
        q.phase = Phase::Lookup;
        for c in &seeds[..n] {
            q.lookup.add(c.id, c.addr, 1);
        }
        self.drive(qid);
    }

    fn query_mut(&mut self, qid: QueryId) -> Option<&mut Query<K, V>> {
        self.queries.iter_mut().find(|q| q.id == qid)
    }

    /// Sends what the query may send now and moves it to its next phase when done.
    fn drive(&mut self, qid: QueryId) {
        let alpha = self.config.alpha.max(1);
        loop {
            let Some(q) = self.query_mut(qid) else { return };
            match q.phase {
                Phase::Lookup => {
                    if q.lookup.is_finished() {
                        self.lookup_done(qid);
                        continue;
                    }
                    let Some(c) = q.lookup.next(alpha) else { return };
                    let target = *q.lookup.target();
                    let req = match q.kind {
                        Kind::Get { .. } => Request::FindValue { query: qid, key: target },
                        Kind::GetProviders => Request::GetProviders { query: qid, key: target },
                        _ => Request::FindNode { query: qid, target },
                    };
                    let timeout = self.rpc_timeout(&c.id);
                    let sent = self.send_request(c.addr, Some(c.id), req, Some(timeout)).is_ok();
                    let Some(q) = self.query_mut(qid) else { return };
                    if !sent {
                        // No room for another request: ask again when a slot frees.
                        q.lookup.retry(&c.id);
                        q.starved = true;
                        return;
                    }
                    q.stats.requests += 1;
                }
                Phase::Storing => {
                    if q.stores_sent < q.tried {
                        let Some(c) = q.lookup.succeeded().nth(q.stores_sent as usize).copied() else {
                            q.tried = q.stores_sent;
                            continue;
                        };
                        let key = *q.lookup.target();
                        let req = if q.kind == Kind::Provide {
                            Request::AddProvider { query: Some(qid), key }
                        } else {
                            Request::Store { query: Some(qid), key, cached_ttl: None }
                        };
                        let timeout = self.rpc_timeout(&c.id);
                        let sent = self.send_request(c.addr, Some(c.id), req, Some(timeout)).is_ok();
                        let Some(q) = self.query_mut(qid) else { return };
                        if !sent {
                            q.starved = true;
                            return;
                        }
                        q.stores_sent += 1;
                        q.outstanding += 1;
                        q.stats.requests += 1;
                        continue;
                    }
                    if q.outstanding == 0 {
                        self.finish(qid);
                    }
                    return;
                }
                Phase::Pinging | Phase::Done => return,
            }
        }
    }

    fn lookup_done(&mut self, qid: QueryId) {
        let now = self.now;
        let Some(q) = self.query_mut(qid) else { return };
        let target = *q.lookup.target();
        let kind = q.kind;
        let found = q.record.is_some();
        self.routing.touch(&target, now);
        match kind {
            Kind::Put | Kind::Republish | Kind::Provide => {
                let q = self.query_mut(qid).expect("checked above");
                q.phase = Phase::Storing;
                q.tried = q.lookup.succeeded().count().min(K) as u16;
                self.drive(qid);
            }
            Kind::Get { .. } => {
                if found {
                    self.value_done(qid);
                } else {
                    self.finish(qid);
                }
            }
            Kind::Bootstrap => {
                self.routing.mark_all_stale();
                self.routing.touch(&target, now);
                self.finish(qid);
                self.refresh_buckets();
            }
            Kind::FindNode | Kind::GetProviders | Kind::Refresh => self.finish(qid),
        }
    }

    fn finish(&mut self, qid: QueryId) {
        let now = self.now;
        let Some(i) = self.queries.iter().position(|q| q.id == qid) else { return };
        let q = &mut self.queries[i];
        if q.phase == Phase::Done {
            return;
        }
        q.phase = Phase::Done;
        q.stats.finished = now;
        q.stats.rounds = match q.value_from {
            Some((_, hop)) => hop,
            None => q.lookup.rounds(),
        };
        self.stats.queries_finished += 1;
        if !q.user {
            if q.kind == Kind::Republish {
                self.stats.republished += u64::from(q.acks > 0);
            }
            self.queries.swap_remove(i);
        }
    }

    fn outcome(&self, q: Query<K, V>) -> Outcome<V> {
        let answered = q.lookup.succeeded().count();
        let no_peers = answered == 0 && q.record.is_none();
        match q.kind {
            Kind::Bootstrap => Outcome::Bootstrap(if self.routing.is_empty() {
                Err(QueryError::NoPeers)
            } else {
                Ok(self.routing.len())
            }),
            Kind::FindNode | Kind::Refresh => Outcome::FindNode(if no_peers {
                Err(QueryError::NoPeers)
            } else {
                Ok(q.lookup.succeeded().take(MAX_CONTACTS).map(|c| Peer { id: c.id, addr: c.addr }).collect())
            }),
            Kind::Get { .. } => Outcome::Get(q.record.ok_or(QueryError::NotFound)),
            Kind::Put | Kind::Republish | Kind::Provide => {
                let r = if q.acks > 0 {
                    Ok(Acks { stored: q.acks, tried: q.tried })
                } else if no_peers {
                    Err(QueryError::NoPeers)
                } else {
                    Err(QueryError::NoAcks { tried: q.tried, refusal: q.refusal })
                };
                if q.kind == Kind::Provide {
                    Outcome::Provide(r)
                } else {
                    Outcome::Put(r)
                }
            }
            Kind::GetProviders => Outcome::GetProviders(if q.providers.is_empty() {
                Err(QueryError::NotFound)
            } else {
                Ok(q.providers)
            }),
        }
    }

    // ----- sending -------------------------------------------------------------------------

    /// Timeout of a request to `id`: three smoothed round trips, within the floor and ceiling.
    fn rpc_timeout(&self, id: &NodeId) -> Duration {
        match self.routing.get(id) {
            Some(c) if c.srtt_ms > 0 => (Duration::from_millis(c.srtt_ms as u64) * 3)
                .clamp(self.config.rpc_timeout_min, self.config.rpc_timeout_max),
            _ => self.config.rpc_timeout_initial,
        }
    }

    fn send_request(
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
    fn push_pending(
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

    fn header(&self, txid: TxId) -> Header {
        let flags = if self.config.client_mode { Flags::CLIENT } else { 0 };
        Header { version: VERSION, txid, sender: self.id, flags: Flags(flags) }
    }

    fn encode_request(&self, p: &Pending, buf: &mut [u8]) -> Option<usize> {
        let header = self.header(p.txid);
        let held;
        let body = match p.request {
            Request::Ping { .. } => Body::Ping,
            Request::FindNode { target, .. } => Body::FindNode { target },
            Request::FindValue { key, .. } => Body::FindValue { key },
            Request::GetProviders { key, .. } => Body::GetProviders { key },
            Request::AddProvider { key, .. } => Body::AddProvider { key },
            Request::Store { query, key, cached_ttl } => {
                let (record, cas) = match query.and_then(|qid| self.queries.iter().find(|q| q.id == qid)) {
                    Some(q) => (q.record.as_ref()?, q.cas),
                    None => {
                        held = self.live_record(&key)?;
                        (&held, None)
                    }
                };
                let mut w = self.wire_record(record, cas);
                if let Some(ttl) = cached_ttl {
                    w.cached = true;
                    w.ttl_secs = ttl;
                }
                return wire::encode(&Message { header, body: Body::Store { record: w } }, buf).ok();
            }
        };
        wire::encode(&Message { header, body }, buf).ok()
    }

    fn wire_record<'r>(&self, r: &'r Record<V>, cas: Option<u64>) -> WireRecord<'r> {
        let ttl = r.expires_at.saturating_since(self.now).as_secs().min(u32::MAX as u64) as u32;
        WireRecord {
            key: r.key,
            kind: r.kind,
            ttl_secs: ttl,
            cached: false,
            data: Bytes(&r.data),
            signature: r.signer.map(|s| WireSignature {
                public_key: s.public_key,
                salt_len: s.salt_len,
                seq: s.seq,
                signature: s.signature,
                cas,
            }),
        }
    }

    fn encode_reply(&self, r: &Reply, buf: &mut [u8]) -> Option<usize> {
        let header = self.header(r.txid);
        let held;
        let body = match r.body {
            ReplyBody::Pong => Body::Pong { observed: r.to },
            ReplyBody::Nodes { target } => {
                Body::Nodes { contacts: self.closest_peers(&target, &r.requester) }
            }
            ReplyBody::Value { key } => match self.live_record(&key) {
                Some(rec) => {
                    held = rec;
                    Body::Value { record: self.wire_record(&held, None) }
                }
                None => Body::Nodes { contacts: self.closest_peers(&key, &r.requester) },
            },
            ReplyBody::Stored(status) => Body::Stored { status },
            ReplyBody::ProviderAdded(stored) => Body::ProviderAdded { stored },
            ReplyBody::Providers { key } => {
                let mut found = [(self.id, PeerAddr::V4([0; 4], 0)); MAX_PROVIDERS];
                let n = self.providers.get(&key, self.now, &mut found);
                let providers = found[..n]
                    .iter()
                    .filter(|(id, _)| *id != self.id)
                    .map(|&(id, addr)| Peer { id, addr })
                    .collect();
                Body::Providers { providers, closer: self.closest_peers(&key, &r.requester) }
            }
        };
        wire::encode(&Message { header, body }, buf).ok()
    }

    fn closest_peers(&self, target: &Key, exclude: &NodeId) -> Vec<Peer, MAX_CONTACTS> {
        let mut out = [Contact::new(self.id, PeerAddr::V4([0; 4], 0), self.now); MAX_CONTACTS];
        let n = self.routing.closest(target, Some(exclude), &mut out[..K.min(MAX_CONTACTS)]);
        out[..n].iter().map(|c| Peer { id: c.id, addr: c.addr }).collect()
    }

    // ----- routing upkeep ------------------------------------------------------------------

    /// A non-client peer was heard from: update the table, probe a full bucket's oldest
    /// contact, and hand a new peer the records it should hold.
    fn saw_peer(&mut self, id: NodeId, addr: PeerAddr, verified: bool) {
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

    /// Sends a newly seen peer every held record for which it is among the `K` closest known
    /// nodes while this node is the closest (so one node takes care of it, as the paper says).
    fn replicate_to(&mut self, peer: NodeId, addr: PeerAddr) {
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

    fn push_event(&mut self, e: PeerChange) {
        if self.events.push_back(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }

    // ----- maintenance ---------------------------------------------------------------------

    fn maintenance(&mut self) {
        let now = self.now;
        // Expiry and republish, in one pass over the keys.
        let mut cursor = None;
        while let Some(key) = self.store.next_key(cursor.as_ref()) {
            cursor = Some(key);
            let Some(meta) = self.store.meta(&key) else { continue };
            match meta.origin {
                Origin::Publisher => {
                    // The fresh copies must land before the last ones expire: at the latest one
                    // holder republish interval (at most half the TTL) before the expiry, since
                    // the publisher interval defaults to the TTL itself. Otherwise a value is
                    // gone for a while every 24 h (the simulator found 0.3% of values at 24 h).
                    let lead = self.config.republish_interval.min(self.config.record_ttl / 2);
                    let due = (meta.republished_at + self.config.publisher_republish_interval)
                        .min(meta.expires_at - lead);
                    if now >= due {
                        self.republish(key, true);
                    }
                }
                Origin::Replica | Origin::Cache if meta.expires_at <= now => {
                    self.store.remove(&key);
                    self.stats.records_expired += 1;
                }
                Origin::Replica => {
                    let last = meta.stored_at.max(meta.republished_at);
                    if now >= last + self.config.republish_interval {
                        self.republish(key, false);
                    }
                }
                Origin::Cache => {}
            }
        }
        // Providers: expire others' entries, re-announce ours.
        self.providers.expire(&self.id, now);
        while let Some(key) = self.providers.due_own(&self.id, now) {
            let own = ProviderRecord {
                key,
                provider: self.id,
                addr: PeerAddr::V4([0; 4], 0),
                expires_at: now + self.config.provider_republish_interval,
            };
            self.providers.add(own, &self.id, now);
            if self.start_internal(Kind::Provide, key).is_none() {
                break;
            }
        }
        self.refresh_buckets();
    }

    /// Starts a republish of the held record under `key`: a holder sends it with its remaining
    /// TTL, the publisher with a fresh one. Skipped (and retried next time) when no slot is free.
    fn republish(&mut self, key: Key, publisher: bool) {
        if self.free_slots(false) == 0 {
            return;
        }
        let Some(mut rec) = self.store.get(&key) else { return };
        rec.republished_at = self.now;
        if publisher {
            rec.expires_at = self.now + self.config.record_ttl;
        }
        if self.store.put(rec.clone()).is_err() {
            return;
        }
        if let Some(qid) = self.start_internal(Kind::Republish, key) {
            if let Some(q) = self.query_mut(qid) {
                q.record = Some(rec);
            }
        }
    }

    /// Looks up a random id in every bucket not touched for `refresh_interval`.
    fn refresh_buckets(&mut self) {
        let before = self.now - self.config.refresh_interval;
        while self.free_slots(false) > 0 {
            let Some(depth) = self.routing.stale_bucket(before) else { return };
            let target = if depth + 1 >= self.routing.bucket_count() {
                self.id.as_key()
            } else {
                self.id.random_at_prefix(depth, &mut self.rng)
            };
            self.routing.touch(&target, self.now);
            if self.start_internal(Kind::Refresh, target).is_none() {
                return;
            }
        }
    }
}

/// Checks a signed record against the held one: signature, sequence number, compare-and-swap.
fn check_signed<const V: usize>(
    rec: &Record<V>,
    existing: Option<&Record<V>>,
    cas: Option<u64>,
) -> Result<(), StoreStatus> {
    let Some(sig) = rec.signer else {
        // An unsigned record may not overwrite a signed one.
        return match existing {
            Some(old) if old.signer.is_some() => Err(StoreStatus::BadSignature),
            _ => Ok(()),
        };
    };
    signed::verify(&rec.key, &sig.public_key, rec.salt(), sig.seq, rec.value(), &sig.signature).map_err(
        |e| match e {
            signed::SignatureError::Invalid => StoreStatus::BadSignature,
            signed::SignatureError::Unsupported => StoreStatus::Unsupported,
        },
    )?;
    let held_seq = existing.and_then(|o| o.signer.map(|s| s.seq));
    if let Some(expected) = cas {
        if held_seq.unwrap_or(0) != expected {
            return Err(StoreStatus::CasMismatch);
        }
    }
    match (existing, held_seq) {
        (Some(old), Some(seq)) if seq > sig.seq || (seq == sig.seq && old.data != rec.data) => {
            Err(StoreStatus::StaleSeq)
        }
        _ => Ok(()),
    }
}
