//! The core's unit tests, ported to `no_std` and its public API: ids and distances, the wire
//! format, the routing table, the lookup state machine, the record store, providers and
//! signatures. Plus the memory each capacity preset takes on this 32-bit target.

use core::mem::size_of;

use cortex_m_semihosting::hprintln;
use heapless::Vec;
use kad_core::lookup::{Candidate, Lookup, PeerState};
use kad_core::providers::{Added, ProviderRecord, Providers};
use kad_core::routing::{Contact, Failure, Insert, RoutingConfig, RoutingTable};
use kad_core::store::{eviction_candidate, StoreError, MAX_SALT_LEN, MAX_VALUE_LEN};
use kad_core::wire::{
    self, Body, Bytes, DecodeError, Flags, Header, Message, TxId, WireRecord, WireSignature, MAX_CONTACTS,
    MAX_DATAGRAM, MAX_PROVIDERS, VERSION,
};
use kad_core::{Instant, Key, MemoryStore, NodeId, Origin, Peer, PeerAddr, Record, RecordStore, ValueKind};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::Test;

pub const TESTS: &[Test] = &[
    Test { name: "id::key_hash_is_sha1_of_the_user_key", run: key_hash_is_sha1_of_the_user_key },
    Test { name: "id::distance_is_xor_and_symmetric", run: distance_is_xor_and_symmetric },
    Test {
        name: "id::random_at_prefix_shares_exactly_that_prefix",
        run: random_at_prefix_shares_exactly_that_prefix,
    },
    Test { name: "id::hex_round_trips_and_rejects_garbage", run: hex_round_trips_and_rejects_garbage },
    Test {
        name: "wire::every_message_fits_in_a_datagram_and_decodes_back",
        run: every_message_fits_in_a_datagram,
    },
    Test { name: "wire::wrong_version_trailing_bytes_and_oversized_values_are_rejected", run: wire_rejects },
    Test { name: "wire::random_bytes_never_decode_into_a_panic", run: random_bytes_never_panic },
    Test { name: "routing::own_id_is_never_inserted", run: own_id_is_never_inserted },
    Test { name: "routing::the_bucket_covering_the_own_id_splits_when_full", run: bucket_splits },
    Test {
        name: "routing::a_full_far_bucket_caches_the_newcomer_and_pings_its_oldest_contact",
        run: full_bucket_pings,
    },
    Test {
        name: "routing::a_probed_contact_that_fails_is_replaced_by_the_newest_candidate",
        run: failed_replaced,
    },
    Test {
        name: "routing::a_newcomer_does_not_make_a_full_bucket_probe_a_contact_heard_from_recently",
        run: recent_not_probed,
    },
    Test {
        name: "routing::a_failing_contact_without_replacement_is_kept_until_the_hard_limit",
        run: kept_until_limit,
    },
    Test { name: "routing::an_unverified_message_does_not_move_a_contact", run: unverified_does_not_move },
    Test { name: "routing::closest_returns_the_nearest_sorted", run: closest_sorted },
    Test { name: "routing::stale_buckets_are_reported_for_refresh", run: stale_buckets },
    Test { name: "lookup::candidates_stay_sorted_and_bounded_to_k", run: candidates_sorted },
    Test { name: "lookup::at_most_alpha_requests_are_in_flight", run: alpha_in_flight },
    Test { name: "lookup::a_lookup_finishes_when_the_closest_have_answered", run: lookup_finishes },
    Test {
        name: "lookup::an_answer_with_nothing_closer_releases_all_remaining_at_once",
        run: stall_releases,
    },
    Test { name: "lookup::failed_candidates_make_room_for_new_ones", run: failed_make_room },
    Test { name: "store::a_full_store_refuses_instead_of_growing", run: full_store_refuses },
    Test { name: "store::keys_iterate_in_order", run: keys_in_order },
    Test {
        name: "store::the_farthest_cached_copy_is_evicted_before_any_replica",
        run: farthest_cache_evicted,
    },
    Test { name: "store::publisher_records_are_never_evicted", run: publisher_never_evicted },
    Test {
        name: "store::a_replica_displaces_a_farther_replica_but_not_a_nearer_one",
        run: replica_displaces,
    },
    Test { name: "providers::providers_expire_but_own_entries_stay", run: providers_expire },
    Test { name: "providers::a_full_table_replaces_the_farthest_key_or_refuses", run: providers_full },
    Test { name: "signed::a_signature_verifies_and_any_change_breaks_it", run: signature_verifies },
];

