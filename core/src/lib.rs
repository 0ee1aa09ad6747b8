//! kad-core: a `no_std`, allocation-free, fixed-capacity, sans-IO Kademlia engine.
//!
//! The [`Node`] holds all protocol logic; a front end feeds it datagrams, commands and time,
//! and after each input drains [`Node::poll_output`] until it returns [`Output::Timeout`]:
//!
//! ```
//! use kad_core::{presets::host, Config, Instant, Key, NodeId, Output, ValueKind, wire::MAX_DATAGRAM};
//! # use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! let now = Instant::ZERO;
//! let mut node: host::Node = host::Node::new(NodeId::random(&mut rng), Config::default(),
//!                                            host::Store::new(), &mut rng, now);
//! // An empty routing table cannot store anything: the error says what to do.
//! let err = node.put(Key::hash(b"greeting"), ValueKind::Text, b"hello", now).unwrap_err();
//! assert_eq!(err.to_string(), "no known peers: bootstrap from a running node first");
//! // The loop of every front end: transmit, hand out events, sleep until the timeout.
//! let mut buf = [0u8; MAX_DATAGRAM];
//! let _sleep_until = loop {
//!     match node.poll_output(&mut buf) {
//!         Output::Transmit(t) => { /* socket.send_to(&buf[..t.len], t.to) */ }
//!         Output::Event(e) => { /* hand results to the user */ }
//!         Output::Timeout(at) => break at,
//!     }
//! };
//! ```
//!
//! Commands that find every query slot taken wait in a [`Backlog`]: the one back-pressure policy
//! of all front ends (see [`backlog`]).
//!
//! # Module map
//!
//! One module per rule; the node's own rules each in a file of `node/`.
//!
//! | module | the rule it owns |
//! |---|---|
//! | [`id`] | 160-bit node ids and keys, and the XOR distance between them |
//! | `sha1` | SHA-1, the hash that names keys (`Key::hash`), small on 32-bit targets |
//! | [`addr`] | the one network address type: IPv4 or IPv6 and a UDP port, and which are routable |
//! | [`time`] | caller-supplied time: the core never reads a clock |
//! | [`config`] | run-time settings (intervals, timeouts, α, client mode) and their defaults |
//! | [`limits`] | limits against hostile peers: their settings, and per-source token buckets |
//! | [`presets`] | capacity presets: tested combinations of the node's const generics, with sizes |
//! | [`routing`] | the routing table: k-buckets, replacement cache, splits, earned contacts |
//! | `routing/liveness.rs` | contact states (good, questionable, bad: BEP 5), failures, background pings |
//! | [`routing::diversity`] | at most 2 contacts of one /24 (/64) in a bucket, 10 in the table |
//! | [`rng`] | the node's random numbers: ChaCha8, rand_chacha's stream in a compact form |
//! | [`rtt`] | round trips and timeouts: per peer, and node-wide for peers never measured |
//! | [`lookup`] | the iterative lookup: α requests in flight over the `K` closest candidates |
//! | [`store`] | records, their origins (publisher, replica, cache) and eviction when full |
//! | [`providers`] | provider records: who serves a key, their expiry and re-announcement |
//! | [`signed`] | BEP 44 signed records: keys from public key and salt, signatures over seq |
//! | [`wire`] | the wire format: one message per UDP datagram of at most 1200 bytes |
//! | [`frame`] | relay frames: datagrams between a browser and a host's relay over a WebSocket |
//! | [`token`] | write tokens: STORE and ADD_PROVIDER only from an address a recent answer reached |
//! | [`limits`] | the limits against hostile peers and their defaults |
//! | [`stats`] | counters of what a node did and refused, named for metrics |
//! | [`backlog`] | back-pressure on full query slots: the front ends' one policy, and its queue |
//! | `selftest` | the unit tests as plain functions, for runners without a test harness |
//! | `testnet` | (feature `testnet`) the test network: nodes in memory on virtual time, faults |
//! | [`node`] (`node/mod.rs`) | the engine: its state, and the dispatch of inputs and outputs |
//! | `node/commands.rs` | the user's commands (find, get, put, provide) and why one is refused |
//! | `node/rejoin.rs` | joining the network, and again when the table runs dry: seeds, backoff |
//! | `node/queries.rs` | the query table (maintenance takes at most half) and each query's phases |
//! | `node/outcome.rs` | what a finished query reports: its outcome, errors and counters |
//! | `node/rpc.rs` | requests sent: pending table, transaction ids, timeouts, retries sent together, failures |
//! | `node/requests.rs` | answering a peer's PING, FIND_NODE, FIND_VALUE, STORE and provider requests |
//! | `node/verify.rs` | contacts are earned: a stranger's address answers a ping before it enters the table |
//! | `node/amplification.rs` | replies to unverified addresses: at most ~3× their request |
//! | `node/responses.rs` | matching an answer to its request and feeding it to the query that asked |
//! | `node/accept.rs` | which records the store takes (signature, seq, CAS, cache) and serves |
//! | `node/quorum.rs` | honest gets: a value counts once enough holders agree on it |
//! | `node/quota.rs` | store admission: each source network's share, and what a full store evicts |
//! | `node/caching.rs` | where a found value is cached along the lookup path, and for how long |
//! | `node/replication.rs` | which held records a newly seen peer gets from this node |
//! | `node/maintenance.rs` | expiry, republish (publisher, holders), provider re-announce, refresh |
//! | `node/peers.rs` | routing upkeep: a peer heard from or lost, probes, background pings, events |
//! | `node/codec.rs` | requests, replies and records to and from their wire form |
//! | `node/testpeer.rs` | tests only: a node under test and its peers played by hand |
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod addr;
pub mod backlog;
pub mod config;
pub mod frame;
pub mod id;
pub mod limits;
pub mod lookup;
pub mod node;
pub mod presets;
pub mod providers;
pub mod rng;
pub mod routing;
pub mod rtt;
#[cfg(any(test, feature = "selftest"))]
pub mod selftest;
mod sha1;
pub mod signed;
pub mod stats;
pub mod store;
#[cfg(feature = "testnet")]
pub mod testnet;
pub mod time;
pub mod token;
pub mod wire;

pub use addr::{PeerAddr, Prefix};
pub use backlog::Backlog;
pub use config::Config;
pub use id::{Distance, Key, NodeId};
pub use limits::Limits;
pub use node::{
    Acks, Error, Event, Node, Outcome, Output, QueryError, QueryId, QueryStats, SignedPut, Transmit,
};
pub use rng::NodeRng;
pub use signed::{PublicKey, Signature};
pub use stats::{PerKind, RequestKind, Stats};
pub use store::{MemoryStore, Origin, Record, RecordStore, ValueKind};
pub use time::Instant;
pub use wire::Peer;
