//! kad-core: a `no_std`, allocation-free, fixed-capacity, sans-IO Kademlia engine.
//!
//! The [`Node`] holds all protocol logic; a front end feeds it datagrams and time and drains
//! datagrams, timeouts and events:
//!
//! ```
//! use kad_core::{presets::host, Config, Instant, Key, NodeId, ValueKind, wire::MAX_DATAGRAM};
//! # use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! let now = Instant::ZERO;
//! let mut node: host::Node = host::Node::new(NodeId::random(&mut rng), Config::default(),
//!                                            host::Store::new(), &mut rng, now);
//! // An empty routing table cannot store anything: the error says what to do.
//! let err = node.put(Key::hash(b"greeting"), ValueKind::Text, b"hello", now).unwrap_err();
//! assert_eq!(err.to_string(), "no known peers: bootstrap from a running node first");
//! // The loop of every front end: transmit, take events, sleep until the timeout.
//! let mut buf = [0u8; MAX_DATAGRAM];
//! while let Some(t) = node.poll_transmit(&mut buf) { /* socket.send_to(&buf[..t.len], t.to) */ }
//! while let Some(event) = node.poll_event() { /* hand results to the user */ }
//! let _sleep_until = node.poll_timeout();
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod addr;
pub mod config;
pub mod frame;
pub mod id;
pub mod lookup;
pub mod node;
pub mod presets;
pub mod providers;
pub mod routing;
#[cfg(any(test, feature = "selftest"))]
pub mod selftest;
pub mod signed;
pub mod stats;
pub mod store;
#[cfg(feature = "testnet")]
pub mod testnet;
pub mod time;
pub mod wire;

pub use addr::PeerAddr;
pub use config::Config;
pub use id::{Distance, Key, NodeId};
pub use node::{
    Acks, Error, Event, Node, Outcome, Output, QueryError, QueryId, QueryStats, SignedPut, Transmit,
};
pub use signed::{PublicKey, Signature};
pub use stats::{PerKind, RequestKind, Stats};
pub use store::{MemoryStore, Origin, Record, RecordStore, ValueKind};
pub use time::Instant;
pub use wire::Peer;
