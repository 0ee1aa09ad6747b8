//! Requests from peers: answering PING, FIND_NODE, FIND_VALUE, STORE, ADD_PROVIDER and
//! GET_PROVIDERS.

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::providers::{Added, ProviderRecord};
use crate::stats::RequestKind;
use crate::store::RecordStore;
use crate::wire::{Body, Message, StoreStatus, TxId};

use super::Node;

/// What an answer will say; encoded when it is sent, from the state at that time.
#[derive(Clone, Copy, Debug)]
pub(super) enum ReplyBody {
    Pong,
    Nodes { target: Key },
    Value { key: Key },
    Stored(StoreStatus),
    ProviderAdded(bool),
    Providers { key: Key },
}

/// An answer waiting to be sent.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reply {
    pub(super) to: PeerAddr,
    pub(super) txid: TxId,
    pub(super) requester: NodeId,
    pub(super) body: ReplyBody,
    /// Bytes of the request: an answer to an unverified address is kept near this size (see
    /// `node/amplification.rs`).
    pub(super) request_len: u16,
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
    /// A request from `from` (`len` bytes): dropped over its source's rate (see
    /// [`crate::limits`]); otherwise its sender is heard from and the answer queued.
    pub(super) fn handle_request(&mut self, from: PeerAddr, msg: &Message<'_>, len: usize) {
        let h = msg.header;
        let limits = self.config.limits;
        if limits.apply_to(&from) && !self.sources.allow_request(from.prefix(), &limits, self.now) {
            self.stats.requests_limited += 1;
            return;
        }
        if !h.flags.is_client() {
            self.saw_peer(h.sender, from, None);
        }
        let (kind, body) = match &msg.body {
            Body::Ping => (RequestKind::Ping, ReplyBody::Pong),
            Body::FindNode { target } => (RequestKind::FindNode, ReplyBody::Nodes { target: *target }),
            Body::FindValue { key } => {
                let body = if self.live_record(key).is_some() {
                    ReplyBody::Value { key: *key }
                } else {
                    ReplyBody::Nodes { target: *key }
                };
                (RequestKind::FindValue, body)
            }
            Body::Store { record } => {
                let status = if self.tokens.accepts(&from, &h.token) {
                    self.accept_store(from, record)
                } else {
                    self.stats.writes_bad_token += 1;
                    StoreStatus::BadToken
                };
                if status == StoreStatus::Stored {
                    self.stats.stores_accepted += 1;
                } else {
                    self.stats.stores_refused += 1;
                }
                (RequestKind::Store, ReplyBody::Stored(status))
            }
            Body::AddProvider { key } => {
                let rec = ProviderRecord {
                    key: *key,
                    provider: h.sender,
                    addr: from,
                    expires_at: self.now + self.config.provider_ttl,
                };
                let added = if self.tokens.accepts(&from, &h.token) {
                    self.providers.add(rec, &self.id, self.now) == Added::Stored
                } else {
                    self.stats.writes_bad_token += 1;
                    false
                };
                if !added {
                    self.stats.providers_refused += 1;
                }
                (RequestKind::AddProvider, ReplyBody::ProviderAdded(added))
            }
            Body::GetProviders { key } => (RequestKind::GetProviders, ReplyBody::Providers { key: *key }),
            _ => return,
        };
        self.stats.requests_in[kind] += 1;
        let request_len = len.min(usize::from(u16::MAX)) as u16;
        let reply = Reply { to: from, txid: h.txid, requester: h.sender, body, request_len };
        if self.replies.push_back(reply).is_err() {
            self.stats.replies_dropped += 1;
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use crate::config::Config;
    use crate::id::Key;
    use crate::node::testpeer::{at, deliver, deliver_with, drain, node, peer};
    use crate::store::{RecordStore, ValueKind};
    use crate::token::Token;
    use crate::wire::{Body, Bytes, TxId, WireRecord};

    fn record(k: u8) -> WireRecord<'static> {
        WireRecord {
            key: Key::from_bytes([k; 20]),
            kind: ValueKind::Bytes,
            ttl_secs: 60,
            cached: false,
            data: Bytes(b"v"),
            signature: None,
        }
    }

    crate::selftest::unit_tests! {
        fn a_write_needs_the_token_this_node_granted_the_senders_address() {
            let mut n = node(Config::default());
            let (p1, p2) = (peer(1), peer(2));
            // No token, another address's token: refused and counted.
            deliver_with(&mut n, at(0), p1, TxId([1; 4]), Token::default(), Body::Store { record: record(1) });
            let theirs = n.write_token(&p2.addr);
            deliver_with(&mut n, at(0), p1, TxId([2; 4]), theirs, Body::Store { record: record(2) });
            deliver_with(&mut n, at(0), p1, TxId([3; 4]), theirs, Body::AddProvider { key: Key::from_bytes([3; 20]) });
            drain(&mut n);
            assert_eq!(n.store().len(), 0);
            assert_eq!(n.providers().len(), 0);
            let s = n.stats();
            assert_eq!((s.writes_bad_token, s.stores_refused, s.providers_refused), (3, 2, 1));
            // Its own token: stored.
            deliver(&mut n, at(0), p1, TxId([4; 4]), Body::Store { record: record(4) });
            drain(&mut n);
            assert_eq!(n.store().len(), 1);
        }
    }
}
