//! A live node under hostile input. The target (preset `embedded`, `sim` or `host`, in client
//! mode or not, chosen by the first byte) sits in a small network of four honest `embedded`
//! nodes; before the input is read it has contacts, records and a provider record of its own,
//! a get and a find_node in flight, and a peer's get is in flight too. The input is then a
//! sequence of operations: deliver, lose, duplicate, corrupt or re-address the datagrams in
//! flight; send the target well-formed or raw messages from chosen addresses; answer its
//! outstanding requests with their transaction ids (well-formed bodies, or raw bytes after a
//! valid header); let time pass; give it (or a peer) commands. At the end the network runs
//! until every command has finished.
//!
//! Checked after every operation, through the public API only: no panic; every `poll_output`
//! drain ends with `Timeout`, in the future, within a bound set by the capacities; every
//! datagram sent decodes, carries the sender's id and goes to a routable address (or back to
//! one that sent it something); the routing table keeps its capacity, puts each contact in the
//! bucket of its distance, holds no duplicate, no own id and no unroutable address; store,
//! providers and queries stay within their capacities; signed records are held under their key;
//! counters only grow and count exactly the datagrams in and out; each command's query is
//! reported once, with a result that fits what was asked (a get's record has the key asked and a
//! valid signature if signed, acknowledgements never exceed the peers asked), within an hour of
//! virtual time.
#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::LazyLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use kad_core::presets::{embedded, host, sim};
use kad_core::signed::{self, Keypair};
use kad_core::token::Token;
use kad_core::wire::{
    self, Body, Bytes, Flags, Header, Message, StoreStatus, TxId, WireRecord, WireSignature, MAX_DATAGRAM,
};
use kad_core::{
    Config, Event, Instant, Key, MemoryStore, Node, NodeId, Outcome, Output, Peer, PeerAddr, PublicKey,
    QueryId, RecordStore, Signature, Stats, ValueKind,
};
use libfuzzer_sys::fuzz_target;

/// Operations read from one input at most: bounds the time of one run.
const MAX_OPS: usize = 200;
/// Datagrams in flight at most (the oldest is lost beyond).
const MAX_FLIGHT: usize = 1024;
/// The target's latest requests an `Answer` or `Splice` may pick from.
const REQUESTS: usize = 32;
/// Honest nodes beside the target.
const PEERS: usize = 4;
/// Virtual time the network gets at the end for every command's query to finish.
const SETTLE: Duration = Duration::from_secs(3600);
/// Rounds of delivery the end of a run may take before the network counts as never quiet.
const SETTLE_ROUNDS: usize = 20_000;

const TARGET: PeerAddr = PeerAddr::V4([10, 0, 0, 1], 4000);

/// Peer `i`'s address: each peer in a /24 of its own, as on the internet (the routing table's
/// diversity limits count /24s).
fn peer_addr(i: usize) -> PeerAddr {
    PeerAddr::V4([10, 0, 2 + i as u8, 1], 4000)
}

/// Addresses an input names: the target, its honest peers, then addresses where no node
/// answers (same /24, another /24, documentation ranges, loopback, IPv6, a peer's IP on another
/// port, and unroutable ones).
const ADDRS: [PeerAddr; 16] = [
    TARGET,
    PeerAddr::V4([10, 0, 2, 1], 4000),
    PeerAddr::V4([10, 0, 3, 1], 4000),
    PeerAddr::V4([10, 0, 4, 1], 4000),
    PeerAddr::V4([10, 0, 5, 1], 4000),
    PeerAddr::V4([10, 0, 0, 6], 4000),
    PeerAddr::V4([10, 0, 0, 7], 4000),
    PeerAddr::V4([10, 0, 1, 1], 4000),
    PeerAddr::V4([192, 0, 2, 1], 8468),
    PeerAddr::V4([127, 0, 0, 1], 4000),
    PeerAddr::V6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 4000),
    PeerAddr::V6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 4000),
    PeerAddr::V4([10, 0, 2, 1], 4001),
    PeerAddr::V4([0, 0, 0, 0], 0),
    PeerAddr::V4([224, 0, 0, 1], 4000),
    PeerAddr::V4([10, 0, 0, 8], 0),
];

/// Ids, keys and the signing key every run shares.
struct Names {
    target: NodeId,
    peers: [NodeId; PEERS],
    /// The target, its peers, ids at chosen distances from the target (every depth of its
    /// table), and ids next to the keys.
    ids: Vec<NodeId>,
    /// User keys, the nodes' ids as keys, and the keys of the signed records below.
    keys: Vec<Key>,
    keypair: Keypair,
    public_key: PublicKey,
}

const SALTS: [&[u8]; 2] = [b"", b"salt"];

