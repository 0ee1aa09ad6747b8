//! The rules a whole network of kad-core nodes must keep, written once for any node count and
//! capacity preset: core/tests runs them on 200 nodes of K = 20, embedded/qemu-tests on 10
//! `embedded` nodes of an emulated Cortex-M4. Each runs on a network fresh from [`Net::build`]
//! with the default [`Config`].

use core::fmt::Write;
use core::time::Duration;

use rand_core::RngCore;

use super::link::Island;
use super::medium::{addr_of, Datagram, Ev, PORT};
use super::net::{Host, Net};
use super::queue::Slot;
use crate::addr::PeerAddr;
use crate::config::Config;
use crate::id::{Key, NodeId};
use crate::node::{Error, Node, Outcome, QueryError};
use crate::stats::Stats;
use crate::store::{RecordStore, ValueKind, MAX_VALUE_LEN};

/// A rule of the network in words, and the check that panics when it does not hold.
pub struct Scenario<T> {
    /// The rule, as `kad_core::testnet::scenarios::rule_in_words`.
    pub name: &'static str,
    /// Runs on a freshly built network.
    pub run: fn(&mut T),
}

macro_rules! scenario {
    ($f:ident) => {
        Scenario { name: concat!(module_path!(), "::", stringify!($f)), run: Self::$f }
    };
}

