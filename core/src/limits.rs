//! Limits against hostile peers: the settings of every limit (one struct, [`Limits`], in
//! [`crate::Config::limits`]: per-source rates, routing-table diversity, reply sizes,
//! replication, the store share of one source, the quorum of a get) and the per-prefix table that meters, by [`Prefix`], the
//! requests a source sends, the reply bytes it may receive beyond the reply factor, and the
//! records replication sends it (a token bucket each).
//!
//! Loopback sources are exempt from every limit unless [`Limits::on_loopback`] is set, so that
//! nodes on one machine are not limited by default while tests with sources on
//! 127.0.0.2–254 can exercise the limits. Every other address, private ranges included, is
//! limited, unless [`Limits::on_private`] is cleared (a network on one private /24).
//!
//! [`Sources`] holds one token bucket per source prefix in a fixed table of `N` entries (the
//! node uses `P`, its pending capacity); a new prefix takes the place of the least recently
//! seen when the table is full (it then starts with a full bucket: a source that cycles
//! through more than `N` prefixes is limited only by what each prefix may do).

use core::time::Duration;

use heapless::Vec;

use crate::addr::{PeerAddr, Prefix};
use crate::time::Instant;

/// Every limit a node applies to its peers, with its default. Refusals are counted in
/// [`crate::Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Apply the limits to loopback sources too (`kad node --limit-loopback`). Default false:
    /// loopback is exempt.
    pub on_loopback: bool,
    /// Apply the limits to private-network sources (10/8, 172.16/12, 192.168/16, link-local,
    /// fc00::/7). Default true: a LAN is no more trusted than the internet. A network of nodes
    /// that all share one private /24 (a lab, a fleet of boards) sets it false (`kad node
    /// --trust-private`), or its nodes would keep only a few of each other.
    pub on_private: bool,
    /// Contacts of one prefix in one bucket of the routing table. Default 2.
    pub bucket_per_prefix: u8,
    /// Contacts of one prefix in the whole routing table. Default 10.
    pub table_per_prefix: u16,
    /// One prefix holds at most one in `table_fraction` of the routing table's contacts (its
    /// first contact is always admitted), so that a small table is not a prefix's for the
    /// taking either. 1 turns this off. Default 10 (one tenth).
    pub table_fraction: u16,
    /// Requests one source prefix may send per second, on average; more are dropped
    /// ([`crate::Stats::requests_limited`]). Default 100.
    pub requests_per_sec: u32,
    /// Requests one source prefix may send at once, above the average. Default 200.
    pub request_burst: u32,
    /// A reply to an address this node has not verified by a round trip is at most this many
    /// times the size of its request (fewer contacts, or contacts instead of a value), unless
    /// the prefix's byte budget pays for the rest. Default 3.
    pub reply_factor: u8,
    /// Bytes per second that replies to one unverified prefix may exceed `reply_factor` by.
    /// Default 1,000 (about one full FIND_NODE answer per second).
    pub unverified_bytes_per_sec: u32,
    /// Bytes that replies to one unverified prefix may exceed `reply_factor` by at once.
    /// Default 4,000 (a client's lookup gets full answers).
    pub unverified_burst_bytes: u32,
    /// Records per minute replication may send to one prefix's new contacts, on average;
    /// the rest wait for the holders' republish ([`crate::Stats::replications_limited`]).
    /// Default 60.
    pub replications_per_min: u32,
    /// Records replication may send to one prefix at once. Default 256.
    pub replication_burst: u32,
    /// One source network ([`Prefix`]: an IPv4 /24, an IPv6 /64) holds at most one
    /// `store_share`-th of the store's capacity (see `node/quota.rs`). Default 16.
    pub store_share: u16,
    /// A get stops when this many holders returned the same value (or when its lookup ends),
    /// and a value is cached on the path only when at least two agreed (see `node/quorum.rs`).
    /// Default 2; 1 takes the first value.
    pub quorum: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            on_loopback: false,
            on_private: true,
            bucket_per_prefix: 2,
            table_per_prefix: 10,
            table_fraction: 10,
            requests_per_sec: 100,
            request_burst: 200,
            reply_factor: 3,
            unverified_bytes_per_sec: 1_000,
            unverified_burst_bytes: 4_000,
            replications_per_min: 60,
            replication_burst: 256,
            store_share: 16,
            quorum: 2,
        }
    }
}