// ----- id -------------------------------------------------------------------------------

fn key_hash_is_sha1_of_the_user_key() {
    // sha1("hello") = aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d
    assert_eq!(Key::hash(b"hello"), Key::from_hex("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d").unwrap());
}

fn distance_is_xor_and_symmetric() {
    let a = NodeId::from_bytes([0xff; 20]);
    let mut b = [0xff; 20];
    b[19] = 0xfe;
    let b = NodeId::from_bytes(b);
    assert_eq!(a.distance(&b), b.distance(&a));
    assert_eq!(a.distance(&b).leading_zeros(), 159);
    assert_eq!(a.distance(&a).leading_zeros(), 160);
    assert_eq!(a.distance(&b).bits(), 1);
}

fn random_at_prefix_shares_exactly_that_prefix() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let own = NodeId::random(&mut rng);
    for p in [0, 1, 7, 8, 9, 100, 159] {
        let k = own.random_at_prefix(p, &mut rng);
        assert_eq!(k.distance(&own).leading_zeros(), p);
    }
}

fn hex_round_trips_and_rejects_garbage() {
    let id = NodeId::from_bytes([0xab; 20]);
    let mut s = heapless::String::<40>::new();
    core::fmt::write(&mut s, format_args!("{id}")).unwrap();
    assert_eq!(NodeId::from_hex(&s), Some(id));
    assert_eq!(NodeId::from_hex("zz"), None);
    assert_eq!(NodeId::from_hex("gggggggggggggggggggggggggggggggggggggggg"), None);
}

// ----- wire -----------------------------------------------------------------------------

fn header() -> Header {
    Header {
        version: VERSION,
        txid: TxId([1, 2, 3, 4]),
        sender: NodeId::from_bytes([0xee; 20]),
        flags: Flags(1),
    }
}
const V6: PeerAddr = PeerAddr::V6([0xff; 16], u16::MAX);

fn full_contacts() -> Vec<Peer, MAX_CONTACTS> {
    let c = Peer { id: NodeId::from_bytes([0xff; 20]), addr: V6 };
    core::iter::repeat_n(c, MAX_CONTACTS).collect()
}

fn largest_record(data: &[u8], signed: bool) -> WireRecord<'_> {
    WireRecord {
        key: Key::from_bytes([0xff; 20]),
        kind: ValueKind::Text,
        ttl_secs: u32::MAX,
        cached: true,
        data: Bytes(data),
        signature: signed.then_some(WireSignature {
            public_key: kad_core::PublicKey([0xff; 32]),
            salt_len: MAX_SALT_LEN as u8,
            seq: u64::MAX,
            signature: kad_core::Signature([0xff; 64]),
            cas: Some(u64::MAX),
        }),
    }
}

fn every_message_fits_in_a_datagram() {
    let data = [0xffu8; MAX_VALUE_LEN];
    let bodies = [
        Body::Ping,
        Body::FindNode { target: Key::from_bytes([1; 20]) },
        Body::Nodes { contacts: full_contacts() },
        Body::Providers {
            providers: full_contacts().into_iter().take(MAX_PROVIDERS).collect(),
            closer: full_contacts(),
        },
        Body::Store { record: largest_record(&data, false) },
        Body::Store { record: largest_record(&data, true) },
        Body::Value { record: largest_record(&data, true) },
        Body::Pong { observed: V6 },
    ];
    let mut buf = [0u8; MAX_DATAGRAM];
    for body in bodies {
        let msg = Message { header: header(), body };
        let n = wire::encode(&msg, &mut buf).expect("fits in MAX_DATAGRAM");
        assert!(n <= MAX_DATAGRAM);
        assert_eq!(wire::decode(&buf[..n]).unwrap(), msg);
    }
}

