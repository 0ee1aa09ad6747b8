//! Which records the store takes and serves: a peer's STORE (signatures, sequence numbers,
//! compare-and-swap, cached against primary copies), eviction when full, and liveness.

use core::time::Duration;

use crate::id::Key;
use crate::signed;
use crate::store::{eviction_candidate, Origin, Record, RecordStore, StoreError};
use crate::wire::{StoreStatus, WireRecord};

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
    /// Validates and stores a record a peer sent; the answer is sent only after the store
    /// accepted it (durably, for persistent stores).
    pub(super) fn accept_store(&mut self, w: &WireRecord<'_>) -> StoreStatus {
        let Some(rec) = self.record_from_wire(w, Origin::Replica) else {
            return StoreStatus::TooLarge;
        };
        let existing = self.store.get(&rec.key);
        if let Err(status) = check_signed(&rec, existing.as_ref(), w.signature.and_then(|s| s.cas)) {
            return status;
        }
        let mut rec = rec;
        if w.cached {
            rec.origin = Origin::Cache;
            rec.expires_at = self.now + Duration::from_secs(w.ttl_secs as u64).min(self.config.cache_ttl_max);
        }
        if let Some(old) = &existing {
            let same = old.data == rec.data && old.kind == rec.kind;
            if old.origin == Origin::Publisher && same {
                return StoreStatus::Stored;
            }
            if w.cached && old.origin != Origin::Cache {
                // A cached copy never replaces a primary one.
                return StoreStatus::Stored;
            }
            if same && old.origin == Origin::Replica && old.expires_at > rec.expires_at {
                // An older copy of the same value (a holder republishing its remaining TTL)
                // must not shorten the life a fresher one (the publisher's republish) gave it.
                rec.expires_at = old.expires_at;
            }
        }
        match self.store_local(rec) {
            Ok(()) => StoreStatus::Stored,
            Err(StoreError::Full) => StoreStatus::Full,
            Err(StoreError::Io) => StoreStatus::StorageError,
        }
    }

    /// Puts a record in the store, evicting by policy when full.
    pub(super) fn store_local(&mut self, rec: Record<V>) -> Result<(), StoreError> {
        let meta = rec.meta();
        match self.store.put(rec.clone()) {
            Err(StoreError::Full) => {
                let victim = eviction_candidate(&self.store, &self.id, &meta).ok_or(StoreError::Full)?;
                self.store.remove(&victim);
                self.stats.records_evicted += 1;
                self.store.put(rec)
            }
            other => other,
        }
    }

    pub(super) fn live_record(&self, key: &Key) -> Option<Record<V>> {
        self.store.get(key).filter(|r| r.origin == Origin::Publisher || r.expires_at > self.now)
    }
}

/// Checks a signed record against the held one: signature, sequence number, compare-and-swap.
pub(super) fn check_signed<const V: usize>(
    rec: &Record<V>,
    existing: Option<&Record<V>>,
    cas: Option<u64>,
) -> Result<(), StoreStatus> {
    let Some(sig) = rec.signer else {
        // An unsigned record may not overwrite a signed one.
        return match existing {
            Some(old) if old.signer.is_some() => Err(StoreStatus::BadSignature),
            _ => Ok(()),
        };
    };
    signed::verify(&rec.key, &sig.public_key, rec.salt(), sig.seq, rec.value(), &sig.signature).map_err(
        |e| match e {
            signed::SignatureError::Invalid => StoreStatus::BadSignature,
            signed::SignatureError::Unsupported => StoreStatus::Unsupported,
        },
    )?;
    let held_seq = existing.and_then(|o| o.signer.map(|s| s.seq));
    if let Some(expected) = cas {
        if held_seq.unwrap_or(0) != expected {
            return Err(StoreStatus::CasMismatch);
        }
    }
    match (existing, held_seq) {
        (Some(old), Some(seq)) if seq > sig.seq || (seq == sig.seq && old.data != rec.data) => {
            Err(StoreStatus::StaleSeq)
        }
        _ => Ok(()),
    }
}
