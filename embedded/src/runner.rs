//! The [`Runner`]: one task that owns the UDP socket and the node and moves bytes, time and
//! commands in and out of it.
//!
//! Its loop is the core's rule, "mutate, then drain outputs": send every datagram the node has
//! and hand finished queries to their callers until the node gives its next timeout, then wait
//! for whichever comes first of a datagram, that timeout and a command. Back-pressure is
//! kad-core's policy ([`kad_core::backlog`]) with the command channel as the backlog: it is read
//! only while the node can start a query, so commands wait in it in order and callers wait.

use embassy_futures::select::{select, select3, Either, Either3};
use embassy_net::udp::{BindError, PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, IpEndpoint, Stack};
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_time::{Duration, Timer};
use heapless::Vec;
use kad_core::wire::MAX_DATAGRAM;
use kad_core::{Event, Instant, Node, Outcome, Output, PeerAddr, QueryId, RecordStore, Transmit};

use crate::dht::{Answer, Command, DhtError, Reply, Request, Shared, CALLERS, MAX_BOOTSTRAP};
use crate::fmt::Disp;

/// Datagrams the socket holds before the runner takes them.
pub const RX_PACKETS: usize = 4;
/// Bytes of datagrams the socket holds before the runner takes them: two of the largest, or
/// more smaller ones (α = 3 answers arriving together are mostly well under 1200 bytes).
pub const RX_BYTES: usize = 2 * MAX_DATAGRAM;
/// Datagrams queued for sending (waiting for the interface or for ARP).
pub const TX_PACKETS: usize = 2;
/// Bytes queued for sending.
pub const TX_BYTES: usize = MAX_DATAGRAM;
/// How long a datagram may wait for room in the socket before the runner decides the queue is
/// stuck and drops it. embassy-net (smoltcp) keeps a datagram to a neighbour whose ARP does not
/// resolve at the head of the queue forever (one try a second), which would block every other
/// peer; the runner then closes and rebinds the socket, dropping what was queued.
pub const SEND_STALL: Duration = Duration::from_millis(2500);

/// The socket's buffers and the one datagram the node writes into: `RX_BYTES + TX_BYTES +
/// MAX_DATAGRAM` bytes plus packet metadata. Put it in a `static` (its constructor is `const`).
pub struct SocketBuffers {
    rx_meta: [PacketMetadata; RX_PACKETS],
    rx: [u8; RX_BYTES],
    tx_meta: [PacketMetadata; TX_PACKETS],
    tx: [u8; TX_BYTES],
    datagram: [u8; MAX_DATAGRAM],
}

impl Default for SocketBuffers {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketBuffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        SocketBuffers {
            rx_meta: [PacketMetadata::EMPTY; RX_PACKETS],
            rx: [0; RX_BYTES],
            tx_meta: [PacketMetadata::EMPTY; TX_PACKETS],
            tx: [0; TX_BYTES],
            datagram: [0; MAX_DATAGRAM],
        }
    }
}

/// The node's clock: milliseconds since boot, from embassy-time.
pub fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

fn deadline(at: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_millis(at.as_millis())
}

/// The embassy-net endpoint of a peer; `None` for IPv6 without the `ipv6` feature.
pub fn endpoint(addr: PeerAddr) -> Option<IpEndpoint> {
    match addr {
        PeerAddr::V4(ip, port) => Some(IpEndpoint::new(IpAddress::Ipv4(ip.into()), port)),
        #[cfg(feature = "ipv6")]
        PeerAddr::V6(ip, port) => Some(IpEndpoint::new(IpAddress::Ipv6(ip.into()), port)),
        #[cfg(not(feature = "ipv6"))]
        PeerAddr::V6(..) => None,
    }
}

/// The peer address of an embassy-net endpoint.
pub fn peer_addr(endpoint: IpEndpoint) -> PeerAddr {
    match endpoint.addr {
        IpAddress::Ipv4(a) => PeerAddr::V4(a.octets(), endpoint.port),
        #[cfg(feature = "ipv6")]
        IpAddress::Ipv6(a) => PeerAddr::V6(a.octets(), endpoint.port),
    }
}

#[derive(Clone, Copy)]
struct InFlight {
    query: QueryId,
    slot: u8,
    ticket: u32,
}

/// Owns the UDP socket and the node; [`Runner::run`] never returns. Build it once, give it its
/// own task, and use the DHT through [`Shared::dht`] handles from any other task.
pub struct Runner<
    'a,
    M: RawMutex,
    S,
    const B: usize,
    const K: usize,
    const R: usize,
    const Q: usize,
    const P: usize,
    const V: usize,
    const PV: usize,
    const E: usize,
