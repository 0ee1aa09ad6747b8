//! The core's test network ([`kad_core::testnet`]) at host scale: a few hundred nodes of
//! K = 20 with room for 64 records of 1000 bytes, on links of 5–50 ms, in `Vec` storage.
#![allow(dead_code)]

use kad_core::testnet::{Datagram, Ev, FaultInjector, Host, Latency, Medium, Net, Queue, Slot};
use kad_core::{Config, MemoryStore, Node};

/// Value capacity of test nodes.
pub const V: usize = 1000;
/// The test node: K = 20, 8 queries, 64 pending requests, 64 records.
pub type TestNode = Node<MemoryStore<64, V>, 24, 20, 4, 8, 64, V, 64, 16>;
/// The test network.
pub type TestNet = Net<TestNode, V, Vec<Host<TestNode, V>>, Vec<Slot<Ev>>, Vec<Datagram>>;

/// Nodes a test may add after building.
const SPARE: usize = 32;
/// Datagrams in flight at once; more are dropped and counted (`no_room`).
const DATAGRAMS: usize = 4096;

/// A network of `n` nodes, each bootstrapped from node 0, settled for a minute.
pub fn build(n: usize, seed: u64, config: Config) -> TestNet {
    let hosts = (0..n + SPARE).map(|_| Host::EMPTY).collect();
    // Datagrams in flight and wake-ups (superseded ones stay queued until their time).
    let queue = Queue::growing(vec![Slot::EMPTY; DATAGRAMS], |q| q.resize(2 * q.len(), Slot::EMPTY));
    let link = FaultInjector::new(Latency::Uniform { min_ms: 5, max_ms: 50 });
    let medium = Medium::new(queue, vec![Datagram::EMPTY; DATAGRAMS], link);
    let mut net = Net::new(hosts, medium, seed);
    net.build(n, config);
    net
}
