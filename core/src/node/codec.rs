//! Encoding: requests, replies and records as they go on the wire, and records as they come
//! off it.

use core::time::Duration;

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::routing::{Contact, ContactState};
use crate::store::{Origin, Record, RecordStore, Signer};
use crate::token::Token;
use crate::wire::{
    self, Body, Bytes, Flags, Header, Message, Peer, TxId, WireRecord, WireSignature, MAX_CONTACTS,
    MAX_PROVIDERS, VERSION,
};

use super::requests::{Reply, ReplyBody};
use super::rpc::{Pending, Request};
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
    pub(super) fn header(&self, txid: TxId, token: Token) -> Header {
        let flags = if self.config.client_mode { Flags::CLIENT } else { 0 };
        Header { version: VERSION, txid, sender: self.id, flags: Flags(flags), token }
    }

    pub(super) fn encode_request(&self, p: &Pending, buf: &mut [u8]) -> Option<usize> {
        let token = match p.request {
            Request::Store { token, .. } | Request::AddProvider { token, .. } => token,
            _ => Token::default(),
        };
        let header = self.header(p.txid, token);
        let held;
        let body = match p.request {
            Request::Ping { .. } | Request::Verify => Body::Ping,
            Request::FindNode { target, .. } => Body::FindNode { target },
            Request::FindValue { key, .. } => Body::FindValue { key },
            Request::GetProviders { key, .. } => Body::GetProviders { key },
            Request::AddProvider { key, .. } => Body::AddProvider { key },
            Request::Store { query, key, cached_ttl, .. } => {
                let (record, cas) = match query.and_then(|qid| self.queries.iter().find(|q| q.id == qid)) {
                    Some(q) => (q.record.as_ref()?, q.cas),
                    None => {
                        held = self.live_record(&key)?;
                        (&held, None)
                    }
                };
                let mut w = self.wire_record(record, cas);
                if let Some(ttl) = cached_ttl {
                    w.cached = true;
                    w.ttl_secs = ttl;
                }
                return wire::encode(&Message { header, body: Body::Store { record: w } }, buf).ok();
            }
        };
        wire::encode(&Message { header, body }, buf).ok()
    }

    pub(super) fn wire_record<'r>(&self, r: &'r Record<V>, cas: Option<u64>) -> WireRecord<'r> {
        let ttl = r.expires_at.saturating_since(self.now).as_secs().min(u32::MAX as u64) as u32;
        WireRecord {
            key: r.key,
            kind: r.kind,
            ttl_secs: ttl,
            cached: false,
            data: Bytes(&r.data),
            signature: r.signer.map(|s| WireSignature {
                public_key: s.public_key,
                salt_len: s.salt_len,
                seq: s.seq,
                signature: s.signature,
                cas,
            }),
        }
    }

    /// Encodes the answer `r` into `buf`; `trim` = `Some(n)` answers with at most `n`
    /// contacts (and providers) and with contacts instead of a value (see
    /// `node/amplification.rs`).
    pub(super) fn encode_reply(&self, r: &Reply, buf: &mut [u8], trim: Option<usize>) -> Option<usize> {
        let token = match r.body {
            ReplyBody::Stored(_) | ReplyBody::ProviderAdded(_) => Token::default(),
            _ => self.tokens.issue(&r.to),
        };
        let header = self.header(r.txid, token);
        let held;
        let cap = trim.unwrap_or(MAX_CONTACTS);
        let nodes = |target: &Key| {
            let mut c = self.closest_peers(target, &r.requester);
            c.truncate(cap);
            c
        };
        let body = match r.body {
            ReplyBody::Pong => Body::Pong { observed: r.to },
            ReplyBody::Nodes { target } => Body::Nodes { contacts: nodes(&target) },
            ReplyBody::Value { key } => match self.live_record(&key).filter(|_| trim.is_none()) {
                Some(rec) => {
                    held = rec;
                    let record = self.wire_record(&held, None);
                    // As many of the closest peers as fit beside the record.
                    let mut closer = self.closest_peers(&key, &r.requester);
                    loop {
                        let msg = Message { header, body: Body::Value { record, closer: closer.clone() } };
                        if let Ok(n) = wire::encode(&msg, buf) {
                            return Some(n);
                        }
                        closer.pop()?;
                    }
                }
                None => Body::Nodes { contacts: nodes(&key) },
            },
            ReplyBody::Stored(status) => Body::Stored { status },
            ReplyBody::ProviderAdded(stored) => Body::ProviderAdded { stored },
            ReplyBody::Providers { key } => {
                let mut found = [(self.id, PeerAddr::V4([0; 4], 0)); MAX_PROVIDERS];
                let n = self.providers.get(&key, self.now, &mut found);
                // This node's own entry keeps the unspecified address: the requester knows
                // better where it reached this node (see `Body::Providers`).
                let providers = found[..n].iter().take(cap).map(|&(id, addr)| Peer { id, addr }).collect();
                Body::Providers { providers, closer: nodes(&key) }
            }
        };
        wire::encode(&Message { header, body }, buf).ok()
    }

    pub(super) fn closest_peers(&self, target: &Key, exclude: &NodeId) -> Vec<Peer, MAX_CONTACTS> {
        let mut out = [Contact::new(self.id, PeerAddr::V4([0; 4], 0), self.now); MAX_CONTACTS];
        // Only good contacts: a peer is never sent one this node does not know to be alive.
        let (rt, now) = (&self.routing, self.now);
        let good = |c: &Contact| rt.state(c, now) == ContactState::Good;
        let n = rt.closest_where(target, Some(exclude), &mut out[..K.min(MAX_CONTACTS)], good);
        out[..n].iter().map(|c| Peer { id: c.id, addr: c.addr }).collect()
    }

    pub(super) fn record_from_wire(&self, w: &WireRecord<'_>, origin: Origin) -> Option<Record<V>> {
        let data = Vec::from_slice(w.data.0).ok()?;
        let ttl = Duration::from_secs(w.ttl_secs as u64).min(self.config.record_ttl);
        Some(Record {
            key: w.key,
            kind: w.kind,
            data,
            signer: w.signature.map(|s| Signer {
                public_key: s.public_key,
                seq: s.seq,
                signature: s.signature,
                salt_len: s.salt_len,
            }),
            origin,
            expires_at: self.now + ttl,
            stored_at: self.now,
            republished_at: self.now,
            source: None,
        })
    }
}
