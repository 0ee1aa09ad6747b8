//! Ten nodes of the `embedded` preset on the core's test network (`kad_core::testnet`), in
//! arrays on the emulated chip: every datagram arrives after 2 ms, time jumps to the next thing
//! that happens, nothing leaves the chip. The network's rules are the core's own scenarios.

use kad_core::presets::embedded::{Node, VALUE};
use kad_core::testnet::{Datagram, Ev, FaultInjector, Host, Latency, Medium, Net, Queue, Slot};
use kad_core::Config;

/// Nodes in a network.
const N: usize = 10;
/// Events queued at once: datagrams in flight and wake-ups.
const QUEUE: usize = 512;
/// Datagrams in flight at once; more are dropped and counted.
const DATAGRAMS: usize = 96;

/// Ten nodes, with room for one more (a scenario adds a lonely node).
pub type TenNodes = Net<Node, VALUE, [Host<Node, VALUE>; N + 1], [Slot<Ev>; QUEUE], [Datagram; DATAGRAMS]>;

/// A network of ten nodes, each bootstrapped from node 0, settled for a minute.
pub fn ten_nodes(seed: u64) -> TenNodes {
    let link = FaultInjector::new(Latency::Fixed { ms: 2 });
    let medium = Medium::new(Queue::new([Slot::EMPTY; QUEUE]), [Datagram::EMPTY; DATAGRAMS], link);
    let mut net = Net::new([Host::EMPTY; N + 1], medium, seed);
    net.build(N, Config::default());
    net
}