fn wire_rejects() {
    let mut buf = [0u8; MAX_DATAGRAM];
    let msg = Message { header: header(), body: Body::Ping };
    let n = wire::encode(&msg, &mut buf).unwrap();
    assert_eq!(wire::decode(&buf[..n]), Ok(msg));
    assert_eq!(wire::decode(&buf[..n + 1]), Err(DecodeError::Malformed));
    buf[0] = 9;
    assert_eq!(wire::decode(&buf[..n]), Err(DecodeError::Version));
    assert_eq!(wire::decode(&[]), Err(DecodeError::Malformed));
    assert_eq!(wire::decode(&[0u8; MAX_DATAGRAM + 1]), Err(DecodeError::TooLong));

    let big = [0u8; MAX_VALUE_LEN + 1];
    let mut wide = [0u8; 1400];
    let msg = Message { header: header(), body: Body::Store { record: largest_record(&big, false) } };
    let n = wire::encode(&msg, &mut wide).unwrap();
    assert!(wire::decode(&wide[..n.min(MAX_DATAGRAM)]).is_err());
}

fn random_bytes_never_panic() {
    // Valid messages with bytes flipped, and pure noise: decoding returns, it never panics.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut buf = [0u8; MAX_DATAGRAM];
    let msg = Message { header: header(), body: Body::Nodes { contacts: full_contacts() } };
    let n = wire::encode(&msg, &mut buf).unwrap();
    let mut decoded_ok = 0u32;
    for round in 0..2000u32 {
        let mut b = buf;
        let at = (rand_core::RngCore::next_u32(&mut rng) as usize) % n;
        b[at] ^= 1 << (round % 8);
        if wire::decode(&b[..n]).is_ok() {
            decoded_ok += 1;
        }
        let len = (rand_core::RngCore::next_u32(&mut rng) as usize) % 200;
        let mut noise = [0u8; 200];
        rand_core::RngCore::fill_bytes(&mut rng, &mut noise[..len]);
        let _ = wire::decode(&noise[..len]);
    }
    // Flipping one bit of an id keeps a message valid; flipping a length byte does not.
    assert!(decoded_ok > 0 && decoded_ok < 2000, "{decoded_ok}");
}

// ----- routing --------------------------------------------------------------------------

fn rid(first: u8, last: u8) -> NodeId {
    let mut b = [0u8; 20];
    b[0] = first;
    b[19] = last;
    NodeId::from_bytes(b)
}
fn raddr(n: u8) -> PeerAddr {
    PeerAddr::V4([127, 0, 0, n], 1000 + n as u16)
}
const T0: Instant = Instant::ZERO;
/// Past `probe_after` (15 min): a full bucket's oldest contact is due for a probe.
const LATER: Instant = Instant::from_millis(16 * 60 * 1000);

fn own_id_is_never_inserted() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), T0);
    assert_eq!(t.insert(own, raddr(1), true, T0), Insert::OwnId);
    assert!(t.is_empty());
}

fn bucket_splits() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<8, 2, 1>::new(own, RoutingConfig::default(), T0);
    assert_eq!(t.insert(rid(0x80, 1), raddr(1), true, T0), Insert::Added);
    assert_eq!(t.insert(rid(0x80, 2), raddr(2), true, T0), Insert::Added);
    assert_eq!(t.insert(rid(0x40, 3), raddr(3), true, T0), Insert::Added);
    assert!(t.bucket_count() >= 2);
    assert_eq!(t.len(), 3);
}

fn full_bucket_pings() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<8, 2, 2>::new(own, RoutingConfig::default(), T0);
    t.insert(rid(0x80, 1), raddr(1), true, T0);
    t.insert(rid(0x80, 2), raddr(2), true, Instant::from_millis(1));
    t.insert(rid(0x01, 9), raddr(9), true, T0);
    let out = t.insert(rid(0x80, 3), raddr(3), true, LATER);
    let Insert::Cached { ping: Some(lrs) } = out else { panic!("{out:?}") };
    assert_eq!(lrs.id, rid(0x80, 1));
    assert_eq!(t.insert(rid(0x80, 4), raddr(4), true, LATER), Insert::Cached { ping: None });
    t.on_alive(&rid(0x80, 1), None, LATER);
    assert!(t.get(&rid(0x80, 1)).is_some());
    assert!(t.get(&rid(0x80, 3)).is_none());
}

fn failed_replaced() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<8, 2, 2>::new(own, RoutingConfig::default(), T0);
    t.insert(rid(0x80, 1), raddr(1), true, T0);
    t.insert(rid(0x80, 2), raddr(2), true, T0);
    t.insert(rid(0x01, 9), raddr(9), true, T0);
    t.insert(rid(0x80, 3), raddr(3), true, LATER);
    let f = t.on_failure(&rid(0x80, 1));
    assert!(matches!(f, Failure::Removed { replacement: Some(c), .. } if c.id == rid(0x80, 3)));
    assert!(t.get(&rid(0x80, 1)).is_none());
    assert!(t.get(&rid(0x80, 3)).is_some());
}

