//! Ten nodes of the `embedded` preset in memory on virtual time: every datagram one node
//! sends is delivered to the other after 2 ms, timers fire in order, time jumps to the next
//! thing that happens. Nothing leaves the emulated chip.

use core::time::Duration;

use heapless::{Deque, Vec};
use kad_core::presets::embedded::{Node, Store, VALUE};
use kad_core::wire::MAX_DATAGRAM;
use kad_core::{Config, Event, Instant, Key, NodeId, Outcome, PeerAddr, QueryId, ValueKind};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::Test;

pub const TESTS: &[Test] = &[
    Test { name: "net::ten_nodes_bootstrap_from_one_and_learn_each_other", run: bootstrap },
    Test { name: "net::a_value_put_on_one_node_is_read_from_every_other_node", run: put_then_get_everywhere },
    Test { name: "net::find_node_returns_the_target_itself_first", run: find_node_finds_the_target },
    Test { name: "net::a_provider_is_found_by_another_node", run: providers },
    Test { name: "net::a_signed_record_is_verified_and_read_back_with_its_sequence", run: signed_record },
    Test { name: "net::a_silent_peer_times_out_and_the_get_still_succeeds", run: silent_peer },
    Test { name: "net::garbage_datagrams_are_counted_and_the_node_still_answers", run: garbage },
    Test { name: "net::a_value_over_the_preset_limit_is_refused_before_sending", run: too_large },
];

const N: usize = 10;
const LATENCY: Duration = Duration::from_millis(2);
const QUEUE: usize = 96;

struct Datagram {
    at: Instant,
    from: usize,
    to: usize,
    len: usize,
    bytes: [u8; MAX_DATAGRAM],
}

fn addr(i: usize) -> PeerAddr {
    PeerAddr::V4([10, 0, 0, i as u8 + 1], 4000)
}

fn index(a: PeerAddr) -> Option<usize> {
    match a {
        PeerAddr::V4([10, 0, 0, n], 4000) if n >= 1 && (n as usize) <= N => Some(n as usize - 1),
        _ => None,
    }
}

struct Net {
    nodes: [Node; N],
    down: [bool; N],
    now: Instant,
    queue: Deque<Datagram, QUEUE>,
    /// Finished queries: (node, id, outcome).
    done: Vec<(usize, QueryId, Outcome<VALUE>), 8>,
    /// Datagrams lost because the in-memory queue was full (as a real network would).
    lost: u32,
}

