//! Honest gets: a get counts how many holders returned each value and keeps going after the
//! first one until [`Limits::quorum`](crate::limits::Limits::quorum) holders agree and none
//! disagreed (a contested get asks on to its lookup's end); it returns the value most holders gave (a signed record: the highest valid
//! sequence number), with the number that agreed. A liar on the path then wins only by
//! outnumbering the honest holders, and its value is not cached (see `node/caching.rs`).
//!
//! A get tallies at most [`MAX_VALUES`] distinct values by their SHA-1 digest and keeps the
//! record of the leading one only: a value overtakes the leader only at the answer that adds
//! its vote, which carries it.

use heapless::Vec;

use crate::store::{Record, ValueKind};

/// Distinct values a get tallies; when full, a newcomer replaces a value only one holder gave
/// (never the leader).
pub const MAX_VALUES: usize = 4;

/// The SHA-1 of a value (kind, sequence number, salt and value): holders agree when equal.
pub(crate) type Digest = [u8; 20];

/// The digest of `rec`'s value.
pub(crate) fn digest<const V: usize>(rec: &Record<V>) -> Digest {
    let mut h = crate::sha1::Sha1::new();
    h.update(&[match rec.kind {
        ValueKind::Bytes => 0,
        ValueKind::Text => 1,
    }]);
    h.update(&rec.signer.map_or(u64::MAX, |s| s.seq).to_le_bytes());
    h.update(&rec.data);
    h.digest()
}

/// The tally of one get: each distinct value with the holders that returned it, and which one
/// the get holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Votes {
    tally: Vec<(Digest, u16), MAX_VALUES>,
    leader: Option<Digest>,
}

impl Votes {
    /// Counts one more holder of the value `d`; returns its count (0 when the tally was full of
    /// values others agreed on and this one was not counted).
    pub(crate) fn add(&mut self, d: Digest) -> u16 {
        if let Some(e) = self.tally.iter_mut().find(|e| e.0 == d) {
            e.1 = e.1.saturating_add(1);
            return e.1;
        }
        if self.tally.is_full() {
            let leader = self.leader;
            let Some(i) = self.tally.iter().position(|e| e.1 == 1 && Some(e.0) != leader) else {
                return 0;
            };
            self.tally.swap_remove(i);
        }
        let _ = self.tally.push((d, 1));
        1
    }

    /// Holders that returned `d`.
    pub(crate) fn count(&self, d: &Digest) -> u16 {
        self.tally.iter().find(|e| e.0 == *d).map_or(0, |e| e.1)
    }

    /// Whether holders returned different values: then the get does not stop at the quorum but
    /// asks on to the end of its lookup, where the holders closest to the key are (liars far
    /// from the key, who answer first and may collude, are outvoted there).
    pub(crate) fn contested(&self) -> bool {
        self.tally.len() > 1
    }

    /// Holders that returned the value the get holds.
    pub(crate) fn agreeing(&self) -> u16 {
        self.leader.map_or(0, |d| self.count(&d))
    }

    /// The get now holds the value `d`.
    pub(crate) fn lead(&mut self, d: Digest) {
        self.leader = Some(d);
    }
}