fn recent_not_probed() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<8, 2, 2>::new(own, RoutingConfig::default(), T0);
    t.insert(rid(0x80, 1), raddr(1), true, T0);
    t.insert(rid(0x80, 2), raddr(2), true, T0);
    t.insert(rid(0x01, 9), raddr(9), true, T0);
    let recently = Instant::from_millis(14 * 60 * 1000);
    assert_eq!(t.insert(rid(0x80, 3), raddr(3), true, recently), Insert::Cached { ping: None });
    assert!(t.get(&rid(0x80, 3)).is_none());
    let out = t.insert(rid(0x80, 4), raddr(4), true, LATER);
    assert!(matches!(out, Insert::Cached { ping: Some(c) } if c.id == rid(0x80, 1)), "{out:?}");
}

fn kept_until_limit() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), T0);
    t.insert(rid(0x80, 1), raddr(1), true, T0);
    for _ in 0..4 {
        assert_eq!(t.on_failure(&rid(0x80, 1)), Failure::Kept);
    }
    assert!(matches!(t.on_failure(&rid(0x80, 1)), Failure::Removed { .. }));
}

fn unverified_does_not_move() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), T0);
    t.insert(rid(0x80, 1), raddr(1), true, T0);
    t.insert(rid(0x80, 1), raddr(7), false, T0);
    assert_eq!(t.get(&rid(0x80, 1)).unwrap().addr, raddr(1));
    t.insert(rid(0x80, 1), raddr(7), true, T0);
    assert_eq!(t.get(&rid(0x80, 1)).unwrap().addr, raddr(7));
}

fn closest_sorted() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<8, 4, 1>::new(own, RoutingConfig::default(), T0);
    for n in 1..=6u8 {
        t.insert(rid(n << 4, n), raddr(n), true, T0);
    }
    let target = rid(0x30, 0).as_key();
    let mut out = [Contact::new(own, raddr(0), T0); 3];
    let n = t.closest(&target, None, &mut out);
    assert_eq!(n, 3);
    assert_eq!(out[0].id, rid(0x30, 3));
    assert!(target.distance(&out[0].id) <= target.distance(&out[1].id));
    assert!(target.distance(&out[1].id) <= target.distance(&out[2].id));
}

fn stale_buckets() {
    let own = rid(0, 0);
    let mut t = RoutingTable::<4, 2, 1>::new(own, RoutingConfig::default(), Instant::from_millis(10));
    assert_eq!(t.stale_bucket(Instant::from_millis(5)), None);
    assert_eq!(t.stale_bucket(Instant::from_millis(11)), Some(0));
    t.touch(&rid(0xff, 0).as_key(), Instant::from_millis(20));
    assert_eq!(t.stale_bucket(Instant::from_millis(11)), None);
}

// ----- lookup ---------------------------------------------------------------------------

fn lid(b: u8) -> NodeId {
    let mut x = [0u8; 20];
    x[0] = b;
    NodeId::from_bytes(x)
}
fn la(b: u8) -> PeerAddr {
    PeerAddr::V4([127, 0, 0, b], 1)
}

fn candidates_sorted() {
    let mut l = Lookup::<3>::new(Key::from_bytes([0; 20]));
    for b in [9, 3, 7, 1, 5] {
        l.add(lid(b), la(b), 1);
    }
    let ids: Vec<u8, 3> = l.candidates().iter().map(|c| c.id.as_bytes()[0]).collect();
    assert_eq!(&ids[..], &[1, 3, 5]);
}

fn alpha_in_flight() {
    let mut l = Lookup::<8>::new(Key::from_bytes([0; 20]));
    for b in 1..=6 {
        l.add(lid(b), la(b), 1);
    }
    assert!(l.next(3).is_some() && l.next(3).is_some() && l.next(3).is_some());
    assert!(l.next(3).is_none());
    l.on_failure(&lid(1));
    assert_eq!(l.next(3).map(|c| c.id), Some(lid(4)));
}