impl<
        S: RecordStore<V> + Default + 'static,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
        HS: AsRef<[Host<Node<S, B, K, R, Q, P, V, PV, E>, V>]>
            + AsMut<[Host<Node<S, B, K, R, Q, P, V, PV, E>, V>]>
            + 'static,
        QS: AsRef<[Slot<Ev>]> + AsMut<[Slot<Ev>]> + 'static,
        BS: AsRef<[Datagram]> + AsMut<[Datagram]> + 'static,
    > Net<Node<S, B, K, R, Q, P, V, PV, E>, V, HS, QS, BS>
{
    /// Adds `n` nodes with `config`; each bootstraps from node 0 in turn and waits for it; then
    /// the network runs for a minute so that bucket refreshes settle.
    pub fn build(&mut self, n: usize, config: Config) {
        for _ in 0..n {
            self.add(config);
        }
        for i in 1..n {
            let done = self.query(i, |node, now| node.bootstrap(&[addr_of(0)], now));
            assert!(matches!(done.outcome, Outcome::Bootstrap(Ok(_))), "node {i}: {:?}", done.outcome);
        }
        self.run_for(Duration::from_secs(60));
    }

    /// Adds a node with a random id and `config`; its index.
    pub fn add(&mut self, config: Config) -> usize {
        let id = NodeId::random(&mut self.rng);
        self.add_with_id(id, config)
    }

    /// Adds a node with id `id` and `config`; its index.
    pub fn add_with_id(&mut self, id: NodeId, config: Config) -> usize {
        let now = self.now();
        let node = Node::new(id, config, S::default(), &mut self.rng, now);
        self.join(node)
    }

    /// The nodes that are up and hold a record under `key`.
    pub fn holders<'a>(&'a self, key: &'a Key) -> impl Iterator<Item = usize> + 'a {
        self.alive().filter(move |&i| self.node(i).store().get(key).is_some())
    }

    /// Every scenario of this module.
    pub const SCENARIOS: &'static [Scenario<Self>] = &[
        scenario!(every_node_learns_the_network),
        scenario!(a_value_put_on_one_node_is_read_from_every_other_node),
        scenario!(find_node_returns_the_target_itself_first),
        scenario!(providers_are_found_by_other_nodes),
        #[cfg(feature = "signed")]
        scenario!(signed_records_verify_and_only_move_forward),
        scenario!(silent_peers_time_out_and_do_not_stall_lookups),
        scenario!(garbage_datagrams_are_counted_and_the_node_keeps_serving),
        scenario!(commands_refuse_bad_input_with_typed_errors),
        scenario!(a_put_nobody_acknowledges_is_an_error_not_a_success),
        scenario!(a_partition_keeps_values_on_their_side_until_it_heals),
    ];

    /// Every node knows K peers (or all others, in a network of K nodes or fewer), and no
    /// datagram was dropped for lack of room.
    pub fn every_node_learns_the_network(&mut self) {
        let n = self.len();
        for i in 0..n {
            let known = self.node(i).routing().len();
            assert!(known >= K.min(n - 1), "node {i} knows {known} of {n} nodes");
        }
        assert_eq!(self.medium.counters().no_room, 0, "the test's datagram storage is too small");
    }

    /// Values, each put by its own node, reach between 3/4 K and K holders, and every other
    /// node reads each of them, all at once, with its kind; a key never put is not found.
    /// N / K values (1 to 10): about one record per node, whatever the nodes' store capacity.
    pub fn a_value_put_on_one_node_is_read_from_every_other_node(&mut self) {
        let n = self.len();
        let values = (n / K).clamp(1, 10) as u8;
        let mut reads = 0;
        for p in 0..values {
            let publisher = p as usize * 17 % n;
            let key = Key::hash(&[b'k', p]);
            let mut value = *b"h\xc3\xa9llo 0";
            value[7] += p;
            let done = self.query(publisher, |node, now| node.put(key, ValueKind::Text, &value, now));
            let Outcome::Put(Ok(acks)) = done.outcome else { panic!("put {p}: {:?}", done.outcome) };
            let stored = usize::from(acks.stored);
            assert!((3 * K / 4..=K).contains(&stored), "put {p} acknowledged by {stored}");
            for i in (0..n).filter(|&i| i != publisher) {
                let q = self.command(i, |node, now| node.get(key, now));
                assert!(q.is_ok(), "node {i}: {q:?}");
            }
            for i in (0..n).filter(|&i| i != publisher) {
                match self.next_done(i).outcome {
                    Outcome::Get(Ok(r)) => {
                        assert_eq!((r.kind, r.value()), (ValueKind::Text, &value[..]), "node {i}");
                        assert!(core::str::from_utf8(r.value()).is_ok());
                    }
                    other => panic!("node {i} could not read value {p}: {other:?}"),
                }
                reads += 1;
            }
        }
        assert_eq!(reads, usize::from(values) * (n - 1));
        let missing = self.query(n / 2, |node, now| node.get(Key::hash(b"never put"), now));
        assert_eq!(missing.outcome, Outcome::Get(Err(QueryError::NotFound)));
    }

    /// FIND_NODE of a node's id returns that node first, at its address, and the rest nearest
    /// first.
    pub fn find_node_returns_the_target_itself_first(&mut self) {
        let (asker, target) = (self.len() / 5, self.len() * 7 / 10);
        let id = self.node(target).id();
        let done = self.query(asker, |node, now| node.find_node(id.as_key(), now));
        let Outcome::FindNode(Ok(peers)) = done.outcome else { panic!("{:?}", done.outcome) };
        assert_eq!(peers.first().map(|p| (p.id, p.addr)), Some((id, addr_of(target as u32))));
        let key = id.as_key();
        assert!(peers.windows(2).all(|w| key.distance(&w[0].id) <= key.distance(&w[1].id)), "nearest first");
    }

    /// Two nodes provide a key on at least K/2 holders; a third finds both with their
    /// addresses; a key nobody provides has no providers.
    pub fn providers_are_found_by_other_nodes(&mut self) {
        let key = Key::hash(b"movie.mkv");
        for provider in [1, 2] {
            let done = self.query(provider, |node, now| node.provide(key, now));
            let Outcome::Provide(Ok(acks)) = done.outcome else { panic!("{:?}", done.outcome) };
            assert!(usize::from(acks.stored) >= K / 2, "{acks:?}");
        }
        let reader = self.len() - 2;
        let done = self.query(reader, |node, now| node.get_providers(key, now));
        let Outcome::GetProviders(Ok(found)) = done.outcome else { panic!("{:?}", done.outcome) };
        for provider in [1, 2] {
            let id = self.node(provider).id();
            let addr = addr_of(provider as u32);
            assert!(found.iter().any(|p| (p.id, p.addr) == (id, addr)), "provider {provider}: {found:?}");
        }
        let none = self.query(reader, |node, now| node.get_providers(Key::hash(b"nothing"), now));
        assert_eq!(none.outcome, Outcome::GetProviders(Err(QueryError::NotFound)));
    }

    /// A signed record is read back with its sequence number; a lower one is refused by every
    /// holder; compare-and-swap succeeds only against the current sequence number. One writer
    /// (as with BEP 44 items): its records' holders are the K closest it finds, and another
    /// writer may find a slightly different set, where a holder of an older version would take a
    /// compare-and-swap against that version.
    #[cfg(feature = "signed")]
    pub fn signed_records_verify_and_only_move_forward(&mut self) {
        use crate::wire::StoreStatus;
        let n = self.len();
        let kp = crate::signed::Keypair::from_secret(&[42; 32]);
        assert!(matches!(self.put_signed_from(3, &kp, 1, b"one", None), Outcome::Put(Ok(_))));
        self.assert_signed(n - 3, &kp, 1, b"one");
        assert!(matches!(self.put_signed_from(3, &kp, 2, b"two", None), Outcome::Put(Ok(_))));
        self.assert_signed(n - 2, &kp, 2, b"two");
        // The writer refuses a stale put itself; a node that holds no copy sends it, and the
        // holders refuse it.
        let key = crate::signed::key_for(&kp.public_key(), b"salt");
        let other =
            (0..n).find(|&i| self.node(i).store().get(&key).is_none()).expect("a node without a copy");
        let refused = |o: &Outcome<V>, why| matches!(o, Outcome::Put(Err(QueryError::NoAcks { refusal: Some(r), .. })) if *r == why);
        for (seq, value, cas, why) in
            [(1, &b"old"[..], None, StoreStatus::StaleSeq), (3, b"three", Some(1), StoreStatus::CasMismatch)]
        {
            let local = self
                .command(3, |node, now| node.put_signed(&kp, b"salt", seq, ValueKind::Text, value, cas, now));
            assert_eq!(local, Err(crate::node::Error::Conflict(why)));
            let remote = self.put_signed_from(other, &kp, seq, value, cas);
            assert!(refused(&remote, why), "{remote:?}");
        }
        assert!(matches!(self.put_signed_from(3, &kp, 3, b"three", Some(2)), Outcome::Put(Ok(_))));
        self.assert_signed(n - 1, &kp, 3, b"three");
    }

    #[cfg(feature = "signed")]
    fn put_signed_from(
        &mut self,
        i: usize,
        kp: &crate::signed::Keypair,
        seq: u64,
        value: &[u8],
        cas: Option<u64>,
    ) -> Outcome<V> {
        self.query(i, |node, now| node.put_signed(kp, b"salt", seq, ValueKind::Text, value, cas, now)).outcome
    }

    /// Node `i` finds `kp`'s record with sequence number `seq` and value `value`.
    #[cfg(feature = "signed")]
    fn assert_signed(&mut self, i: usize, kp: &crate::signed::Keypair, seq: u64, value: &[u8]) {
        let pk = kp.public_key();
        match self.query(i, |node, now| node.get_signed(&pk, b"salt", now)).outcome {
            Outcome::Get(Ok(r)) => assert_eq!((r.signer.map(|s| s.seq), r.value()), (Some(seq), value)),
            other => panic!("node {i}: {other:?}"),
        }
    }

    /// With a third of the nodes silent (holders among them), lookups still return K/2 peers
    /// within 10 s and find the value; a lookup of a silent node times out on it and finishes.
    pub fn silent_peers_time_out_and_do_not_stall_lookups(&mut self) {
        let n = self.len();
        let key = Key::hash(b"resilient");
        let done = self.query(0, |node, now| node.put(key, ValueKind::Bytes, &[1, 2, 3], now));
        assert!(matches!(done.outcome, Outcome::Put(Ok(_))), "{:?}", done.outcome);
        for i in (2..n).step_by(3) {
            self.kill(i);
        }
        let silent = self.node(2).id();
        for reader in [1, n / 2, n - 1] {
            let reader = if self.is_up(reader) { reader } else { reader - 1 };
            let before = self.node(reader).stats().timeouts;
            let done = self.query(reader, |node, now| node.find_node(Key::hash(b"anywhere"), now));
            assert!(
                matches!(done.outcome, Outcome::FindNode(Ok(ref v)) if v.len() >= K / 2),
                "node {reader}: {:?}",
                done.outcome
            );
            let took = done.stats.finished.saturating_since(done.stats.started);
            assert!(took < Duration::from_secs(10), "lookup took {took:?}");
            let done = self.query(reader, |node, now| node.get(key, now));
            assert!(
                matches!(&done.outcome, Outcome::Get(Ok(r)) if r.value() == [1, 2, 3]),
                "{:?}",
                done.outcome
            );
            let done = self.query(reader, |node, now| node.find_node(silent.as_key(), now));
            assert!(matches!(done.outcome, Outcome::FindNode(_)));
            assert!(self.node(reader).stats().timeouts > before, "requests to silent peers time out");
        }
    }

    /// 500 random datagrams (half with the current version byte) are each counted once, as
    /// malformed or as a request; the node then still stores, serves and is found.
    pub fn garbage_datagrams_are_counted_and_the_node_keeps_serving(&mut self) {
        let n = self.len();
        let stranger = PeerAddr::V4([192, 0, 2, 1], PORT);
        let before = *self.node(0).stats();
        let mut junk = [0u8; 300];
        for k in 0..500 {
            self.rng.fill_bytes(&mut junk);
            if k % 2 == 0 {
                junk[0] = crate::wire::VERSION;
            }
            let now = self.now();
            self.node_mut(0).handle_datagram(now, stranger, &junk[..k % junk.len()]);
            self.flush(0);
        }
        let after = *self.node(0).stats();
        let accounted = |s: &Stats| {
            s.dropped_malformed
                + s.dropped_version
                + s.dropped_too_large
                + s.dropped_unmatched
                + s.dropped_own_id
                + s.requests_in.total()
        };
        assert_eq!(after.datagrams_in - before.datagrams_in, 500);
        assert_eq!(accounted(&after) - accounted(&before), 500, "{after:?}");
        assert!(after.dropped_malformed > before.dropped_malformed);
        let key = Key::hash(b"after-garbage");
        let done = self.query(0, |node, now| node.put(key, ValueKind::Bytes, b"ok", now));
        assert!(matches!(done.outcome, Outcome::Put(Ok(_))), "{:?}", done.outcome);
        let done = self.query(n / 2, |node, now| node.get(key, now));
        assert!(matches!(&done.outcome, Outcome::Get(Ok(r)) if r.value() == b"ok"), "{:?}", done.outcome);
        let id = self.node(0).id();
        let done = self.query(n - 1, |node, now| node.find_node(id.as_key(), now));
        let Outcome::FindNode(Ok(peers)) = done.outcome else { panic!("{:?}", done.outcome) };
        assert_eq!(peers.first().map(|p| p.id), Some(id));
    }

    /// A value over the node's limit is refused with a typed error that says the limit, before
    /// anything is sent; a node without peers refuses lookups; an unroutable bootstrap address
    /// is refused.
    pub fn commands_refuse_bad_input_with_typed_errors(&mut self) {
        let max = V.min(MAX_VALUE_LEN);
        let big = [b'x'; MAX_VALUE_LEN + 1];
        let sent = self.medium.counters().sent;
        let err =
            self.command(1, |node, now| node.put(Key::hash(b"big"), ValueKind::Bytes, &big[..=max], now));
        assert_eq!(err, Err(Error::ValueTooLarge { len: max + 1, max }));
        let (mut text, mut expected) = (heapless::String::<96>::new(), heapless::String::<96>::new());
        write!(text, "{}", Error::ValueTooLarge { len: max + 1, max }).unwrap();
        write!(expected, "value of {} bytes is over the limit of {max} bytes", max + 1).unwrap();
        assert_eq!(text, expected);
        assert_eq!(self.medium.counters().sent, sent, "nothing was sent");
        let lonely = self.add(Config::default());
        assert_eq!(self.command(lonely, |node, now| node.get(Key::hash(b"k"), now)), Err(Error::NoPeers));
        let nowhere = PeerAddr::V4([0, 0, 0, 0], 0);
        assert_eq!(
            self.command(lonely, |node, now| node.bootstrap(&[nowhere], now)),
            Err(Error::InvalidAddress)
        );
    }

    /// With every other node silent, a put ends in an error, not in a success.
    pub fn a_put_nobody_acknowledges_is_an_error_not_a_success(&mut self) {
        for i in 1..self.len() {
            self.kill(i);
        }
        let done = self.query(0, |node, now| node.put(Key::hash(b"k"), ValueKind::Bytes, b"v", now));
        assert!(
            matches!(done.outcome, Outcome::Put(Err(QueryError::NoPeers | QueryError::NoAcks { .. }))),
            "{:?}",
            done.outcome
        );
    }
    /// While the network is cut in two, a value put on one side is held and found only there;
    /// once the cut heals, republishing brings both values to K holders and each side finds
    /// the other's.
    pub fn a_partition_keeps_values_on_their_side_until_it_heals(&mut self) {
        let n = self.len();
        let half = n / 2;
        self.medium.link.island = Some(Island { start: half as u32, end: n as u32 });
        let sides = [(1, Key::hash(b"west"), n - 1), (n - 1, Key::hash(b"east"), 1)];
        for (writer, key, _) in sides {
            let done = self.query(writer, |node, now| node.put(key, ValueKind::Bytes, b"v", now));
            assert!(matches!(done.outcome, Outcome::Put(Ok(_))), "{:?}", done.outcome);
            let west = writer < half;
            assert!(self.holders(&key).all(|i| (i < half) == west), "a holder across the cut");
        }
        for (_, key, reader) in sides {
            let done = self.query(reader, |node, now| node.get(key, now));
            assert_eq!(done.outcome, Outcome::Get(Err(QueryError::NotFound)), "read across the cut");
        }
        assert!(self.medium.counters().cut > 0);
        self.medium.link.island = None;
        self.run_for(Duration::from_secs(2 * 3600));
        for (_, key, reader) in sides {
            let done = self.query(reader, |node, now| node.get(key, now));
            assert!(matches!(&done.outcome, Outcome::Get(Ok(r)) if r.value() == b"v"), "{:?}", done.outcome);
            let holders = self.holders(&key).count();
            assert!(holders >= K.min(n - 1), "{holders} holders after the cut healed");
        }
    }
}