impl Limits {
    /// Whether the limits apply to `addr`: always, except to loopback without
    /// [`Limits::on_loopback`] and to private networks without [`Limits::on_private`].
    pub fn apply_to(&self, addr: &PeerAddr) -> bool {
        (self.on_loopback || !addr.is_loopback()) && (self.on_private || !addr.is_private())
    }
}

/// One source prefix and its buckets.
#[derive(Clone, Copy, Debug)]
struct Source {
    prefix: Prefix,
    /// Last refill.
    at: Instant,
    /// Requests left, in thousandths.
    requests: u32,
    /// Bytes left beyond the reply factor, in thousandths.
    bytes: u32,
    /// Records replication may still send, in thousandths.
    records: u32,
}

/// `n` capped to fit a `u32`.
fn cap(n: u64) -> u32 {
    n.min(u64::from(u32::MAX)) as u32
}

/// Token buckets of up to `N` source prefixes (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Sources<const N: usize> {
    entries: Vec<Source, N>,
}

impl<const N: usize> Sources<N> {
    /// An empty table.
    pub const fn new() -> Self {
        Sources { entries: Vec::new() }
    }

    /// Prefixes tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no prefix is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `prefix`, refilled to `now`; a new one (full) in place of the least
    /// recently seen when the table is full. `None` only when `N` is 0.
    fn entry(&mut self, prefix: Prefix, limits: &Limits, now: Instant) -> Option<&mut Source> {
        let i = match self.entries.iter().position(|s| s.prefix == prefix) {
            Some(i) => i,
            None => {
                let fresh = Source {
                    prefix,
                    at: now,
                    requests: cap(u64::from(limits.request_burst) * 1000),
                    bytes: cap(u64::from(limits.unverified_burst_bytes) * 1000),
                    records: cap(u64::from(limits.replication_burst) * 1000),
                };
                if self.entries.push(fresh).is_ok() {
                    self.entries.len() - 1
                } else {
                    let (i, _) = self.entries.iter().enumerate().min_by_key(|(_, s)| s.at)?;
                    self.entries[i] = fresh;
                    i
                }
            }
        };
        let s = &mut self.entries[i];
        let ms = crate::time::millis(now.saturating_since(s.at).min(Duration::from_secs(3600)));
        s.at = s.at.max(now);
        let requests = u64::from(s.requests) + ms * u64::from(limits.requests_per_sec);
        s.requests = cap(requests.min(u64::from(limits.request_burst) * 1000));
        let bytes = u64::from(s.bytes) + ms * u64::from(limits.unverified_bytes_per_sec);
        s.bytes = cap(bytes.min(u64::from(limits.unverified_burst_bytes) * 1000));
        let records = u64::from(s.records) + ms * u64::from(limits.replications_per_min) / 60;
        s.records = cap(records.min(u64::from(limits.replication_burst) * 1000));
        Some(s)
    }

    /// Takes one request from `prefix`'s bucket: false when it is empty (drop the request).
    pub fn allow_request(&mut self, prefix: Prefix, limits: &Limits, now: Instant) -> bool {
        let Some(s) = self.entry(prefix, limits, now) else { return true };
        if s.requests < 1000 {
            return false;
        }
        s.requests -= 1000;
        true
    }

    /// Takes one record from the replication bucket of `prefix`: false when it is empty.
    pub fn allow_replication(&mut self, prefix: Prefix, limits: &Limits, now: Instant) -> bool {
        let Some(s) = self.entry(prefix, limits, now) else { return true };
        if s.records < 1000 {
            return false;
        }
        s.records -= 1000;
        true
    }

