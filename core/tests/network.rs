//! Scenario tests: real nodes in the test network (`kad_core::testnet`) on virtual time. The
//! rules every network must keep are written once in `kad_core::testnet::scenarios` (the QEMU
//! runner checks them on ten `embedded` nodes); here they run on 200 nodes, followed by the
//! rules that need more nodes, capacity or time.

mod harness;

use std::time::Duration;

use harness::{build, TestNet};
use kad_core::testnet::addr_of;
use kad_core::{Config, Key, NodeId, Outcome, QueryError, RecordStore, ValueKind};
use rand::Rng;

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn the_network_rules_hold_on_two_hundred_nodes() {
    for (i, scenario) in TestNet::SCENARIOS.iter().enumerate() {
        eprintln!("{}", scenario.name);
        (scenario.run)(&mut build(200, i as u64 + 1, Config::default()));
    }
}

fn get_value(net: &mut TestNet, i: usize, key: Key) -> Option<Vec<u8>> {
    match net.query(i, |node, now| node.get(key, now)).outcome {
        Outcome::Get(Ok(r)) => Some(r.value().to_vec()),
        Outcome::Get(Err(QueryError::NotFound)) => None,
        other => panic!("unexpected {other:?}"),
    }
}

fn put(net: &mut TestNet, i: usize, key: &str, value: &[u8]) -> (Key, u16) {
    let k = Key::hash(key.as_bytes());
    match net.query(i, |node, now| node.put(k, ValueKind::Bytes, value, now)).outcome {
        Outcome::Put(Ok(acks)) => (k, acks.stored),
        other => panic!("put failed: {other:?}"),
    }
}

#[test]
fn puts_that_need_more_requests_than_pending_slots_still_reach_every_holder() {
    // 8 puts at once need 8 x 20 STOREs, the test node has 64 pending slots.
    let mut net = build(100, 17, Config::default());
    let queries: Vec<_> = (0..8u8)
        .map(|n| net.command(9, |node, now| node.put(Key::hash(&[n]), ValueKind::Bytes, &[n], now)).unwrap())
        .collect();
    for q in queries {
        let Outcome::Put(Ok(acks)) = net.wait(9, q).outcome else { panic!() };
        assert!(acks.stored >= 18, "{acks:?}");
    }
}

#[test]
fn records_expire_after_their_ttl() {
    let config = Config { record_ttl: 2 * HOUR, republish_interval: HOUR / 2, ..Config::default() };
    let mut net = build(50, 3, config);
    let (key, _) = put(&mut net, 7, "short-lived", b"v");
    net.kill(7); // the publisher leaves: nobody refreshes the TTL
    net.run_for(HOUR);
    assert_eq!(get_value(&mut net, 20, key).as_deref(), Some(&b"v"[..]), "alive before the TTL");
    net.run_for(HOUR + Duration::from_secs(120));
    let holders: Vec<_> = net.holders(&key).collect();
    assert!(holders.is_empty(), "still held by {holders:?}");
    assert_eq!(get_value(&mut net, 21, key), None);
}

#[test]
fn republishing_keeps_records_alive_after_their_first_holders_leave() {
    let mut net = build(80, 4, Config::default());
    let (key, _) = put(&mut net, 5, "durable", b"still here");
    let first_holders: Vec<_> = net.holders(&key).collect();
    assert!(first_holders.len() >= 15);
    // Twenty new nodes join with ids close to the key.
    let config = Config::default();
    for n in 0..20u8 {
        let mut id = *key.as_bytes();
        id[19] ^= n + 1;
        id[18] ^= net.rng.gen::<u8>();
        let i = net.add_with_id(NodeId::from_bytes(id), config);
        net.query(i, |node, now| node.bootstrap(&[addr_of(0)], now));
    }
    net.run_for(2 * HOUR);
    for i in first_holders {
        net.kill(i);
    }
    net.kill(5);
    net.run_for(2 * HOUR);
    let holders: Vec<_> = net.holders(&key).collect();
    assert!(holders.len() >= 10, "only {} holders left", holders.len());
    let reader = net.alive().find(|i| !holders.contains(i)).unwrap();
    assert_eq!(get_value(&mut net, reader, key).as_deref(), Some(&b"still here"[..]));
}

