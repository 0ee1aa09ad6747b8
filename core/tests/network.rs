//! Scenario tests: real nodes in the in-memory network on virtual time.

mod harness;

use std::time::Duration;

use harness::{addr, Net};
use kad_core::wire::StoreStatus;
use kad_core::{Config, Key, NodeId, Outcome, QueryError, RecordStore, ValueKind};
use rand::Rng;

const HOUR: Duration = Duration::from_secs(3600);

fn get_value(net: &mut Net, i: usize, key: Key) -> Option<Vec<u8>> {
    let q = net.nodes[i].get(key, net.now).unwrap();
    net.flush(i);
    match net.wait(i, q).0 {
        Outcome::Get(Ok(r)) => Some(r.value().to_vec()),
        Outcome::Get(Err(QueryError::NotFound)) => None,
        other => panic!("unexpected {other:?}"),
    }
}

fn put(net: &mut Net, i: usize, key: &str, value: &[u8]) -> (Key, u16) {
    let k = Key::hash(key.as_bytes());
    let q = net.nodes[i].put(k, ValueKind::Bytes, value, net.now).unwrap();
    net.flush(i);
    match net.wait(i, q).0 {
        Outcome::Put(Ok(acks)) => (k, acks.stored),
        other => panic!("put failed: {other:?}"),
    }
}

#[test]
fn two_hundred_nodes_bootstrap_and_every_put_is_readable_from_every_other_node() {
    let mut net = Net::build(200, 1, Config::default());
    for i in 0..200 {
        assert!(net.nodes[i].routing().len() >= 20, "node {i} knows {} peers", net.nodes[i].routing().len());
    }
    let mut keys = Vec::new();
    for p in 0..10 {
        let publisher = p * 17 % 200;
        let (k, acks) = put(&mut net, publisher, &format!("key-{p}"), format!("value-{p}").as_bytes());
        assert!(acks >= 15, "put {p} acknowledged by only {acks}");
        keys.push((publisher, k, format!("value-{p}")));
    }
    let mut reads = 0;
    for (publisher, key, value) in &keys {
        // Every other node reads the key, all at once.
        let queries: Vec<_> = (0..200)
            .filter(|i| i != publisher)
            .map(|i| {
                let q = net.nodes[i].get(*key, net.now).unwrap();
                net.flush(i);
                (i, q)
            })
            .collect();
        for (i, q) in queries {
            match net.wait(i, q).0 {
                Outcome::Get(Ok(r)) => assert_eq!(r.value(), value.as_bytes()),
                other => panic!("node {i} could not read {key}: {other:?}"),
            }
            reads += 1;
        }
    }
    assert_eq!(reads, 10 * 199);
}

#[test]
fn put_reports_acks_and_values_keep_their_kind() {
    let mut net = Net::build(60, 2, Config::default());
    let k = Key::hash(b"greeting");
    let q = net.nodes[3].put(k, ValueKind::Text, "héllo".as_bytes(), net.now).unwrap();
    net.flush(3);
    let Outcome::Put(Ok(acks)) = net.wait(3, q).0 else { panic!() };
    assert!(acks.stored >= 15 && acks.stored <= 20, "{acks:?}");
    let q = net.nodes[40].get(k, net.now).unwrap();
    net.flush(40);
    let Outcome::Get(Ok(r)) = net.wait(40, q).0 else { panic!() };
    assert_eq!(r.kind, ValueKind::Text);
    assert_eq!(std::str::from_utf8(r.value()).unwrap(), "héllo");
}

#[test]
fn puts_that_need_more_requests_than_pending_slots_still_reach_every_holder() {
    // 8 puts at once need 8 x 20 STOREs, the test node has 64 pending slots.
    let mut net = Net::build(100, 17, Config::default());
    let queries: Vec<_> = (0..8u8)
        .map(|n| net.nodes[9].put(Key::hash(&[n]), ValueKind::Bytes, &[n], net.now).unwrap())
        .collect();
    net.flush(9);
    for q in queries {
        let Outcome::Put(Ok(acks)) = net.wait(9, q).0 else { panic!() };
        assert!(acks.stored >= 18, "{acks:?}");
    }
}

#[test]
fn records_expire_after_their_ttl() {
    let config = Config { record_ttl: 2 * HOUR, republish_interval: HOUR / 2, ..Config::default() };
    let mut net = Net::build(50, 3, config);
    let (key, _) = put(&mut net, 7, "short-lived", b"v");
    net.kill(7); // the publisher leaves: nobody refreshes the TTL
    net.run_for(HOUR);
    assert_eq!(get_value(&mut net, 20, key).as_deref(), Some(&b"v"[..]), "alive before the TTL");
    net.run_for(HOUR + Duration::from_secs(120));
    assert!(net.holders(&key).is_empty(), "still held by {:?}", net.holders(&key));
    assert_eq!(get_value(&mut net, 21, key), None);
}

