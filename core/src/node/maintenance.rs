//! Maintenance: record expiry, republishing (publisher and holders), provider re-announcement
//! and bucket refresh, run every `maintenance_interval`.

use crate::addr::PeerAddr;
use crate::id::Key;
use crate::providers::ProviderRecord;
use crate::store::{Origin, RecordStore};

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
    pub(super) fn maintenance(&mut self) {
        let now = self.now;
        // Expiry and republish, in one pass over the keys.
        let mut cursor = None;
        while let Some(key) = self.store.next_key(cursor.as_ref()) {
            cursor = Some(key);
            let Some(meta) = self.store.meta(&key) else { continue };
            match meta.origin {
                Origin::Publisher => {
                    // The fresh copies must land before the last ones expire: at the latest one
                    // holder republish interval (at most half the TTL) before the expiry, since
                    // the publisher interval defaults to the TTL itself. Otherwise a value is
                    // gone for a while every 24 h (the simulator found 0.3% of values at 24 h).
                    let lead = self.config.republish_interval.min(self.config.record_ttl / 2);
                    let due = (meta.republished_at + self.config.publisher_republish_interval)
                        .min(meta.expires_at - lead);
                    if now >= due {
                        self.republish(key, true);
                    }
                }
                Origin::Replica | Origin::Cache if meta.expires_at <= now => {
                    self.store.remove(&key);
                    self.stats.records_expired += 1;
                }
                Origin::Replica => {
                    let last = meta.stored_at.max(meta.republished_at);
                    if now >= last + self.config.republish_interval {
                        self.republish(key, false);
                    }
                }
                Origin::Cache => {}
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