static NAMES: LazyLock<Names> = LazyLock::new(|| {
    let id = |s: &str| NodeId::from_bytes(*Key::hash(s.as_bytes()).as_bytes());
    let target = id("target");
    let peers = [id("peer 0"), id("peer 1"), id("peer 2"), id("peer 3")];
    let keypair = Keypair::from_secret(&[7; 32]);
    let public_key = keypair.public_key();
    let mut keys: Vec<Key> = ["k0", "k1", "k2", "k3"].iter().map(|k| Key::hash(k.as_bytes())).collect();
    keys.push(target.as_key());
    keys.push(peers[0].as_key());
    keys.extend(SALTS.iter().map(|s| signed::key_for(&public_key, s)));
    let flip = |of: &[u8; 20], bit: usize| {
        let mut b = *of;
        b[bit / 8] ^= 0x80 >> (bit % 8);
        NodeId::from_bytes(b)
    };
    let mut ids = vec![target];
    ids.extend(peers);
    ids.extend([0, 1, 2, 7, 40, 120, 158, 159].map(|bit| flip(target.as_bytes(), bit)));
    ids.extend(keys[..3].iter().map(|k| flip(k.as_bytes(), 159)));
    Names { target, peers, ids, keys, keypair, public_key }
});

// ----- the input -------------------------------------------------------------------------

/// An address: one of [`ADDRS`], or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Addr {
    Known(u8),
    V4([u8; 4], u16),
    V6([u8; 16], u16),
}

impl Addr {
    fn get(self) -> PeerAddr {
        match self {
            Addr::Known(i) => ADDRS[i as usize % ADDRS.len()],
            Addr::V4(ip, port) => PeerAddr::V4(ip, port),
            Addr::V6(ip, port) => PeerAddr::V6(ip, port),
        }
    }
}

/// A node id: the one the target expects at the address in question (as far as the harness
/// knows), one of the known ids, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Id {
    Expected,
    Known(u8),
    Any([u8; 20]),
}

/// A key: one of the known keys, a known id's, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum KeyOf {
    Known(u8),
    Id(u8),
    Any([u8; 20]),
}