    /// Spends `bytes` of `prefix`'s reply budget (beyond the reply factor): false, and nothing
    /// spent, when fewer are left.
    pub fn spend_bytes(&mut self, prefix: Prefix, bytes: usize, limits: &Limits, now: Instant) -> bool {
        let Some(s) = self.entry(prefix, limits, now) else { return false };
        let Some(bytes) = u32::try_from(bytes).ok().and_then(|b| b.checked_mul(1000)) else { return false };
        if s.bytes < bytes {
            return false;
        }
        s.bytes -= bytes;
        true
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn net(n: u8) -> Prefix {
        PeerAddr::V4([192, 0, n, 1], 1).prefix()
    }

    crate::selftest::unit_tests! {
        fn loopback_is_spared_by_default_and_private_networks_only_when_trusted() {
            let (lo, lan, net) = (PeerAddr::V4([127, 0, 0, 2], 1), PeerAddr::V4([192, 168, 1, 2], 1), PeerAddr::V4([192, 0, 2, 1], 1));
            let d = Limits::default();
            assert_eq!((d.apply_to(&lo), d.apply_to(&lan), d.apply_to(&net)), (false, true, true));
            let trusting = Limits { on_private: false, ..d };
            assert_eq!((trusting.apply_to(&lo), trusting.apply_to(&lan), trusting.apply_to(&net)), (false, false, true));
            let testing = Limits { on_loopback: true, ..d };
            assert!(testing.apply_to(&lo));
        }

        fn a_source_may_send_its_burst_then_its_rate() {
            let l = Limits { requests_per_sec: 10, request_burst: 5, ..Limits::default() };
            let mut t = Sources::<4>::new();
            let allowed = (0..20).filter(|_| t.allow_request(net(1), &l, at(0))).count();
            assert_eq!(allowed, 5);
            // 10 per second: one more every 100 ms.
            assert!(!t.allow_request(net(1), &l, at(99)));
            assert!(t.allow_request(net(1), &l, at(100)));
            assert!(!t.allow_request(net(1), &l, at(100)));
            // Another prefix has its own bucket.
            assert!(t.allow_request(net(2), &l, at(100)));
            // A long silence refills the burst, no more.
            let later = (0..20).filter(|_| t.allow_request(net(1), &l, at(60_000))).count();
            assert_eq!(later, 5);
        }

        fn a_new_prefix_takes_the_place_of_the_least_recently_seen() {
            let l = Limits { requests_per_sec: 1, request_burst: 1, ..Limits::default() };
            let mut t = Sources::<2>::new();
            assert!(t.allow_request(net(1), &l, at(0)));
            assert!(t.allow_request(net(2), &l, at(10)));
            assert!(!t.allow_request(net(1), &l, at(20)), "1 is empty, and now the most recent");
            assert!(t.allow_request(net(3), &l, at(30)), "3 replaces 2");
            assert_eq!(t.len(), 2);
            assert!(!t.allow_request(net(1), &l, at(40)), "1 was kept, still empty");
        }

        fn the_reply_budget_is_spent_whole_or_not_at_all() {
            let l = Limits { unverified_bytes_per_sec: 1000, unverified_burst_bytes: 1500, ..Limits::default() };
            let mut t = Sources::<2>::new();
            assert!(t.spend_bytes(net(1), 1000, &l, at(0)));
            assert!(!t.spend_bytes(net(1), 600, &l, at(0)));
            assert!(t.spend_bytes(net(1), 500, &l, at(0)));
            assert!(t.spend_bytes(net(1), 100, &l, at(100)), "100 bytes back after 100 ms");
            assert!(!t.spend_bytes(net(1), 1, &l, at(100)));
        }

        fn replication_to_a_prefix_gets_its_burst_then_its_rate() {
            let l = Limits { replications_per_min: 60, replication_burst: 3, ..Limits::default() };
            let mut t = Sources::<2>::new();
            assert_eq!((0..10).filter(|_| t.allow_replication(net(1), &l, at(0))).count(), 3);
            assert!(!t.allow_replication(net(1), &l, at(999)));
            assert!(t.allow_replication(net(1), &l, at(1000)), "one a second");
        }

        fn loopback_is_exempt_unless_switched_on() {
            let lo = PeerAddr::V4([127, 0, 0, 2], 1);
            let private = PeerAddr::V4([10, 1, 2, 3], 1);
            assert!(!Limits::default().apply_to(&lo));
            assert!(Limits::default().apply_to(&private));
            assert!(Limits { on_loopback: true, ..Limits::default() }.apply_to(&lo));
        }
    }
}