fn lookup_finishes() {
    let mut l = Lookup::<2>::new(Key::from_bytes([0; 20]));
    l.add(lid(8), la(8), 1);
    let c = l.next(3).unwrap();
    l.on_success(&c.id, [(lid(2), la(2)), (lid(4), la(4))].into_iter());
    assert!(!l.is_finished());
    while let Some(c) = l.next(3) {
        l.on_success(&c.id, core::iter::empty());
    }
    assert!(l.is_finished());
    assert_eq!(l.rounds(), 2);
}

fn stall_releases() {
    let mut l = Lookup::<8>::new(Key::from_bytes([0; 20]));
    for b in 1..=8 {
        l.add(lid(b), la(b), 1);
    }
    let round: [Candidate; 3] = [l.next(3).unwrap(), l.next(3).unwrap(), l.next(3).unwrap()];
    assert!(l.next(3).is_none());
    // One answer with nothing closer than the closest known: the lookup keeps its pace.
    l.on_success(&round[0].id, [(lid(7), la(7))].into_iter());
    assert_eq!(l.next(3).map(|c| c.id), Some(lid(4)));
    assert!(l.next(3).is_none());
    // The rest of the round brings nothing closer either: the lookup has stalled.
    l.on_success(&round[1].id, core::iter::empty());
    l.on_success(&round[2].id, core::iter::empty());
    let mut released = 0;
    while l.next(3).is_some() {
        released += 1;
    }
    assert_eq!(released, 4, "all four not yet asked go out at once");
}

fn failed_make_room() {
    let mut l = Lookup::<2>::new(Key::from_bytes([0; 20]));
    l.add(lid(1), la(1), 1);
    l.add(lid(2), la(2), 1);
    let c = l.next(1).unwrap();
    l.on_failure(&c.id);
    assert!(l.add(lid(200), la(200), 2));
    assert!(!l.candidates().iter().any(|c| c.state == PeerState::Failed));
}

// ----- store ----------------------------------------------------------------------------

fn rec(k: u8, origin: Origin) -> Record<16> {
    let mut b = [0u8; 20];
    b[0] = k;
    Record {
        key: Key::from_bytes(b),
        kind: ValueKind::Bytes,
        data: Vec::from_slice(&[k]).unwrap(),
        signer: None,
        origin,
        expires_at: Instant::from_millis(100),
        stored_at: Instant::ZERO,
        republished_at: Instant::ZERO,
    }
}

fn full_store_refuses() {
    let mut s = MemoryStore::<2, 16>::new();
    s.put(rec(1, Origin::Replica)).unwrap();
    s.put(rec(2, Origin::Replica)).unwrap();
    assert_eq!(s.put(rec(3, Origin::Replica)), Err(StoreError::Full));
    s.put(rec(2, Origin::Cache)).unwrap();
    assert_eq!(s.len(), 2);
}

fn keys_in_order() {
    let mut s = MemoryStore::<4, 16>::new();
    for k in [3, 1, 2] {
        s.put(rec(k, Origin::Replica)).unwrap();
    }
    let mut seen = Vec::<u8, 4>::new();
    let mut c = None;
    while let Some(k) = s.next_key(c.as_ref()) {
        seen.push(k.as_bytes()[0]).unwrap();
        c = Some(k);
    }
    assert_eq!(&seen[..], &[1, 2, 3]);
}

fn farthest_cache_evicted() {
    let own = NodeId::from_bytes([0; 20]);
    let mut s = MemoryStore::<3, 16>::new();
    s.put(rec(0x01, Origin::Replica)).unwrap();
    s.put(rec(0x02, Origin::Cache)).unwrap();
    s.put(rec(0x03, Origin::Cache)).unwrap();
    let incoming = rec(0xf0, Origin::Replica).meta();
    assert_eq!(eviction_candidate(&s, &own, &incoming), Some(rec(0x03, Origin::Cache).key));
}

fn publisher_never_evicted() {
    let own = NodeId::from_bytes([0; 20]);
    let mut s = MemoryStore::<1, 16>::new();
    s.put(rec(0xff, Origin::Publisher)).unwrap();
    assert_eq!(eviction_candidate(&s, &own, &rec(0x01, Origin::Publisher).meta()), None);
}

