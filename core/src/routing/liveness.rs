//! Liveness of contacts, as BEP 5 keeps it: good, questionable or bad; what a failed request
//! does to a contact, and which contact the node pings next in the background.
//!
//! A contact is [good](ContactState::Good) when heard from within
//! [`RoutingConfig::good_for`], [bad](ContactState::Bad) once a request to it failed every
//! attempt (until it is heard from again), and [questionable](ContactState::Questionable)
//! otherwise. Only good contacts are handed to other peers and they seed lookups first; a bad
//! one is never handed out, and makes way at once for a replacement or a newcomer. The node
//! pings contacts about to turn questionable, a few per maintenance run
//! ([`RoutingConfig::liveness_pings`]), so that live ones stay good.

use core::time::Duration;

#[cfg(doc)]
use super::RoutingConfig;
use super::{Contact, RoutingTable};
use crate::id::NodeId;
use crate::time::Instant;

/// How far a contact can be trusted to answer, as BEP 5 keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactState {
    /// Heard from within [`RoutingConfig::good_for`]: handed to other peers, asked first.
    Good,
    /// Silent for longer, never failed since: asked when too few good contacts are known, and
    /// pinged in the background.
    Questionable,
    /// A request to it failed every attempt since it was last heard from: never handed out,
    /// replaced by the first newcomer or replacement.
    Bad,
}

/// The result of reporting a failed request to a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The contact is kept, bad, because nothing waits to replace it (until it has failed
    /// [`RoutingConfig::max_failures_hard`] requests).
    Kept,
    /// The contact was removed; `replacement` (if any) took its place.
    Removed {
        /// The contact that was dropped.
        removed: Contact,
        /// The replacement-cache contact promoted into the bucket.
        replacement: Option<Contact>,
    },
    /// The id was not in the table.
    Unknown,
}

impl<const B: usize, const K: usize, const R: usize> RoutingTable<B, K, R> {
    /// Where `c` stands at `now` (see [`ContactState`]).
    pub fn state(&self, c: &Contact, now: Instant) -> ContactState {
        if c.failures > 0 {
            ContactState::Bad
        } else if now.saturating_since(c.last_seen) < self.config.good_for {
            ContactState::Good
        } else {
            ContactState::Questionable
        }
    }

    /// Contacts in each state at `now`: (good, questionable, bad).
    pub fn count_states(&self, now: Instant) -> (usize, usize, usize) {
        self.iter().fold((0, 0, 0), |(g, q, b), c| match self.state(c, now) {
            ContactState::Good => (g + 1, q, b),
            ContactState::Questionable => (g, q + 1, b),
            ContactState::Bad => (g, q, b + 1),
        })
    }

    /// The next contact to ping in the background, skipping those `skip` names (a ping is
    /// already under way): the one silent the longest among those silent for three quarters
    /// of [`RoutingConfig::good_for`] at `now` (about to turn questionable), else a bad one
    /// (nothing replaced it: it gets another chance until it has failed
    /// [`RoutingConfig::max_failures_hard`] requests).
    pub fn next_to_ping(&self, now: Instant, skip: impl Fn(&Contact) -> bool) -> Option<Contact> {
        let due = self.config.good_for * 3 / 4;
        let silent = |c: &&Contact| c.failures == 0 && now.saturating_since(c.last_seen) >= due;
        let candidates = || self.iter().filter(|c| !skip(c));
        candidates()
            .filter(silent)
            .min_by_key(|c| c.last_seen)
            .or_else(|| candidates().find(|c| c.failures > 0))
            .copied()
    }

    /// `id` answered a request: clears its failures, records the round trip and marks it seen.
    pub fn on_alive(&mut self, id: &NodeId, rtt: Option<Duration>, now: Instant) {
        let idx = self.index(id);
        let bucket = &mut self.buckets[idx];
        if let Some(i) = bucket.position(id) {
            let mut c = bucket.contacts.remove(i);
            c.failures = 0;
            c.last_seen = now;
            if let Some(rtt) = rtt {
                let sample = crate::time::millis(rtt).clamp(1, u64::from(u16::MAX)) as u32;
                c.srtt_ms =
                    if c.srtt_ms == 0 { sample as u16 } else { ((c.srtt_ms as u32 * 7 + sample) / 8) as u16 };
            }
            let _ = bucket.contacts.push(c);
            bucket.touched = now;
            if bucket.probing == Some(*id) {
                bucket.probing = None;
            }
        }
    }

