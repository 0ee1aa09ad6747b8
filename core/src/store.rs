//! Records: values with a kind tag, TTL and origin, and the `RecordStore` that keeps them.
//!
//! A record's origin decides its life: a `Publisher` record is this node's own data and is
//! republished every `publisher_republish_interval` with a fresh TTL; a `Replica` is held for
//! others, republished hourly with its remaining TTL and dropped at expiry; a `Cache` copy was
//! placed here after a lookup, lives a shorter, distance-based TTL and is never republished.
//! When the store is full the farthest cached copy goes first, then the farthest replica if the
//! newcomer is closer to this node; publisher records are never evicted. A record remembers the
//! source network that stored it, so that the node can cap each source's share (see
//! `node/quota.rs`); a store answers "how many from this source" and "which record goes first"
//! itself ([`RecordStore::count_from`], [`RecordStore::worst`]), so that a large one can keep an
//! index instead of scanning.

use crate::addr::Prefix;

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::id::{Key, NodeId};
use crate::signed::{PublicKey, Signature};
use crate::time::Instant;

/// Largest value accepted on the wire, in bytes (as BEP 44). For signed records the limit
/// applies to salt and value together.
pub const MAX_VALUE_LEN: usize = 1000;
/// Largest salt of a signed record, in bytes (as BEP 44).
pub const MAX_SALT_LEN: usize = 64;

/// What a value is, so that it comes back as it went in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueKind {
    /// Arbitrary bytes.
    Bytes,
    /// UTF-8 text.
    Text,
}

/// Why this node holds a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// This node published it (the user's own data): republished with a fresh TTL.
    Publisher,
    /// Stored here by a peer because this node is among the closest to the key.
    Replica,
    /// Cached here after a lookup: shorter TTL, never republished, evicted first.
    Cache,
}

/// Who signed a mutable (BEP 44 style) record, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signer {
    /// Ed25519 public key of the writer.
    pub public_key: PublicKey,
    /// Sequence number; a store keeps only the highest.
    pub seq: u64,
    /// Ed25519 signature over (salt, seq, value).
    pub signature: Signature,
    /// How many leading bytes of the record's data are salt.
    pub salt_len: u8,
}

/// A record as held by a node. `data` is the value, or salt ‖ value for a signed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<const V: usize> {
    /// Where the record lives in the key space.
    pub key: Key,
    /// Bytes or text.
    pub kind: ValueKind,
    /// The value (prefixed by the salt for signed records).
    pub data: Vec<u8, V>,
    /// Present for signed records.
    pub signer: Option<Signer>,
    /// Why this node holds it.
    pub origin: Origin,
    /// When it stops being served (publisher records are kept past it and republished).
    pub expires_at: Instant,
    /// When it was last stored here (by a peer, or by the publisher's own put).
    pub stored_at: Instant,
    /// When this node last republished it.
    pub republished_at: Instant,
    /// The source network of the peer that stored it here (`None`: this node's own record, or
    /// a record whose source was not kept).
    pub source: Option<Prefix>,
}

impl<const V: usize> Record<V> {
    /// The value, without any salt.
    pub fn value(&self) -> &[u8] {
        let s = self.salt_len();
        self.data.get(s..).unwrap_or(&[])
    }

    /// The salt of a signed record (empty otherwise).
    pub fn salt(&self) -> &[u8] {
        &self.data[..self.salt_len()]
    }

    fn salt_len(&self) -> usize {
        self.signer.map(|s| s.salt_len as usize).unwrap_or(0).min(self.data.len())
    }

    /// The metadata of this record.
    pub fn meta(&self) -> RecordMeta {
        RecordMeta {
            key: self.key,
            origin: self.origin,
            expires_at: self.expires_at,
            stored_at: self.stored_at,
            republished_at: self.republished_at,
            seq: self.signer.map(|s| s.seq),
            source: self.source,
        }
    }
}

/// A record's metadata without its value (cheap to scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// The key.
    pub key: Key,
    /// Why this node holds it.
    pub origin: Origin,
    /// Expiry.
    pub expires_at: Instant,
    /// Last store.
    pub stored_at: Instant,
    /// Last republish by this node.
    pub republished_at: Instant,
    /// Sequence number of a signed record.
    pub seq: Option<u64>,
    /// The source network that stored it.
    pub source: Option<Prefix>,
}

/// Why a store refused a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// No room and nothing may be evicted for it.
    Full,
    /// The backing storage failed (persistent stores).
    Io,
}

