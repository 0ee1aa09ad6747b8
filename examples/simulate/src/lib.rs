//! kad-simulate: a deterministic network simulator that drives real `kad-core` nodes.
//!
//! Every node is a [`kad_core::presets::sim::Node`], driven only through its public sans-IO API
//! (`bootstrap`/`find_node`/`get`/`put`, `handle_datagram`/`handle_timeout`, `poll_output`).
//! kad-core's test network ([`kad_core::testnet`]) carries the datagrams: the event queue on
//! virtual time, per-link latency, packet loss and jitter, the drive loop. The simulator owns
//! the rest: churn (nodes leave silently, fresh nodes join, departed nodes come back with their
//! state) and the workload.
//! One seeded RNG decides everything, so the same [`Params`] give the same [`Report`] (except
//! its wall-clock and memory figures).
//!
//! ```
//! let mut p = kad_simulate::Params::scenario(kad_simulate::Scenario::Static);
//! p.nodes = 60;
//! p.lookups = 20;
//! p.gets = 20;
//! p.puts = 5;
//! let report = kad_simulate::run(&p, &mut |_| {});
//! assert_eq!(report.find_node.issued, 20);
//! ```

pub mod hostile;
pub mod oracle;
pub mod params;
pub mod report;
pub mod sim;

pub use params::{Params, Scenario};
pub use report::Report;
pub use sim::{run, Progress};
