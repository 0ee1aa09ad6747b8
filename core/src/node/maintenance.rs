//! Maintenance: record expiry, republishing (publisher and holders), provider re-announcement
//! and bucket refresh, run every `maintenance_interval`.

use crate::addr::PeerAddr;
use crate::config::Config;
use crate::id::Key;
use crate::providers::ProviderRecord;
use crate::store::{Origin, RecordMeta, RecordStore};
use crate::time::Instant;

use super::queries::Kind;
use super::Node;

impl<
        S: RecordStore<V>,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
    > Node<S, B, K, R, Q, P, V, PV, E>
{
    /// Runs the periodic duties: record expiry and republish, provider expiry and
    /// re-announcement, bucket refresh.
    pub(super) fn maintenance(&mut self) {
        let now = self.now;
        // Expiry and republish, in one pass over the keys.
        let mut cursor = None;
        while let Some(key) = self.store.next_key(cursor.as_ref()) {
            cursor = Some(key);
            let Some(meta) = self.store.meta(&key) else { continue };
            match upkeep(&meta, &self.config, now) {
                Upkeep::Republish { publisher } => self.republish(key, publisher),
                Upkeep::Expire => {
                    self.store.remove(&key);
                    self.stats.records_expired += 1;
                }
                Upkeep::Keep => {}
            }
        }
        // Providers: expire others' entries, re-announce ours.
        self.providers.expire(&self.id, now);
        while let Some(key) = self.providers.due_own(&self.id, now) {
            let own = ProviderRecord {
                key,
                provider: self.id,
                addr: PeerAddr::V4([0; 4], 0),
                expires_at: now + self.config.provider_republish_interval,
            };
            self.providers.add(own, &self.id, now);
            if self.start_internal(Kind::Provide, key).is_none() {
                break;
            }
        }
        self.refresh_buckets();
        self.ping_silent_contacts();
        self.check_rejoin();
    }

    /// Starts a republish of the held record under `key`: a holder sends it with its remaining
    /// TTL, the publisher with a fresh one. Skipped (and retried next time) when no slot is free.
    pub(super) fn republish(&mut self, key: Key, publisher: bool) {
        if self.free_slots(false) == 0 {
            return;
        }
        let Some(mut rec) = self.store.get(&key) else { return };
        rec.republished_at = self.now;
        if publisher {
            rec.expires_at = self.now + self.config.record_ttl;
        }
        if self.store.put(rec.clone()).is_err() {
            return;
        }
        if let Some(qid) = self.start_internal(Kind::Republish, key) {
            if let Some(q) = self.query_mut(qid) {
                q.record = Some(rec);
            }
        }
    }

    /// Looks up a random id in every bucket not touched for `refresh_interval`.
    pub(super) fn refresh_buckets(&mut self) {
        let before = self.now - self.config.refresh_interval;
        while self.free_slots(false) > 0 {
            let Some(depth) = self.routing.stale_bucket(before) else { return };
            let target = if depth + 1 >= self.routing.bucket_count() {
                self.id.as_key()
            } else {
                self.id.random_at_prefix(depth, &mut self.rng)
            };
            self.routing.touch(&target, self.now);
            if self.start_internal(Kind::Refresh, target).is_none() {
                return;
            }
        }
    }
}

/// What maintenance does with a held record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Upkeep {
    /// Nothing yet.
    Keep,
    /// Send it to the closest nodes again: as its publisher (with a fresh TTL) or as a holder
    /// (with what is left of it).
    Republish {
        /// Republished by its publisher.
        publisher: bool,
    },
    /// Drop it: it expired.
    Expire,
}

