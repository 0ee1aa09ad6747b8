//! A test network: real nodes exchanging datagrams in memory on virtual time, seeded, with
//! faults (feature `testnet`). One network for every harness of the project: core/tests,
//! embedded/qemu-tests (on an emulated Cortex-M4) and examples/simulate (100,000 nodes).
//!
//! It lives here, behind a feature, rather than in a crate of its own because it drives the
//! engine only through the public API every front end uses, runs wherever the core runs (it is
//! `no_std` and allocates nothing: every capacity is storage the caller gives, a fixed array on
//! a microcontroller or a `Vec` on a host), and its [`scenarios`] are the core's own rules for
//! a whole network, which the core's tests and the QEMU runner share.
//!
//! - [`queue`]: the event queue on virtual time (by time, then in scheduling order);
//! - [`link`]: latency models and the [`FaultInjector`] (loss, delay, jitter, partitions);
//! - [`medium`]: addresses, datagrams in flight, wake-ups, and the one drive loop
//!   ([`Medium::drain`]: feed an input, then take `poll_output` until `Timeout`);
//! - [`net`]: [`Net`], N nodes on a medium, and what a test does to them;
//! - [`scenarios`]: the network's rules, for any node count and capacity preset.

pub mod link;
pub mod medium;
pub mod net;
pub mod queue;
pub mod scenarios;

pub use link::{mix, Fate, FaultInjector, Island, Latency};
pub use medium::{addr_of, node_of, Armed, Counters, Datagram, Delivery, Driven, Ev, Medium};
pub use net::{Done, Host, Net};
pub use queue::{Queue, Slot};
pub use scenarios::Scenario;
