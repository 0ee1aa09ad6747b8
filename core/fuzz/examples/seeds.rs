//! Writes the seed corpus of the `decode` and `frame` targets: one valid message of each kind
//! (the largest where it matters), and relay frames carrying them.
//! `cd core/fuzz && cargo run --example seeds` rewrites `seeds/`; the files are committed.

use std::fs;
use std::path::Path;

use heapless::Vec;
use kad_core::frame::{self, MAX_FRAME, MAX_HELLO, MAX_HELLO_PEERS};
use kad_core::store::{MAX_SALT_LEN, MAX_VALUE_LEN};
use kad_core::wire::{
    self, Body, Bytes, Flags, Header, Message, StoreStatus, TxId, WireRecord, WireSignature, MAX_CONTACTS,
    MAX_DATAGRAM, MAX_PROVIDERS,
};
use kad_core::{Key, NodeId, Peer, PeerAddr, PublicKey, Signature, ValueKind};

const V4: PeerAddr = PeerAddr::V4([192, 0, 2, 1], 8468);
const V6: PeerAddr = PeerAddr::V6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8468);

fn peers<const N: usize>(n: usize) -> Vec<Peer, N> {
    (0..n)
        .map(|i| Peer { id: NodeId::from_bytes([i as u8; 20]), addr: if i % 2 == 0 { V4 } else { V6 } })
        .collect()
}

fn record(data: &[u8], signed: bool) -> WireRecord<'_> {
    WireRecord {
        key: Key::hash(b"key"),
        kind: ValueKind::Text,
        ttl_secs: 86_400,
        cached: false,
        data: Bytes(data),
        signature: signed.then_some(WireSignature {
            public_key: PublicKey([3; 32]),
            salt_len: 4,
            seq: 7,
            signature: Signature([5; 64]),
            cas: Some(6),
        }),
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let small = b"hello".as_slice();
    let large = [0xabu8; MAX_VALUE_LEN];
    let salted = [0x5au8; MAX_SALT_LEN + 16];
    let bodies: [(&str, Body<'_>); 15] = [
        ("ping", Body::Ping),
        ("pong", Body::Pong { observed: V6 }),
        ("find_node", Body::FindNode { target: Key::hash(b"target") }),
        ("nodes", Body::Nodes { contacts: peers(3) }),
        ("nodes_full", Body::Nodes { contacts: peers(MAX_CONTACTS) }),
        ("find_value", Body::FindValue { key: Key::hash(b"key") }),
        ("value", Body::Value { record: record(small, false), closer: peers(3) }),
        ("value_signed", Body::Value { record: record(&salted, true), closer: Default::default() }),
        ("store", Body::Store { record: record(small, false) }),
        ("store_largest", Body::Store { record: record(&large, true) }),
        ("stored", Body::Stored { status: StoreStatus::CasMismatch }),
        ("add_provider", Body::AddProvider { key: Key::hash(b"key") }),
        ("provider_added", Body::ProviderAdded { stored: true }),
        ("get_providers", Body::GetProviders { key: Key::hash(b"key") }),
        ("providers", Body::Providers { providers: peers(MAX_PROVIDERS), closer: peers(5) }),
    ];
    for target in ["decode", "frame"] {
        let _ = fs::remove_dir_all(dir.join(target));
        fs::create_dir_all(dir.join(target)).expect("create the seed directory");
    }
    let write = |target: &str, name: &str, bytes: &[u8]| {
        fs::write(dir.join(target).join(name), bytes).expect("write a seed");
    };
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut out = [0u8; MAX_FRAME];
    for (i, (name, body)) in bodies.into_iter().enumerate() {
        let header = Header {
            version: wire::VERSION,
            txid: TxId([1, 2, 3, i as u8]),
            sender: NodeId::from_bytes([0xee; 20]),
            flags: Flags(if i % 3 == 0 { Flags::CLIENT } else { 0 }),
            token: kad_core::token::Token([0xab; 8]),
        };
        let n = wire::encode(&Message { header, body }, &mut buf).expect("every seed fits in a datagram");
        write("decode", name, &buf[..n]);
        let to = if i % 2 == 0 { V4 } else { V6 };
        let f = frame::encode_datagram(&to, &buf[..n], &mut out).expect("a datagram fits in a frame");
        write("frame", &format!("datagram_{name}"), &out[..f]);
    }
    let mut hello = [0u8; MAX_HELLO];
    let addrs = [V4, V6].repeat(MAX_HELLO_PEERS);
    for count in [0, 2, MAX_HELLO_PEERS] {
        let n = frame::encode_hello(&V4, &addrs[..count], &mut hello).expect("a HELLO fits");
        write("frame", &format!("hello_{count}"), &hello[..n]);
    }
    let count = |target: &str| fs::read_dir(dir.join(target)).map_or(0, |d| d.count());
    println!("wrote {} decode and {} frame seeds under {}", count("decode"), count("frame"), dir.display());
}