#[test]
fn the_original_publisher_republishes_with_a_fresh_ttl() {
    let config = Config { record_ttl: 4 * HOUR, publisher_republish_interval: 3 * HOUR, ..Config::default() };
    let mut net = build(40, 5, config);
    let (key, _) = put(&mut net, 2, "mine", b"v1");
    net.run_for(10 * HOUR);
    // Holders' copies would have expired at 4 h without the publisher's republish.
    let holders = net.holders(&key).count();
    assert!(holders >= 10, "{holders} holders");
    assert_eq!(get_value(&mut net, 30, key).as_deref(), Some(&b"v1"[..]));
}

#[test]
fn cached_copies_expire_sooner_than_primaries() {
    let mut net = build(400, 6, Config::default());
    let (key, _) = put(&mut net, 1, "popular", b"x");
    let mut primaries: Vec<_> = net.holders(&key).collect();
    // Only the three holders farthest from the key keep it, so that lookups pass nodes that
    // answer without it: the closest of them caches the value once two holders agreed on it.
    primaries.sort_by_key(|&i| key.distance(&net.node(i).id()));
    for &i in &primaries[..primaries.len() - 3] {
        net.node_mut(i).store_mut().remove(&key);
    }
    for i in (0..400).filter(|i| !primaries.contains(i)).take(30) {
        assert!(get_value(&mut net, i, key).is_some());
    }
    let cached: Vec<usize> = net
        .alive()
        .filter(|&i| net.node(i).store().get(&key).is_some_and(|r| r.origin == kad_core::Origin::Cache))
        .collect();
    assert!(!cached.is_empty(), "no cached copy was made");
    let primary_expiry = net.node(primaries[primaries.len() - 1]).store().get(&key).unwrap().expires_at;
    for &c in &cached {
        assert!(net.node(c).store().get(&key).unwrap().expires_at < primary_expiry);
    }
    net.run_for(13 * HOUR);
    // (A node among the closest may hold a primary copy by now: the holders republished to it.)
    for &c in &cached {
        let copy = net.node(c).store().get(&key);
        assert!(copy.is_none_or(|r| r.origin != kad_core::Origin::Cache), "cache at {c} outlived 12 h");
    }
    assert!(net.holders(&key).count() >= primaries.len() / 2);
}

#[test]
fn client_mode_nodes_stay_out_of_routing_tables() {
    let mut net = build(50, 8, Config::default());
    let client_config = Config { client_mode: true, ..Config::default() };
    let mut clients = Vec::new();
    for _ in 0..5 {
        let i = net.add(client_config);
        let done = net.query(i, |node, now| node.bootstrap(&[addr_of(0)], now));
        assert!(matches!(done.outcome, Outcome::Bootstrap(Ok(_))));
        clients.push(i);
    }
    let (key, acks) = put(&mut net, clients[0], "from-a-browser", b"hi");
    assert!(acks >= 15);
    assert_eq!(get_value(&mut net, clients[1], key).as_deref(), Some(&b"hi"[..]));
    net.run_for(2 * HOUR);
    for server in 0..50 {
        for &c in &clients {
            let cid = net.node(c).id();
            assert!(net.node(server).routing().get(&cid).is_none(), "server {server} lists client {c}");
        }
    }
}