impl KeyOf {
    fn get(self) -> Key {
        let n = &*NAMES;
        match self {
            KeyOf::Known(i) => n.keys[i as usize % n.keys.len()],
            KeyOf::Id(i) => n.ids[i as usize % n.ids.len()].as_key(),
            KeyOf::Any(b) => Key::from_bytes(b),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Contact {
    id: Id,
    addr: Addr,
}

/// The signature part of a record on the wire.
#[derive(Arbitrary, Debug)]
enum Sig {
    None,
    /// Signed with the shared key pair; under its key (or the record's own key).
    Valid {
        salt: u8,
        seq: u64,
        cas: Option<u64>,
        own_key: bool,
    },
    /// Anything, with the shared public key or another.
    Bogus {
        shared_key: bool,
        public_key: [u8; 32],
        salt_len: u8,
        seq: u64,
        signature: [u8; 64],
        cas: Option<u64>,
    },
}

#[derive(Arbitrary, Debug)]
struct Rec {
    key: KeyOf,
    text: bool,
    ttl_secs: u32,
    cached: bool,
    data: Vec<u8>,
    sig: Sig,
}

/// A message body of any kind, request or answer.
#[derive(Arbitrary, Debug)]
enum Msg {
    Ping,
    Pong(Addr),
    FindNode(KeyOf),
    Nodes(Vec<Contact>),
    FindValue(KeyOf),
    Value(Rec),
    Store(Rec),
    Stored(u8),
    AddProvider(KeyOf),
    ProviderAdded(bool),
    GetProviders(KeyOf),
    Providers(Vec<Contact>, Vec<Contact>),
}

#[derive(Arbitrary, Debug)]
enum Wait {
    Millis(u16),
    Minutes(u16),
}

/// A user's command.
#[derive(Arbitrary, Debug)]
enum Cmd {
    Bootstrap(Vec<Addr>),
    FindNode(KeyOf),
    Get(KeyOf),
    Put {
        key: KeyOf,
        text: bool,
        value: Vec<u8>,
    },
    PutSigned {
        salt: Vec<u8>,
        seq: u64,
        text: bool,
        value: Vec<u8>,
        cas: Option<u64>,
    },
    GetSigned {
        salt: Vec<u8>,
    },
    Provide(KeyOf),
    StopProviding(KeyOf),
    GetProviders(KeyOf),
    /// The front end deletes a record (`store_mut().remove`).
    Remove(KeyOf),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The next 1 to 32 datagrams in flight arrive.
    Deliver(u8),
    /// The next datagram in flight is lost.
    Lose,
    /// The next datagram in flight arrives, and stays in flight to arrive again.
    Duplicate,
    /// The next datagram in flight arrives with one byte changed.
    Corrupt { at: u16, xor: u8 },
    /// The next datagram in flight arrives from another address.
    Redirect(Addr),
    /// A well-formed message to the target from `from`, with the write token the target grants
    /// `from` (so that stores reach the store) or, `forged`, without one.
    Send { from: Addr, sender: Id, client: bool, txid: [u8; 4], msg: Msg, forged: bool },
    /// A well-formed message with the transaction id of one of the target's requests, from its
    /// destination or from elsewhere, granting any write token.
    Answer { req: u8, from: Option<Addr>, sender: Id, client: bool, msg: Msg, token: [u8; 8] },
    /// A valid header with the transaction id of one of the target's requests, then any bytes.
    Splice { req: u8, sender: Id, tail: Vec<u8> },
    /// Any bytes from `from`.
    Raw { from: Addr, bytes: Vec<u8> },
    /// Time passes; every node whose wake-up is due handles its timeout.
    Wait(Wait),
    /// The target handles a timeout now, due or not.
    Timeout,
    /// The target's user gives a command.
    Command(Cmd),
    /// An honest peer's user gives a command.
    PeerCommand(u8, Cmd),
}

// ----- the network ----------------------------------------------------------------------

struct Datagram {
    from: PeerAddr,
    to: PeerAddr,
    bytes: Vec<u8>,
}

/// A request the target sent.
struct Sent {
    to: PeerAddr,
    txid: TxId,
}

type Target<
    const N: usize,
    const B: usize,
    const K: usize,
    const R: usize,
    const Q: usize,
    const P: usize,
    const V: usize,
    const PV: usize,
    const E: usize,
> = Node<MemoryStore<N, V>, B, K, R, Q, P, V, PV, E>;

/// A deterministic RNG: the same transaction ids in every run, so that the fuzzer can learn them.
struct Counter(u64);

impl rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 16
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// What the harness does to a node of any capacity: the target or an honest peer.
trait Harnessed<const V: usize> {
    /// Takes the node's outputs until `Timeout`, as every front end does, checking that the
    /// drain ends within a bound set by the capacities, that every datagram is a kad message
    /// from this node, and that the wake-up is in the future.
    fn drain(&mut self, now: Instant, on: impl FnMut(Output<V>, &[u8]));
    /// Gives the node a command: `None` when the command starts no query; with a get, the key
    /// it asks for.
    fn give(&mut self, cmd: &Cmd, now: Instant) -> (Option<Result<QueryId, kad_core::Error>>, Option<Key>);
}

impl<
        const N: usize,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
    > Harnessed<V> for Target<N, B, K, R, Q, P, V, PV, E>
{
    fn drain(&mut self, now: Instant, mut on: impl FnMut(Output<V>, &[u8])) {
        // Queued answers and requests (P each), finished queries and peer events, with room for
        // the requests a dropped one lets its query send.
        let bound = 4 * (P + Q + E) + 16;
        let mut buf = [0u8; MAX_DATAGRAM];
        for _ in 0..bound {
            let out = self.poll_output(&mut buf);
            let len = match &out {
                Output::Transmit(t) => {
                    assert!(t.len <= MAX_DATAGRAM);
                    let msg =
                        wire::decode(&buf[..t.len]).expect("a node sent a datagram that does not decode");
                    assert_eq!(msg.header.sender, self.id(), "a node sent a datagram under another id");
                    t.len
                }
                Output::Timeout(at) => {
                    assert!(*at > now, "poll_output asked to be woken at {at:?}, not after now ({now:?})");
                    0
                }
                Output::Event(_) => 0,
            };
            let last = matches!(out, Output::Timeout(_));
            on(out, &buf[..len]);
            if last {
                return;
            }
        }
        panic!("poll_output did not return Timeout within {bound} outputs");
    }

    fn give(&mut self, cmd: &Cmd, now: Instant) -> (Option<Result<QueryId, kad_core::Error>>, Option<Key>) {
        let n = &*NAMES;
        let kind = |text: bool| if text { ValueKind::Text } else { ValueKind::Bytes };
        let (started, asked) = match cmd {
            Cmd::Bootstrap(addrs) => {
                let addrs: Vec<PeerAddr> = addrs.iter().map(|a| a.get()).collect();
                (self.bootstrap(&addrs, now), None)
            }
            Cmd::FindNode(k) => (self.find_node(k.get(), now), None),
            Cmd::Get(k) => (self.get(k.get(), now), Some(k.get())),
            Cmd::Put { key, text, value } => (self.put(key.get(), kind(*text), value, now), None),
            Cmd::PutSigned { salt, seq, text, value, cas } => {
                (self.put_signed(&n.keypair, salt, *seq, kind(*text), value, *cas, now), None)
            }
            Cmd::GetSigned { salt } => {
                (self.get_signed(&n.public_key, salt, now), Some(signed::key_for(&n.public_key, salt)))
            }
            Cmd::Provide(k) => (self.provide(k.get(), now), None),
            Cmd::GetProviders(k) => (self.get_providers(k.get(), now), None),
            Cmd::StopProviding(k) => {
                self.stop_providing(&k.get());
                return (None, None);
            }
            Cmd::Remove(k) => {
                self.store_mut().remove(&k.get());
                return (None, None);
            }
        };
        (Some(started), asked)
    }
}

/// The target, its honest peers and everything in flight between them, with what the harness
/// knows and has counted.
struct World<
    const N: usize,
    const B: usize,
    const K: usize,
    const R: usize,
    const Q: usize,
    const P: usize,
    const V: usize,
    const PV: usize,
    const E: usize,
> {
    target: Box<Target<N, B, K, R, Q, P, V, PV, E>>,
    peers: Vec<Box<embedded::Node>>,
    now: Instant,
    flight: VecDeque<Datagram>,
    requests: VecDeque<Sent>,
    /// The id the harness last said lives at an address.
    ids_at: HashMap<PeerAddr, NodeId>,
    /// Addresses that sent the target a datagram.
    sources: HashSet<PeerAddr>,
    /// The target's commands not yet reported, with the key a get asked for.
    running: HashMap<QueryId, Option<Key>>,
    /// Datagrams handed to the target and taken from it.
    fed: u64,
    sent: u64,
    /// The target's counters at the last check.
    counters: Stats,
}

impl<
        const N: usize,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
    > World<N, B, K, R, Q, P, V, PV, E>
{
    /// The network every run starts from: the peers bootstrap from the target, one after the
    /// other; the target puts
    /// a record and provides a key, a peer puts another; then the target starts a get and a
    /// find_node and a peer a get, all left in flight.
    fn new(client_mode: bool) -> Self {
        let n = &*NAMES;
        let now = Instant::from_millis(1);
        let mut rng = Counter(7);
        let config = Config::default();
        let target_config = Config { client_mode, ..config };
        let target = Box::new(Node::new(n.target, target_config, MemoryStore::new(), &mut rng, now));
        let peers = n
            .peers
            .iter()
            .map(|id| Box::new(embedded::Node::new(*id, config, embedded::Store::new(), &mut rng, now)))
            .collect();
        let mut w = World {
            target,
            peers,
            now,
            flight: VecDeque::new(),
            requests: VecDeque::new(),
            ids_at: (0..PEERS).map(|i| (peer_addr(i), n.peers[i])).collect(),
            sources: HashSet::new(),
            running: HashMap::new(),
            fed: 0,
            sent: 0,
            counters: Stats::default(),
        };
        // One at a time: the target verifies a stranger's address with a ping, only a few at
        // once (a quarter of its pending slots), and a client target hears from each only once.
        for i in 0..PEERS {
            w.peer_command(i, &Cmd::Bootstrap(vec![Addr::Known(0)]));
            w.deliver_all();
        }
        w.command(&Cmd::Put { key: KeyOf::Known(0), text: true, value: b"v0".to_vec() });
        w.command(&Cmd::Provide(KeyOf::Known(1)));
        w.peer_command(0, &Cmd::Put { key: KeyOf::Known(2), text: false, value: b"v2".to_vec() });
        w.deliver_all();
        w.command(&Cmd::Get(KeyOf::Known(2)));
        w.command(&Cmd::FindNode(KeyOf::Known(3)));
        w.peer_command(1, &Cmd::Get(KeyOf::Known(0)));
        assert!(w.target.routing().len() >= PEERS, "the prelude left the target with too few contacts");
        w.check();
        w
    }

    /// Builds the network, applies the operations of `u`, checking after each, and settles.
    fn run(mut u: Unstructured<'_>, client_mode: bool) {
        let mut w = Self::new(client_mode);
        for _ in 0..MAX_OPS {
            let Ok(op) = Op::arbitrary(&mut u) else { break };
            if *DEBUG {
                eprintln!("{op:?}");
            }
            w.apply(op);
            w.check();
            if u.is_empty() {
                break;
            }
        }
        w.settle();
        if *DEBUG {
            let t = &w.target;
            eprintln!(
                "after {:?}: {} contacts, {} records, {} providers, {} requests recorded\n{:?}",
                w.now,
                t.routing().len(),
                t.store().len(),
                t.providers().len(),
                w.requests.len(),
                t.stats()
            );
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Deliver(n) => {
                for _ in 0..=n % 32 {
                    let Some(d) = self.flight.pop_front() else { break };
                    self.deliver(d, None);
                }
            }
            Op::Lose => {
                self.flight.pop_front();
            }
            Op::Duplicate => {
                if let Some(d) = self.flight.front() {
                    let copy = Datagram { from: d.from, to: d.to, bytes: d.bytes.clone() };
                    self.deliver(copy, None);
                }
            }
            Op::Corrupt { at, xor } => {
                if let Some(mut d) = self.flight.pop_front() {
                    let i = at as usize % d.bytes.len().max(1);
                    if let Some(b) = d.bytes.get_mut(i) {
                        *b ^= xor;
                    }
                    self.deliver(d, None);
                }
            }
            Op::Redirect(from) => {
                if let Some(d) = self.flight.pop_front() {
                    self.deliver(d, Some(from.get()));
                }
            }
            Op::Send { from, sender, client, txid, msg, forged } => {
                let from = from.get();
                let sender = self.id(sender, from);
                let token = if forged { Token::default() } else { self.target.write_token(&from) };
                let header = header(TxId(txid), sender, client, token);
                if let Some(bytes) = self.encode(header, &msg) {
                    self.ids_at.insert(from, sender);
                    self.feed(from, &bytes);
                }
            }
            Op::Answer { req, from, sender, client, msg, token } => {
                let Some(s) = self.request(req) else { return };
                let (to, txid) = (s.to, s.txid);
                let sender = self.id(sender, to);
                let from = from.map_or(to, Addr::get);
                if let Some(bytes) = self.encode(header(txid, sender, client, Token(token)), &msg) {
                    self.feed(from, &bytes);
                }
            }
            Op::Splice { req, sender, tail } => {
                let Some(s) = self.request(req) else { return };
                let (to, txid) = (s.to, s.txid);
                let sender = self.id(sender, to);
                let mut buf = [0u8; MAX_DATAGRAM];
                let ping = Message { header: header(txid, sender, false, Token::default()), body: Body::Ping };
                let n = wire::encode(&ping, &mut buf).expect("a ping fits");
                // The ping's body is its last byte (variant 0): the tail takes its place.
                let mut bytes = buf[..n - 1].to_vec();
                bytes.extend_from_slice(&tail);
                self.feed(to, &bytes);
            }
            Op::Raw { from, bytes } => self.feed(from.get(), &bytes),
            Op::Wait(w) => {
                let d = match w {
                    Wait::Millis(ms) => Duration::from_millis(ms as u64),
                    Wait::Minutes(m) => Duration::from_secs(60 * m as u64),
                };
                self.wait_until(self.now + d);
            }
            Op::Timeout => {
                self.target.handle_timeout(self.now);
                self.drain_target();
            }
            Op::Command(cmd) => self.command(&cmd),
            Op::PeerCommand(i, cmd) => self.peer_command(i as usize % PEERS, &cmd),
        }
    }

    /// One of the target's latest requests, the newest first.
    fn request(&self, i: u8) -> Option<&Sent> {
        let len = self.requests.len();
        (len > 0).then(|| &self.requests[len - 1 - i as usize % len])
    }

    fn id(&self, id: Id, at: PeerAddr) -> NodeId {
        let n = &*NAMES;
        match id {
            Id::Expected => self.ids_at.get(&at).copied().unwrap_or(n.ids[PEERS + 1]),
            Id::Known(i) => n.ids[i as usize % n.ids.len()],
            Id::Any(b) => NodeId::from_bytes(b),
        }
    }

    fn peers_of(&mut self, contacts: &[Contact]) -> Vec<Peer> {
        contacts
            .iter()
            .map(|c| {
                let addr = c.addr.get();
                let id = self.id(c.id, addr);
                // An answer to the target names this peer: a later answer "from" it uses this id.
                self.ids_at.insert(addr, id);
                Peer { id, addr }
            })
            .collect()
    }

    /// Encodes `msg` under `header`; `None` when it does not fit in a datagram.
    fn encode(&mut self, header: Header, msg: &Msg) -> Option<Vec<u8>> {
        let mut data = Vec::new();
        let body = match msg {
            Msg::Ping => Body::Ping,
            Msg::Pong(a) => Body::Pong { observed: a.get() },
            Msg::FindNode(k) => Body::FindNode { target: k.get() },
            Msg::Nodes(cs) => {
                Body::Nodes { contacts: self.peers_of(cs).into_iter().take(wire::MAX_CONTACTS).collect() }
            }
            Msg::FindValue(k) => Body::FindValue { key: k.get() },
            Msg::Value(r) | Msg::Store(r) => {
                let record = wire_record(r, &mut data);
                if let Msg::Value(_) = msg {
                    Body::Value { record, closer: Default::default() }
                } else {
                    Body::Store { record }
                }
            }
            Msg::Stored(s) => Body::Stored { status: STATUSES[*s as usize % STATUSES.len()] },
            Msg::AddProvider(k) => Body::AddProvider { key: k.get() },
            Msg::ProviderAdded(stored) => Body::ProviderAdded { stored: *stored },
            Msg::GetProviders(k) => Body::GetProviders { key: k.get() },
            Msg::Providers(ps, cs) => Body::Providers {
                providers: self.peers_of(ps).into_iter().take(wire::MAX_PROVIDERS).collect(),
                closer: self.peers_of(cs).into_iter().take(wire::MAX_CONTACTS).collect(),
            },
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        let len = wire::encode(&Message { header, body }, &mut buf).ok()?;
        Some(buf[..len].to_vec())
    }

    // ----- moving datagrams -------------------------------------------------------------

    /// Hands `d` to its destination (from `from` instead of its sender, if given); a datagram
    /// to an address of no node is gone.
    fn deliver(&mut self, d: Datagram, from: Option<PeerAddr>) {
        let from = from.unwrap_or(d.from);
        if d.to == TARGET {
            self.feed(from, &d.bytes);
        } else if let Some(i) = (0..PEERS).find(|&i| peer_addr(i) == d.to) {
            self.peers[i].handle_datagram(self.now, from, &d.bytes);
            self.drain_peer(i);
        }
    }

    fn deliver_all(&mut self) {
        for _ in 0..100_000 {
            let Some(d) = self.flight.pop_front() else { return };
            self.deliver(d, None);
        }
        panic!("the network did not fall quiet within 100,000 datagrams");
    }

    fn feed(&mut self, from: PeerAddr, bytes: &[u8]) {
        self.fed += 1;
        self.sources.insert(from);
        self.target.handle_datagram(self.now, from, bytes);
        self.drain_target();
    }

    fn send(flight: &mut VecDeque<Datagram>, from: PeerAddr, to: PeerAddr, bytes: &[u8]) {
        if flight.len() == MAX_FLIGHT {
            flight.pop_front();
        }
        flight.push_back(Datagram { from, to, bytes: bytes.to_vec() });
    }

    fn drain_target(&mut self) {
        let now = self.now;
        let World { target, flight, requests, sources, running, sent, .. } = self;
        let own = target.id();
        target.drain(now, |out, bytes| match out {
            Output::Transmit(t) => {
                *sent += 1;
                assert!(
                    t.to.is_routable() || sources.contains(&t.to),
                    "the target sent to {}, unroutable and never heard from",
                    t.to
                );
                let msg = wire::decode(bytes).expect("checked by drain");
                if msg.body.is_request() {
                    if requests.len() == REQUESTS {
                        requests.pop_front();
                    }
                    requests.push_back(Sent { to: t.to, txid: msg.header.txid });
                }
                Self::send(flight, TARGET, t.to, bytes);
            }
            Output::Event(Event::QueryDone { id, outcome, .. }) => {
                let asked = running.remove(&id);
                assert!(asked.is_some(), "{id:?} reported but not started by a command, or reported twice");
                check_outcome(&outcome, asked.flatten(), own);
            }
            Output::Event(_) | Output::Timeout(_) => {}
        });
    }

    fn drain_peer(&mut self, i: usize) {
        let now = self.now;
        let from = peer_addr(i);
        let World { peers, flight, .. } = self;
        peers[i].drain(now, |out, bytes| {
            if let Output::Transmit(t) = out {
                Self::send(flight, from, t.to, bytes);
            }
        });
    }

    /// Moves time to `until`; every node whose wake-up is due handles its timeout.
    fn wait_until(&mut self, until: Instant) {
        self.now = until;
        if self.target.poll_timeout() <= until {
            self.target.handle_timeout(until);
            self.drain_target();
        }
        for i in 0..PEERS {
            if self.peers[i].poll_timeout() <= until {
                self.peers[i].handle_timeout(until);
                self.drain_peer(i);
            }
        }
    }

    // ----- commands ---------------------------------------------------------------------

    fn command(&mut self, cmd: &Cmd) {
        let now = self.now;
        let (started, asked) = self.target.give(cmd, now);
        match started {
            Some(Ok(q)) => assert!(self.running.insert(q, asked).is_none(), "{q:?} started twice"),
            Some(Err(e)) => assert!(!e.to_string().is_empty()),
            None => {}
        }
        self.drain_target();
    }

    fn peer_command(&mut self, i: usize, cmd: &Cmd) {
        let _ = self.peers[i].give(cmd, self.now);
        self.drain_peer(i);
    }

    // ----- invariants -------------------------------------------------------------------

    fn check(&mut self) {
        let t = &*self.target;
        let s = t.stats();
        assert_eq!(s.datagrams_in, self.fed, "datagrams_in counts every datagram handed in");
        assert_eq!(s.datagrams_out, self.sent, "datagrams_out counts every datagram taken out");
        // Every counter of Stats, present and future, in declaration order.
        only_grow(&self.counters, s);
        self.counters = *s;

        let own = t.id();
        let rt = t.routing();
        assert!(rt.bucket_count() <= B, "{} buckets of at most {B}", rt.bucket_count());
        let buckets = rt.bucket_count();
        let mut contacts = rt.iter();
        let mut seen = HashSet::new();
        for (i, size) in rt.bucket_sizes().enumerate() {
            assert!(size <= K, "bucket {i} holds {size} contacts, more than K = {K}");
            for _ in 0..size {
                let c = contacts.next().expect("bucket_sizes and iter agree");
                assert!(seen.insert(c.id), "{:?} is in the table twice", c.id);
                assert_ne!(c.id, own, "the own id is in the table");
                assert!(c.addr.is_routable(), "unroutable contact {}", c.addr);
                let depth = own.distance(&c.id).leading_zeros();
                assert!(
                    depth == i || (i + 1 == buckets && depth > i),
                    "{:?} at depth {depth} in bucket {i}",
                    c.id
                );
                assert_eq!(rt.get(&c.id), Some(c));
            }
        }
        assert!(contacts.next().is_none(), "iter has contacts bucket_sizes does not count");
        let limits = t.config().limits;
        for c in rt.iter().filter(|c| limits.apply_to(&c.addr)) {
            let same = rt.iter().filter(|o| o.addr.prefix() == c.addr.prefix()).count();
            assert!(
                same <= usize::from(limits.table_per_prefix),
                "{same} contacts of the prefix of {}",
                c.addr
            );
            assert_eq!(rt.iter().filter(|o| o.addr == c.addr).count(), 1, "two contacts at {}", c.addr);
        }
        assert!(rt.len() <= B * K);

        let store = t.store();
        assert!(store.len() <= N, "{} records in a store of {N}", store.len());
        assert_eq!(store.iter().count(), store.len());
        for r in store.iter() {
            assert!(r.data.len() <= V);
            if let Some(s) = &r.signer {
                assert_eq!(
                    signed::key_for(&s.public_key, r.salt()),
                    r.key,
                    "a signed record under another key"
                );
            }
        }
        assert!(t.providers().len() <= PV);
        assert!(t.queries_in_flight() <= Q);
    }

    /// Runs the network until every command of the target has finished, and checks that they do
    /// within [`SETTLE`] of virtual time; the signed records held verify.
    fn settle(&mut self) {
        let end = self.now + SETTLE;
        for _ in 0..SETTLE_ROUNDS {
            if let Some(d) = self.flight.pop_front() {
                self.deliver(d, None);
                continue;
            }
            if self.running.is_empty() {
                break;
            }
            let next = (0..PEERS)
                .map(|i| self.peers[i].poll_timeout())
                .fold(self.target.poll_timeout(), Instant::min);
            assert!(
                next <= end,
                "queries {:?} still running after {SETTLE:?} of virtual time",
                self.running.keys()
            );
            self.wait_until(next);
        }
        assert!(self.running.is_empty(), "the network was never quiet: {} rounds", SETTLE_ROUNDS);
        self.check();
        for r in self.target.store().iter() {
            if let Some(s) = &r.signer {
                let ok = signed::verify(&r.key, &s.public_key, r.salt(), s.seq, r.value(), &s.signature);
                assert!(ok.is_ok(), "a held signed record does not verify");
            }
        }
    }
}

const STATUSES: [StoreStatus; 10] = [
    StoreStatus::Stored,
    StoreStatus::TooLarge,
    StoreStatus::Full,
    StoreStatus::BadSignature,
    StoreStatus::StaleSeq,
    StoreStatus::CasMismatch,
    StoreStatus::Unsupported,
    StoreStatus::StorageError,
    StoreStatus::BadToken,
    StoreStatus::OverShare,
];

fn header(txid: TxId, sender: NodeId, client: bool, token: Token) -> Header {
    Header { version: wire::VERSION, txid, sender, flags: Flags(if client { Flags::CLIENT } else { 0 }), token }
}

/// A record on the wire; its bytes go into `data`.
fn wire_record<'a>(r: &Rec, data: &'a mut Vec<u8>) -> WireRecord<'a> {
    let n = &*NAMES;
    let mut key = r.key.get();
    let signature = match r.sig {
        Sig::None => {
            data.extend_from_slice(&r.data);
            None
        }
        Sig::Valid { salt, seq, cas, own_key } => {
            let salt = SALTS[salt as usize % SALTS.len()];
            data.extend_from_slice(salt);
            data.extend_from_slice(&r.data);
            if !own_key {
                key = signed::key_for(&n.public_key, salt);
            }
            Some(WireSignature {
                public_key: n.public_key,
                salt_len: salt.len() as u8,
                seq,
                signature: n.keypair.sign(salt, seq, &r.data),
                cas,
            })
        }
        Sig::Bogus { shared_key, public_key, salt_len, seq, signature, cas } => {
            data.extend_from_slice(&r.data);
            Some(WireSignature {
                public_key: if shared_key { n.public_key } else { PublicKey(public_key) },
                salt_len,
                seq,
                signature: Signature(signature),
                cas,
            })
        }
    };
    WireRecord {
        key,
        kind: if r.text { ValueKind::Text } else { ValueKind::Bytes },
        ttl_secs: r.ttl_secs,
        cached: r.cached,
        data: Bytes(data),
        signature,
    }
}

/// A finished command's result fits what was asked.
fn check_outcome<const V: usize>(outcome: &Outcome<V>, asked: Option<Key>, own: NodeId) {
    let peers_ok = |peers: &[Peer]| {
        let ids: HashSet<NodeId> = peers.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), peers.len(), "a result names a peer twice: {peers:?}");
        assert!(peers.iter().all(|p| p.addr.is_routable()), "a result names an unroutable peer: {peers:?}");
    };
    match outcome {
        Outcome::Get(Ok(r)) => {
            assert_eq!(Some(r.key), asked, "a get returned a record under another key");
            if let Some(s) = &r.signer {
                let ok = signed::verify(&r.key, &s.public_key, r.salt(), s.seq, r.value(), &s.signature);
                assert!(ok.is_ok(), "a get returned a signed record that does not verify");
            }
        }
        Outcome::Put(Ok(a)) | Outcome::Provide(Ok(a)) => {
            assert!(a.stored >= 1 && a.stored <= a.tried, "{a:?}: more acknowledgements than peers asked")
        }
        Outcome::FindNode(Ok(peers)) => {
            peers_ok(peers);
            assert!(peers.iter().all(|p| p.id != own), "find_node returned the own id");
        }
        Outcome::GetProviders(Ok(peers)) => peers_ok(peers),
        _ => {}
    }
}