/// Where a node keeps its records. The core ships [`MemoryStore`]; a front end may supply a
/// persistent one. `put` must return only once the record is durable: the node acknowledges a
/// STORE after `put` succeeds.
pub trait RecordStore<const V: usize> {
    /// The record under `key`.
    fn get(&self, key: &Key) -> Option<Record<V>>;
    /// The metadata of the record under `key`.
    fn meta(&self, key: &Key) -> Option<RecordMeta>;
    /// Inserts or replaces the record under `record.key`. When full, a store may refuse
    /// ([`StoreError::Full`]); the node evicts by its policy first (see [`RecordStore::remove`]).
    fn put(&mut self, record: Record<V>) -> Result<(), StoreError>;
    /// Removes the record under `key`, if any.
    fn remove(&mut self, key: &Key);
    /// Number of records held.
    fn len(&self) -> usize;
    /// True when no record is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The smallest key greater than `after` (the first key when `None`): iteration in key order.
    fn next_key(&self, after: Option<&Key>) -> Option<Key>;
    /// Records the store can hold.
    fn capacity(&self) -> usize;
    /// Records held that `source` stored. This default scans every record; a large store
    /// keeps a count instead.
    fn count_from(&self, source: &Prefix) -> usize {
        let mut n = 0;
        let mut cursor = None;
        while let Some(k) = self.next_key(cursor.as_ref()) {
            cursor = Some(k);
            n += usize::from(self.meta(&k).is_some_and(|m| m.source == Some(*source)));
        }
        n
    }
    /// The record evicted first: the lowest origin (cached copies, then replicas, then the
    /// publisher's own), and among those the farthest from `own`. This default scans every
    /// record; a large store keeps an index instead (see [`farthest`]).
    fn worst(&self, own: &NodeId) -> Option<RecordMeta> {
        let mut worst: Option<RecordMeta> = None;
        let mut cursor = None;
        while let Some(k) = self.next_key(cursor.as_ref()) {
            cursor = Some(k);
            let Some(m) = self.meta(&k) else { continue };
            let order = |m: &RecordMeta| (rank(m.origin), core::cmp::Reverse(m.key.distance(own)));
            if worst.as_ref().is_none_or(|w| order(&m) < order(w)) {
                worst = Some(m);
            }
        }
        worst
    }
}

/// The eviction order of origins: cached copies first, the publisher's own records last.
pub fn rank(o: Origin) -> u8 {
    match o {
        Origin::Cache => 0,
        Origin::Replica => 1,
        Origin::Publisher => 2,
    }
}

/// The key farthest from `own` among a set of keys, given `any_in(lo, hi)`: whether the set
/// holds a key in `lo..=hi` (one range query of a sorted map). 160 range queries, whatever the
/// size of the set.
pub fn farthest(own: &NodeId, mut any_in: impl FnMut(&Key, &Key) -> bool) -> Option<Key> {
    let (mut lo, mut hi) = ([0u8; 20], [0xffu8; 20]);
    if !any_in(&Key::from_bytes(lo), &Key::from_bytes(hi)) {
        return None;
    }
    let own = own.as_key();
    for bit in 0..160 {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        // Prefer the half whose bit differs from the own id's: it is farther.
        let far = own.as_bytes()[byte] & mask == 0;
        let set = |b: &mut [u8; 20], one: bool| if one { b[byte] |= mask } else { b[byte] &= !mask };
        let (mut lo2, mut hi2) = (lo, hi);
        set(&mut lo2, far);
        set(&mut hi2, far);
        if any_in(&Key::from_bytes(lo2), &Key::from_bytes(hi2)) {
            (lo, hi) = (lo2, hi2);
        } else {
            set(&mut lo, !far);
            set(&mut hi, !far);
        }
    }
    Some(Key::from_bytes(lo))
}

/// The victim to evict so that `incoming` fits, by the policy in the module docs.
pub fn eviction_candidate<const V: usize, S: RecordStore<V>>(
    store: &S,
    own: &NodeId,
    incoming: &RecordMeta,
) -> Option<Key> {
    let w = store.worst(own)?;
    let acceptable = match (w.origin, incoming.origin) {
        (Origin::Publisher, _) => false,
        (Origin::Cache, Origin::Cache) | (Origin::Replica, Origin::Replica) => {
            incoming.key.distance(own) < w.key.distance(own)
        }
        (Origin::Cache, _) => true,
        (Origin::Replica, Origin::Publisher) => true,
        (Origin::Replica, Origin::Cache) => false,
    };
    acceptable.then_some(w.key)
}

/// A fixed-capacity in-memory store of up to `N` records of up to `V` bytes, sorted by key.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore<const N: usize, const V: usize> {
    records: Vec<Record<V>, N>,
}

impl<const N: usize, const V: usize> MemoryStore<N, V> {
    /// An empty store.
    pub const fn new() -> Self {
        MemoryStore { records: Vec::new() }
    }

    fn find(&self, key: &Key) -> Result<usize, usize> {
        self.records.binary_search_by(|r| r.key.cmp(key))
    }

    /// All records, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Record<V>> {
        self.records.iter()
    }
}

impl<const N: usize, const V: usize> RecordStore<V> for MemoryStore<N, V> {
    fn get(&self, key: &Key) -> Option<Record<V>> {
        self.find(key).ok().map(|i| self.records[i].clone())
    }

    fn meta(&self, key: &Key) -> Option<RecordMeta> {
        self.find(key).ok().map(|i| self.records[i].meta())
    }

