//! The iterative lookup: α requests in flight over the `K` closest candidates seen so far.
//!
//! A lookup keeps the `K` candidates nearest to its target, each not yet contacted, waiting,
//! answered or failed. It asks the nearest uncontacted ones, at most α at a time, merges the
//! closer peers each answer names, and finishes when nothing is in flight and every candidate
//! still in the list has answered or failed — that is, when the `K` closest known have answered.
//! A failed candidate is the first to make room for a newcomer, so dead peers cost one timeout
//! each and never stall the lookup. As in the paper, when a round — α answers (or failures) in
//! a row — brings no peer closer than the closest already seen, the lookup asks all of the `K`
//! closest it has not asked yet at once, instead of α at a time, until an answer makes progress
//! again. A single answer with nothing closer is normal (the others of its round may still
//! bring progress) and does not release them.

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId};

/// Where a candidate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Known but not asked yet.
    NotContacted,
    /// Asked, no answer yet.
    Waiting,
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
            // any state if the newcomer is nearer (it is no longer among the K closest).
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
        self.candidates.insert(pos, Candidate { id, addr, state: PeerState::NotContacted, hop }).is_ok()
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

    fn settle(&mut self, id: &NodeId, state: PeerState) -> Option<Candidate> {
        self.in_flight = self.in_flight.saturating_sub(1);
        let c = self.candidates.iter_mut().find(|c| c.id == *id)?;
        if c.state == PeerState::Waiting {
            c.state = state;
        }
        Some(*c)
    }

    /// `id` answered, naming `closer` peers (merged as candidates one hop further).
    pub fn on_success(&mut self, id: &NodeId, closer: impl Iterator<Item = (NodeId, PeerAddr)>) {
        let hop = self.settle(id, PeerState::Succeeded).map(|c| c.hop).unwrap_or(1);
        let best = self.candidates.first().map(|c| c.id);
        for (cid, caddr) in closer {
            self.add(cid, caddr, hop.saturating_add(1));
        }
        if self.candidates.first().map(|c| c.id) == best {
            self.idle = self.idle.saturating_add(1);
        } else {
            self.idle = 0;
        }
    }

    /// The request to `id` could not be sent: it goes back to not contacted.
    pub fn retry(&mut self, id: &NodeId) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.id == *id && c.state == PeerState::Waiting) {
            c.state = PeerState::NotContacted;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
    }

    /// `id` failed to answer.
    pub fn on_failure(&mut self, id: &NodeId) {
        self.settle(id, PeerState::Failed);
        self.idle = self.idle.saturating_add(1);
    }

    /// True when nothing is in flight and nothing is left to ask.
    pub fn is_finished(&self) -> bool {
        self.in_flight == 0 && !self.candidates.iter().any(|c| c.state == PeerState::NotContacted)
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