> {
    stack: Stack<'a>,
    socket: UdpSocket<'a>,
    datagram: &'a mut [u8; MAX_DATAGRAM],
    node: &'a mut Node<S, B, K, R, Q, P, V, PV, E>,
    shared: &'a Shared<M, V, K>,
    port: u16,
    bootstrap: Vec<PeerAddr, MAX_BOOTSTRAP>,
    bootstrap_query: Option<QueryId>,
    inflight: Vec<InFlight, CALLERS>,
}

impl<
        'a,
        M: RawMutex,
        S: RecordStore<V>,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
    > Runner<'a, M, S, B, K, R, Q, P, V, PV, E>
{
    /// A runner that serves `node` on UDP `port` of `stack` and, once the network is up, joins
    /// through `bootstrap` (up to [`MAX_BOOTSTRAP`] addresses; none for the first node of a
    /// network); when that fails, or the node loses its contacts later, the node bootstraps
    /// again on its own, with backoff (`kad_core::node` rejoin). Failed sends are logged; the
    /// node counts the requests that time out (see `Node::stats`).
    pub fn new(
        stack: Stack<'a>,
        buffers: &'a mut SocketBuffers,
        node: &'a mut Node<S, B, K, R, Q, P, V, PV, E>,
        shared: &'a Shared<M, V, K>,
        port: u16,
        bootstrap: &[PeerAddr],
    ) -> Result<Self, BindError> {
        let SocketBuffers { rx_meta, rx, tx_meta, tx, datagram } = buffers;
        let mut socket = UdpSocket::new(stack, rx_meta, rx, tx_meta, tx);
        socket.bind(port)?;
        let bootstrap: Vec<PeerAddr, MAX_BOOTSTRAP> = bootstrap.iter().take(MAX_BOOTSTRAP).copied().collect();
        Ok(Runner {
            stack,
            socket,
            datagram,
            node,
            shared,
            port,
            bootstrap,
            bootstrap_query: None,
            inflight: Vec::new(),
        })
    }

    /// Serves the DHT forever: waits for the link and the network configuration, then loops
    /// over `select(recv_from, Timer::at(timeout), command)`, draining the node after each.
    pub async fn run(mut self) -> ! {
        self.stack.wait_link_up().await;
        self.stack.wait_config_up().await;
        if let Some(c) = self.stack.config_v4() {
            info!("kad: node {} on udp {}:{}", Disp(self.node.id()), Disp(c.address.address()), self.port);
        }
        if !self.bootstrap.is_empty() {
            match self.node.bootstrap(&self.bootstrap, now()) {
                Ok(q) => self.bootstrap_query = Some(q),
                Err(e) => warn!("kad: bootstrap not started: {}", Disp(e)),
            }
        }
        loop {
            let wake = deadline(self.drain().await);
            let take = self.node.can_start_query();
            let Runner { socket, node, shared, .. } = &mut self;
            let datagram = socket.recv_from_with(|bytes, meta| {
                node.handle_datagram(now(), peer_addr(meta.endpoint), bytes);
            });
            let command = async {
                if take {
                    shared.commands.receive().await
                } else {
                    core::future::pending().await
                }
            };
            match select3(datagram, Timer::at(wake), command).await {
                Either3::First(()) => trace!("kad: datagram"),
                Either3::Second(()) => {
                    trace!("kad: timeout");
                    self.node.handle_timeout(now())
                }
                Either3::Third(req) => {
                    trace!("kad: command");
                    self.start(req)
                }
            }
        }
    }

    /// Hands a command to the node; one it refuses is answered at once with the reason.
    fn start(&mut self, req: Request<V>) {
        // A newer ticket on a slot means its earlier caller gave up: its answer goes nowhere.
        self.inflight.retain(|f| f.slot != req.slot);
        let t = now();
        let started = match &req.command {
            Command::Bootstrap(addrs) => self.node.bootstrap(addrs, t),
            Command::Put { key, kind, value } => self.node.put(*key, *kind, value, t),
            Command::Get(key) => self.node.get(*key, t),
            Command::FindNode(target) => self.node.find_node(*target, t),
            Command::Provide(key) => self.node.provide(*key, t),
            Command::GetProviders(key) => self.node.get_providers(*key, t),
        };
        match started {
            Ok(query) => {
                // One entry per slot at most, and there are CALLERS slots.
                let _ = self.inflight.push(InFlight { query, slot: req.slot, ticket: req.ticket });
            }
            Err(e) => self.answer(req.slot, req.ticket, Err(DhtError::Refused(e))),
        }
    }

    fn answer(&self, slot: u8, ticket: u32, reply: Reply<V, K>) {
        if let Some(s) = self.shared.replies.get(slot as usize) {
            s.signal((ticket, reply));
        }
    }

    /// Sends every datagram the node has and hands out every finished query until the node gives
    /// its next timeout.
    async fn drain(&mut self) -> Instant {
        loop {
            // Taken apart before the await, so that no event is kept in the task's future.
            let t = match self.node.poll_output(self.datagram) {
                Output::Transmit(t) => t,
                Output::Event(e) => {
                    self.event(e);
                    continue;
                }
                Output::Timeout(at) => return at,
            };
            self.send(t).await;
        }
    }

    fn event(&mut self, event: Event<V>) {
        match event {
            Event::QueryDone { id, outcome, .. } => self.done(id, outcome),
            Event::PeerAdded(p) => debug!("kad: peer {} at {} added", Disp(p.id), Disp(p.addr)),
            Event::PeerRemoved(p) => debug!("kad: peer {} at {} removed", Disp(p.id), Disp(p.addr)),
        }
    }

    async fn send(&mut self, t: Transmit) {
        // A stale contact may carry this node's own address (an earlier run of it): the
        // stack cannot send to itself and would wait for an ARP answer that never comes.
        let own = self.stack.config_v4().map(|c| c.address.address());
        let to = endpoint(t.to).filter(|e| Some(e.addr) != own.map(IpAddress::Ipv4));
        let Some(to) = to else {
            debug!("kad: not sending to {} (this node, or IPv6 without the `ipv6` feature)", Disp(t.to));
            return;
        };
        trace!("kad: send {} bytes to {}", t.len, Disp(t.to));
        let bytes = &self.datagram[..t.len];
        let sent = match select(self.socket.send_to(bytes, to), Timer::after(SEND_STALL)).await {
            Either::First(r) => r,
            Either::Second(()) => {
                warn!("kad: send queue stuck (a neighbour does not answer ARP); emptying it");
                self.socket.close();
                // Rebinding the port it had cannot fail: the socket was just closed.
                let _ = self.socket.bind(self.port);
                self.socket.send_to(bytes, to).await
            }
        };
        if let Err(e) = sent {
            debug!("kad: cannot send to {}: {}", Disp(t.to), Disp(DebugStr(e)));
        }
    }

    fn done(&mut self, id: QueryId, outcome: Outcome<V>) {
        if self.bootstrap_query == Some(id) {
            self.bootstrap_query = None;
            match &outcome {
                Outcome::Bootstrap(Ok(n)) => info!("kad: joined the network, {} contacts", n),
                _ => warn!("kad: bootstrap failed; the node tries again on its own"),
            }
            return;
        }
        let Some(i) = self.inflight.iter().position(|f| f.query == id) else { return };
        let f = self.inflight.swap_remove(i);
        let reply = match outcome {
            Outcome::Bootstrap(r) => r.map(Answer::Bootstrap),
            Outcome::FindNode(r) => r.map(|peers| Answer::Peers(peers.into_iter().take(K).collect())),
            Outcome::Get(r) => r.map(|rec| Answer::Found(rec.into())),
            Outcome::Put(r) | Outcome::Provide(r) => r.map(Answer::Acks),
            Outcome::GetProviders(r) => r.map(Answer::Providers),
        };
        self.answer(f.slot, f.ticket, reply.map_err(DhtError::Failed));
    }
}

/// Shows a `Debug` value through `Display` (for error enums of embassy-net).
struct DebugStr<T>(T);

impl<T: core::fmt::Debug> core::fmt::Display for DebugStr<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_peers_round_trip_through_embassy_net_endpoints() {
        let peer = PeerAddr::V4([10, 1, 2, 3], 8468);
        let e = endpoint(peer).expect("IPv4 is always on");
        assert_eq!(e.port, 8468);
        assert_eq!(peer_addr(e), peer);
    }

    #[cfg(not(feature = "ipv6"))]
    #[test]
    fn ipv6_peers_are_not_sent_to_without_the_ipv6_feature() {
        assert_eq!(endpoint(PeerAddr::V6([1; 16], 1)), None);
    }

    #[test]
    fn socket_buffers_hold_two_largest_datagrams_in_and_one_out() {
        let b = SocketBuffers::new();
        assert_eq!(
            (b.rx.len(), b.tx.len(), b.datagram.len()),
            (2 * MAX_DATAGRAM, MAX_DATAGRAM, MAX_DATAGRAM)
        );
    }
}