/// When a held record is republished or dropped:
/// - the publisher republishes every `publisher_republish_interval`, and in any case one
///   holder republish interval (at most half the TTL) before the record expires, so that the
///   fresh copies land before the last ones expire (the publisher interval defaults to the TTL
///   itself; without the lead a value was gone for a while every 24 h: the simulator found
///   0.3% of values missing at 24 h);
/// - replicas and cached copies are dropped at expiry;
/// - a holder republishes a replica `republish_interval` after it was last stored or
///   republished here (a fresh store from another holder makes its own republish unneeded);
/// - cached copies are never republished.
pub(super) fn upkeep(meta: &RecordMeta, config: &Config, now: Instant) -> Upkeep {
    let due = match meta.origin {
        Origin::Publisher => {
            let lead = config.republish_interval.min(config.record_ttl / 2);
            (meta.republished_at + config.publisher_republish_interval).min(meta.expires_at - lead)
        }
        Origin::Replica | Origin::Cache if meta.expires_at <= now => return Upkeep::Expire,
        Origin::Replica => meta.stored_at.max(meta.republished_at) + config.republish_interval,
        Origin::Cache => return Upkeep::Keep,
    };
    if now >= due {
        Upkeep::Republish { publisher: meta.origin == Origin::Publisher }
    } else {
        Upkeep::Keep
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    const HOUR: u64 = 3600;
    const HOURS: core::time::Duration = core::time::Duration::from_secs(HOUR);

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    fn meta(origin: Origin, stored: u64, republished: u64, expires: u64) -> RecordMeta {
        RecordMeta {
            key: Key::hash(b"k"),
            origin,
            expires_at: at(expires),
            stored_at: at(stored),
            republished_at: at(republished),
            seq: None,
            source: None,
        }
    }

    crate::selftest::unit_tests! {
        fn the_publisher_republishes_every_publisher_interval() {
            let c = Config { publisher_republish_interval: 6 * HOURS, ..Config::default() };
            let m = meta(Origin::Publisher, 0, 0, 24 * HOUR);
            assert_eq!(upkeep(&m, &c, at(6 * HOUR - 1)), Upkeep::Keep);
            assert_eq!(upkeep(&m, &c, at(6 * HOUR)), Upkeep::Republish { publisher: true });
        }

        fn the_publisher_republishes_a_holder_interval_before_its_copies_expire() {
            // By default the publisher interval is the TTL (24 h): the republish comes at 23 h.
            let c = Config::default();
            let m = meta(Origin::Publisher, 0, 0, 24 * HOUR);
            assert_eq!(upkeep(&m, &c, at(23 * HOUR - 1)), Upkeep::Keep);
            assert_eq!(upkeep(&m, &c, at(23 * HOUR)), Upkeep::Republish { publisher: true });
            // The lead is at most half the TTL.
            let short = Config { record_ttl: HOURS, ..Config::default() };
            let m = meta(Origin::Publisher, 0, 0, HOUR);
            assert_eq!(upkeep(&m, &short, at(HOUR / 2 - 1)), Upkeep::Keep);
            assert_eq!(upkeep(&m, &short, at(HOUR / 2)), Upkeep::Republish { publisher: true });
        }

        fn the_publisher_never_drops_its_own_record() {
            let c = Config { publisher_republish_interval: 100 * HOURS, ..Config::default() };
            let m = meta(Origin::Publisher, 0, 0, HOUR);
            assert_eq!(upkeep(&m, &c, at(50 * HOUR)), Upkeep::Republish { publisher: true });
        }

        fn a_holder_republishes_an_interval_after_the_last_store_or_republish() {
            let c = Config::default();
            let stored_later = meta(Origin::Replica, 2 * HOUR, HOUR, 24 * HOUR);
            assert_eq!(upkeep(&stored_later, &c, at(3 * HOUR - 1)), Upkeep::Keep);
            assert_eq!(upkeep(&stored_later, &c, at(3 * HOUR)), Upkeep::Republish { publisher: false });
            let republished_later = meta(Origin::Replica, HOUR, 2 * HOUR, 24 * HOUR);
            assert_eq!(upkeep(&republished_later, &c, at(3 * HOUR - 1)), Upkeep::Keep);
        }

        fn replicas_and_cached_copies_are_dropped_at_expiry() {
            let c = Config::default();
            for origin in [Origin::Replica, Origin::Cache] {
                let m = meta(origin, 0, 0, 10);
                assert_eq!(upkeep(&m, &c, at(10)), Upkeep::Expire);
            }
        }

        fn a_cached_copy_is_never_republished() {
            let c = Config::default();
            let m = meta(Origin::Cache, 0, 0, 48 * HOUR);
            assert_eq!(upkeep(&m, &c, at(47 * HOUR)), Upkeep::Keep);
        }
    }
}