#[test]
fn republishing_keeps_records_alive_after_their_first_holders_leave() {
    let mut net = Net::build(80, 4, Config::default());
    let (key, _) = put(&mut net, 5, "durable", b"still here");
    let first_holders = net.holders(&key);
    assert!(first_holders.len() >= 15);
    // Twenty new nodes join with ids close to the key.
    let config = Config::default();
    for n in 0..20u8 {
        let mut id = *key.as_bytes();
        id[19] ^= n + 1;
        id[18] ^= net.rng.gen::<u8>();
        let i = net.add_with_id(NodeId::from_bytes(id), config);
        let q = net.nodes[i].bootstrap(&[addr(0)], net.now).unwrap();
        net.flush(i);
        net.wait(i, q);
    }
    net.run_for(2 * HOUR);
    for i in first_holders {
        net.kill(i);
    }
    net.kill(5);
    net.run_for(2 * HOUR);
    let holders = net.holders(&key);
    assert!(holders.len() >= 10, "only {} holders left", holders.len());
    let reader = net.alive().find(|i| !holders.contains(i)).unwrap();
    assert_eq!(get_value(&mut net, reader, key).as_deref(), Some(&b"still here"[..]));
}

#[test]
fn the_original_publisher_republishes_with_a_fresh_ttl() {
    let config = Config { record_ttl: 4 * HOUR, publisher_republish_interval: 3 * HOUR, ..Config::default() };
    let mut net = Net::build(40, 5, config);
    let (key, _) = put(&mut net, 2, "mine", b"v1");
    net.run_for(10 * HOUR);
    // Holders' copies would have expired at 4 h without the publisher's republish.
    let holders = net.holders(&key);
    assert!(holders.len() >= 10, "{} holders", holders.len());
    assert_eq!(get_value(&mut net, 30, key).as_deref(), Some(&b"v1"[..]));
}

#[test]
fn cached_copies_expire_sooner_than_primaries() {
    let mut net = Net::build(400, 6, Config::default());
    let (key, _) = put(&mut net, 1, "popular", b"x");
    let primaries = net.holders(&key);
    // Readers far from the key look it up; the closest node that lacked it caches it.
    for i in (0..400).filter(|i| !primaries.contains(i)).take(30) {
        assert!(get_value(&mut net, i, key).is_some());
    }
    let cached: Vec<usize> = net
        .alive()
        .filter(|&i| net.nodes[i].store().get(&key).is_some_and(|r| r.origin == kad_core::Origin::Cache))
        .collect();
    assert!(!cached.is_empty(), "no cached copy was made");
    let primary_expiry = net.nodes[primaries[1]].store().get(&key).unwrap().expires_at;
    for &c in &cached {
        assert!(net.nodes[c].store().get(&key).unwrap().expires_at < primary_expiry);
    }
    net.run_for(13 * HOUR);
    for &c in &cached {
        assert!(net.nodes[c].store().get(&key).is_none(), "cache at {c} outlived 12 h");
    }
    assert!(net.holders(&key).len() >= primaries.len() / 2);
}

#[test]
fn provider_records_are_found() {
    let mut net = Net::build(80, 7, Config::default());
    let key = Key::hash(b"movie.mkv");
    for provider in [10, 11] {
        let q = net.nodes[provider].provide(key, net.now).unwrap();
        net.flush(provider);
        let Outcome::Provide(Ok(acks)) = net.wait(provider, q).0 else { panic!() };
        assert!(acks.stored >= 10);
    }
    let q = net.nodes[60].get_providers(key, net.now).unwrap();
    net.flush(60);
    let Outcome::GetProviders(Ok(found)) = net.wait(60, q).0 else { panic!() };
    let ids: Vec<NodeId> = found.iter().map(|p| p.id).collect();
    assert!(ids.contains(&net.nodes[10].id()) && ids.contains(&net.nodes[11].id()), "{ids:?}");
    assert!(found.iter().any(|p| p.addr == addr(10)));
    // Unknown keys have no providers.
    let q = net.nodes[60].get_providers(Key::hash(b"nothing"), net.now).unwrap();
    net.flush(60);
    assert_eq!(net.wait(60, q).0, Outcome::GetProviders(Err(QueryError::NotFound)));
}