    fn put(&mut self, record: Record<V>) -> Result<(), StoreError> {
        match self.find(&record.key) {
            Ok(i) => {
                self.records[i] = record;
                Ok(())
            }
            Err(i) => self.records.insert(i, record).map_err(|_| StoreError::Full),
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Ok(i) = self.find(key) {
            self.records.remove(i);
        }
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    fn next_key(&self, after: Option<&Key>) -> Option<Key> {
        let i = match after {
            None => 0,
            Some(k) => match self.find(k) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
        };
        self.records.get(i).map(|r| r.key)
    }

    fn capacity(&self) -> usize {
        N
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn rec(k: u8, origin: Origin) -> Record<16> {
        let mut b = [0u8; 20];
        b[0] = k;
        Record {
            key: Key::from_bytes(b),
            kind: ValueKind::Bytes,
            data: Vec::from_slice(&[k]).unwrap(),
            signer: None,
            origin,
            expires_at: Instant::from_millis(100),
            stored_at: Instant::ZERO,
            republished_at: Instant::ZERO,
            source: None,
        }
    }

    crate::selftest::unit_tests! {
        fn the_farthest_key_is_found_by_range_queries() {
            let mut s = MemoryStore::<8, 16>::new();
            for k in [0x01, 0x42, 0x7f, 0x80, 0xc3] {
                s.put(rec(k, Origin::Replica)).unwrap();
            }
            let any_in = |lo: &Key, hi: &Key| s.iter().any(|r| r.key >= *lo && r.key <= *hi);
            for own in [0x00u8, 0x80, 0x7f, 0xff, 0x41] {
                let mut b = [0u8; 20];
                b[0] = own;
                let own = NodeId::from_bytes(b);
                let scan = s.iter().map(|r| r.key).max_by_key(|k| k.distance(&own));
                assert_eq!(farthest(&own, any_in), scan, "own {:x}", b[0]);
            }
            assert_eq!(farthest(&NodeId::from_bytes([0; 20]), |_, _| false), None);
        }

        fn a_store_counts_the_records_each_source_stored() {
            let mut s = MemoryStore::<4, 16>::new();
            let (a, b) = (crate::addr::PeerAddr::V4([10, 0, 0, 1], 1).prefix(), crate::addr::PeerAddr::V4([10, 0, 1, 1], 1).prefix());
            for (k, src) in [(1, Some(a)), (2, Some(a)), (3, Some(b)), (4, None)] {
                s.put(Record { source: src, ..rec(k, Origin::Replica) }).unwrap();
            }
            assert_eq!((s.count_from(&a), s.count_from(&b)), (2, 1));
        }

        fn a_full_store_refuses_instead_of_growing() {
            let mut s = MemoryStore::<2, 16>::new();
            s.put(rec(1, Origin::Replica)).unwrap();
            s.put(rec(2, Origin::Replica)).unwrap();
            assert_eq!(s.put(rec(3, Origin::Replica)), Err(StoreError::Full));
            // Replacing an existing key still works when full.
            s.put(rec(2, Origin::Cache)).unwrap();
            assert_eq!(s.len(), 2);
        }

        fn keys_iterate_in_order() {
            let mut s = MemoryStore::<4, 16>::new();
            for k in [3, 1, 2] {
                s.put(rec(k, Origin::Replica)).unwrap();
            }
            let mut seen = heapless::Vec::<u8, 4>::new();
            let mut c = None;
            while let Some(k) = s.next_key(c.as_ref()) {
                seen.push(k.as_bytes()[0]).unwrap();
                c = Some(k);
            }
            assert_eq!(&seen[..], &[1, 2, 3]);
        }

        fn the_farthest_cached_copy_is_evicted_before_any_replica() {
            let own = NodeId::from_bytes([0; 20]);
            let mut s = MemoryStore::<3, 16>::new();
            s.put(rec(0x01, Origin::Replica)).unwrap();
            s.put(rec(0x02, Origin::Cache)).unwrap();
            s.put(rec(0x03, Origin::Cache)).unwrap();
            let incoming = rec(0xf0, Origin::Replica).meta();
            assert_eq!(eviction_candidate(&s, &own, &incoming), Some(rec(0x03, Origin::Cache).key));
        }

        fn publisher_records_are_never_evicted() {
            let own = NodeId::from_bytes([0; 20]);
            let mut s = MemoryStore::<1, 16>::new();
            s.put(rec(0xff, Origin::Publisher)).unwrap();
            assert_eq!(eviction_candidate(&s, &own, &rec(0x01, Origin::Publisher).meta()), None);
        }

        fn a_replica_displaces_a_farther_replica_but_not_a_nearer_one() {
            let own = NodeId::from_bytes([0; 20]);
            let mut s = MemoryStore::<1, 16>::new();
            s.put(rec(0x40, Origin::Replica)).unwrap();
            assert_eq!(eviction_candidate(&s, &own, &rec(0x80, Origin::Replica).meta()), None);
            assert!(eviction_candidate(&s, &own, &rec(0x01, Origin::Replica).meta()).is_some());
        }
    }
}