#[test]
fn a_full_query_table_refuses_with_busy() {
    let mut net = build(30, 12, Config::default());
    let now = net.now();
    let mut refused = 0;
    for n in 0..20u32 {
        match net.node_mut(3).find_node(Key::hash(&n.to_le_bytes()), now) {
            Ok(_) => {}
            Err(kad_core::Error::Busy { capacity: 8 }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused >= 12, "refused {refused}");
    assert!(net.node(3).stats().queries_busy >= 12);
    net.flush(3);
    net.run_for(Duration::from_secs(30));
}

#[test]
fn in_a_network_of_two_the_provider_is_found() {
    // The other node is both the provider's only holder and the only one a lookup asks:
    // it answers from its own table, and the provider names itself.
    let mut net = build(2, 18, Config::default());
    let key = Key::hash(b"two.iso");
    let done = net.query(0, |node, now| node.provide(key, now));
    assert!(matches!(done.outcome, Outcome::Provide(Ok(_))), "{:?}", done.outcome);
    let found = net.query(1, |node, now| node.get_providers(key, now));
    let Outcome::GetProviders(Ok(peers)) = found.outcome else { panic!("{:?}", found.outcome) };
    assert_eq!(peers.iter().map(|p| (p.id, p.addr)).collect::<Vec<_>>(), [(net.node(0).id(), addr_of(0))]);
}

#[cfg(feature = "signed")]
mod signed {
    use super::*;
    use kad_core::signed::Keypair;
    use kad_core::wire::StoreStatus;
    use kad_core::Output;

    #[test]
    fn a_presigned_put_is_verified_before_anything_is_sent() {
        use kad_core::{Error, SignedPut};
        let mut net = build(5, 16, Config::default());
        let kp = Keypair::from_secret(&[3; 32]);
        let mut bad = kp.sign(b"k", 1, b"v");
        bad.0[0] ^= 1;
        let put = SignedPut { public_key: kp.public_key(), salt: b"k", seq: 1, signature: bad, cas: None };
        let sent = net.medium.counters().sent;
        assert_eq!(
            net.command(1, |node, now| node.put_presigned(&put, ValueKind::Text, b"v", now)),
            Err(Error::BadSignature)
        );
        assert_eq!(net.medium.counters().sent, sent);
        let good = SignedPut { signature: kp.sign(b"k", 1, b"v"), ..put };
        let done = net.query(1, |node, now| node.put_presigned(&good, ValueKind::Text, b"v", now));
        assert!(matches!(done.outcome, Outcome::Put(Ok(_))));
    }

    #[test]
    fn a_local_signed_put_never_rolls_back_what_the_node_holds() {
        use kad_core::wire::StoreStatus;
        use kad_core::Error;
        let mut net = build(5, 17, Config::default());
        let kp = Keypair::from_secret(&[4; 32]);
        let done =
            net.query(1, |node, now| node.put_signed(&kp, b"k", 5, ValueKind::Text, b"five", None, now));
        assert!(matches!(done.outcome, Outcome::Put(Ok(_))));
        let sent = net.medium.counters().sent;
        for (seq, value, cas, refusal) in [
            (3, &b"three"[..], None, StoreStatus::StaleSeq),
            (5, b"other", None, StoreStatus::StaleSeq),
            (6, b"six", Some(4), StoreStatus::CasMismatch),
        ] {
            let put =
                net.command(1, |node, now| node.put_signed(&kp, b"k", seq, ValueKind::Text, value, cas, now));
            assert_eq!(put, Err(Error::Conflict(refusal)), "seq {seq}");
        }
        assert_eq!(net.medium.counters().sent, sent, "refused before anything is sent");
        let key = kad_core::signed::key_for(&kp.public_key(), b"k");
        let held = net.node(1).store().get(&key).expect("held");
        assert_eq!(held.value(), b"five");
    }

    #[test]
    fn a_forged_signed_record_is_refused() {
        use kad_core::wire::{self, Body, Bytes, Flags, Header, Message, TxId, WireRecord, WireSignature};
        let mut net = build(10, 15, Config::default());
        let kp = Keypair::from_secret(&[1; 32]);
        let mut sig = kp.sign(b"", 1, b"honest");
        sig.0[5] ^= 0xff;
        let key = kad_core::signed::key_for(&kp.public_key(), b"");
        let msg = Message {
            header: Header {
                version: wire::VERSION,
                txid: TxId([9; 4]),
                sender: NodeId::from_bytes([7; 20]),
                flags: Flags(0),
                token: net.node(0).write_token(&addr_of(50)),
            },
            body: Body::Store {
                record: WireRecord {
                    key,
                    kind: ValueKind::Bytes,
                    ttl_secs: 60,
                    cached: false,
                    data: Bytes(b"honest"),
                    signature: Some(WireSignature {
                        public_key: kp.public_key(),
                        salt_len: 0,
                        seq: 1,
                        signature: sig,
                        cas: None,
                    }),
                },
            },
        };
        let mut buf = [0u8; 1200];
        let n = wire::encode(&msg, &mut buf).unwrap();
        let now = net.now();
        net.node_mut(0).handle_datagram(now, addr_of(50), &buf[..n]);
        assert!(net.node(0).store().get(&key).is_none());
        assert_eq!(net.node(0).stats().stores_refused, 1);
        // The answer says why.
        let mut out = [0u8; 1200];
        let Output::Transmit(t) = net.node_mut(0).poll_output(&mut out) else { panic!("no answer") };
        let reply = wire::decode(&out[..t.len]).unwrap();
        assert_eq!(reply.body, Body::Stored { status: StoreStatus::BadSignature });
    }
}
