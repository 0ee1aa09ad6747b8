//! An in-memory network of N real kad-core nodes on virtual time (the quinn-proto `Pair`
//! idea, for N nodes): datagrams are delivered after a seeded random latency, timers fire in
//! order, and time jumps straight to the next thing that happens.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::time::Duration;

use kad_core::wire::MAX_DATAGRAM;
use kad_core::{Config, Event, Instant, Key, MemoryStore, Node, NodeId, Outcome, PeerAddr, QueryId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Value capacity of test nodes.
pub const V: usize = 1000;
/// The test node: K = 20, 8 queries, 64 records.
pub type TestNode = Node<MemoryStore<64, V>, 24, 20, 4, 8, 64, V, 64, 16>;

enum What {
    Deliver { from: usize, to: usize, bytes: Vec<u8> },
    Timer { node: usize },
}

struct Scheduled {
    at: Instant,
    seq: u64,
    what: What,
}
impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The network.
pub struct Net {
    pub nodes: Vec<Box<TestNode>>,
    pub down: HashSet<usize>,
    pub now: Instant,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    pub rng: SmallRng,
    latency: (u64, u64),
    /// Finished queries: (node, event).
    pub done: Vec<(usize, Event<V>)>,
    pub delivered: u64,
}

pub fn addr(i: usize) -> PeerAddr {
    PeerAddr::V4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000)
}

fn index(a: PeerAddr) -> Option<usize> {
    match a {
        PeerAddr::V4([10, a, b, c], 4000) => Some(((a as usize) << 16) | ((b as usize) << 8) | c as usize),
        _ => None,
    }
}

impl Net {
    /// An empty network with latencies uniform in `latency_ms`.
    pub fn new(seed: u64, latency_ms: (u64, u64)) -> Self {
        Net {
            nodes: Vec::new(),
            down: HashSet::new(),
            now: Instant::from_millis(1),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: SmallRng::seed_from_u64(seed),
            latency: latency_ms,
            done: Vec::new(),
            delivered: 0,
        }
    }

    /// Adds a node with a random id.
    pub fn add(&mut self, config: Config) -> usize {
        let id = NodeId::random(&mut self.rng);
        self.add_with_id(id, config)
    }

    /// Adds a node with the given id.
    pub fn add_with_id(&mut self, id: NodeId, config: Config) -> usize {
        let node = Box::new(TestNode::new(id, config, MemoryStore::new(), &mut self.rng, self.now));
        self.nodes.push(node);
        let i = self.nodes.len() - 1;
        self.flush(i);
        i
    }

    /// Builds a network of `n` nodes, each bootstrapping from node 0, and lets it settle.
    pub fn build(n: usize, seed: u64, config: Config) -> Self {
        let mut net = Net::new(seed, (5, 50));
        for _ in 0..n {
            net.add(config);
        }
        for i in 1..n {
            let q = net.nodes[i].bootstrap(&[addr(0)], net.now).unwrap();
            net.flush(i);
            if i % 20 == 0 {
                net.wait(i, q);
            }
        }
        net.run_for(Duration::from_secs(60));
        net
    }

    fn schedule(&mut self, at: Instant, what: What) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq: self.seq, what }));
    }

    /// Drains a node's outputs into the network after any input.
    pub fn flush(&mut self, i: usize) {
        let mut buf = [0u8; MAX_DATAGRAM];
        while let Some(t) = self.nodes[i].poll_transmit(&mut buf) {
            if let Some(to) = index(t.to) {
                let lat = self.rng.gen_range(self.latency.0..=self.latency.1);
                let at = self.now + Duration::from_millis(lat);
                self.schedule(at, What::Deliver { from: i, to, bytes: buf[..t.len].to_vec() });
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            if matches!(e, Event::QueryDone { .. }) {
                self.done.push((i, e));
            }
        }
        let t = self.nodes[i].poll_timeout();
        self.schedule(t.max(self.now), What::Timer { node: i });
    }

    /// Processes the next scheduled thing; false when nothing is left before `until`.
    pub fn step(&mut self, until: Instant) -> bool {
        let Some(Reverse(next)) = self.queue.peek() else { return false };
        if next.at > until {
            return false;
        }
        let Reverse(s) = self.queue.pop().expect("peeked");
        self.now = self.now.max(s.at);
        match s.what {
            What::Deliver { from, to, bytes } => {
                if to < self.nodes.len() && !self.down.contains(&to) && !self.down.contains(&from) {
                    self.delivered += 1;
                    self.nodes[to].handle_datagram(self.now, addr(from), &bytes);
                    self.flush(to);
                }
            }
            What::Timer { node } => {
                if !self.down.contains(&node) {
                    // A timer entry may be stale (the node's deadline moved); only act on the
                    // current one.
                    if self.nodes[node].poll_timeout() <= self.now {
                        self.nodes[node].handle_timeout(self.now);
                        self.flush(node);
                    }
                }
            }
        }
        true
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs until node `i` reports query `q` done (at most one virtual hour) and returns it.
    pub fn wait(&mut self, i: usize, q: QueryId) -> (Outcome<V>, kad_core::QueryStats) {
        let until = self.now + Duration::from_secs(3600);
        loop {
            if let Some(pos) = self
                .done
                .iter()
                .position(|(n, e)| *n == i && matches!(e, Event::QueryDone { id, .. } if *id == q))
            {
                let (_, e) = self.done.remove(pos);
                let Event::QueryDone { outcome, stats, .. } = e else { unreachable!() };
                return (outcome, stats);
            }
            assert!(self.step(until), "query {q:?} of node {i} did not finish within an hour");
        }
    }

    /// Stops a node: it neither sends nor receives from now on.
    pub fn kill(&mut self, i: usize) {
        self.down.insert(i);
    }

    /// Nodes that are up.
    pub fn alive(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|i| !self.down.contains(i))
    }

    /// Indices of up nodes holding `key` in their store.
    pub fn holders(&self, key: &Key) -> Vec<usize> {
        use kad_core::RecordStore;
        self.alive().filter(|&i| self.nodes[i].store().get(key).is_some()).collect()
    }
}
