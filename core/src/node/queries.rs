//! Queries: the query table (maintenance takes at most half), and driving each query through
//! its phases: ping, lookup, store, done.

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::lookup::Lookup;
use crate::routing::{Contact, ContactState};
use crate::store::{Record, RecordStore};
use crate::wire::{Peer, StoreStatus, MAX_PROVIDERS};

use super::commands::Error;
use super::outcome::QueryStats;
use super::quorum::Votes;
use super::rpc::Request;
use super::Node;

/// Identifies a query started by a command; its result comes back in
/// [`Event::QueryDone`](super::Event::QueryDone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// What a query is for: a command, or maintenance (which reports no event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Bootstrap,
    FindNode,
    Get { signed: bool },
    Put,
    Provide,
    GetProviders,
    // Maintenance: no event.
    Refresh,
    Republish,
}

/// Where a query stands: pinging bootstrap addresses, looking up, storing, or done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Pinging,
    Lookup,
    Storing,
    Done,
}

/// A query in progress: its lookup, what it found or stores, and its counters.
#[derive(Clone, Debug)]
pub(super) struct Query<const K: usize, const V: usize> {
    pub(super) id: QueryId,
    pub(super) kind: Kind,
    pub(super) user: bool,
    pub(super) phase: Phase,
    pub(super) lookup: Lookup<K>,
    pub(super) record: Option<Record<V>>,
    pub(super) cas: Option<u64>,
    /// The peer that returned the value (FIND_VALUE) and its hop.
    pub(super) value_from: Option<(NodeId, u8)>,
    /// A get's tally of the values holders returned (see `node/quorum.rs`).
    pub(super) votes: Votes,
    pub(super) providers: Vec<Peer, MAX_PROVIDERS>,
    pub(super) outstanding: u16,
    /// Store phase: peers to ask (the closest that answered), and how many were asked so far.
    pub(super) tried: u16,
    pub(super) stores_sent: u16,
    /// A request could not be sent for lack of a pending slot: drive again when one frees.
    pub(super) starved: bool,
    pub(super) acks: u16,
    pub(super) refusal: Option<StoreStatus>,
    pub(super) stats: QueryStats,
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
    /// Slots free for a new user (`user`) or maintenance query (see [`free_slots`]).
    pub(super) fn free_slots(&self, user: bool) -> usize {
        free_slots(Q, self.queries.len(), self.queries.iter().filter(|q| !q.user).count(), user)
    }

    pub(super) fn new_query(&mut self, kind: Kind, target: Key, user: bool) -> Result<QueryId, Error> {
        if self.free_slots(user) == 0 {
            if user {
                self.stats.queries_busy += 1;
            }
            return Err(Error::Busy { capacity: Q });
        }
        let id = QueryId(self.next_query);
        self.next_query += 1;
        let q = Query {
            id,
            kind,
            user,
            phase: Phase::Lookup,
            lookup: Lookup::new(target),
            record: None,
            cas: None,
            value_from: None,
            votes: Votes::default(),
            providers: Vec::new(),
            outstanding: 0,
            tried: 0,
            stores_sent: 0,
            starved: false,
            acks: 0,
            refusal: None,
            stats: QueryStats { started: self.now, finished: self.now, ..QueryStats::default() },
        };
        self.queries.push(q).map_err(|_| Error::Busy { capacity: Q })?;
        Ok(id)
    }

    pub(super) fn start_user(&mut self, kind: Kind, target: Key) -> Result<QueryId, Error> {
        if self.routing.is_empty() {
            return Err(Error::NoPeers);
        }
        let qid = self.new_query(kind, target, true)?;
        self.start_lookup(qid);
        Ok(qid)
    }

    pub(super) fn start_internal(&mut self, kind: Kind, target: Key) -> Option<QueryId> {
        if self.routing.is_empty() {
            return None;
        }
        let qid = self.new_query(kind, target, false).ok()?;
        self.start_lookup(qid);
        Some(qid)
    }

    /// Seeds the lookup from the routing table — the closest good contacts, and questionable
    /// ones only if fewer than `K` are good; never bad ones — and sends the first α requests.
    pub(super) fn start_lookup(&mut self, qid: QueryId) {
        let Some(target) = self.query_mut(qid).map(|q| *q.lookup.target()) else { return };
        let mut seeds = [Contact::new(self.id, PeerAddr::V4([0; 4], 0), self.now); K];
        let (rt, now) = (&self.routing, self.now);
        let mut n = rt.closest_where(&target, None, &mut seeds, |c| rt.state(c, now) == ContactState::Good);
        if n < K {
            let questionable = |c: &Contact| rt.state(c, now) == ContactState::Questionable;
            n += rt.closest_where(&target, None, &mut seeds[n..], questionable);
        }
        let q = self.query_mut(qid).expect("checked above");
        q.phase = Phase::Lookup;
        for c in &seeds[..n] {
            q.lookup.add(c.id, c.addr, 1);
        }
        self.drive(qid);
    }

    pub(super) fn query_mut(&mut self, qid: QueryId) -> Option<&mut Query<K, V>> {
        self.queries.iter_mut().find(|q| q.id == qid)
    }

