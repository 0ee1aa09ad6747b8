//! Answers to this node's requests: matching them to the request, and feeding them to the
//! query that asked.

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::store::{Origin, RecordStore};
use crate::wire::{Body, Message, Peer, StoreStatus, WireRecord};

use super::accept::verify_signature;
use super::queries::{Kind, Phase, QueryId};
use super::quorum;
use super::rpc::Request;
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
    pub(super) fn handle_response(&mut self, from: PeerAddr, msg: &Message<'_>) {
        let h = msg.header;
        let matched = self.pending.iter().position(|p| {
            p.sent && p.txid == h.txid && p.to == from && p.expect.is_none_or(|e| e == h.sender)
        });
        let Some(i) = matched else {
            self.stats.dropped_unmatched += 1;
            return;
        };
        let p = self.pending.swap_remove(i);
        let held = p.holds_slot();
        // One answer settles every attempt of the request (retries, a late first attempt).
        self.pending.retain(|o| !o.same_request(&p));
        let rtt = self.now.saturating_since(p.sent_at);
        self.rtt.sample(rtt);
        if !h.flags.is_client() {
            self.saw_peer(h.sender, from, Some(h.token));
            self.routing.on_alive(&h.sender, Some(rtt), self.now);
        }
        let sender = h.sender;
        if let Some(q) = p.request.query().and_then(|qid| self.query_mut(qid)) {
            if p.request.is_lookup() {
                q.lookup.set_answer(&sender, h.token, matches!(msg.body, Body::Value { .. }));
            }
        }
        let ok = match (p.request, &msg.body) {
            (Request::Verify, Body::Pong { .. }) => true,
            (Request::Ping { query }, Body::Pong { .. }) => {
                if let Some(qid) = query {
                    if let Some(q) = self.query_mut(qid) {
                        q.outstanding = q.outstanding.saturating_sub(1);
                        q.stats.responses += 1;
                        if q.outstanding == 0 && q.phase == Phase::Pinging {
                            self.pings_done(qid);
                        }
                    }
                }
                true
            }
            (Request::FindNode { query, .. }, Body::Nodes { contacts })
            | (Request::FindValue { query, .. }, Body::Nodes { contacts }) => {
                self.lookup_success(query, sender, contacts, held);
                true
            }
            (Request::FindValue { query, key }, Body::Value { record, closer }) => {
                self.found_value(query, key, sender, record, closer, held)
            }
            (Request::GetProviders { query, .. }, Body::Providers { providers, closer }) => {
                if let Some(q) = self.query_mut(query) {
                    // The responder names itself with the unspecified address: it is where
                    // this answer came from.
                    let at = |p: &Peer| if p.id == sender && !p.addr.is_routable() { from } else { p.addr };
                    for pr in providers.iter().map(|p| Peer { id: p.id, addr: at(p) }) {
                        if pr.addr.is_routable() && !q.providers.iter().any(|x| x.id == pr.id) {
                            let _ = q.providers.push(pr);
                        }
                    }
                }
                self.lookup_success(query, sender, closer, held);
                true
            }
            (Request::Store { query, .. }, Body::Stored { status }) => {
                self.store_answered(query, *status == StoreStatus::Stored, Some(*status));
                true
            }
            (Request::AddProvider { query, .. }, Body::ProviderAdded { stored }) => {
                self.store_answered(query, *stored, None);
                true
            }
            _ => false,
        };
        if !ok {
            self.stats.dropped_bad_response += 1;
            self.request_failed_for_query(p);
        }
        if let Some(qid) = p.request.query() {
            self.drive(qid);
        }
        self.drive_starved();
    }

    /// A lookup's request to `sender` was answered with `contacts`; `held` when it was the
    /// first attempt, in time (it holds an α slot).
    pub(super) fn lookup_success(&mut self, qid: QueryId, sender: NodeId, contacts: &[Peer], held: bool) {
        let own = self.id;
        if let Some(q) = self.query_mut(qid) {
            if q.phase == Phase::Lookup {
                q.stats.responses += 1;
                let closer =
                    contacts.iter().filter(|c| c.id != own && c.addr.is_routable()).map(|c| (c.id, c.addr));
                if held {
                    q.lookup.on_success(&sender, closer);
                } else {
                    q.lookup.on_late_success(&sender, closer);
                }
            }
        }
    }

    /// A peer answered FIND_VALUE with a record: verify it and count its vote; an unsigned get
    /// finishes once `quorum` holders agree and none disagreed (a contested get runs to its
    /// lookup's end and takes the value most holders gave), a signed one keeps the highest sequence number
    /// until its lookup ends (see `node/quorum.rs`). Returns false for an invalid record.
    /// `held` as for [`Node::lookup_success`].
    pub(super) fn found_value(
        &mut self,
        qid: QueryId,
        key: Key,
        sender: NodeId,
        w: &WireRecord<'_>,
        closer: &[Peer],
        held: bool,
    ) -> bool {
        let Some(rec) = self.record_from_wire(w, Origin::Cache) else {
            return false;
        };
        if rec.key != key || verify_signature(&rec).is_err() {
            return false;
        }
        let quorum = u16::from(self.config.limits.quorum.max(1));
        let own = self.id;
        let Some(q) = self.query_mut(qid) else { return true };
        if q.phase != Phase::Lookup {
            return true;
        }
        q.stats.responses += 1;
        let hop = q.lookup.candidates().iter().find(|c| c.id == sender).map_or(1, |c| c.hop);
        let closer = closer.iter().filter(|c| c.id != own && c.addr.is_routable()).map(|c| (c.id, c.addr));
        if held {
            q.lookup.on_value(&sender, closer);
        } else {
            q.lookup.on_late_success(&sender, closer);
        }
        let d = quorum::digest(&rec);
        let votes = q.votes.add(d);
        if quorum::takes(q.record.as_ref(), q.votes.agreeing(), &rec, votes) {
            q.record = Some(rec);
            q.value_from = Some((sender, hop));
            q.votes.lead(d);
        }
        if q.kind == (Kind::Get { signed: false }) && q.votes.agreeing() >= quorum && !q.votes.contested() {
            self.value_done(qid);
        }
        true
    }

    pub(super) fn store_answered(
        &mut self,
        query: Option<QueryId>,
        stored: bool,
        status: Option<StoreStatus>,
    ) {
        let Some(qid) = query else { return };
        let Some(q) = self.query_mut(qid) else { return };
        if q.phase != Phase::Storing {
            return;
        }
        q.stats.responses += 1;
        q.outstanding = q.outstanding.saturating_sub(1);
        if stored {
            q.acks += 1;
        } else {
            q.refusal = status;
        }
    }
}
