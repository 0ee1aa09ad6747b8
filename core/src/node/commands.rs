//! Commands: what a user asks of the node (find, get, put, provide) and why a command is refused.

use core::fmt;

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::id::Key;
use crate::providers::{Added, ProviderRecord};
use crate::signed::{self, PublicKey, Signature};
use crate::store::{Origin, Record, RecordStore, Signer, ValueKind, MAX_SALT_LEN, MAX_VALUE_LEN};
use crate::time::Instant;
use crate::wire::{Peer, StoreStatus, MAX_PROVIDERS};

use super::queries::{Kind, QueryId};
use super::Node;

/// A signed record to store: who signed it, under which salt and sequence number, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPut<'a> {
    /// Ed25519 public key of the writer.
    pub public_key: PublicKey,
    /// Salt (at most 64 bytes); the record lives at SHA-1(public key ‖ salt).
    pub salt: &'a [u8],
    /// Sequence number: peers keep only the highest.
    pub seq: u64,
    /// Ed25519 signature over the BEP 44 form of (salt, seq, value).
    pub signature: Signature,
    /// Compare-and-swap: store only where the held sequence number equals this.
    pub cas: Option<u64>,
}

/// Why a command was refused. Nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// All query slots are taken; retry when a query finishes.
    Busy {
        /// The number of slots (the `Q` capacity).
        capacity: usize,
    },
    /// The value is larger than this node or the protocol allows.
    ValueTooLarge {
        /// Bytes given (salt included for signed records).
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// The salt of a signed record is longer than 64 bytes.
    SaltTooLarge {
        /// Bytes given.
        len: usize,
    },
    /// The routing table is empty: bootstrap from a known peer first.
    NoPeers,
    /// None of the given bootstrap addresses is a usable unicast address.
    InvalidAddress,
    /// The local store is full of records this node published and cannot take this one.
    StoreFull,
    /// Signed records need the `signed` feature.
    Unsupported,
    /// The signature does not verify for this public key, salt, sequence number and value.
    BadSignature,
    /// This node holds a record under the key that the new one may not replace, as a peer
    /// would refuse it: a higher sequence number ([`StoreStatus::StaleSeq`]), another one than
    /// compare-and-swap expected ([`StoreStatus::CasMismatch`]), or a signed record that an
    /// unsigned one would replace ([`StoreStatus::BadSignature`]).
    Conflict(StoreStatus),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Busy { capacity } => {
                write!(f, "all {capacity} query slots are busy; retry when a query finishes")
            }
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes is over the limit of {max} bytes")
            }
            Error::SaltTooLarge { len } => {
                write!(f, "salt of {len} bytes is over the limit of {MAX_SALT_LEN} bytes")
            }
            Error::NoPeers => f.write_str("no known peers: bootstrap from a running node first"),
            Error::InvalidAddress => f.write_str("no usable bootstrap address (need IP and port)"),
            Error::StoreFull => f.write_str("local store is full of this node's own records"),
            Error::Unsupported => f.write_str("signed records need kad-core's `signed` feature"),
            Error::BadSignature => f.write_str("signature does not match public key, salt, seq and value"),
            Error::Conflict(status) => write!(f, "this node holds a record it may not replace: {status}"),
        }
    }
}

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
    /// Finds the `K` closest nodes to `target` (FIND_NODE).
    pub fn find_node(&mut self, target: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        self.start_user(Kind::FindNode, target)
    }

    /// Finds the value stored under `key` (FIND_VALUE); the local store answers first.
    pub fn get(&mut self, key: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        if let Some(rec) = self.live_record(&key) {
            if rec.signer.is_none() {
                let qid = self.new_query(Kind::Get { signed: false }, key, true)?;
                let q = self.query_mut(qid).expect("just created");
                q.record = Some(rec);
                self.finish(qid);
                return Ok(qid);
            }
        }
        self.start_user(Kind::Get { signed: false }, key)
    }

    /// Finds the signed record of `public_key` and `salt` with the highest sequence number,
    /// verifying every signature on the way.
    pub fn get_signed(
        &mut self,
        public_key: &PublicKey,
        salt: &[u8],
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.advance(now);
        if salt.len() > MAX_SALT_LEN {
            return Err(Error::SaltTooLarge { len: salt.len() });
        }
        let key = signed::key_for(public_key, salt);
        let local = self.live_record(&key).filter(|r| r.signer.is_some());
        let qid = self.start_user(Kind::Get { signed: true }, key)?;
        if let Some(q) = self.query_mut(qid) {
            q.record = local;
        }
        Ok(qid)
    }

    /// Stores `value` under `key` on the `K` closest nodes; this node keeps it as publisher and
    /// republishes it every `publisher_republish_interval`. Finishes with
    /// [`Outcome::Put`](super::Outcome::Put), an error when no peer acknowledged.
    pub fn put(&mut self, key: Key, kind: ValueKind, value: &[u8], now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        let max = V.min(MAX_VALUE_LEN);
        let data = Vec::from_slice(value).ok().filter(|_| value.len() <= max);
        let data = data.ok_or(Error::ValueTooLarge { len: value.len(), max })?;
        let record = Record {
            key,
            kind,
            data,
            signer: None,
            origin: Origin::Publisher,
            expires_at: now + self.config.record_ttl,
            stored_at: now,
            republished_at: now,
            source: None,
        };
        self.publish(record, None)
    }

    /// Stores a signed record: key = SHA-1(public key ‖ salt), signed over (salt, seq, value).
    /// With `cas`, peers store it only if their current sequence number equals `cas`.
    #[cfg(feature = "signed")]
    #[allow(clippy::too_many_arguments)]
    pub fn put_signed(
        &mut self,
        keypair: &signed::Keypair,
        salt: &[u8],
        seq: u64,
        kind: ValueKind,
        value: &[u8],
        cas: Option<u64>,
        now: Instant,
    ) -> Result<QueryId, Error> {
        let signature = keypair.sign(salt, seq, value);
        let signed = SignedPut { public_key: keypair.public_key(), salt, seq, signature, cas };
        self.put_presigned(&signed, kind, value, now)
    }

    /// Stores a record signed elsewhere (for example by an HTTP client holding the secret
    /// key). The signature is verified here first: a bad one is [`Error::BadSignature`].
    pub fn put_presigned(
        &mut self,
        signed: &SignedPut<'_>,
        kind: ValueKind,
        value: &[u8],
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.advance(now);
        let salt = signed.salt;
        if salt.len() > MAX_SALT_LEN {
            return Err(Error::SaltTooLarge { len: salt.len() });
        }
        let len = salt.len() + value.len();
        let max = V.min(MAX_VALUE_LEN);
        let mut data: Vec<u8, V> = Vec::new();
        if len > max || data.extend_from_slice(salt).is_err() || data.extend_from_slice(value).is_err() {
            return Err(Error::ValueTooLarge { len, max });
        }
        let key = signed::key_for(&signed.public_key, salt);
        signed::verify(&key, &signed.public_key, salt, signed.seq, value, &signed.signature).map_err(
            |e| match e {
                signed::SignatureError::Invalid => Error::BadSignature,
                signed::SignatureError::Unsupported => Error::Unsupported,
            },
        )?;
        let record = Record {
            key,
            kind,
            data,
            signer: Some(Signer {
                public_key: signed.public_key,
                seq: signed.seq,
                signature: signed.signature,
                salt_len: salt.len() as u8,
            }),
            origin: Origin::Publisher,
            expires_at: now + self.config.record_ttl,
            stored_at: now,
            republished_at: now,
            source: None,
        };
        self.publish(record, signed.cas)
    }

    pub(super) fn publish(&mut self, record: Record<V>, cas: Option<u64>) -> Result<QueryId, Error> {
        if self.routing.is_empty() {
            return Err(Error::NoPeers);
        }
        if self.free_slots(true) == 0 {
            self.stats.queries_busy += 1;
            return Err(Error::Busy { capacity: Q });
        }
        // The same rule as for a peer's STORE: a put never rolls back what this node holds.
        let held = self.live_record(&record.key);
        super::accept::check_sequence(&record, held.as_ref(), cas).map_err(Error::Conflict)?;
        self.store_local(record.clone()).map_err(|_| Error::StoreFull)?;
        let qid = self.start_user(Kind::Put, record.key)?;
        let q = self.query_mut(qid).expect("just created");
        q.record = Some(record);
        q.cas = cas;
        Ok(qid)
    }

    /// Announces this node as a provider of `key` to the `K` closest nodes, and keeps
    /// re-announcing it every `provider_republish_interval`.
    pub fn provide(&mut self, key: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        let qid = self.start_user(Kind::Provide, key)?;
        let own = ProviderRecord {
            key,
            provider: self.id,
            addr: PeerAddr::V4([0; 4], 0),
            expires_at: now + self.config.provider_republish_interval,
        };
        if self.providers.add(own, &self.id, now) == Added::Full {
            self.stats.providers_refused += 1;
        }
        Ok(qid)
    }

    /// Stops re-announcing `key` (peers forget it when their records expire).
    pub fn stop_providing(&mut self, key: &Key) {
        self.providers.remove_own(key, &self.id);
    }

    /// Finds providers of `key` (GET_PROVIDERS).
    pub fn get_providers(&mut self, key: Key, now: Instant) -> Result<QueryId, Error> {
        self.advance(now);
        let qid = self.start_user(Kind::GetProviders, key)?;
        // The providers this node was told of count too (not itself: it knows that already).
        let mut known = [(self.id, PeerAddr::V4([0; 4], 0)); MAX_PROVIDERS];
        let n = self.providers.get(&key, self.now, &mut known);
        let own = self.id;
        let q = self.query_mut(qid).expect("just started");
        for &(id, addr) in known[..n].iter().filter(|(id, _)| *id != own) {
            let _ = q.providers.push(Peer { id, addr });
        }
        Ok(qid)
    }
}
