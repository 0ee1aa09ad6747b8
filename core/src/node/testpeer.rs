//! Test peers: one node under test, and its peers played by hand with datagrams written here,
//! so that a unit test sees every datagram the node sends and decides every answer.

use heapless::Vec;
use rand_core::SeedableRng;

use crate::addr::PeerAddr;
use crate::config::Config;
use crate::id::{Key, NodeId};
use crate::stats::RequestKind;
use crate::store::MemoryStore;
use crate::time::Instant;
use crate::token::Token;
use crate::wire::{self, Body, Flags, Header, Message, Peer, TxId, MAX_CONTACTS, MAX_DATAGRAM, VERSION};

use super::{Event, Node, Output};

/// Bytes of a value at the node under test.
pub(crate) const VALUE: usize = 64;

/// The node under test: K = 4, two replacements per bucket, two queries, 16 pending requests.
pub(crate) type TestNode = Node<MemoryStore<4, VALUE>, 8, 4, 2, 2, 16, VALUE, 4, 4>;

/// A node with the zero id and `config`, at time zero.
pub(crate) fn node(config: Config) -> TestNode {
    let mut rng = crate::NodeRng::seed_from_u64(7);
    Node::new(NodeId::from_bytes([0; 20]), config, MemoryStore::new(), &mut rng, Instant::ZERO)
}

/// Peer `n`: id `n` in its first byte (distance `n` from the node's zero id, so a higher `n` is
/// farther), address 10.`n`.0.1 (each peer in a /24 of its own).
pub(crate) fn peer(n: u8) -> Peer {
    let mut id = [0u8; 20];
    id[0] = n;
    Peer { id: NodeId::from_bytes(id), addr: PeerAddr::V4([10, n, 0, 1], 4000) }
}

/// Time `ms` milliseconds after the start.
pub(crate) fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A datagram the node sent: where, its transaction id, the request it carries (`None` for an
/// answer), and the peers an answer names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) to: PeerAddr,
    pub(crate) txid: TxId,
    pub(crate) request: Option<RequestKind>,
    pub(crate) nodes: Vec<Peer, MAX_CONTACTS>,
    /// Bytes of the datagram.
    pub(crate) len: usize,
}

/// What one drain of [`Node::poll_output`] gave.
pub(crate) struct Drained {
    pub(crate) sent: Vec<Sent, 32>,
    pub(crate) events: Vec<Event<VALUE>, 8>,
    pub(crate) wake_at: Instant,
}

impl Drained {
    /// The requests sent to `to`.
    pub(crate) fn requests_to(&self, to: PeerAddr) -> impl Iterator<Item = &Sent> + '_ {
        self.sent.iter().filter(move |s| s.to == to && s.request.is_some())
    }
}

/// Takes everything the node wants done now.
pub(crate) fn drain(node: &mut TestNode) -> Drained {
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut d = Drained { sent: Vec::new(), events: Vec::new(), wake_at: Instant::ZERO };
    // Bounded: a drain that does not end within this many outputs is a bug.
    for _ in 0..64 {
        match node.poll_output(&mut buf) {
            Output::Transmit(t) => {
                let msg = wire::decode(&buf[..t.len]).expect("the node sends valid datagrams");
                let request = match msg.body {
                    Body::Ping => Some(RequestKind::Ping),
                    Body::FindNode { .. } => Some(RequestKind::FindNode),
                    Body::FindValue { .. } => Some(RequestKind::FindValue),
                    Body::Store { .. } => Some(RequestKind::Store),
                    Body::AddProvider { .. } => Some(RequestKind::AddProvider),
                    Body::GetProviders { .. } => Some(RequestKind::GetProviders),
                    _ => None,
                };
                let nodes = match msg.body {
                    Body::Nodes { contacts } => contacts,
                    _ => Vec::new(),
                };
                let sent = Sent { to: t.to, txid: msg.header.txid, request, nodes, len: t.len };
                d.sent.push(sent).expect("at most 32 datagrams");
            }
            Output::Event(e) => d.events.push(e).expect("at most 8 events"),
            Output::Timeout(at) => {
                d.wake_at = at;
                return d;
            }
        }
    }
    panic!("poll_output never returned a timeout");
}

/// `from` sends `body` to the node with transaction id `txid`, at `now`, with the write token
/// the node grants `from` (a peer that asked the node before); returns the bytes of the datagram.
pub(crate) fn deliver(node: &mut TestNode, now: Instant, from: Peer, txid: TxId, body: Body<'_>) -> usize {
    let token = node.write_token(&from.addr);
    deliver_with(node, now, from, txid, token, body)
}

/// As [`deliver`], with write token `token`.
pub(crate) fn deliver_with(
    node: &mut TestNode,
    now: Instant,
    from: Peer,
    txid: TxId,
    token: Token,
    body: Body<'_>,
) -> usize {
    let header = Header { version: VERSION, txid, sender: from.id, flags: Flags::default(), token };
    let mut buf = [0u8; MAX_DATAGRAM];
    let len = wire::encode(&Message { header, body }, &mut buf).expect("fits a datagram");
    node.handle_datagram(now, from.addr, &buf[..len]);
    len
}

/// `from` answers the node's request `txid` with `contacts` (a FIND_NODE answer), at `now`.
pub(crate) fn answer_nodes(node: &mut TestNode, now: Instant, from: Peer, txid: TxId, contacts: &[Peer]) {
    let contacts = Vec::from_slice(contacts).expect("at most MAX_CONTACTS");
    deliver(node, now, from, txid, Body::Nodes { contacts });
}

/// `from` answers the node's PING `txid`, at `now`.
pub(crate) fn pong(node: &mut TestNode, now: Instant, from: Peer, txid: TxId) {
    deliver(node, now, from, txid, Body::Pong { observed: PeerAddr::V4([10, 0, 0, 100], 4000) });
}

/// Each of `peers` is heard from at `now` as if it had answered a request of the node (a
/// verified address: it enters the routing table), without a round-trip sample; everything
/// the node sends is drained.
pub(crate) fn meet(node: &mut TestNode, now: Instant, peers: &[Peer]) {
    node.advance(now);
    for p in peers {
        node.saw_peer(p.id, p.addr, Some(Token::default()));
    }
    drain(node);
}

/// A key at distance `n` (first byte) from the node's zero id.
pub(crate) fn key(n: u8) -> Key {
    peer(n).id.as_key()
}
