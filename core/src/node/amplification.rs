//! Replies to unverified addresses stay small: an answer to an address that is no contact of
//! the routing table (it never answered a request of this node) is at most
//! [`Limits::reply_factor`] times its request — fewer contacts, or contacts instead of a value —
//! unless the byte budget of the destination's prefix pays for the rest
//! ([`Limits::unverified_bytes_per_sec`], [`Limits::unverified_burst_bytes`]). So no address can
//! be made to receive much more than the requests forged in its name (a reflection), while a
//! client's or a newcomer's few lookups still get full answers. Trimmed answers are counted in
//! [`crate::Stats::replies_trimmed`].
//!
//! [`Limits::reply_factor`]: crate::limits::Limits::reply_factor
//! [`Limits::unverified_bytes_per_sec`]: crate::limits::Limits::unverified_bytes_per_sec
//! [`Limits::unverified_burst_bytes`]: crate::limits::Limits::unverified_burst_bytes

use crate::addr::PeerAddr;
use crate::store::RecordStore;
use crate::wire::MAX_CONTACTS;

use super::requests::Reply;
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
    /// Encodes the answer `r` into `buf` within its size allowance (see the module docs).
    pub(super) fn encode_reply_fitted(&mut self, r: &Reply, buf: &mut [u8]) -> Option<usize> {
        let len = self.encode_reply(r, buf, None)?;
        let limits = self.config.limits;
        let allowed = usize::from(r.request_len) * usize::from(limits.reply_factor);
        if len <= allowed || !limits.apply_to(&r.to) || self.is_verified(&r.to) {
            return Some(len);
        }
        if self.sources.spend_bytes(r.to.prefix(), len - allowed, &limits, self.now) {
            return Some(len);
        }
        self.stats.replies_trimmed += 1;
        // Bounded: one encoding per contact dropped, from the most that might fit.
        let mut smallest = None;
        for n in (0..=MAX_CONTACTS).rev() {
            let len = self.encode_reply(r, buf, Some(n))?;
            smallest = Some(len);
            if len <= allowed {
                break;
            }
        }
        smallest
    }

    /// Whether `addr` answered a request of this node: it is a contact's address.
    fn is_verified(&self, addr: &PeerAddr) -> bool {
        self.routing.iter().any(|c| c.addr == *addr)
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use crate::config::Config;
    use crate::limits::Limits;
    use crate::node::testpeer::{at, deliver, drain, key, meet, node, peer, TestNode};
    use crate::wire::{Body, Peer, TxId};

    /// A node that knows four peers, with replies to unverified addresses at most twice their
    /// request (the test node's replies name at most four contacts: under three times) and a
    /// byte budget of `budget`.
    fn knowing_four(budget: u32) -> TestNode {
        let limits = Limits {
            reply_factor: 2,
            unverified_burst_bytes: budget,
            unverified_bytes_per_sec: 0,
            ..Limits::default()
        };
        let mut n = node(Config { limits, ..Config::default() });
        meet(&mut n, at(0), &[peer(1), peer(2), peer(3), peer(4)]);
        n
    }

    /// `from` asks FIND_NODE at `t`: the bytes of the request and of the answer, and the
    /// contacts it names.
    fn ask(n: &mut TestNode, from: Peer, t: u64) -> (usize, usize, usize) {
        let req = deliver(n, at(t), from, TxId([7; 4]), Body::FindNode { target: key(1) });
        let d = drain(n);
        let reply = d.sent.iter().find(|s| s.to == from.addr && s.request.is_none()).expect("an answer");
        (req, reply.len, reply.nodes.len())
    }

    crate::selftest::unit_tests! {
        fn an_answer_to_an_unverified_address_is_at_most_the_reply_factor_times_its_request() {
            let mut n = knowing_four(0);
            let (req, len, nodes) = ask(&mut n, peer(9), 1);
            assert!(len <= 2 * req, "{len} > 2 × {req}");
            assert!(nodes < 4, "trimmed: {nodes} contacts");
            assert_eq!(n.stats().replies_trimmed, 1);
            // A contact of the table gets the full answer.
            let (_, _, nodes) = ask(&mut n, peer(2), 2);
            assert_eq!(nodes, 3, "every other contact");
        }

        fn the_byte_budget_of_a_prefix_pays_for_full_answers_until_it_is_spent() {
            let mut n = knowing_four(60);
            let (req, len, nodes) = ask(&mut n, peer(9), 1);
            assert_eq!(nodes, 4, "the budget paid for {} bytes", len - 2 * req);
            let (_, _, nodes) = ask(&mut n, peer(9), 2);
            assert!(nodes < 4);
        }
    }
}
