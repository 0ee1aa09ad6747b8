//! Which records the store takes and serves: a peer's STORE (signatures, sequence numbers,
//! compare-and-swap, cached against primary copies), eviction when full, and liveness.

use core::time::Duration;

use crate::addr::PeerAddr;
use crate::id::Key;
use crate::signed;
use crate::store::{eviction_candidate, Origin, Record, RecordStore, StoreError};
use crate::time::Instant;
use crate::wire::{StoreStatus, WireRecord};

use super::{quota, Node};

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
    pub(super) fn accept_store(&mut self, from: PeerAddr, w: &WireRecord<'_>) -> StoreStatus {
        let Some(mut rec) = self.record_from_wire(w, Origin::Replica) else {
            return StoreStatus::TooLarge;
        };
        rec.source = quota::limited_source(&from, &self.config.limits);
        if w.cached {
            rec.origin = Origin::Cache;
            rec.expires_at = self.now + Duration::from_secs(w.ttl_secs as u64).min(self.config.cache_ttl_max);
        }
        if let Err(status) = verify_signature(&rec) {
            return status;
        }
        let held = self.store.get(&rec.key);
        match accept(rec, held.as_ref(), w.signature.and_then(|s| s.cas)) {
            Err(status) => status,
            Ok(None) => StoreStatus::Stored,
            Ok(Some(rec)) if self.over_share(&rec, held.as_ref()) => {
                self.stats.stores_over_share += 1;
                StoreStatus::OverShare
            }
            Ok(Some(rec)) => match self.store_local(rec) {
                Ok(()) => StoreStatus::Stored,
                Err(StoreError::Full) => StoreStatus::Full,
                Err(StoreError::Io) => StoreStatus::StorageError,
            },
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

    /// The record under `key`, if it is still served (see [`is_live`]).
    pub(super) fn live_record(&self, key: &Key) -> Option<Record<V>> {
        self.store.get(key).filter(|r| is_live(r.origin, r.expires_at, self.now))
    }
}

/// Whether a held record is served and handed on: this node's own records always (they are
/// republished, never dropped), others until they expire.
pub(super) fn is_live(origin: Origin, expires_at: Instant, now: Instant) -> bool {
    origin == Origin::Publisher || expires_at > now
}

/// Whether a record's signature holds: a signed record must verify for its key, public key,
/// salt, sequence number and value; an unsigned one passes.
pub(super) fn verify_signature<const V: usize>(rec: &Record<V>) -> Result<(), StoreStatus> {
    let Some(sig) = rec.signer else { return Ok(()) };
    signed::verify(&rec.key, &sig.public_key, rec.salt(), sig.seq, rec.value(), &sig.signature).map_err(|e| {
        match e {
            signed::SignatureError::Invalid => StoreStatus::BadSignature,
            signed::SignatureError::Unsupported => StoreStatus::Unsupported,
        }
    })
}

/// What to do with a record a peer sent, its signature verified, given the one held:
/// `Err` refuses it; `Ok(None)` acknowledges it and keeps the held copy, which is as good;
/// `Ok(Some(record))` stores `record`. Past [`check_sequence`]:
/// - the publisher's own copy of the same value stays as it is;
/// - a cached copy never replaces a primary one;
/// - an older copy of the same value (a holder republishing its remaining TTL) does not
///   shorten the life a fresher one (the publisher's republish) gave it.
pub(super) fn accept<const V: usize>(
    mut rec: Record<V>,
    held: Option<&Record<V>>,
    cas: Option<u64>,
) -> Result<Option<Record<V>>, StoreStatus> {
    check_sequence(&rec, held, cas)?;
    let Some(old) = held else { return Ok(Some(rec)) };
    let same = old.data == rec.data && old.kind == rec.kind;
    if old.origin == Origin::Publisher && same {
        return Ok(None);
    }
    if rec.origin == Origin::Cache && old.origin != Origin::Cache {
        return Ok(None);
    }
    if same && old.origin == Origin::Replica && old.expires_at > rec.expires_at {
        rec.expires_at = old.expires_at;
    }
    Ok(Some(rec))
}

/// Whether a record may replace the held one as far as signatures go: an unsigned record
/// never replaces a signed one; with compare-and-swap, the held sequence number (0 if none)
/// must equal the expected one; and a signed record's sequence number only moves forward (a
/// lower one, or the same one with another value, is stale).
pub(super) fn check_sequence<const V: usize>(
    rec: &Record<V>,
    held: Option<&Record<V>>,
    cas: Option<u64>,
) -> Result<(), StoreStatus> {
    let held_seq = held.and_then(|o| o.signer.map(|s| s.seq));
    let Some(sig) = rec.signer else {
        return if held_seq.is_some() { Err(StoreStatus::BadSignature) } else { Ok(()) };
    };
    if let Some(expected) = cas {
        if held_seq.unwrap_or(0) != expected {
            return Err(StoreStatus::CasMismatch);
        }
    }
    match (held, held_seq) {
        (Some(old), Some(seq)) if seq > sig.seq || (seq == sig.seq && old.data != rec.data) => {
            Err(StoreStatus::StaleSeq)
        }
        _ => Ok(()),
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::signed::{PublicKey, Signature};
    use crate::store::{Signer, ValueKind};

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    /// A record under the key of one writer (without salt): `value`, signed with sequence
    /// number `seq` if given (by a signature that does not verify).
    fn record(value: &[u8], seq: Option<u64>, origin: Origin, expires: u64) -> Record<16> {
        Record {
            key: signed::key_for(&PublicKey([1; 32]), b""),
            kind: ValueKind::Bytes,
            data: heapless::Vec::from_slice(value).unwrap(),
            signer: seq.map(|seq| Signer {
                public_key: PublicKey([1; 32]),
                seq,
                signature: Signature([2; 64]),
                salt_len: 0,
            }),
            origin,
            expires_at: at(expires),
            stored_at: at(0),
            republished_at: at(0),
            source: None,
        }
    }

    crate::selftest::unit_tests! {
        fn an_unsigned_record_never_replaces_a_signed_one() {
            let signed = record(b"a", Some(1), Origin::Replica, 10);
            let unsigned = record(b"b", None, Origin::Replica, 10);
            assert_eq!(accept(unsigned.clone(), Some(&signed), None), Err(StoreStatus::BadSignature));
            assert_eq!(accept(unsigned.clone(), Some(&unsigned), None), Ok(Some(unsigned.clone())));
            assert_eq!(accept(unsigned.clone(), None, None), Ok(Some(unsigned)));
        }

        fn a_signed_record_only_moves_its_sequence_number_forward() {
            let held = record(b"v5", Some(5), Origin::Replica, 10);
            let older = record(b"v4", Some(4), Origin::Replica, 10);
            let rival = record(b"w5", Some(5), Origin::Replica, 10);
            let again = record(b"v5", Some(5), Origin::Replica, 10);
            let newer = record(b"v6", Some(6), Origin::Replica, 10);
            assert_eq!(accept(older, Some(&held), None), Err(StoreStatus::StaleSeq));
            assert_eq!(accept(rival, Some(&held), None), Err(StoreStatus::StaleSeq));
            assert_eq!(accept(again.clone(), Some(&held), None), Ok(Some(again)));
            assert_eq!(accept(newer.clone(), Some(&held), None), Ok(Some(newer)));
        }

        fn compare_and_swap_needs_the_held_sequence_number_or_zero_when_none() {
            let held = record(b"v5", Some(5), Origin::Replica, 10);
            let newer = record(b"v6", Some(6), Origin::Replica, 10);
            assert_eq!(accept(newer.clone(), Some(&held), Some(5)), Ok(Some(newer.clone())));
            assert_eq!(accept(newer.clone(), Some(&held), Some(4)), Err(StoreStatus::CasMismatch));
            assert_eq!(accept(newer.clone(), None, Some(0)), Ok(Some(newer.clone())));
            assert_eq!(accept(newer, None, Some(5)), Err(StoreStatus::CasMismatch));
            // The swap is checked first: a stale record with the wrong expectation is a mismatch.
            let older = record(b"v4", Some(4), Origin::Replica, 10);
            assert_eq!(accept(older, Some(&held), Some(3)), Err(StoreStatus::CasMismatch));
        }

        fn a_cached_copy_never_replaces_a_primary_one() {
            let cached = record(b"new", None, Origin::Cache, 10);
            for origin in [Origin::Publisher, Origin::Replica] {
                let held = record(b"old", None, origin, 10);
                assert_eq!(accept(cached.clone(), Some(&held), None), Ok(None));
            }
            let held = record(b"old", None, Origin::Cache, 10);
            assert_eq!(accept(cached.clone(), Some(&held), None), Ok(Some(cached)));
        }

        fn the_publisher_keeps_its_own_copy_of_the_same_value() {
            let own = record(b"v", None, Origin::Publisher, 100);
            let replica = record(b"v", None, Origin::Replica, 10);
            assert_eq!(accept(replica, Some(&own), None), Ok(None));
        }

        fn an_older_copy_of_the_same_value_does_not_shorten_its_life() {
            let fresh = record(b"v", None, Origin::Replica, 100);
            let old_same = record(b"v", None, Origin::Replica, 50);
            let old_other = record(b"w", None, Origin::Replica, 50);
            assert_eq!(accept(old_same, Some(&fresh), None), Ok(Some(record(b"v", None, Origin::Replica, 100))));
            assert_eq!(accept(old_other.clone(), Some(&fresh), None), Ok(Some(old_other)));
        }

        fn only_the_publisher_serves_a_record_past_its_expiry() {
            assert!(is_live(Origin::Publisher, at(10), at(20)));
            assert!(is_live(Origin::Replica, at(10), at(9)));
            assert!(!is_live(Origin::Replica, at(10), at(10)));
            assert!(!is_live(Origin::Cache, at(10), at(11)));
        }

        fn a_signature_that_does_not_verify_is_refused() {
            let forged = record(b"v", Some(1), Origin::Replica, 10);
            let refusal = if cfg!(feature = "signed") { StoreStatus::BadSignature } else { StoreStatus::Unsupported };
            assert_eq!(verify_signature(&forged), Err(refusal));
            assert_eq!(verify_signature(&record(b"v", None, Origin::Replica, 10)), Ok(()));
        }
    }
}
