//! Run-time settings of a node (intervals, timeouts, α, client mode) with documented defaults.
//! Capacities are compile-time: see the presets in [`crate::presets`].

use core::time::Duration;

use crate::limits::Limits;
use crate::routing::RoutingConfig;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Settings of a [`crate::Node`]. `Config::default()` is the Kademlia paper's choice where the
/// paper gives one.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Requests in flight per lookup (α). Default 3.
    pub alpha: usize,
    /// Client mode: this node queries and stores but asks peers not to add it to their routing
    /// tables (browsers, sleepy devices). Default false.
    pub client_mode: bool,
    /// Timeout of a request before the node has measured any round trip. Default 1 s.
    pub rpc_timeout_initial: Duration,
    /// Floor of the round-trip-derived timeouts (per peer and node-wide, see [`crate::rtt`]).
    /// Default 150 ms.
    pub rpc_timeout_min: Duration,
    /// Ceiling of the round-trip-derived timeouts. Default 3 s.
    pub rpc_timeout_max: Duration,
    /// Lifetime of a record after its (re)publication. Default 24 h.
    pub record_ttl: Duration,
    /// How often holders republish records (skipping those stored within this interval).
    /// Default 1 h.
    pub republish_interval: Duration,
    /// How often the original publisher republishes its records with a fresh TTL. Default 24 h.
    pub publisher_republish_interval: Duration,
    /// Longest life of a cached copy (it shrinks with the distance to the key). Default 12 h,
    /// half the record TTL.
    pub cache_ttl_max: Duration,
    /// Shortest life of a cached copy. Default 1 min.
    pub cache_ttl_min: Duration,
    /// A bucket not touched for this long is refreshed with a lookup. Default 1 h.
    pub refresh_interval: Duration,
    /// Lifetime of a provider record. Default 24 h.
    pub provider_ttl: Duration,
    /// How often this node re-announces what it provides. Default 12 h.
    pub provider_republish_interval: Duration,
    /// How often expiry, republish and refresh are checked. Default 1 min.
    pub maintenance_interval: Duration,
    /// Failure limits and liveness probing of routing contacts.
    pub routing: RoutingConfig,
    /// The node bootstraps again on its own when fewer contacts than this are left that are
    /// not bad (and fewer than right after its last successful bootstrap). Default 3.
    pub rejoin_floor: usize,
    /// Wait before bootstrapping again after a failed bootstrap; doubled after each further
    /// failure. Default 5 s.
    pub rejoin_backoff: Duration,
    /// Longest wait between attempts to bootstrap again. Default 10 min.
    pub rejoin_backoff_max: Duration,
    /// Limits against hostile peers (see [`crate::limits`]).
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            alpha: 3,
            client_mode: false,
            rpc_timeout_initial: Duration::from_secs(1),
            rpc_timeout_min: Duration::from_millis(150),
            rpc_timeout_max: Duration::from_secs(3),
            record_ttl: 24 * HOUR,
            republish_interval: HOUR,
            publisher_republish_interval: 24 * HOUR,
            cache_ttl_max: 12 * HOUR,
            cache_ttl_min: MINUTE,
            refresh_interval: HOUR,
            provider_ttl: 24 * HOUR,
            provider_republish_interval: 12 * HOUR,
            maintenance_interval: MINUTE,
            routing: RoutingConfig::default(),
            rejoin_floor: 3,
            rejoin_backoff: Duration::from_secs(5),
            rejoin_backoff_max: 10 * MINUTE,
            limits: Limits::default(),
        }
    }
}
