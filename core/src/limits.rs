//! The limits against hostile peers, in one struct with documented defaults: how much of the
//! store one source network may hold, and how many holders a get waits to agree. Each refusal
//! is counted in [`crate::Stats`].

/// Limits of a node against hostile peers (part of [`crate::Config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Apply the per-source limits to loopback sources too (127.0.0.0/8, ::1), so that tests
    /// on one machine, with sources on 127.0.0.2–254, exercise them. Default false: loopback
    /// sources are exempt.
    pub on_loopback: bool,
    /// One source network ([`crate::addr::Prefix`]: an IPv4 /24, an IPv6 /64) holds at most
    /// one `store_share`-th of the store's capacity (see `node/quota.rs`). Default 16.
    pub store_share: u16,
    /// A get stops when this many holders returned the same value (or when its lookup ends),
    /// and a value is cached on the path only when at least two agreed (see `node/quorum.rs`).
    /// Default 2; 1 takes the first value.
    pub quorum: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { on_loopback: false, store_share: 16, quorum: 2 }
    }
}