    /// `id` failed every attempt of a request: it is bad, and replaced at once by the most
    /// recent replacement if one waits; with none, it stays (never handed out) until it is
    /// heard from again or has failed [`RoutingConfig::max_failures_hard`] requests.
    pub fn on_failure(&mut self, id: &NodeId) -> Failure {
        let idx = self.index(id);
        let cfg = self.config;
        let bucket = &mut self.buckets[idx];
        let Some(i) = bucket.position(id) else {
            return Failure::Unknown;
        };
        let c = &mut bucket.contacts[i];
        c.failures = c.failures.saturating_add(1);
        let probed = bucket.probing == Some(*id);
        let drop = !bucket.replacements.is_empty() || c.failures >= cfg.max_failures_hard;
        if probed {
            bucket.probing = None;
        }
        if !drop {
            return Failure::Kept;
        }
        let (removed, replacement) = self.replace(idx, i);
        Failure::Removed { removed, replacement }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::node::testpeer::peer;
    use crate::routing::{Insert, RoutingConfig};

    const MIN: u64 = 60_000;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// A table of the zero id holding peers `ns` (first byte `n`: 0x80 and up share a far
    /// bucket), each heard from at time zero.
    fn table<const K: usize, const R: usize>(ns: &[u8]) -> RoutingTable<8, K, R> {
        let mut t = RoutingTable::new(NodeId::from_bytes([0; 20]), RoutingConfig::default(), at(0));
        for &n in ns {
            t.insert(peer(n).id, peer(n).addr, true, at(0));
        }
        t
    }

    fn state<const K: usize, const R: usize>(t: &RoutingTable<8, K, R>, n: u8, now: Instant) -> ContactState {
        t.state(t.get(&peer(n).id).expect("in the table"), now)
    }

    crate::selftest::unit_tests! {
        fn a_contact_heard_from_within_good_for_is_good_and_questionable_after() {
            let t = table::<4, 1>(&[0x81]);
            assert_eq!(state(&t, 0x81, at(15 * MIN - 1)), ContactState::Good);
            assert_eq!(state(&t, 0x81, at(15 * MIN)), ContactState::Questionable);
        }

        fn a_contact_that_failed_a_request_is_bad_until_heard_from_again() {
            let mut t = table::<4, 1>(&[0x81, 0x82]);
            assert_eq!(t.on_failure(&peer(0x81).id), Failure::Kept);
            assert_eq!(state(&t, 0x81, at(1)), ContactState::Bad);
            assert_eq!(t.count_states(at(1)), (1, 0, 1));
            t.on_alive(&peer(0x81).id, None, at(2));
            assert_eq!(state(&t, 0x81, at(2)), ContactState::Good);
        }

        fn a_bad_contact_is_replaced_at_once_when_a_replacement_waits() {
            let mut t = table::<2, 1>(&[0x81, 0x82, 0x83]);
            assert!(t.get(&peer(0x83).id).is_none(), "the bucket is full: 0x83 waits");
            let f = t.on_failure(&peer(0x81).id);
            assert!(matches!(f, Failure::Removed { replacement: Some(c), .. } if c.id == peer(0x83).id));
            assert!(t.get(&peer(0x83).id).is_some());
        }

        fn a_newcomer_takes_the_place_of_a_bad_contact_in_a_full_bucket() {
            let mut t = table::<2, 1>(&[0x81, 0x82]);
            t.on_failure(&peer(0x82).id);
            let out = t.insert(peer(0x84).id, peer(0x84).addr, true, at(1));
            assert!(matches!(out, Insert::Replaced { bad } if bad.id == peer(0x82).id), "{out:?}");
            assert!(t.get(&peer(0x84).id).is_some());
        }

        fn closest_where_hands_out_only_the_contacts_asked_for() {
            let mut t = table::<4, 1>(&[0x81, 0x82, 0x83]);
            t.on_failure(&peer(0x82).id);
            let mut out = [Contact::new(peer(1).id, peer(1).addr, at(0)); 4];
            let good = |c: &Contact| t.state(c, at(1)) == ContactState::Good;
            let n = t.closest_where(&peer(0x80).id.as_key(), None, &mut out, good);
            let ids: heapless::Vec<u8, 4> = out[..n].iter().map(|c| c.id.as_bytes()[0]).collect();
            assert_eq!(&ids[..], &[0x81, 0x83]);
        }

        fn contacts_about_to_turn_questionable_are_pinged_longest_silent_first_then_bad_ones() {
            let mut t = table::<4, 1>(&[0x81]);
            t.insert(peer(0x82).id, peer(0x82).addr, true, at(MIN));
            t.insert(peer(0x83).id, peer(0x83).addr, true, at(2 * MIN));
            let none = |_: &Contact| false;
            // Three quarters of 15 min after 0x81 was heard from: it is due, the others not yet.
            assert_eq!(t.next_to_ping(at(11 * MIN), none), None);
            assert_eq!(t.next_to_ping(at(12 * MIN), none).map(|c| c.id), Some(peer(0x81).id));
            let skip_81 = |c: &Contact| c.id == peer(0x81).id;
            assert_eq!(t.next_to_ping(at(13 * MIN), skip_81).map(|c| c.id), Some(peer(0x82).id));
            t.on_failure(&peer(0x83).id);
            let skip_due = |c: &Contact| c.id != peer(0x83).id;
            assert_eq!(t.next_to_ping(at(13 * MIN), skip_due).map(|c| c.id), Some(peer(0x83).id));
        }
    }
}
