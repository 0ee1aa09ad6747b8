//! The routing table: k-buckets with a replacement cache, split at the own id, and the state
//! of each contact (good, questionable or bad, as BEP 5 keeps them).
//!
//! At most `B` buckets. Bucket `i < len-1` holds contacts whose id shares exactly `i` leading
//! bits with the own id; the last bucket holds everything closer. Only the last bucket is ever
//! split (when it is full and fewer than `B` buckets exist), as in the paper. Each bucket keeps up
//! to `K` contacts ordered least-recently-seen first and up to `R` replacement candidates. Memory
//! is therefore `B × (K + R)` contacts whatever the size of the network.
//!
//! A contact is [good](ContactState::Good) when heard from within
//! [`RoutingConfig::good_for`], [bad](ContactState::Bad) once a request to it failed every
//! attempt (until it is heard from again), and [questionable](ContactState::Questionable)
//! otherwise. Only good contacts are handed to other peers and they seed lookups first; a bad
//! one is never handed out, and makes way at once for a replacement or a newcomer. The node
//! pings contacts about to turn questionable, a few per maintenance run
//! ([`RoutingConfig::liveness_pings`]), so that live ones stay good.

use core::time::Duration;

use heapless::Vec;

use crate::addr::PeerAddr;
use crate::id::{Key, NodeId, ID_BITS};
use crate::time::Instant;

/// A known peer and what we have learned about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The peer's id.
    pub id: NodeId,
    /// The peer's UDP address.
    pub addr: PeerAddr,
    /// When we last heard from it.
    pub last_seen: Instant,
    /// Smoothed round-trip time in milliseconds; 0 while unmeasured.
    pub srtt_ms: u16,
    /// Requests in a row that it failed to answer, every attempt of each (see
    /// [`crate::node::REQUEST_ATTEMPTS`]); any makes it bad until it is heard from again.
    pub failures: u8,
}

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

impl Contact {
    /// A contact first seen at `now`.
    pub fn new(id: NodeId, addr: PeerAddr, now: Instant) -> Self {
        Contact { id, addr, last_seen: now, srtt_ms: 0, failures: 0 }
    }
}

/// What [`RoutingTable::insert`] did with a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// A new contact entered a bucket.
    Added,
    /// The contact was known; it moved to the most-recently-seen end.
    Updated,
    /// The bucket is full: the contact waits in the replacement cache. If `ping` is set (the
    /// least-recently-seen contact is no longer good: not heard from for
    /// [`RoutingConfig::good_for`]), the caller must ping that contact and report the outcome
    /// with [`RoutingTable::on_alive`] or [`RoutingTable::on_failure`].
    Cached {
        /// The least-recently-seen contact to probe, unless a probe is already under way.
        ping: Option<Contact>,
    },
    /// The bucket is full but held a bad contact: the newcomer took its place.
    Replaced {
        /// The bad contact that was dropped.
        bad: Contact,
    },
    /// The contact is the own id and was refused.
    OwnId,
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

#[derive(Clone, Debug)]
struct Bucket<const K: usize, const R: usize> {
    /// Least-recently-seen first.
    contacts: Vec<Contact, K>,
    /// Most recent last.
    replacements: Vec<Contact, R>,
    /// Last time a contact in this bucket was added or heard from, or a lookup refreshed it.
    touched: Instant,
    /// The contact being pinged because a newcomer wants its place.
    probing: Option<NodeId>,
    /// Refresh requested regardless of `touched` (after bootstrap).
    stale: bool,
}

impl<const K: usize, const R: usize> Bucket<K, R> {
    fn new(now: Instant) -> Self {
        Bucket { contacts: Vec::new(), replacements: Vec::new(), touched: now, probing: None, stale: false }
    }

    fn position(&self, id: &NodeId) -> Option<usize> {
        self.contacts.iter().position(|c| c.id == *id)
    }

    fn cache(&mut self, contact: Contact) {
        if let Some(i) = self.replacements.iter().position(|c| c.id == contact.id) {
            self.replacements.remove(i);
        }
        if self.replacements.is_full() && !self.replacements.is_empty() {
            self.replacements.remove(0);
        }
        // R may be 0: then the newcomer is simply dropped.
        let _ = self.replacements.push(contact);
    }

