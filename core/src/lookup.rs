//! The iterative lookup: α requests in flight over the `K` closest candidates seen so far.
//!
//! A lookup keeps the `K` candidates nearest to its target, each not yet contacted, waiting,
//! stalled, answered or failed. It asks the nearest uncontacted ones, at most α at a time, merges
//! the closer peers each answer names, and finishes when nothing is in flight and every candidate
//! still in the list has answered or failed — that is, when the `K` closest known have answered.
//! A request holds its α slot until it is answered or times out, even if its peer has meanwhile
//! been pushed out of the `K` closest. A candidate that does not answer within its timeout
//! stalls: its slot goes to the next candidate at once, its answer still counts if it comes
//! late, and the lookup waits for it only until its retries have failed too (the node sends
//! them together, so that is one more timeout). A failed candidate is the first to make room
//! for a newcomer, so a dead peer holds a slot for one timeout and never stalls the lookup.
//! As in the paper, when a round — α answers (or failures) in a row — brings no peer closer than the closest already seen, the lookup asks all of the `K`
//! closest it has not asked yet at once, instead of α at a time, until an answer makes progress
//! again. A single answer with nothing closer is normal (the others of its round may still
//! bring progress) and does not release them.

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};
use crate::token::Token;

/// Where a candidate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Known but not asked yet.
    NotContacted,
    /// Asked, no answer yet.
    Waiting,
    /// Asked, no answer within the timeout: it no longer holds an α slot, its retries are out
    /// and its answer still counts if it comes.
    Stalled,
    /// Answered.
    Succeeded,
    /// Timed out or answered with garbage.
    Failed,
}

/// A peer the lookup knows about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The peer's id.
    pub id: NodeId,
    /// The peer's address.
    pub addr: PeerAddr,
    /// Where it stands.
    pub state: PeerState,
    /// The round in which it was (or will be) asked: 1 for peers from the own table, n+1 for
    /// peers named by a round-n peer.
    pub hop: u8,
    /// The write token its answer granted (zeros until it answered).
    pub token: Token,
    /// It answered with the value looked up (FIND_VALUE).
    pub holds_value: bool,
}

/// The state of one iterative lookup.
#[derive(Clone, Debug)]
pub struct Lookup<const K: usize> {
    target: Key,
    candidates: Vec<Candidate, K>,
    in_flight: u8,
    /// Answers and failures in a row that brought nothing closer than the closest known; α
    /// of them (a round) release all remaining candidates at once.
    idle: u8,
}

impl<const K: usize> Lookup<K> {
    /// A lookup of `target` with no candidates yet.
    pub fn new(target: Key) -> Self {
        Lookup { target, candidates: Vec::new(), in_flight: 0, idle: 0 }
    }

    /// The target.
    pub fn target(&self) -> &Key {
        &self.target
    }

    /// Requests sent and not yet answered or failed.
    pub fn in_flight(&self) -> u8 {
        self.in_flight
    }

    /// Adds a candidate, keeping the `K` nearest. Returns whether it was kept.
    pub fn add(&mut self, id: NodeId, addr: PeerAddr, hop: u8) -> bool {
        if self.candidates.iter().any(|c| c.id == id) {
            return false;
        }
        let d = self.target.distance(&id);
        if self.candidates.is_full() {
            // Make room: the farthest failed candidate first, else the farthest candidate of
            // any state if the newcomer is nearer (it is no longer among the K closest; a
            // request to it keeps its slot until it ends).
            let last = self.candidates.len() - 1;
            let victim = self
                .candidates
                .iter()
                .rposition(|c| c.state == PeerState::Failed)
                .or_else(|| (d < self.target.distance(&self.candidates[last].id)).then_some(last));
            match victim {
                Some(i) => {
                    self.candidates.remove(i);
                }
                None => return false,
            }
        }
        let pos = self.candidates.partition_point(|c| self.target.distance(&c.id) < d);
        self.candidates
            .insert(
                pos,
                Candidate {
                    id,
                    addr,
                    state: PeerState::NotContacted,
                    hop,
                    token: Token::default(),
                    holds_value: false,
                },
            )
            .is_ok()
    }