fn replica_displaces() {
    let own = NodeId::from_bytes([0; 20]);
    let mut s = MemoryStore::<1, 16>::new();
    s.put(rec(0x40, Origin::Replica)).unwrap();
    assert_eq!(eviction_candidate(&s, &own, &rec(0x80, Origin::Replica).meta()), None);
    assert!(eviction_candidate(&s, &own, &rec(0x01, Origin::Replica).meta()).is_some());
}

// ----- providers ------------------------------------------------------------------------

fn pkey(b: u8) -> Key {
    let mut k = [0u8; 20];
    k[0] = b;
    Key::from_bytes(k)
}
fn prec(k: u8, p: u8, exp: u64) -> ProviderRecord {
    ProviderRecord {
        key: pkey(k),
        provider: NodeId::from_bytes([p; 20]),
        addr: PeerAddr::V4([127, 0, 0, 1], 1),
        expires_at: Instant::from_millis(exp),
    }
}

fn providers_expire() {
    let own = NodeId::from_bytes([9; 20]);
    let mut p = Providers::<4>::new();
    p.add(prec(1, 1, 10), &own, Instant::ZERO);
    p.add(prec(1, 9, 10), &own, Instant::ZERO);
    let mut out = [(own, PeerAddr::V4([0; 4], 0)); 4];
    assert_eq!(p.get(&pkey(1), Instant::from_millis(5), &mut out), 2);
    p.expire(&own, Instant::from_millis(11));
    assert_eq!(p.len(), 1);
    assert_eq!(p.due_own(&own, Instant::from_millis(11)), Some(pkey(1)));
}

fn providers_full() {
    let own = NodeId::from_bytes([0; 20]);
    let mut p = Providers::<1>::new();
    assert_eq!(p.add(prec(0x40, 1, 99), &own, Instant::ZERO), Added::Stored);
    assert_eq!(p.add(prec(0x80, 2, 99), &own, Instant::ZERO), Added::Full);
    assert_eq!(p.add(prec(0x01, 3, 99), &own, Instant::ZERO), Added::Stored);
}

// ----- signed ---------------------------------------------------------------------------

fn signature_verifies() {
    use kad_core::signed::{key_for, verify, Keypair, SignatureError};
    let kp = Keypair::from_secret(&[7; 32]);
    let pk = kp.public_key();
    let key = key_for(&pk, b"salt");
    let sig = kp.sign(b"salt", 3, b"value");
    assert_eq!(verify(&key, &pk, b"salt", 3, b"value", &sig), Ok(()));
    assert_eq!(verify(&key, &pk, b"salt", 4, b"value", &sig), Err(SignatureError::Invalid));
    assert_eq!(verify(&key, &pk, b"salt", 3, b"valuE", &sig), Err(SignatureError::Invalid));
    let other = key_for(&pk, b"other");
    assert_eq!(verify(&other, &pk, b"salt", 3, b"value", &sig), Err(SignatureError::Invalid));
    let mut bad = sig;
    bad.0[0] ^= 1;
    assert_eq!(verify(&key, &pk, b"salt", 3, b"value", &bad), Err(SignatureError::Invalid));
}

// ----- sizes ----------------------------------------------------------------------------

/// Prints the RAM the DHT takes per capacity preset on this 32-bit target: the node, and the
/// node plus kad-embedded's socket buffers and queues (the runner task adds about 0.8 KiB).
pub fn print_sizes() {
    use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    use kad_core::presets::{embedded, host, sim};
    type Shared<const V: usize, const K: usize> = kad_embedded::Shared<NoopRawMutex, V, K>;
    let buffers = size_of::<kad_embedded::SocketBuffers>();
    hprintln!("RAM per preset on Cortex-M4 (bytes): preset, node, store, node + socket buffers + queues");
    for (name, node, store, shared) in [
        (
            "host",
            size_of::<host::Node>(),
            size_of::<host::Store>(),
            size_of::<Shared<{ host::VALUE }, { host::K }>>(),
        ),
        (
            "embedded",
            size_of::<embedded::Node>(),
            size_of::<embedded::Store>(),
            size_of::<Shared<{ embedded::VALUE }, { embedded::K }>>(),
        ),
        (
            "sim",
            size_of::<sim::Node>(),
            size_of::<sim::Store>(),
            size_of::<Shared<{ sim::VALUE }, { sim::K }>>(),
        ),
    ] {
        hprintln!("size {} {} {} {}", name, node, store, node + buffers + shared);
    }
}