    /// Removes contact `i` and promotes the most recent replacement.
    fn replace(&mut self, i: usize) -> (Contact, Option<Contact>) {
        let removed = self.contacts.remove(i);
        if self.probing == Some(removed.id) {
            self.probing = None;
        }
        let replacement = self.replacements.pop();
        if let Some(r) = replacement {
            // Cannot fail: one slot was just freed.
            let _ = self.contacts.push(r);
        }
        (removed, replacement)
    }
}

/// Tunables of the table (the capacities are the const generics).
#[derive(Clone, Copy, Debug)]
pub struct RoutingConfig {
    /// A bad contact that nothing replaces is dropped once it has failed this many requests in
    /// a row. Default 5.
    pub max_failures_hard: u8,
    /// A contact heard from within this long is good (BEP 5: 15 min). A newcomer to a full
    /// bucket makes the table probe the bucket's least-recently-seen contact only if that
    /// contact is no longer good; otherwise the newcomer waits in the replacement cache.
    /// Default 15 min.
    pub good_for: Duration,
    /// Background pings per maintenance run, at most, to contacts silent for three quarters of
    /// `good_for`, the longest silent first: a live contact answers and stays good, a dead one
    /// turns bad and makes way. 0 turns them off. Default 10 (with the default one-minute
    /// maintenance interval: one ping every 6 s at most).
    pub liveness_pings: u16,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig { max_failures_hard: 5, good_for: Duration::from_secs(15 * 60), liveness_pings: 10 }
    }
}

/// A Kademlia routing table of at most `B` buckets of `K` contacts and `R` replacements each.
#[derive(Clone, Debug)]
pub struct RoutingTable<const B: usize, const K: usize, const R: usize> {
    own: NodeId,
    buckets: Vec<Bucket<K, R>, B>,
    config: RoutingConfig,
}

impl<const B: usize, const K: usize, const R: usize> RoutingTable<B, K, R> {
    /// An empty table for the node `own`, with a single bucket covering the whole space.
    pub fn new(own: NodeId, config: RoutingConfig, now: Instant) -> Self {
        const { assert!(B >= 1 && B <= ID_BITS + 1, "B must be between 1 and 161") };
        const { assert!(K >= 1, "K must be at least 1") };
        // The first bucket from an array rather than pushed into a local that is then moved: the
        // move would copy, and so write, all B slots. This way the slots not in use are never
        // written, and a node built on the heap pays memory only for the buckets it fills.
        RoutingTable { own, buckets: Vec::from_array([Bucket::new(now)]), config }
    }

    /// The own id.
    pub fn own_id(&self) -> &NodeId {
        &self.own
    }

    fn index(&self, id: &NodeId) -> usize {
        let cpl = self.own.distance(id).leading_zeros();
        cpl.min(self.buckets.len() - 1)
    }