/// Every counter of `new` is at least its value in `old`. The pattern names every field, so
/// that a counter added to `Stats` must be added here too.
fn only_grow(old: &Stats, new: &Stats) {
    let Stats {
        datagrams_in,
        datagrams_out,
        dropped_malformed,
        dropped_version,
        dropped_too_large,
        dropped_own_id,
        dropped_unmatched,
        dropped_bad_response,
        requests_in,
        requests_out,
        timeouts,
        retries,
        rebootstraps,
        liveness_pings,
        replies_dropped,
        requests_deferred,
        requests_abandoned,
        queries_busy,
        queries_finished,
        stores_accepted,
        stores_refused,
        writes_bad_token,
        stores_over_share,
        cache_unconfirmed,
        records_evicted,
        records_expired,
        replications,
        republished,
        events_dropped,
        providers_refused,
        requests_limited,
        verify_pings,
        diversity_refused,
        address_reused,
        replies_trimmed,
        replications_limited,
    } = *new;
    let counters = [
        (datagrams_in, old.datagrams_in, "datagrams_in"),
        (datagrams_out, old.datagrams_out, "datagrams_out"),
        (dropped_malformed, old.dropped_malformed, "dropped_malformed"),
        (dropped_version, old.dropped_version, "dropped_version"),
        (dropped_too_large, old.dropped_too_large, "dropped_too_large"),
        (dropped_own_id, old.dropped_own_id, "dropped_own_id"),
        (dropped_unmatched, old.dropped_unmatched, "dropped_unmatched"),
        (dropped_bad_response, old.dropped_bad_response, "dropped_bad_response"),
        (timeouts, old.timeouts, "timeouts"),
        (retries, old.retries, "retries"),
        (rebootstraps, old.rebootstraps, "rebootstraps"),
        (liveness_pings, old.liveness_pings, "liveness_pings"),
        (replies_dropped, old.replies_dropped, "replies_dropped"),
        (requests_deferred, old.requests_deferred, "requests_deferred"),
        (requests_abandoned, old.requests_abandoned, "requests_abandoned"),
        (queries_busy, old.queries_busy, "queries_busy"),
        (queries_finished, old.queries_finished, "queries_finished"),
        (stores_accepted, old.stores_accepted, "stores_accepted"),
        (stores_refused, old.stores_refused, "stores_refused"),
        (writes_bad_token, old.writes_bad_token, "writes_bad_token"),
        (stores_over_share, old.stores_over_share, "stores_over_share"),
        (cache_unconfirmed, old.cache_unconfirmed, "cache_unconfirmed"),
        (records_evicted, old.records_evicted, "records_evicted"),
        (records_expired, old.records_expired, "records_expired"),
        (replications, old.replications, "replications"),
        (republished, old.republished, "republished"),
        (events_dropped, old.events_dropped, "events_dropped"),
        (requests_limited, old.requests_limited, "requests_limited"),
        (verify_pings, old.verify_pings, "verify_pings"),
        (diversity_refused, old.diversity_refused, "diversity_refused"),
        (address_reused, old.address_reused, "address_reused"),
        (replies_trimmed, old.replies_trimmed, "replies_trimmed"),
        (replications_limited, old.replications_limited, "replications_limited"),
        (providers_refused, old.providers_refused, "providers_refused"),
    ];
    for (new, old, name) in counters {
        assert!(new >= old, "stats.{name} went down from {old} to {new}");
    }
    for ((kind, new), (_, old)) in requests_in.iter().zip(old.requests_in.iter()) {
        assert!(new >= old, "stats.requests_in[{}] went down from {old} to {new}", kind.name());
    }
    for ((kind, new), (_, old)) in requests_out.iter().zip(old.requests_out.iter()) {
        assert!(new >= old, "stats.requests_out[{}] went down from {old} to {new}", kind.name());
    }
}

/// `KAD_FUZZ_DEBUG=1`: print each operation and the target's state, to read a crash's story.
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("KAD_FUZZ_DEBUG").is_some());

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let choice = u8::arbitrary(&mut u).unwrap_or(0);
    let client_mode = choice & 0x80 != 0;
    match choice % 3 {
        0 => {
            use embedded::*;
            World::<RECORDS, B, K, R, QUERIES, PENDING, VALUE, PROVIDERS, EVENTS>::run(u, client_mode)
        }
        1 => {
            use sim::*;
            World::<RECORDS, B, K, R, QUERIES, PENDING, VALUE, PROVIDERS, EVENTS>::run(u, client_mode)
        }
        _ => {
            use host::*;
            World::<RECORDS, B, K, R, QUERIES, PENDING, VALUE, PROVIDERS, EVENTS>::run(u, client_mode)
        }
    }
});
