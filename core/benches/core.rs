//! Micro-benchmarks of the hot paths: the codec, the routing table and a whole lookup.
//!
//! `cargo bench -p kad-core --bench core`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kad_core::routing::{Contact, RoutingConfig, RoutingTable};
use kad_core::wire::{self, Body, Flags, Header, Message, Peer, TxId, MAX_CONTACTS};
use kad_core::{Config, Instant, Key, NodeId, PeerAddr};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[path = "../tests/harness/mod.rs"]
mod harness;

fn codec(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(1);
    let contacts: heapless::Vec<Peer, MAX_CONTACTS> = (0..MAX_CONTACTS)
        .map(|i| Peer {
            id: NodeId::random(&mut rng),
            addr: PeerAddr::V4([10, 0, 0, i as u8], 4000 + i as u16),
        })
        .collect();
    let msg = Message {
        header: Header {
            version: wire::VERSION,
            txid: TxId([1, 2, 3, 4]),
            sender: NodeId::random(&mut rng),
            flags: Flags(0),
            token: kad_core::token::Token([7; 8]),
        },
        body: Body::Nodes { contacts },
    };
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    c.bench_function("codec/encode+decode 20-contact reply", |b| {
        b.iter(|| {
            let n = wire::encode(black_box(&msg), &mut buf).unwrap();
            black_box(wire::decode(&buf[..n]).unwrap());
        })
    });
}

type HostTable = RoutingTable<32, 20, 5>;

fn routing(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(2);
    let own = NodeId::random(&mut rng);
    let ids: Vec<NodeId> = (0..1000).map(|_| NodeId::random(&mut rng)).collect();
    let addr = PeerAddr::V4([10, 0, 0, 1], 4000);
    c.bench_function("routing/insert 1000 random ids", |b| {
        b.iter_batched(
            || HostTable::new(own, RoutingConfig::default(), Instant::ZERO),
            |mut t| {
                for id in &ids {
                    black_box(t.insert(*id, addr, true, Instant::ZERO));
                }
                t
            },
            BatchSize::SmallInput,
        )
    });
    // A table as a node in a large network has it: many random ids and ids near the own one.
    let mut t = HostTable::new(own, RoutingConfig::default(), Instant::ZERO);
    for _ in 0..20_000 {
        let mut b = *NodeId::random(&mut rng).as_bytes();
        let keep = rng.gen_range(0..16);
        for bit in 0..keep {
            let (i, m) = (bit / 8, 0x80u8 >> (bit % 8));
            b[i] = (b[i] & !m) | (own.as_bytes()[i] & m);
        }
        t.insert(NodeId::from_bytes(b), addr, true, Instant::ZERO);
    }
    let target = Key::random(&mut rng);
    let mut out = [Contact::new(own, addr, Instant::ZERO); 20];
    c.bench_function(&format!("routing/closest 20 of {}", t.len()), |b| {
        b.iter(|| black_box(t.closest(black_box(&target), None, &mut out)))
    });
}

fn lookup(c: &mut Criterion) {
    let mut net = harness::build(500, 3, Config::default());
    let mut rng = SmallRng::seed_from_u64(4);
    c.bench_function("lookup/find_node in a 500-node in-memory network", |b| {
        b.iter(|| {
            let i = rng.gen_range(0..500);
            let target = Key::random(&mut rng);
            black_box(net.query(i, |node, now| node.find_node(target, now)))
        })
    });
}

criterion_group!(benches, codec, routing, lookup);
criterion_main!(benches);