    /// The nearest candidate not yet asked, if fewer than `alpha` requests are in flight
    /// (`K` once a round of `alpha` answers brought nothing closer); it is marked waiting.
    pub fn next(&mut self, alpha: usize) -> Option<Candidate> {
        let limit = if self.idle as usize >= alpha { K } else { alpha };
        if self.in_flight as usize >= limit {
            return None;
        }
        let c = self.candidates.iter_mut().find(|c| c.state == PeerState::NotContacted)?;
        c.state = PeerState::Waiting;
        self.in_flight += 1;
        Some(*c)
    }

    /// Moves candidate `id` from `from` to `to`, if it is still in the list. Returns its hop.
    fn settle(&mut self, id: &NodeId, from: PeerState, to: PeerState) -> Option<u8> {
        let c = self.candidates.iter_mut().find(|c| c.id == *id)?;
        if c.state == from {
            c.state = to;
        }
        Some(c.hop)
    }

    /// Merges the `closer` peers an answer from a peer of hop `hop` named; true when one of them
    /// is nearer than the nearest known.
    fn merge(&mut self, hop: u8, closer: impl Iterator<Item = (NodeId, PeerAddr)>) -> bool {
        let best = self.candidates.first().map(|c| c.id);
        for (cid, caddr) in closer {
            self.add(cid, caddr, hop.saturating_add(1));
        }
        self.candidates.first().map(|c| c.id) != best
    }