impl Net {
    fn new(seed: u64) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let now = Instant::from_millis(1);
        let nodes = core::array::from_fn(|_| {
            Node::new(NodeId::random(&mut rng), Config::default(), Store::new(), &mut rng, now)
        });
        Net { nodes, down: [false; N], now, queue: Deque::new(), done: Vec::new(), lost: 0 }
    }

    /// A network whose nodes all bootstrapped from node 0.
    fn joined(seed: u64) -> Net {
        let mut net = Net::new(seed);
        for i in 1..N {
            let q = net.nodes[i].bootstrap(&[addr(0)], net.now).expect("a routable address");
            net.flush(i);
            assert!(matches!(net.wait(i, q), Outcome::Bootstrap(Ok(_))));
        }
        net.run_for(Duration::from_secs(5));
        net
    }

    /// Drains a node's datagrams into the network and keeps its finished queries.
    fn flush(&mut self, i: usize) {
        let mut buf = [0u8; MAX_DATAGRAM];
        while let Some(t) = self.nodes[i].poll_transmit(&mut buf) {
            let Some(to) = index(t.to) else { continue };
            let d = Datagram { at: self.now + LATENCY, from: i, to, len: t.len, bytes: buf };
            if self.queue.push_back(d).is_err() {
                self.lost += 1;
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            if let Event::QueryDone { id, outcome, .. } = e {
                if self.done.is_full() {
                    self.done.remove(0);
                }
                let _ = self.done.push((i, id, outcome));
            }
        }
    }

    /// Handles the next datagram or timer due by `until`; false when there is none.
    fn step(&mut self, until: Instant) -> bool {
        let next_datagram = self.queue.front().map(|d| d.at);
        let next_timer = (0..N)
            .filter(|&i| !self.down[i])
            .map(|i| (self.nodes[i].poll_timeout(), i))
            .min();
        match (next_datagram, next_timer) {
            (Some(d), t) if d <= until && t.is_none_or(|(t, _)| d <= t) => {
                let dg = self.queue.pop_front().expect("peeked");
                self.now = self.now.max(dg.at);
                if !self.down[dg.to] && !self.down[dg.from] {
                    self.nodes[dg.to].handle_datagram(self.now, addr(dg.from), &dg.bytes[..dg.len]);
                    self.flush(dg.to);
                }
                true
            }
            (_, Some((t, i))) if t <= until => {
                self.now = self.now.max(t);
                self.nodes[i].handle_timeout(self.now);
                self.flush(i);
                true
            }
            _ => false,
        }
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        // Bounded: each step handles one datagram or timer, and time only moves forward.
        for _ in 0..200_000 {
            if !self.step(until) {
                self.now = until;
                return;
            }
        }
        panic!("the network did not settle");
    }

    /// Runs until node `i`'s query `q` finishes (at most 60 s of virtual time) and returns it.
    fn wait(&mut self, i: usize, q: QueryId) -> Outcome<VALUE> {
        let until = self.now + Duration::from_secs(60);
        for _ in 0..200_000 {
            if let Some(pos) = self.done.iter().position(|(n, id, _)| *n == i && *id == q) {
                return self.done.remove(pos).2;
            }
            if !self.step(until) {
                break;
            }
        }
        panic!("query {:?} of node {} did not finish within 60 s of virtual time", q, i);
    }
}

fn bootstrap() {
    let net = Net::joined(1);
    for (i, n) in net.nodes.iter().enumerate() {
        // K = 8 of 9 others fit in a full bucket; every node knows most of the network.
        assert!(n.routing().len() >= 5, "node {i} knows only {} peers", n.routing().len());
    }
    assert_eq!(net.lost, 0);
}

fn put_then_get_everywhere() {
    let mut net = Net::joined(2);
    let key = Key::hash(b"greeting");
    let q = net.nodes[3].put(key, ValueKind::Text, b"hello from a Cortex-M4", net.now).unwrap();
    net.flush(3);
    let Outcome::Put(Ok(acks)) = net.wait(3, q) else { panic!("put failed") };
    assert!(acks.stored >= 5, "stored on {} of {}", acks.stored, acks.tried);
    for i in (0..N).filter(|&i| i != 3) {
        let q = net.nodes[i].get(key, net.now).unwrap();
        net.flush(i);
        match net.wait(i, q) {
            Outcome::Get(Ok(r)) => {
                assert_eq!((r.kind, r.value()), (ValueKind::Text, &b"hello from a Cortex-M4"[..]))
            }
            other => panic!("node {i}: {other:?}"),
        }
    }
    let missing = net.nodes[5].get(Key::hash(b"never put"), net.now).unwrap();
    net.flush(5);
    assert!(matches!(net.wait(5, missing), Outcome::Get(Err(kad_core::QueryError::NotFound))));
}

fn find_node_finds_the_target() {
    let mut net = Net::joined(3);
    let target = net.nodes[7].id();
    let q = net.nodes[2].find_node(target.as_key(), net.now).unwrap();
    net.flush(2);
    let Outcome::FindNode(Ok(peers)) = net.wait(2, q) else { panic!("find_node failed") };
    assert_eq!(peers.first().map(|p| (p.id, p.addr)), Some((target, addr(7))));
    let key = target.as_key();
    assert!(peers.windows(2).all(|w| key.distance(&w[0].id) <= key.distance(&w[1].id)), "nearest first");
}