    /// Number of buckets currently in use.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Number of contacts in each bucket, farthest bucket first.
    pub fn bucket_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.buckets.iter().map(|b| b.contacts.len())
    }

    /// Total contacts (not counting replacements).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.contacts.len()).sum()
    }

    /// True when no contact is known.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.contacts.is_empty())
    }

    /// Every contact, bucket by bucket.
    pub fn iter(&self) -> impl Iterator<Item = &Contact> + '_ {
        self.buckets.iter().flat_map(|b| b.contacts.iter())
    }

    /// The contact with this id, if present.
    pub fn get(&self, id: &NodeId) -> Option<&Contact> {
        let b = &self.buckets[self.index(id)];
        b.position(id).map(|i| &b.contacts[i])
    }

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

    /// Records that `id` was heard from at `addr` (a valid message arrived from it).
    ///
    /// A known contact moves to the most-recently-seen end; its address changes only when
    /// `addr_verified` (the message answered a request we sent to that address), so a spoofed
    /// packet cannot redirect a contact. A new contact is added, or the bucket is split, or it
    /// waits in the replacement cache while the least-recently-seen contact is probed.
    pub fn insert(&mut self, id: NodeId, addr: PeerAddr, addr_verified: bool, now: Instant) -> Insert {
        if id == self.own {
            return Insert::OwnId;
        }
        // Bounded: each pass either returns or splits, and at most B splits are possible.
        for _ in 0..=B {
            let idx = self.index(&id);
            let can_split = idx == self.buckets.len() - 1 && !self.buckets.is_full();
            let bucket = &mut self.buckets[idx];
            if let Some(i) = bucket.position(&id) {
                let mut c = bucket.contacts.remove(i);
                c.last_seen = now;
                c.failures = 0;
                if addr_verified {
                    c.addr = addr;
                }
                let _ = bucket.contacts.push(c);
                bucket.touched = now;
                if bucket.probing == Some(id) {
                    bucket.probing = None;
                }
                return Insert::Updated;
            }
            if !bucket.contacts.is_full() {
                let _ = bucket.contacts.push(Contact::new(id, addr, now));
                bucket.touched = now;
                bucket.replacements.retain(|c| c.id != id);
                return Insert::Added;
            }
            if can_split {
                self.split();
                continue;
            }
            // A bad contact makes way for the newcomer at once (BEP 5).
            if let Some(i) = bucket.contacts.iter().position(|c| c.failures > 0) {
                let bad = bucket.contacts.remove(i);
                if bucket.probing == Some(bad.id) {
                    bucket.probing = None;
                }
                let _ = bucket.contacts.push(Contact::new(id, addr, now));
                bucket.touched = now;
                bucket.replacements.retain(|c| c.id != id);
                return Insert::Replaced { bad };
            }
            bucket.cache(Contact::new(id, addr, now));
            // Probe the oldest contact only if it may have gone (it is no longer good):
            // without this rule every request from a stranger to a full bucket costs a ping
            // (half of all traffic in a 10,000-node simulation), though the oldest contact
            // almost always answers.
            let lrs = bucket.contacts[0];
            if bucket.probing.is_some() || now.saturating_since(lrs.last_seen) < self.config.good_for {
                return Insert::Cached { ping: None };
            }
            bucket.probing = Some(lrs.id);
            return Insert::Cached { ping: Some(lrs) };
        }
        Insert::Cached { ping: None }
    }

    /// Splits the last bucket: contacts sharing more prefix with the own id move to a new one.
    fn split(&mut self) {
        let depth = self.buckets.len();
        let own = self.own;
        let old = self.buckets.last_mut().expect("the table always has a bucket");
        let mut near = Bucket::<K, R>::new(old.touched);
        let mut i = 0;
        while i < old.contacts.len() {
            if own.distance(&old.contacts[i].id).leading_zeros() >= depth {
                let _ = near.contacts.push(old.contacts.remove(i));
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < old.replacements.len() {
            if own.distance(&old.replacements[i].id).leading_zeros() >= depth {
                let _ = near.replacements.push(old.replacements.remove(i));
            } else {
                i += 1;
            }
        }
        if near.probing.is_none() && old.probing.is_some() {
            let p = old.probing.unwrap_or_default();
            if own.distance(&p).leading_zeros() >= depth {
                old.probing = None;
                near.probing = Some(p);
            }
        }
        // Refill the far bucket from its replacements when the split freed room.
        while !old.contacts.is_full() {
            match old.replacements.pop() {
                Some(r) => {
                    let _ = old.contacts.push(r);
                }
                None => break,
            }
        }
        let _ = self.buckets.push(near);
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
                let sample = rtt.as_millis().clamp(1, u16::MAX as u128) as u32;
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
        let (removed, replacement) = bucket.replace(i);
        Failure::Removed { removed, replacement }
    }

    /// Fills `out` with the known contacts closest to `target`, nearest first, skipping
    /// `exclude`. Returns how many were written (at most `out.len()`).
    pub fn closest(&self, target: &Key, exclude: Option<&NodeId>, out: &mut [Contact]) -> usize {
        self.closest_where(target, exclude, out, |_| true)
    }

    /// The contacts closest to `target` that `keep` accepts, nearest first, skipping `exclude`.
    ///
    /// Buckets are visited in distance order, so only the few buckets that can hold the
    /// nearest contacts are read: with `c` the index of the bucket covering `target`, every
    /// contact of bucket `c` is nearer than those of buckets `c+1..` (which differ from the
    /// target first at bit `c`), which are nearer than bucket `c-1`, then `c-2`, and so on.
    pub fn closest_where(
        &self,
        target: &Key,
        exclude: Option<&NodeId>,
        out: &mut [Contact],
        keep: impl Fn(&Contact) -> bool,
    ) -> usize {
        let last = self.buckets.len() - 1;
        let c = target.distance(&self.own).leading_zeros().min(last);
        let mut n = self.collect(target, exclude, &keep, c..=c, out, 0);
        if c < last {
            n = self.collect(target, exclude, &keep, c + 1..=last, out, n);
        }
        for i in (0..c).rev() {
            if n == out.len() {
                break;
            }
            n = self.collect(target, exclude, &keep, i..=i, out, n);
        }
        n
    }

    /// Adds the contacts of `buckets` (all farther than `out[..start]`) to `out[start..]`,
    /// keeping that part sorted and at most full. Returns the new count.
    fn collect(
        &self,
        target: &Key,
        exclude: Option<&NodeId>,
        keep: &impl Fn(&Contact) -> bool,
        buckets: core::ops::RangeInclusive<usize>,
        out: &mut [Contact],
        start: usize,
    ) -> usize {
        let mut n = start;
        for c in self.buckets[buckets].iter().flat_map(|b| b.contacts.iter()) {
            if Some(&c.id) == exclude || start == out.len() || !keep(c) {
                continue;
            }
            let d = target.distance(&c.id);
            let pos = start + out[start..n].partition_point(|o| target.distance(&o.id) < d);
            if pos >= out.len() {
                continue;
            }
            let end = if n < out.len() { n } else { out.len() - 1 };
            out.copy_within(pos..end, pos + 1);
            out[pos] = *c;
            if n < out.len() {
                n += 1;
            }
        }
        n
    }

    /// Marks the bucket that covers `target` as refreshed (a lookup went there).
    pub fn touch(&mut self, target: &Key, now: Instant) {
        let cpl = target.distance(&self.own).leading_zeros();
        let idx = cpl.min(self.buckets.len() - 1);
        self.buckets[idx].touched = now;
        self.buckets[idx].stale = false;
    }

    /// The first bucket not touched since `before`, as the prefix length to refresh.
    pub fn stale_bucket(&self, before: Instant) -> Option<usize> {
        self.buckets.iter().position(|b| b.stale || b.touched < before)
    }

    /// Marks every bucket as needing a refresh (after bootstrap).
    pub fn mark_all_stale(&mut self) {
        for b in self.buckets.iter_mut() {
            b.stale = true;
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn id(first: u8, last: u8) -> NodeId {
        let mut b = [0u8; 20];
        b[0] = first;
        b[19] = last;
        NodeId::from_bytes(b)
    }

    fn addr(n: u8) -> PeerAddr {
        PeerAddr::V4([127, 0, 0, n], 1000 + n as u16)
    }

    const T0: Instant = Instant::ZERO;

    /// Past `good_for` of contacts last seen at `T0`.
    const LATER: Instant = Instant::from_millis(16 * 60 * 1000);

    crate::selftest::unit_tests! {
        fn own_id_is_never_inserted() {
            let own = id(0, 0);
            let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), T0);
            assert_eq!(t.insert(own, addr(1), true, T0), Insert::OwnId);
            assert!(t.is_empty());
        }

        fn the_bucket_covering_the_own_id_splits_when_full() {
            let own = id(0, 0);
            let mut t = RoutingTable::<8, 2, 1>::new(own, RoutingConfig::default(), T0);
            assert_eq!(t.insert(id(0x80, 1), addr(1), true, T0), Insert::Added);
            assert_eq!(t.insert(id(0x80, 2), addr(2), true, T0), Insert::Added);
            // Full single bucket covering the own id: it splits, the far half keeps the 0x80 ids.
            assert_eq!(t.insert(id(0x40, 3), addr(3), true, T0), Insert::Added);
            assert!(t.bucket_count() >= 2);
            assert_eq!(t.len(), 3);
        }

        fn a_full_far_bucket_caches_the_newcomer_and_pings_its_oldest_contact() {
            let own = id(0, 0);
            let mut t = RoutingTable::<8, 2, 2>::new(own, RoutingConfig::default(), T0);
            t.insert(id(0x80, 1), addr(1), true, T0);
            t.insert(id(0x80, 2), addr(2), true, Instant::from_millis(1));
            t.insert(id(0x01, 9), addr(9), true, T0); // forces a split so 0x80.. is a far bucket
            let out = t.insert(id(0x80, 3), addr(3), true, LATER);
            let Insert::Cached { ping: Some(lrs) } = out else { panic!("{out:?}") };
            assert_eq!(lrs.id, id(0x80, 1));
            // A second newcomer does not start a second probe.
            assert_eq!(t.insert(id(0x80, 4), addr(4), true, LATER), Insert::Cached { ping: None });
            // The oldest answers: it stays, now most recently seen.
            t.on_alive(&id(0x80, 1), None, LATER);
            assert!(t.get(&id(0x80, 1)).is_some());
            assert!(t.get(&id(0x80, 3)).is_none());
        }

        fn a_probed_contact_that_fails_is_replaced_by_the_newest_candidate() {
            let own = id(0, 0);
            let mut t = RoutingTable::<8, 2, 2>::new(own, RoutingConfig::default(), T0);
            t.insert(id(0x80, 1), addr(1), true, T0);
            t.insert(id(0x80, 2), addr(2), true, T0);
            t.insert(id(0x01, 9), addr(9), true, T0);
            t.insert(id(0x80, 3), addr(3), true, LATER);
            let f = t.on_failure(&id(0x80, 1));
            assert!(matches!(f, Failure::Removed { replacement: Some(c), .. } if c.id == id(0x80, 3)));
            assert!(t.get(&id(0x80, 1)).is_none());
            assert!(t.get(&id(0x80, 3)).is_some());
        }

        fn a_newcomer_does_not_make_a_full_bucket_probe_a_contact_heard_from_recently() {
            let own = id(0, 0);
            let mut t = RoutingTable::<8, 2, 2>::new(own, RoutingConfig::default(), T0);
            t.insert(id(0x80, 1), addr(1), true, T0);
            t.insert(id(0x80, 2), addr(2), true, T0);
            t.insert(id(0x01, 9), addr(9), true, T0);
            let recently = Instant::from_millis(14 * 60 * 1000);
            assert_eq!(t.insert(id(0x80, 3), addr(3), true, recently), Insert::Cached { ping: None });
            assert!(t.get(&id(0x80, 3)).is_none());
            // Once the oldest has been silent for `probe_after`, the next newcomer has it probed.
            let out = t.insert(id(0x80, 4), addr(4), true, LATER);
            assert!(matches!(out, Insert::Cached { ping: Some(c) } if c.id == id(0x80, 1)), "{out:?}");
        }

        fn a_failing_contact_without_replacement_is_kept_until_the_hard_limit() {
            let own = id(0, 0);
            let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), T0);
            t.insert(id(0x80, 1), addr(1), true, T0);
            for _ in 0..4 {
                assert_eq!(t.on_failure(&id(0x80, 1)), Failure::Kept);
            }
            assert!(matches!(t.on_failure(&id(0x80, 1)), Failure::Removed { .. }));
        }

        fn an_unverified_message_does_not_move_a_contact_to_another_address() {
            let own = id(0, 0);
            let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), T0);
            t.insert(id(0x80, 1), addr(1), true, T0);
            t.insert(id(0x80, 1), addr(7), false, T0);
            assert_eq!(t.get(&id(0x80, 1)).unwrap().addr, addr(1));
            t.insert(id(0x80, 1), addr(7), true, T0);
            assert_eq!(t.get(&id(0x80, 1)).unwrap().addr, addr(7));
        }

        fn closest_returns_the_nearest_sorted() {
            let own = id(0, 0);
            let mut t = RoutingTable::<8, 4, 1>::new(own, RoutingConfig::default(), T0);
            for n in 1..=6u8 {
                t.insert(id(n << 4, n), addr(n), true, T0);
            }
            let target = id(0x30, 0).as_key();
            let mut out = [Contact::new(own, addr(0), T0); 3];
            let n = t.closest(&target, None, &mut out);
            assert_eq!(n, 3);
            assert_eq!(out[0].id, id(0x30, 3));
            assert!(target.distance(&out[0].id) <= target.distance(&out[1].id));
            assert!(target.distance(&out[1].id) <= target.distance(&out[2].id));
        }

        fn stale_buckets_are_reported_for_refresh() {
            let own = id(0, 0);
            let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), Instant::from_millis(10));
            assert_eq!(t.stale_bucket(Instant::from_millis(5)), None);
            assert_eq!(t.stale_bucket(Instant::from_millis(11)), Some(0));
            t.touch(&id(0xff, 0).as_key(), Instant::from_millis(20));
            assert_eq!(t.stale_bucket(Instant::from_millis(11)), None);
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod state_tests {
    use super::*;
    use crate::node::testpeer::peer;

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
            let out = t.insert(peer(0x84).id, peer(0x84).addr, false, at(1));
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
