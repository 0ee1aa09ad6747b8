//! kad-embedded: the [`kad_core`] node on microcontrollers, driven by an embassy-net
//! [`UdpSocket`](embassy_net::udp::UdpSocket) and embassy-time. `no_std`, no heap: the node,
//! the socket buffers and the command queues live in `static`s the firmware provides.
//!
//! One task runs the [`Runner`]; any other task uses the DHT through a [`Dht`] handle:
//!
//! ```text
//! use kad_embedded::embedded::{self as kad, Dht, Node, Runner, Shared};
//! use kad_embedded::SocketBuffers;
//! use static_cell::StaticCell;
//!
//! static NODE: StaticCell<Node> = StaticCell::new();
//! static BUFFERS: StaticCell<SocketBuffers> = StaticCell::new();
//! static SHARED: Shared = Shared::new();
//!
//! let node = NODE.init_with(|| kad::node(seed, kad_core::Config::default()));
//! let runner = Runner::new(stack, BUFFERS.init(SocketBuffers::new()), node, &SHARED, 8468, &[seed_addr])?;
//! spawner.spawn(dht_task(runner)?);            // #[task] async fn dht_task(r: Runner<'static>) -> ! { r.run().await }
//! let dht: Dht = SHARED.dht();
//! dht.put("greeting", "hello from a board").await?;
//! let record = dht.get("greeting").await?;
//! ```
//!
//! Logging follows embassy's `fmt.rs` pattern: feature `defmt` on target, feature `log` on a
//! host, nothing without either. Feature `signed` verifies ed25519-signed records (kad-core's
//! `signed`); feature `ipv6` adds IPv6 peers.
//!
//! RAM: the [`embedded`] preset's node plus [`SocketBuffers`] plus [`Shared`]; the firmware
//! examples print the measured totals (see the README).
#![no_std]
#![warn(missing_docs)]

mod fmt;

pub mod dht;
pub mod runner;

pub use dht::{Dht, DhtError, Found, Shared, Value, CALLERS, MAX_BOOTSTRAP};
pub use kad_core;
pub use runner::{endpoint, now, peer_addr, Runner, SocketBuffers};

/// The core's `embedded` capacity preset (K = 8) with this crate's types filled in, using
/// embassy's `CriticalSectionRawMutex` so the queues can live in a `static`.
pub mod embedded {
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use kad_core::presets::embedded as p;
    use kad_core::NodeRng;
    use rand_core::SeedableRng;

    pub use p::{Store, B, EVENTS, K, PENDING, PROVIDERS, QUERIES, R, RECORDS, VALUE};

    /// The node of the preset, with its in-memory store.
    pub type Node = p::Node;
    /// The queues between the handles and the runner.
    pub type Shared = crate::Shared<CriticalSectionRawMutex, VALUE, K>;
    /// The handle tasks use.
    pub type Dht<'a> = crate::Dht<'a, CriticalSectionRawMutex, VALUE, K>;
    /// The task that owns the socket and the node.
    pub type Runner<'a> = crate::Runner<
        'a,
        CriticalSectionRawMutex,
        Store,
        B,
        K,
        R,
        QUERIES,
        PENDING,
        VALUE,
        PROVIDERS,
        EVENTS,
    >;

    /// A node with an id and transaction ids drawn from `seed` (take it from the hardware
    /// RNG), starting now.
    pub fn node(seed: [u8; 32], config: kad_core::Config) -> Node {
        let mut rng = NodeRng::from_seed(seed);
        Node::new(kad_core::NodeId::random(&mut rng), config, Store::new(), &mut rng, crate::now())
    }
}
