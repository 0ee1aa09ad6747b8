//! Property tests: routing invariants, codec round trips, and arbitrary input never panicking.

use kad_core::routing::{Contact, RoutingConfig, RoutingTable};
use kad_core::store::ValueKind;
use kad_core::wire::{
    self, Body, Bytes, Flags, Header, Message, Peer, StoreStatus, TxId, WireRecord, WireSignature,
    MAX_CONTACTS, MAX_PROVIDERS,
};
use kad_core::{Config, Instant, Key, MemoryStore, Node, NodeId, Output, PeerAddr};
use proptest::prelude::*;
use rand::SeedableRng;

fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 20]>().prop_map(NodeId::from_bytes)
}

fn peer_addr() -> impl Strategy<Value = PeerAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| PeerAddr::V4(a, p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| PeerAddr::V6(a, p)),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Insert(NodeId, u8),
    Fail(usize),
    Alive(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (node_id(), any::<u8>()).prop_map(|(id, a)| Op::Insert(id, a)),
        1 => any::<usize>().prop_map(Op::Fail),
        1 => any::<usize>().prop_map(Op::Alive),
    ]
}

/// Ids sharing a long prefix with `own` exercise splitting; random ids fill the far buckets.
fn near(own: NodeId, id: NodeId, bits: u8) -> NodeId {
    let mut b = *id.as_bytes();
    let keep = (bits % 24) as usize;
    for bit in 0..keep {
        let (i, m) = (bit / 8, 0x80u8 >> (bit % 8));
        b[i] = (b[i] & !m) | (own.as_bytes()[i] & m);
    }
    NodeId::from_bytes(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn routing_invariants_hold_under_any_sequence(own in node_id(), ops in prop::collection::vec(op(), 1..400), target in any::<[u8; 20]>()) {
        let mut t = RoutingTable::<12, 4, 2>::new(own, RoutingConfig::default(), Instant::ZERO);
        let mut known: Vec<NodeId> = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            let now = Instant::from_millis(n as u64);
            match op {
                Op::Insert(id, bits) => {
                    let id = if bits % 3 == 0 { own } else { near(own, id, bits) };
                    t.insert(id, PeerAddr::V4([127, 0, 0, 1], 1 + bits as u16), true, now);
                    known.push(id);
                }
                Op::Fail(i) if !known.is_empty() => { t.on_failure(&known[i % known.len()]); }
                Op::Alive(i) if !known.is_empty() => t.on_alive(&known[i % known.len()], None, now),
                _ => {}
            }
            prop_assert!(t.bucket_sizes().all(|s| s <= 4), "a bucket holds more than K");
            prop_assert!(t.get(&own).is_none(), "own id present");
            prop_assert!(t.bucket_count() <= 12);
        }
        // No duplicates.
        let mut ids: Vec<NodeId> = t.iter().map(|c| c.id).collect();
        let total = ids.len();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), total);
        // closest() is sorted and complete: it equals the brute-force nearest.
        let target = Key::from_bytes(target);
        let mut out = [Contact::new(own, PeerAddr::V4([0; 4], 0), Instant::ZERO); 6];
        let n = t.closest(&target, None, &mut out);
        let mut all: Vec<NodeId> = t.iter().map(|c| c.id).collect();
        all.sort_by_key(|id| target.distance(id));
        prop_assert_eq!(n, all.len().min(6));
        let got: Vec<NodeId> = out[..n].iter().map(|c| c.id).collect();
        prop_assert_eq!(&got[..], &all[..n]);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1400)) {
        let _ = wire::decode(&bytes);
        let mut versioned = bytes.clone();
        if !versioned.is_empty() { versioned[0] = wire::VERSION; }
        let _ = wire::decode(&versioned);
    }

    #[test]
    fn a_node_survives_arbitrary_datagrams(datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1300), 1..40), seed in any::<u64>()) {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut node: Node<MemoryStore<4, 64>, 8, 4, 1, 2, 4, 64, 4, 2> =
            Node::new(NodeId::random(&mut rng), Config::default(), MemoryStore::new(), &mut rng, Instant::ZERO);
        let mut buf = [0u8; wire::MAX_DATAGRAM];
        let fed = datagrams.len();
        for (n, mut d) in datagrams.into_iter().enumerate() {
            if n % 2 == 0 && !d.is_empty() { d[0] = wire::VERSION; }
            let now = Instant::from_millis(n as u64 * 500);
            node.handle_datagram(now, PeerAddr::V4([127, 0, 0, 2], 9), &d);
            node.handle_timeout(now);
            loop {
                match node.poll_output(&mut buf) {
                    Output::Transmit(t) => prop_assert!(t.len <= wire::MAX_DATAGRAM),
                    Output::Event(_) => {}
                    Output::Timeout(_) => break,
                }
            }
        }
        prop_assert_eq!(node.stats().datagrams_in as usize, fed);
    }

    #[test]
    fn a_node_answers_or_drops_every_valid_or_mutated_message(parts in message_parts(), flip in any::<(usize, u8)>(), seed in any::<u64>()) {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut node: Node<MemoryStore<4, 1000>, 8, 4, 1, 2, 4, 1000, 4, 2> =
            Node::new(NodeId::random(&mut rng), Config::default(), MemoryStore::new(), &mut rng, Instant::ZERO);
        let mut buf = [0u8; wire::MAX_DATAGRAM];
        let mut out = [0u8; wire::MAX_DATAGRAM];
        for (i, body) in all_bodies(&parts).into_iter().enumerate() {
            let len = wire::encode(&Message { header: parts.0, body }, &mut buf).unwrap();
            let now = Instant::from_millis(i as u64);
            node.handle_datagram(now, PeerAddr::V4([127, 0, 0, 2], 9), &buf[..len]);
            let at = flip.0 % len;
            buf[at] ^= flip.1 | 1;
            node.handle_datagram(now, PeerAddr::V4([127, 0, 0, 2], 9), &buf[..len]);
            loop {
                match node.poll_output(&mut out) {
                    Output::Transmit(t) => {
                        prop_assert!(wire::decode(&out[..t.len]).is_ok(), "the node sent an undecodable datagram")
                    }
                    Output::Event(_) => {}
                    Output::Timeout(_) => break,
                }
            }
        }
    }

    #[test]
    fn messages_round_trip(parts in message_parts()) {
        let mut buf = [0u8; wire::MAX_DATAGRAM];
        for body in all_bodies(&parts) {
            let m = Message { header: parts.0, body };
            let len = wire::encode(&m, &mut buf).unwrap();
            prop_assert_eq!(wire::decode(&buf[..len]), Ok(m));
        }
    }
}