    /// Records what candidate `id` answered besides peers: the write token it granted, and
    /// whether it returned the value looked up.
    pub fn set_answer(&mut self, id: &NodeId, token: Token, holds_value: bool) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.id == *id) {
            c.token = token;
            c.holds_value |= holds_value;
        }
    }

    /// `id` answered in time, naming `closer` peers (merged as candidates one hop further); its
    /// slot frees.
    pub fn on_success(&mut self, id: &NodeId, closer: impl Iterator<Item = (NodeId, PeerAddr)>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let hop = self.settle(id, PeerState::Waiting, PeerState::Succeeded).unwrap_or(1);
        if self.merge(hop, closer) {
            self.idle = 0;
        } else {
            self.idle = self.idle.saturating_add(1);
        }
    }

    /// `id` answered in time with the value looked up, and `closer` peers: a holder found is
    /// progress, so the lookup goes on α at a time rather than releasing its `K` closest.
    pub fn on_value(&mut self, id: &NodeId, closer: impl Iterator<Item = (NodeId, PeerAddr)>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let hop = self.settle(id, PeerState::Waiting, PeerState::Succeeded).unwrap_or(1);
        self.merge(hop, closer);
        self.idle = 0;
    }

    /// `id` did not answer within its timeout and its retries are out: its slot goes to the
    /// next candidate, and it counts as a request of the round that brought nothing closer.
    /// Then its answer may still come ([`Lookup::on_late_success`]), or its retries fail
    /// ([`Lookup::on_late_failure`]).
    pub fn on_stall(&mut self, id: &NodeId) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.settle(id, PeerState::Waiting, PeerState::Stalled);
        self.idle = self.idle.saturating_add(1);
    }

    /// Stalled `id` answered after all (its first attempt late, or a retry), naming `closer`.
    pub fn on_late_success(&mut self, id: &NodeId, closer: impl Iterator<Item = (NodeId, PeerAddr)>) {
        let hop = self.settle(id, PeerState::Stalled, PeerState::Succeeded).unwrap_or(1);
        if self.merge(hop, closer) {
            self.idle = 0;
        }
    }

    /// Every retry to stalled `id` failed too.
    pub fn on_late_failure(&mut self, id: &NodeId) {
        self.settle(id, PeerState::Stalled, PeerState::Failed);
    }

    /// The request to `id` could not be sent: it goes back to not contacted.
    pub fn retry(&mut self, id: &NodeId) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.id == *id && c.state == PeerState::Waiting) {
            c.state = PeerState::NotContacted;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
    }

    /// `id` failed to answer (it timed out and was not retried, or its answer was garbage); its
    /// slot frees.
    pub fn on_failure(&mut self, id: &NodeId) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.settle(id, PeerState::Waiting, PeerState::Failed);
        self.idle = self.idle.saturating_add(1);
    }

    /// True when nothing is in flight, nothing is left to ask and no stalled candidate's
    /// retries are still out.
    pub fn is_finished(&self) -> bool {
        self.in_flight == 0
            && !self
                .candidates
                .iter()
                .any(|c| matches!(c.state, PeerState::NotContacted | PeerState::Stalled))
    }

    /// Candidates, nearest first.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The candidates that answered, nearest first.
    pub fn succeeded(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.iter().filter(|c| c.state == PeerState::Succeeded)
    }

    /// The number of rounds the lookup needed: the deepest hop among peers that answered.
    pub fn rounds(&self) -> u8 {
        self.succeeded().map(|c| c.hop).max().unwrap_or(0)
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        let mut x = [0u8; 20];
        x[0] = b;
        NodeId::from_bytes(x)
    }

    fn a(b: u8) -> PeerAddr {
        PeerAddr::V4([127, 0, 0, b], 1)
    }

    crate::selftest::unit_tests! {
        fn candidates_stay_sorted_and_bounded_to_k() {
            let mut l = Lookup::<3>::new(Key::from_bytes([0; 20]));
            for b in [9, 3, 7, 1, 5] {
                l.add(id(b), a(b), 1);
            }
            let ids: heapless::Vec<u8, 3> = l.candidates().iter().map(|c| c.id.as_bytes()[0]).collect();
            assert_eq!(&ids[..], &[1, 3, 5]);
        }

        fn at_most_alpha_requests_are_in_flight() {
            let mut l = Lookup::<8>::new(Key::from_bytes([0; 20]));
            for b in 1..=6 {
                l.add(id(b), a(b), 1);
            }
            assert!(l.next(3).is_some() && l.next(3).is_some() && l.next(3).is_some());
            assert!(l.next(3).is_none());
            l.on_failure(&id(1));
            assert_eq!(l.next(3).map(|c| c.id), Some(id(4)));
        }

        fn a_lookup_finishes_when_the_closest_have_answered() {
            let mut l = Lookup::<2>::new(Key::from_bytes([0; 20]));
            l.add(id(8), a(8), 1);
            let c = l.next(3).unwrap();
            l.on_success(&c.id, [(id(2), a(2)), (id(4), a(4))].into_iter());
            // 2 and 4 are nearer than 8 and push it out of the two closest.
            assert!(!l.is_finished());
            while let Some(c) = l.next(3) {
                l.on_success(&c.id, core::iter::empty());
            }
            assert!(l.is_finished());
            assert_eq!(l.rounds(), 2);
        }

        fn a_round_with_nothing_closer_releases_all_remaining_candidates_at_once() {
            let mut l = Lookup::<8>::new(Key::from_bytes([0; 20]));
            for b in 1..=8 {
                l.add(id(b), a(b), 1);
            }
            let round: [Candidate; 3] = [l.next(3).unwrap(), l.next(3).unwrap(), l.next(3).unwrap()];
            assert!(l.next(3).is_none());
            // One answer with nothing closer than the closest known: the lookup keeps its pace.
            l.on_success(&round[0].id, [(id(7), a(7))].into_iter());
            assert_eq!(l.next(3).map(|c| c.id), Some(id(4)));
            assert!(l.next(3).is_none());
            // The rest of the round brings nothing closer either: the lookup has stalled.
            l.on_success(&round[1].id, core::iter::empty());
            l.on_success(&round[2].id, core::iter::empty());
            let mut released = 0;
            while l.next(3).is_some() {
                released += 1;
            }
            assert_eq!(released, 4, "all four not yet asked go out at once");
        }

        fn answers_with_the_value_keep_the_pace_of_alpha() {
            let mut l = Lookup::<8>::new(Key::from_bytes([0; 20]));
            for b in 1..=8 {
                l.add(id(b), a(b), 1);
            }
            let round: [Candidate; 3] = [l.next(3).unwrap(), l.next(3).unwrap(), l.next(3).unwrap()];
            for c in &round {
                l.on_value(&c.id, core::iter::empty());
            }
            // Three holders found: progress, not a stalled round; α at a time still.
            let mut sent = 0;
            while l.next(3).is_some() {
                sent += 1;
            }
            assert_eq!(sent, 3);
        }

        fn failed_candidates_make_room_for_new_ones() {
            let mut l = Lookup::<2>::new(Key::from_bytes([0; 20]));
            l.add(id(1), a(1), 1);
            l.add(id(2), a(2), 1);
            let c = l.next(1).unwrap();
            l.on_failure(&c.id);
            assert!(l.add(id(200), a(200), 2));
            assert!(!l.candidates().iter().any(|c| c.state == PeerState::Failed));
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod stall_tests {
    use super::*;
    use crate::node::testpeer::{key, peer};

    /// A lookup of the zero key over peers `ns` (each at distance `n`).
    fn lookup<const K: usize>(ns: &[u8]) -> Lookup<K> {
        let mut l = Lookup::new(key(0));
        for &n in ns {
            l.add(peer(n).id, peer(n).addr, 1);
        }
        l
    }

    fn state<const K: usize>(l: &Lookup<K>, n: u8) -> Option<PeerState> {
        l.candidates().iter().find(|c| c.id == peer(n).id).map(|c| c.state)
    }

    crate::selftest::unit_tests! {
        fn a_stalled_candidate_frees_its_slot_and_its_late_answer_counts() {
            let mut l = lookup::<4>(&[1, 2, 3]);
            assert_eq!(l.next(1).map(|c| c.id), Some(peer(1).id));
            assert!(l.next(1).is_none());
            l.on_stall(&peer(1).id);
            assert_eq!((l.in_flight(), state(&l, 1)), (0, Some(PeerState::Stalled)));
            assert_eq!(l.next(1).map(|c| c.id), Some(peer(2).id));
            l.on_late_success(&peer(1).id, [(peer(4).id, peer(4).addr)].into_iter());
            assert_eq!(state(&l, 1), Some(PeerState::Succeeded));
            assert_eq!(state(&l, 4), Some(PeerState::NotContacted), "the late answer's peers join");
            assert_eq!(l.in_flight(), 1, "the late answer frees no second slot");
        }

        fn a_lookup_waits_for_a_stalled_candidate_until_its_retries_fail() {
            let mut l = lookup::<4>(&[1, 2]);
            let (a, b) = (l.next(2).unwrap(), l.next(2).unwrap());
            l.on_stall(&a.id);
            l.on_success(&b.id, core::iter::empty());
            assert!(!l.is_finished());
            l.on_late_failure(&a.id);
            assert_eq!(state(&l, 1), Some(PeerState::Failed));
            assert!(l.is_finished());
        }

        fn a_request_keeps_its_slot_when_its_peer_is_pushed_out_of_the_closest() {
            let mut l = lookup::<2>(&[5, 6]);
            let (_, far) = (l.next(2).unwrap(), l.next(2).unwrap());
            assert!(l.add(peer(1).id, peer(1).addr, 2));
            assert_eq!(state(&l, 6), None);
            assert!(l.next(2).is_none(), "both slots are still held");
            // Its answer still frees the slot (and its peers still join).
            l.on_success(&far.id, core::iter::empty());
            assert_eq!(l.next(2).map(|c| c.id), Some(peer(1).id));
        }
    }
}
