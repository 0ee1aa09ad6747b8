//! Counters of what a node did and refused, named so that front ends export them as they are.

use core::ops::{Index, IndexMut};

/// The requests of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// PING: is the peer alive, and what address does it see for us.
    Ping,
    /// FIND_NODE: the closest contacts to a target.
    FindNode,
    /// FIND_VALUE: the record under a key, or the closest contacts.
    FindValue,
    /// STORE: keep a record.
    Store,
    /// ADD_PROVIDER: record the sender as a provider of a key.
    AddProvider,
    /// GET_PROVIDERS: the providers of a key, and the closest contacts.
    GetProviders,
}

impl RequestKind {
    /// Every kind, in a fixed order.
    pub const ALL: [RequestKind; 6] = [
        RequestKind::Ping,
        RequestKind::FindNode,
        RequestKind::FindValue,
        RequestKind::Store,
        RequestKind::AddProvider,
        RequestKind::GetProviders,
    ];

    /// The name used in metrics and logs: `ping`, `find_node`, `find_value`, `store`,
    /// `add_provider`, `get_providers`.
    pub const fn name(self) -> &'static str {
        match self {
            RequestKind::Ping => "ping",
            RequestKind::FindNode => "find_node",
            RequestKind::FindValue => "find_value",
            RequestKind::Store => "store",
            RequestKind::AddProvider => "add_provider",
            RequestKind::GetProviders => "get_providers",
        }
    }
}

/// One counter per [`RequestKind`], indexed by it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerKind([u64; RequestKind::ALL.len()]);

impl PerKind {
    /// Each kind with its count, in the order of [`RequestKind::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (RequestKind, u64)> + '_ {
        RequestKind::ALL.iter().map(|&k| (k, self[k]))
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Index<RequestKind> for PerKind {
    type Output = u64;
    fn index(&self, k: RequestKind) -> &u64 {
        &self.0[k as usize]
    }
}

impl IndexMut<RequestKind> for PerKind {
    fn index_mut(&mut self, k: RequestKind) -> &mut u64 {
        &mut self.0[k as usize]
    }
}

/// Counters of everything the node did and refused; exported as metrics by front ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_in: u64,
    /// Datagrams produced by `poll_output`.
    pub datagrams_out: u64,
    /// Dropped: not a kad message.
    pub dropped_malformed: u64,
    /// Dropped: other protocol version.
    pub dropped_version: u64,
    /// Dropped: value or salt over the limit, or datagram over 1200 bytes.
    pub dropped_too_large: u64,
    /// Dropped: claimed to come from this node's own id.
    pub dropped_own_id: u64,
    /// Dropped: a response matching no request (transaction id, address and peer id).
    pub dropped_unmatched: u64,
    /// Dropped: an answer of the wrong kind or with an invalid record.
    pub dropped_bad_response: u64,
    /// Requests received, by kind.
    pub requests_in: PerKind,
    /// Requests sent, by kind.
    pub requests_out: PerKind,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Requests sent again after a timeout (see [`crate::node::REQUEST_ATTEMPTS`]).
    pub retries: u64,
    /// Bootstraps the node started on its own: its routing table ran dry or a bootstrap failed
    /// (see [`crate::node::MAX_SEEDS`] and the rejoin rule of `node/rejoin.rs`).
    pub rebootstraps: u64,
    /// Background pings of contacts about to turn questionable (see
    /// [`crate::routing::RoutingConfig::liveness_pings`]).
    pub liveness_pings: u64,
    /// Answers not sent because the reply queue was full.
    pub replies_dropped: u64,
    /// Requests that found the pending table full. A query's request is deferred, not lost: the
    /// query sends it when a slot frees. Background requests (a liveness ping, a cache copy, a
    /// retry) are skipped until the next round of their rule.
    pub requests_deferred: u64,
    /// Requests abandoned before sending: their record vanished from the store (or the buffer
    /// given to `poll_output` was too small).
    pub requests_abandoned: u64,
    /// Commands refused with `Busy`.
    pub queries_busy: u64,
    /// Queries finished (user and maintenance).
    pub queries_finished: u64,
    /// STOREs accepted.
    pub stores_accepted: u64,
    /// STOREs refused (any reason).
    pub stores_refused: u64,
    /// STOREs and ADD_PROVIDERs refused for a missing, wrong or expired write token (see
    /// [`crate::token`]); also counted in `stores_refused` or `providers_refused`.
    pub writes_bad_token: u64,
    /// Found values not cached on the path: one holder returned them, and unsigned (see
    /// `node/caching.rs`).
    pub cache_unconfirmed: u64,
    /// STOREs refused because their source network held its share of the store (see
    /// [`crate::limits::Limits::store_share`]); also counted in `stores_refused`.
    pub stores_over_share: u64,
    /// Records evicted to make room.
    pub records_evicted: u64,
    /// Records dropped at expiry.
    pub records_expired: u64,
    /// Records sent to a newly seen closer node.
    pub replications: u64,
    /// Records republished (by holders and as publisher).
    pub republished: u64,
    /// Peer events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Provider records refused because the table was full.
    pub providers_refused: u64,
    /// Requests dropped: their source prefix sent more than its limit (see
    /// [`crate::limits::Limits::requests_per_sec`]).
    pub requests_limited: u64,
    /// Pings sent to verify a stranger's address before it may enter the routing table
    /// (contacts are earned, see `node/verify.rs`).
    pub verify_pings: u64,
    /// Contacts refused because their prefix holds enough of a bucket or of the table (see
    /// [`crate::routing::diversity`]).
    pub diversity_refused: u64,
    /// Contacts dropped because another id answered from their address (one address holds
    /// one id).
    pub address_reused: u64,
    /// Replies to unverified addresses cut to [`crate::limits::Limits::reply_factor`] times
    /// their request (fewer contacts, or contacts instead of a value).
    pub replies_trimmed: u64,
    /// Records not sent to a new contact because its prefix had received its share of
    /// replication (see [`crate::limits::Limits::replications_per_min`]); holders republish
    /// them later.
    pub replications_limited: u64,
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    crate::selftest::unit_tests! {
        fn each_kind_has_its_own_counter_and_name() {
            let mut c = PerKind::default();
            c[RequestKind::Store] += 2;
            c[RequestKind::Ping] += 1;
            let names: heapless::Vec<(&str, u64), 6> = c.iter().map(|(k, n)| (k.name(), n)).collect();
            assert_eq!(
                &names[..],
                &[
                    ("ping", 1),
                    ("find_node", 0),
                    ("find_value", 0),
                    ("store", 2),
                    ("add_provider", 0),
                    ("get_providers", 0)
                ]
            );
            assert_eq!(c.total(), 3);
        }
    }
}