#[test]
fn client_mode_nodes_stay_out_of_routing_tables() {
    let mut net = Net::build(50, 8, Config::default());
    let client_config = Config { client_mode: true, ..Config::default() };
    let mut clients = Vec::new();
    for _ in 0..5 {
        let i = net.add(client_config);
        let q = net.nodes[i].bootstrap(&[addr(0)], net.now).unwrap();
        net.flush(i);
        assert!(matches!(net.wait(i, q).0, Outcome::Bootstrap(Ok(_))));
        clients.push(i);
    }
    let (key, acks) = put(&mut net, clients[0], "from-a-browser", b"hi");
    assert!(acks >= 15);
    assert_eq!(get_value(&mut net, clients[1], key).as_deref(), Some(&b"hi"[..]));
    net.run_for(2 * HOUR);
    for server in 0..50 {
        for &c in &clients {
            let cid = net.nodes[c].id();
            assert!(net.nodes[server].routing().get(&cid).is_none(), "server {server} lists client {c}");
        }
    }
}

#[test]
fn a_peer_that_never_answers_does_not_stall_a_lookup() {
    let mut net = Net::build(60, 9, Config::default());
    let (key, _) = put(&mut net, 4, "k", b"v");
    // A third of the network goes silent, including some holders.
    for i in (10..60).step_by(3) {
        net.kill(i);
    }
    for reader in [11, 20, 41] {
        let reader = if net.down.contains(&reader) { reader + 1 } else { reader };
        let q = net.nodes[reader].find_node(Key::hash(b"anywhere"), net.now).unwrap();
        net.flush(reader);
        let (outcome, stats) = net.wait(reader, q);
        assert!(matches!(outcome, Outcome::FindNode(Ok(ref v)) if v.len() >= 10), "{outcome:?}");
        let took = stats.finished.saturating_since(stats.started);
        assert!(took < Duration::from_secs(10), "lookup took {took:?}");
        assert_eq!(get_value(&mut net, reader, key).as_deref(), Some(&b"v"[..]));
    }
}

#[test]
fn a_put_nobody_acknowledges_is_an_error_not_a_success() {
    let mut net = Net::build(10, 10, Config::default());
    for i in 1..10 {
        net.kill(i);
    }
    let q = net.nodes[0].put(Key::hash(b"k"), ValueKind::Bytes, b"v", net.now).unwrap();
    net.flush(0);
    let (outcome, _) = net.wait(0, q);
    assert!(
        matches!(outcome, Outcome::Put(Err(QueryError::NoPeers | QueryError::NoAcks { .. }))),
        "{outcome:?}"
    );
}

#[test]
fn commands_refuse_bad_input_with_typed_errors() {
    let mut net = Net::build(5, 11, Config::default());
    let big = vec![0u8; 1001];
    let err = net.nodes[1].put(Key::hash(b"k"), ValueKind::Bytes, &big, net.now).unwrap_err();
    assert_eq!(err, kad_core::Error::ValueTooLarge { len: 1001, max: 1000 });
    assert_eq!(err.to_string(), "value of 1001 bytes is over the limit of 1000 bytes");
    let lonely = net.add(Config::default());
    assert_eq!(net.nodes[lonely].get(Key::hash(b"k"), net.now), Err(kad_core::Error::NoPeers));
    assert_eq!(
        net.nodes[lonely].bootstrap(&[kad_core::PeerAddr::V4([0, 0, 0, 0], 0)], net.now),
        Err(kad_core::Error::InvalidAddress)
    );
}