fn providers() {
    let mut net = Net::joined(4);
    let key = Key::hash(b"firmware-v2.bin");
    let q = net.nodes[1].provide(key, net.now).unwrap();
    net.flush(1);
    assert!(matches!(net.wait(1, q), Outcome::Provide(Ok(a)) if a.stored > 0));
    let q = net.nodes[8].get_providers(key, net.now).unwrap();
    net.flush(8);
    let Outcome::GetProviders(Ok(found)) = net.wait(8, q) else { panic!("no providers") };
    assert!(found.iter().any(|p| p.id == net.nodes[1].id() && p.addr == addr(1)));
}

fn signed_record() {
    use kad_core::signed::Keypair;
    let mut net = Net::joined(5);
    let kp = Keypair::from_secret(&[42; 32]);
    for seq in [1u64, 2] {
        let value: &[u8] = if seq == 1 { b"v1" } else { b"v2" };
        let q = net.nodes[4].put_signed(&kp, b"profile", seq, ValueKind::Text, value, None, net.now).unwrap();
        net.flush(4);
        assert!(matches!(net.wait(4, q), Outcome::Put(Ok(_))), "seq {seq}");
    }
    let q = net.nodes[9].get_signed(&kp.public_key(), b"profile", net.now).unwrap();
    net.flush(9);
    let Outcome::Get(Ok(r)) = net.wait(9, q) else { panic!("signed get failed") };
    assert_eq!((r.value(), r.signer.map(|s| s.seq)), (&b"v2"[..], Some(2)));
    // An older sequence number is refused by every holder.
    let q = net.nodes[4].put_signed(&kp, b"profile", 1, ValueKind::Text, b"old", None, net.now).unwrap();
    net.flush(4);
    assert!(matches!(net.wait(4, q), Outcome::Put(Err(_))));
}

fn silent_peer() {
    let mut net = Net::joined(6);
    let key = Key::hash(b"resilient");
    let q = net.nodes[0].put(key, ValueKind::Bytes, &[1, 2, 3], net.now).unwrap();
    net.flush(0);
    assert!(matches!(net.wait(0, q), Outcome::Put(Ok(_))));
    net.down[5] = true;
    net.down[6] = true;
    let before = net.nodes[2].stats().timeouts;
    let q = net.nodes[2].get(key, net.now).unwrap();
    net.flush(2);
    let Outcome::Get(Ok(r)) = net.wait(2, q) else { panic!("get failed with two peers silent") };
    assert_eq!(r.value(), &[1, 2, 3]);
    // Ask the silent ones directly: the lookup must time out on them and still finish.
    let q = net.nodes[2].find_node(net.nodes[5].id().as_key(), net.now).unwrap();
    net.flush(2);
    assert!(matches!(net.wait(2, q), Outcome::FindNode(_)));
    assert!(net.nodes[2].stats().timeouts > before, "requests to silent peers time out");
}

fn garbage() {
    let mut net = Net::joined(7);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut noise = [0u8; 300];
    let before = net.nodes[0].stats().dropped_malformed;
    for _ in 0..500 {
        let len = (rng.next_u32() as usize) % noise.len();
        rng.fill_bytes(&mut noise[..len]);
        net.nodes[0].handle_datagram(net.now, addr(9), &noise[..len]);
        net.flush(0);
    }
    assert!(net.nodes[0].stats().dropped_malformed > before);
    let q = net.nodes[9].find_node(net.nodes[0].id().as_key(), net.now).unwrap();
    net.flush(9);
    let Outcome::FindNode(Ok(peers)) = net.wait(9, q) else { panic!("node 0 stopped answering") };
    assert_eq!(peers.first().map(|p| p.id), Some(net.nodes[0].id()));
}

fn too_large() {
    let mut net = Net::joined(8);
    let big = [b'x'; VALUE + 1];
    let err = net.nodes[1].put(Key::hash(b"big"), ValueKind::Bytes, &big, net.now).unwrap_err();
    assert_eq!(err, kad_core::Error::ValueTooLarge { len: VALUE + 1, max: VALUE });
    net.flush(1);
    assert!(net.queue.is_empty(), "nothing was sent");
}
