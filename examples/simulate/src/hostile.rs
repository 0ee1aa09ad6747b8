//! Hostile nodes: real nodes whose answers to other nodes' requests the simulator rewrites.
//!
//! A hostile node joins, pings, looks up and refreshes like any node (its own requests are the
//! core's), so honest nodes meet it as they would meet an attacker on the internet. What it
//! answers is the attacker's, and all hostile nodes collude:
//! - FIND_NODE and GET_PROVIDERS: only the hostile nodes closest to the target (Sybils that
//!   name each other, to pull lookups into their part of the network);
//! - FIND_VALUE: a forged value for whatever key is asked (a liar on every get path);
//! - STORE: "stored", and the record is dropped (a node that loses data while saying it kept
//!   it); ADD_PROVIDER likewise.
//!
//! Pings are answered by the node itself, so hostile nodes look alive and stay in tables.

use std::collections::VecDeque;

use kad_core::presets::sim;
use kad_core::testnet::Driven;
use kad_core::wire::{self, Body, Flags, Header, Message, StoreStatus, WireRecord};
use kad_core::{Instant, Key, Output, Peer, PeerAddr, Transmit, ValueKind};

/// What every liar answers as the value of any key.
pub const FORGED: &[u8] = b"forged by a hostile node";

/// The hostile nodes, as all of them know them (they collude).
#[derive(Default)]
pub struct Coalition {
    members: Vec<Peer>,
}

impl Coalition {
    /// Adds a member.
    pub fn join(&mut self, peer: Peer) {
        self.members.push(peer);
    }

    /// Members in all.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The `n` members closest to `target`, nearest first.
    fn closest(&self, target: &Key, n: usize) -> heapless::Vec<Peer, { wire::MAX_CONTACTS }> {
        let mut all: Vec<&Peer> = self.members.iter().collect();
        all.sort_by_key(|p| target.distance(&p.id));
        all.into_iter().take(n.min(wire::MAX_CONTACTS)).copied().collect()
    }
}

/// A hostile node's answers waiting to be sent, ahead of its own node's output.
#[derive(Default)]
pub struct Outbox {
    queue: VecDeque<(PeerAddr, Vec<u8>)>,
}

/// A hostile node for one drive of the test network: its node, its outbox and the coalition.
pub struct Hostile<'a> {
    /// The node underneath, which sends its own requests and answers pings.
    pub node: &'a mut sim::Node,
    /// Answers not yet sent.
    pub outbox: &'a mut Outbox,
    /// Who the Sybils name.
    pub coalition: &'a Coalition,
}

impl Hostile<'_> {
    /// The attacker's answer to `msg`, if it has one (else the node handles it).
    fn answer<'b>(&self, msg: &Message<'_>, forged: &'b [u8]) -> Option<Body<'b>> {
        Some(match msg.body {
            Body::FindNode { target } => Body::Nodes { contacts: self.coalition.closest(&target, sim::K) },
            Body::GetProviders { key } => Body::Providers {
                providers: heapless::Vec::new(),
                closer: self.coalition.closest(&key, sim::K),
            },
            Body::FindValue { key } => Body::Value {
                record: WireRecord {
                    key,
                    kind: ValueKind::Bytes,
                    ttl_secs: 24 * 3600,
                    cached: false,
                    data: wire::Bytes(forged),
                    signature: None,
                },
                // Beside its value, a liar names other Sybils (an honest holder names peers).
                closer: self.coalition.closest(&key, sim::K),
            },
            Body::Store { .. } => Body::Stored { status: StoreStatus::Stored },
            Body::AddProvider { .. } => Body::ProviderAdded { stored: true },
            _ => return None,
        })
    }
}

impl Driven<{ sim::VALUE }> for Hostile<'_> {
    fn handle_datagram(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        let Ok(msg) = wire::decode(bytes) else { return self.node.handle_datagram(now, from, bytes) };
        let Some(body) = self.answer(&msg, FORGED) else {
            return self.node.handle_datagram(now, from, bytes);
        };
        let header = Header {
            version: wire::VERSION,
            txid: msg.header.txid,
            sender: self.node.id(),
            flags: Flags::default(),
            token: self.node.write_token(&from),
        };
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        if let Ok(len) = wire::encode(&Message { header, body }, &mut buf) {
            buf.truncate(len);
            self.outbox.queue.push_back((from, buf));
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now)
    }

    fn poll_output(&mut self, buf: &mut [u8]) -> Output<{ sim::VALUE }> {
        match self.outbox.queue.pop_front() {
            Some((to, bytes)) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Output::Transmit(Transmit { to, len: bytes.len() })
            }
            None => self.node.poll_output(buf),
        }
    }

    fn poll_timeout(&self) -> Instant {
        self.node.poll_timeout()
    }
}