/// Whether a get holding `held` (returned by `held_votes` holders) takes `new`, which
/// `new_votes` holders returned counting this one: a signed record wins by a higher sequence
/// number, an unsigned one by more holders (a tie keeps the first); an unsigned record never
/// replaces a signed one.
pub(crate) fn takes<const V: usize>(
    held: Option<&Record<V>>,
    held_votes: u16,
    new: &Record<V>,
    new_votes: u16,
) -> bool {
    let Some(old) = held else { return true };
    match (old.signer, new.signer) {
        (None, Some(_)) => true,
        (Some(o), Some(n)) => n.seq > o.seq,
        (Some(_), None) => false,
        (None, None) => new_votes > held_votes,
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::id::Key;
    use crate::node::testpeer::{at, deliver, drain, meet, node, peer, Drained, TestNode};
    use crate::node::{Event, Outcome, QueryStats};
    use crate::stats::RequestKind;
    use crate::wire::{Body, Bytes, Peer, WireRecord};

    /// A node that knows peers 1 to 3 and asked all three for the value under `key(9)`.
    fn getting() -> (TestNode, Drained, Key) {
        let mut n = node(Config::default());
        meet(&mut n, at(0), &[peer(1), peer(2), peer(3)]);
        let key = Key::from_bytes([9; 20]);
        n.get(key, at(0)).unwrap();
        let d = drain(&mut n);
        (n, d, key)
    }

    /// `p` answers the node's FIND_VALUE with `value`, or with no contacts when `None`.
    fn answer(n: &mut TestNode, d: &Drained, key: Key, p: Peer, value: Option<&[u8]>) -> Drained {
        let txid = d.requests_to(p.addr).next().expect("asked").txid;
        let body = match value {
            Some(v) => Body::Value {
                record: WireRecord {
                    key,
                    kind: ValueKind::Bytes,
                    ttl_secs: 600,
                    cached: false,
                    data: Bytes(v),
                    signature: None,
                },
                closer: heapless::Vec::new(),
            },
            None => Body::Nodes { contacts: heapless::Vec::new() },
        };
        deliver(n, at(10), p, txid, body);
        drain(n)
    }

    fn got(d: &Drained) -> Option<(heapless::Vec<u8, 64>, QueryStats)> {
        d.events.iter().find_map(|e| match e {
            Event::QueryDone { outcome: Outcome::Get(Ok(r)), stats, .. } => {
                Some((heapless::Vec::from_slice(r.value()).unwrap(), *stats))
            }
            _ => None,
        })
    }
    use crate::signed::{PublicKey, Signature};
    use crate::store::{Origin, Signer};
    use crate::time::Instant;

    fn rec(v: &[u8], seq: Option<u64>) -> Record<8> {
        Record {
            key: Key::hash(b"k"),
            kind: ValueKind::Bytes,
            data: heapless::Vec::from_slice(v).unwrap(),
            signer: seq.map(|seq| Signer {
                public_key: PublicKey([1; 32]),
                seq,
                signature: Signature([2; 64]),
                salt_len: 0,
            }),
            origin: Origin::Cache,
            expires_at: Instant::ZERO,
            stored_at: Instant::ZERO,
            republished_at: Instant::ZERO,
            source: None,
        }
    }

    crate::selftest::unit_tests! {
        fn a_get_waits_for_two_holders_to_agree_and_a_liar_that_answered_first_loses() {
            let (mut n, d, key) = getting();
            assert!(got(&answer(&mut n, &d, key, peer(1), Some(b"forged"))).is_none());
            assert!(got(&answer(&mut n, &d, key, peer(2), Some(b"honest"))).is_none(), "1 to 1: not yet");
            let (value, stats) = got(&answer(&mut n, &d, key, peer(3), Some(b"honest"))).expect("done");
            assert_eq!((&value[..], stats.agreeing), (&b"honest"[..], 2));
        }

        fn an_uncontested_get_stops_at_the_quorum_and_a_contested_one_asks_on() {
            // Five known peers: the first three are asked at once, two more are left.
            let start = || {
                let mut n = node(Config::default());
                meet(&mut n, at(0), &[peer(1), peer(2), peer(3), peer(4), peer(5)]);
                let key = Key::from_bytes([9; 20]);
                n.get(key, at(0)).unwrap();
                let d = drain(&mut n);
                (n, d, key)
            };
            let (mut n, d, key) = start();
            let asked: heapless::Vec<Peer, 5> =
                [1, 2, 3, 4, 5].iter().map(|&i| peer(i)).filter(|p| d.requests_to(p.addr).next().is_some()).collect();
            answer(&mut n, &d, key, asked[0], Some(b"honest"));
            assert!(got(&answer(&mut n, &d, key, asked[1], Some(b"honest"))).is_some(), "two agree: done");
            let (mut n, d, key) = start();
            answer(&mut n, &d, key, asked[0], Some(b"forged"));
            answer(&mut n, &d, key, asked[1], Some(b"honest"));
            let third = answer(&mut n, &d, key, asked[2], Some(b"honest"));
            assert!(got(&third).is_none(), "two agree but one disagreed: the get asks on");
            assert_eq!(n.queries_in_flight(), 1);
        }

        fn a_value_only_one_holder_returned_is_returned_but_not_cached() {
            let (mut n, d, key) = getting();
            answer(&mut n, &d, key, peer(1), Some(b"forged"));
            answer(&mut n, &d, key, peer(2), None);
            let last = answer(&mut n, &d, key, peer(3), None);
            let (value, stats) = got(&last).expect("the lookup ended");
            assert_eq!((&value[..], stats.agreeing), (&b"forged"[..], 1));
            assert!(last.sent.iter().all(|s| s.request != Some(RequestKind::Store)), "cached a lone value");
            assert_eq!(n.stats().cache_unconfirmed, 1);
        }

        fn holders_agree_on_equal_values_only() {
            assert_eq!(digest(&rec(b"a", None)), digest(&rec(b"a", None)));
            assert_ne!(digest(&rec(b"a", None)), digest(&rec(b"b", None)));
            assert_ne!(digest(&rec(b"a", Some(1))), digest(&rec(b"a", Some(2))));
            let mut text = rec(b"a", None);
            text.kind = ValueKind::Text;
            assert_ne!(digest(&text), digest(&rec(b"a", None)));
        }

        fn the_value_more_holders_gave_wins_and_a_tie_keeps_the_first() {
            let (liar, honest) = (rec(b"forged", None), rec(b"honest", None));
            assert!(takes(None, 0, &liar, 1));
            assert!(!takes(Some(&liar), 1, &honest, 1), "a tie keeps the first");
            assert!(takes(Some(&liar), 1, &honest, 2));
        }

        fn a_signed_record_wins_by_its_sequence_number_whatever_the_votes() {
            let (s1, s2) = (rec(b"a", Some(1)), rec(b"b", Some(2)));
            assert!(takes(Some(&s1), 5, &s2, 1));
            assert!(!takes(Some(&s2), 1, &s1, 5));
            assert!(!takes(Some(&s1), 1, &rec(b"u", None), 9), "unsigned never replaces signed");
            assert!(takes(Some(&rec(b"u", None)), 9, &s1, 1));
        }

        fn a_full_tally_makes_room_only_by_dropping_a_lone_value_that_does_not_lead() {
            let mut v = Votes::default();
            let d = |b: u8| [b; 20];
            assert_eq!(v.add(d(1)), 1);
            v.lead(d(1));
            for b in 2..=4 {
                assert_eq!(v.add(d(b)), 1);
            }
            assert_eq!(v.add(d(2)), 2);
            assert_eq!(v.add(d(5)), 1, "a lone value made room");
            assert_eq!(v.count(&d(1)), 1, "the leader stays");
            assert_eq!(v.count(&d(2)), 2);
            assert_eq!(v.agreeing(), 1);
            assert_eq!(v.add(d(5)), 2);
            assert_eq!(v.add(d(2)), 3);
            assert_eq!(v.add(d(6)), 1);
            assert_eq!(v.add(d(6)), 2);
            assert_eq!(v.add(d(7)), 0, "nothing left to drop");
        }
    }
}
