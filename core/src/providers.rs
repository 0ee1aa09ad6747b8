//! Provider records: which peers announce that they can serve a key (ADD_PROVIDER/GET_PROVIDERS).
//!
//! Up to `N` entries. Entries for this node itself (keys it provides) are republished every
//! `provider_republish_interval` and never evicted; others expire after `provider_ttl`. When
//! full, an expired entry is reused, else the entry whose key is farthest from this node is
//! replaced if the newcomer's key is closer; otherwise the newcomer is refused (and counted).

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::time::Instant;

/// One provider of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderRecord {
    /// The key provided.
    pub key: Key,
    /// Who provides it.
    pub provider: NodeId,
    /// Where to reach the provider.
    pub addr: PeerAddr,
    /// When the entry lapses (for the own entries: when to republish).
    pub expires_at: Instant,
}

/// Whether [`Providers::add`] kept the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Stored (new or refreshed).
    Stored,
    /// Refused: full of nearer or own entries.
    Full,
}

/// A fixed-capacity table of provider records.
#[derive(Clone, Debug, Default)]
pub struct Providers<const N: usize> {
    entries: Vec<ProviderRecord, N>,
}

impl<const N: usize> Providers<N> {
    /// An empty table.
    pub const fn new() -> Self {
        Providers { entries: Vec::new() }
    }

    /// Adds or refreshes `record`. `own` is this node's id (its own entries are never evicted).
    pub fn add(&mut self, record: ProviderRecord, own: &NodeId, now: Instant) -> Added {
        if let Some(e) =
            self.entries.iter_mut().find(|e| e.key == record.key && e.provider == record.provider)
        {
            *e = record;
            return Added::Stored;
        }
        if self.entries.push(record).is_ok() {
            return Added::Stored;
        }
        let victim =
            self.entries.iter().position(|e| e.provider != *own && e.expires_at <= now).or_else(|| {
                self.entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.provider != *own)
                    .max_by_key(|(_, e)| e.key.distance(own))
                    .filter(|(_, e)| record.key.distance(own) < e.key.distance(own))
                    .map(|(i, _)| i)
            });
        match victim {
            Some(i) => {
                self.entries[i] = record;
                Added::Stored
            }
            None => Added::Full,
        }
    }

    /// The live providers of `key`, at most `out.len()`; returns how many were written.
    pub fn get(&self, key: &Key, now: Instant, out: &mut [(NodeId, PeerAddr)]) -> usize {
        let live = self.entries.iter().filter(|e| e.key == *key && e.expires_at > now);
        let mut n = 0;
        for (slot, e) in out.iter_mut().zip(live) {
            *slot = (e.provider, e.addr);
            n += 1;
        }
        n
    }

    /// Drops the expired entries of other providers.
    pub fn expire(&mut self, own: &NodeId, now: Instant) {
        self.entries.retain(|e| e.provider == *own || e.expires_at > now);
    }

    /// The first own entry whose republish time has come.
    pub fn due_own(&self, own: &NodeId, now: Instant) -> Option<Key> {
        self.entries.iter().find(|e| e.provider == *own && e.expires_at <= now).map(|e| e.key)
    }

    /// Stops providing `key` from this node.
    pub fn remove_own(&mut self, key: &Key, own: &NodeId) {
        self.entries.retain(|e| !(e.key == *key && e.provider == *own));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        let mut k = [0u8; 20];
        k[0] = b;
        Key::from_bytes(k)
    }

    fn rec(k: u8, p: u8, exp: u64) -> ProviderRecord {
        ProviderRecord {
            key: key(k),
            provider: NodeId::from_bytes([p; 20]),
            addr: PeerAddr::V4([127, 0, 0, 1], 1),
            expires_at: Instant::from_millis(exp),
        }
    }

    crate::selftest::unit_tests! {
        fn providers_expire_but_own_entries_stay() {
            let own = NodeId::from_bytes([9; 20]);
            let mut p = Providers::<4>::new();
            p.add(rec(1, 1, 10), &own, Instant::ZERO);
            p.add(rec(1, 9, 10), &own, Instant::ZERO);
            let mut out = [(own, PeerAddr::V4([0; 4], 0)); 4];
            assert_eq!(p.get(&key(1), Instant::from_millis(5), &mut out), 2);
            p.expire(&own, Instant::from_millis(11));
            assert_eq!(p.len(), 1);
            assert_eq!(p.due_own(&own, Instant::from_millis(11)), Some(key(1)));
        }

        fn a_full_table_replaces_the_farthest_key_or_refuses() {
            let own = NodeId::from_bytes([0; 20]);
            let mut p = Providers::<1>::new();
            assert_eq!(p.add(rec(0x40, 1, 99), &own, Instant::ZERO), Added::Stored);
            assert_eq!(p.add(rec(0x80, 2, 99), &own, Instant::ZERO), Added::Full);
            assert_eq!(p.add(rec(0x01, 3, 99), &own, Instant::ZERO), Added::Stored);
        }
    }
}