    /// Sends what the query may send now and moves it to its next phase when done.
    pub(super) fn drive(&mut self, qid: QueryId) {
        let alpha = self.config.alpha.max(1);
        loop {
            let Some(q) = self.query_mut(qid) else { return };
            match q.phase {
                Phase::Lookup => {
                    if q.lookup.is_finished() {
                        self.lookup_done(qid);
                        continue;
                    }
                    let Some(c) = q.lookup.next(alpha) else { return };
                    let target = *q.lookup.target();
                    let req = match q.kind {
                        Kind::Get { .. } => Request::FindValue { query: qid, key: target },
                        Kind::GetProviders => Request::GetProviders { query: qid, key: target },
                        _ => Request::FindNode { query: qid, target },
                    };
                    let sent = self.send_request(c.addr, Some(c.id), req).is_ok();
                    let Some(q) = self.query_mut(qid) else { return };
                    if !sent {
                        // No room for another request: ask again when a slot frees.
                        q.lookup.retry(&c.id);
                        q.starved = true;
                        return;
                    }
                    q.stats.requests += 1;
                }
                Phase::Storing => {
                    if q.stores_sent < q.tried {
                        let Some(c) = q.lookup.succeeded().nth(q.stores_sent as usize).copied() else {
                            q.tried = q.stores_sent;
                            continue;
                        };
                        let key = *q.lookup.target();
                        let token = c.token;
                        let req = if q.kind == Kind::Provide {
                            Request::AddProvider { query: Some(qid), key, token }
                        } else {
                            Request::Store { query: Some(qid), key, cached_ttl: None, token }
                        };
                        let sent = self.send_request(c.addr, Some(c.id), req).is_ok();
                        let Some(q) = self.query_mut(qid) else { return };
                        if !sent {
                            q.starved = true;
                            return;
                        }
                        q.stores_sent += 1;
                        q.outstanding += 1;
                        q.stats.requests += 1;
                        continue;
                    }
                    if q.outstanding == 0 {
                        self.finish(qid);
                    }
                    return;
                }
                Phase::Pinging | Phase::Done => return,
            }
        }
    }

    pub(super) fn lookup_done(&mut self, qid: QueryId) {
        let now = self.now;
        let Some(q) = self.query_mut(qid) else { return };
        let target = *q.lookup.target();
        let kind = q.kind;
        let found = q.record.is_some();
        self.routing.touch(&target, now);
        match kind {
            Kind::Put | Kind::Republish | Kind::Provide => {
                let q = self.query_mut(qid).expect("checked above");
                q.phase = Phase::Storing;
                q.tried = q.lookup.succeeded().count().min(K) as u16;
                self.drive(qid);
            }
            Kind::Get { .. } => {
                if found {
                    self.value_done(qid);
                } else {
                    self.finish(qid);
                }
            }
            Kind::Bootstrap => self.bootstrap_done(qid, target),
            Kind::FindNode | Kind::GetProviders | Kind::Refresh => self.finish(qid),
        }
    }

    pub(super) fn finish(&mut self, qid: QueryId) {
        let now = self.now;
        let Some(i) = self.queries.iter().position(|q| q.id == qid) else { return };
        let q = &mut self.queries[i];
        if q.phase == Phase::Done {
            return;
        }
        q.phase = Phase::Done;
        q.stats.finished = now;
        q.stats.rounds = match q.value_from {
            Some((_, hop)) => hop,
            None => q.lookup.rounds(),
        };
        q.stats.agreeing = q.votes.agreeing();
        self.stats.queries_finished += 1;
        if !q.user {
            if q.kind == Kind::Republish {
                self.stats.republished += u64::from(q.acks > 0);
            }
            self.queries.swap_remove(i);
        }
    }

    /// Drives the queries that could not send for lack of a pending slot.
    pub(super) fn drive_starved(&mut self) {
        let mut i = 0;
        while i < self.queries.len() && !self.pending.is_full() {
            if self.queries[i].starved {
                self.queries[i].starved = false;
                let qid = self.queries[i].id;
                self.drive(qid);
            }
            i += 1;
        }
    }
}

/// Query slots free for a new query, of `capacity` with `in_use` taken, `maintenance` of them
/// by maintenance: a user query may take any free slot; maintenance (republish, refresh,
/// re-announce) takes at most half the slots, and at least one, so that it never locks users
/// out.
pub(super) fn free_slots(capacity: usize, in_use: usize, maintenance: usize, user: bool) -> usize {
    let free = capacity - in_use;
    if user {
        return free;
    }
    let maintenance_cap = (capacity / 2).max(1);
    free.min(maintenance_cap.saturating_sub(maintenance))
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    crate::selftest::unit_tests! {
        fn a_user_query_may_take_every_free_slot() {
            assert_eq!(free_slots(8, 3, 3, true), 5);
            assert_eq!(free_slots(8, 8, 0, true), 0);
        }

        fn maintenance_takes_at_most_half_the_query_slots() {
            assert_eq!(free_slots(8, 0, 0, false), 4);
            assert_eq!(free_slots(8, 3, 2, false), 2);
            assert_eq!(free_slots(8, 4, 4, false), 0);
            // Users hold 6 of 8: maintenance gets what is left, not its half.
            assert_eq!(free_slots(8, 7, 1, false), 1);
        }

        fn maintenance_gets_one_slot_even_of_one() {
            assert_eq!(free_slots(1, 0, 0, false), 1);
            assert_eq!(free_slots(1, 1, 1, false), 0);
        }
    }
}