#[test]
fn a_full_query_table_refuses_with_busy() {
    let mut net = Net::build(30, 12, Config::default());
    let mut refused = 0;
    for n in 0..20u32 {
        match net.nodes[3].find_node(Key::hash(&n.to_le_bytes()), net.now) {
            Ok(_) => {}
            Err(kad_core::Error::Busy { capacity: 8 }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused >= 12, "refused {refused}");
    assert!(net.nodes[3].stats().queries_busy >= 12);
    net.flush(3);
    net.run_for(Duration::from_secs(30));
}

#[test]
fn garbage_datagrams_are_counted_and_the_node_keeps_serving() {
    let mut net = Net::build(20, 13, Config::default());
    let mut junk = [0u8; 300];
    let before = *net.nodes[0].stats();
    for n in 0..500 {
        net.rng.fill(&mut junk[..]);
        junk[0] = if n % 2 == 0 { 1 } else { junk[0] };
        let len = n % 300;
        let now = net.now;
        net.nodes[0].handle_datagram(now, addr(99), &junk[..len]);
    }
    let s = *net.nodes[0].stats();
    let count = |s: &kad_core::Stats| {
        s.dropped_malformed
            + s.dropped_version
            + s.dropped_too_large
            + s.dropped_unmatched
            + s.dropped_own_id
            + s.requests_in.total()
    };
    let accounted = count(&s) - count(&before);
    assert_eq!(s.datagrams_in - before.datagrams_in, 500);
    assert_eq!(accounted, 500, "{s:?}");
    assert!(s.dropped_malformed > 0);
    let (key, _) = put(&mut net, 0, "after-garbage", b"ok");
    assert_eq!(get_value(&mut net, 10, key).as_deref(), Some(&b"ok"[..]));
}

#[cfg(feature = "signed")]
mod signed {
    use super::*;
    use kad_core::signed::Keypair;

    fn put_signed(
        net: &mut Net,
        i: usize,
        kp: &Keypair,
        seq: u64,
        value: &[u8],
        cas: Option<u64>,
    ) -> Outcome<1000> {
        let q = net.nodes[i].put_signed(kp, b"salt", seq, ValueKind::Text, value, cas, net.now).unwrap();
        net.flush(i);
        net.wait(i, q).0
    }

    fn get_signed(net: &mut Net, i: usize, kp: &Keypair) -> Option<(u64, Vec<u8>)> {
        let q = net.nodes[i].get_signed(&kp.public_key(), b"salt", net.now).unwrap();
        net.flush(i);
        match net.wait(i, q).0 {
            Outcome::Get(Ok(r)) => Some((r.signer.unwrap().seq, r.value().to_vec())),
            _ => None,
        }
    }

    #[test]
    fn signed_records_verify_and_only_move_forward() {
        let mut net = Net::build(60, 14, Config::default());
        let kp = Keypair::from_secret(&[42; 32]);
        assert!(matches!(put_signed(&mut net, 3, &kp, 1, b"one", None), Outcome::Put(Ok(_))));
        assert_eq!(get_signed(&mut net, 30, &kp), Some((1, b"one".to_vec())));
        assert!(matches!(put_signed(&mut net, 4, &kp, 2, b"two", None), Outcome::Put(Ok(_))));
        assert_eq!(get_signed(&mut net, 31, &kp), Some((2, b"two".to_vec())));
        // A lower sequence number is refused by every holder.
        let stale = put_signed(&mut net, 5, &kp, 1, b"old", None);
        assert!(
            matches!(
                stale,
                Outcome::Put(Err(QueryError::NoAcks { refusal: Some(StoreStatus::StaleSeq), .. }))
            ),
            "{stale:?}"
        );
        // Compare-and-swap: only against the current sequence number.
        let cas = put_signed(&mut net, 6, &kp, 3, b"three", Some(1));
        assert!(matches!(
            cas,
            Outcome::Put(Err(QueryError::NoAcks { refusal: Some(StoreStatus::CasMismatch), .. }))
        ));
        assert!(matches!(put_signed(&mut net, 6, &kp, 3, b"three", Some(2)), Outcome::Put(Ok(_))));
        assert_eq!(get_signed(&mut net, 32, &kp), Some((3, b"three".to_vec())));
    }

    #[test]
    fn a_presigned_put_is_verified_before_anything_is_sent() {
        use kad_core::{Error, SignedPut};
        let mut net = Net::build(5, 16, Config::default());
        let kp = Keypair::from_secret(&[3; 32]);
        let mut bad = kp.sign(b"k", 1, b"v");
        bad.0[0] ^= 1;
        let put = SignedPut { public_key: kp.public_key(), salt: b"k", seq: 1, signature: bad, cas: None };
        assert_eq!(
            net.nodes[1].put_presigned(&put, ValueKind::Text, b"v", net.now),
            Err(Error::BadSignature)
        );
        let good = SignedPut { signature: kp.sign(b"k", 1, b"v"), ..put };
        let q = net.nodes[1].put_presigned(&good, ValueKind::Text, b"v", net.now).unwrap();
        net.flush(1);
        assert!(matches!(net.wait(1, q).0, Outcome::Put(Ok(_))));
    }

    #[test]
    fn a_forged_signed_record_is_refused() {
        use kad_core::wire::{self, Body, Bytes, Flags, Header, Message, TxId, WireRecord, WireSignature};
        let mut net = Net::build(10, 15, Config::default());
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
        let now = net.now;
        net.nodes[0].handle_datagram(now, addr(50), &buf[..n]);
        assert!(net.nodes[0].store().get(&key).is_none());
        assert_eq!(net.nodes[0].stats().stores_refused, 1);
        // The answer says why.
        let mut out = [0u8; 1200];
        let t = net.nodes[0].poll_transmit(&mut out).unwrap();
        let reply = wire::decode(&out[..t.len]).unwrap();
        assert_eq!(reply.body, Body::Stored { status: StoreStatus::BadSignature });
    }
}