/// One message body of every kind, filled from `parts`.
fn all_bodies(parts: &Parts) -> Vec<Body<'_>> {
    let (_, kind, id, addr, data, salt_len, n) = parts;
    let (id, addr, n) = (*id, *addr, *n);
    let contacts: heapless::Vec<Peer, MAX_CONTACTS> =
        (0..n.min(MAX_CONTACTS)).map(|_| Peer { id, addr }).collect();
    let record = WireRecord {
        key: id.as_key(),
        kind: *kind,
        ttl_secs: n as u32,
        cached: n % 2 == 0,
        data: Bytes(data),
        signature: (n % 3 == 0).then_some(WireSignature {
            public_key: kad_core::PublicKey([n as u8; 32]),
            salt_len: *salt_len,
            seq: n as u64,
            signature: kad_core::Signature(core::array::from_fn(|i| 1 + (i >= 32) as u8)),
            cas: Some(7),
        }),
    };
    vec![
        Body::Ping,
        Body::Pong { observed: addr },
        Body::FindNode { target: id.as_key() },
        Body::Nodes { contacts: contacts.clone() },
        Body::FindValue { key: id.as_key() },
        // A value answer carries the contacts that fit beside its record.
        Body::Value {
            record,
            closer: contacts.iter().copied().take(usize::from(data.len() < 600) * 4).collect(),
        },
        Body::Store { record },
        Body::Stored { status: StoreStatus::CasMismatch },
        Body::AddProvider { key: id.as_key() },
        Body::ProviderAdded { stored: true },
        Body::GetProviders { key: id.as_key() },
        Body::Providers {
            providers: contacts.iter().copied().take(MAX_PROVIDERS).collect(),
            closer: contacts,
        },
    ]
}

type Parts = (Header, ValueKind, NodeId, PeerAddr, Vec<u8>, u8, usize);

fn message_parts() -> impl Strategy<Value = Parts> {
    (
        (any::<[u8; 4]>(), node_id(), any::<u8>()),
        any::<bool>(),
        node_id(),
        peer_addr(),
        prop::collection::vec(any::<u8>(), 64..=1000),
        0u8..=64,
        0usize..=20,
    )
        .prop_map(|((tx, sender, flags), text, id, addr, data, salt_len, n)| {
            let header = Header {
                version: wire::VERSION,
                txid: TxId(tx),
                sender,
                flags: Flags(flags),
                token: kad_core::token::Token(tx.repeat(2).try_into().unwrap()),
            };
            let kind = if text { ValueKind::Text } else { ValueKind::Bytes };
            (header, kind, id, addr, data, salt_len, n)
        })
}
