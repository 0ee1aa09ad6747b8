//! Capacity presets: tested combinations of the node's const generics, with their sizes.
//!
//! `size_of::<Node>()` on x86_64 (`cargo run -p kad-core --example sizes` prints it for the
//! machine at hand; 32-bit targets are a little smaller):
//!
//! | preset | B | K | R | queries | pending | value | records | providers | node | of which store |
//! |---|---|---|---|---|---|---|---|---|---|---|
//! | [`host`] | 32 | 20 | 5 | 32 | 128 | 1000 | 1024 | 1024 | 1,453,872 B | 1,212,424 B |
//! | [`embedded`] | 8 | 8 | 2 | 2 | 8 | 256 | 4 | 4 | 13,032 B | 1,768 B |
//! | [`sim`] | 16 | 20 | 2 | 4 | 32 | 64 | 16 | 8 | 41,120 B | 3,976 B |
//!
//! The routing table costs `B × (K + R)` contacts of 56 bytes whatever the network size; a
//! query costs about `K × 56` bytes plus one value and a tally of agreeing holders (about
//! 110 bytes, see `node/quorum.rs`); the store costs `records × value` plus about 160 bytes of
//! metadata per record (its source network included, for the quotas of `node/quota.rs`).
//! Issue 14's defences: the limits ([`crate::limits`]) keep token buckets for each of the
//! latest `pending` prefixes, 32 bytes each (4,104 B host, 264 B embedded, 1,032 B sim); the
//! write tokens ([`crate::token`]) cost two 16-byte secrets, and a STORE waiting to be sent
//! the 8-byte token it carries. A front end with its own (persistent) store pays for the node
//! without the in-memory store.

macro_rules! preset {
    ($(#[$doc:meta])* $name:ident, b: $b:expr, k: $k:expr, r: $r:expr, queries: $q:expr,
     pending: $p:expr, value: $v:expr, records: $n:expr, providers: $pv:expr, events: $e:expr) => {
        $(#[$doc])*
        pub mod $name {
            /// Buckets in the routing table.
            pub const B: usize = $b;
            /// Contacts per bucket (and lookup width, replication factor).
            pub const K: usize = $k;
            /// Replacement contacts per bucket.
            pub const R: usize = $r;
            /// Queries at once.
            pub const QUERIES: usize = $q;
            /// Requests awaiting answers (and answers waiting to be sent).
            pub const PENDING: usize = $p;
            /// Largest stored value in bytes.
            pub const VALUE: usize = $v;
            /// Records in the default in-memory store.
            pub const RECORDS: usize = $n;
            /// Provider records.
            pub const PROVIDERS: usize = $pv;
            /// Peer events waiting to be taken.
            pub const EVENTS: usize = $e;
            /// The default record store of this preset.
            pub type Store = crate::store::MemoryStore<RECORDS, VALUE>;
            /// A node of this preset with record store `S`.
            pub type Node<S = Store> =
                crate::node::Node<S, B, K, R, QUERIES, PENDING, VALUE, PROVIDERS, EVENTS>;
            /// The events of this preset's node.
            pub type Event = crate::node::Event<VALUE>;
        }
    };
}

preset!(
    /// Desktops and servers: K = 20 as in the paper, 1000-byte values, room for many queries.
    host, b: 32, k: 20, r: 5, queries: 32, pending: 128, value: 1000, records: 1024,
    providers: 1024, events: 32
);
preset!(
    /// Microcontrollers: K = 8, values up to 256 bytes, a small store; ~12 KiB of RAM, so that
    /// the node with its socket buffers and queues (kad-embedded) adds at most 20 KiB to a
    /// firmware.
    embedded, b: 8, k: 8, r: 2, queries: 2, pending: 8, value: 256, records: 4,
    providers: 4, events: 4
);
preset!(
    /// The simulator: K = 20 lookups, little storage per node, so 100,000 nodes fit in memory.
    /// 16 buckets: a table splits until its deepest bucket holds at most K nodes, about
    /// log2(N / K) + 1 = 14 buckets at N = 100,000; 16 serve networks up to K × 2^15 ≈ 650,000.
    sim, b: 16, k: 20, r: 2, queries: 4, pending: 32, value: 64, records: 16,
    providers: 8, events: 2
);
