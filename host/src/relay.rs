//! The browser relay: a WebSocket endpoint through which browsers reach the UDP network.
//!
//! A browser cannot open UDP sockets. It opens a WebSocket to a host node; the relay gives that
//! connection its own UDP socket and forwards datagrams both ways, each in one binary WebSocket
//! message framed as (peer address, datagram) by [`kad_core::frame`]. The first message the
//! relay sends is a HELLO frame with the connection's UDP address and the nodes to bootstrap
//! from (this node and its bootstrap list). The browser runs the whole kad-core engine; the
//! relay holds no protocol state beyond what its safety rules need:
//!
//! | rule | on breach |
//! |---|---|
//! | a frame must decode as a relay frame | closed, 1003 "not a relay frame" |
//! | a frame is at most [`kad_core::frame::MAX_FRAME`] bytes (datagram ≤ 1200), checked by the WebSocket layer before the frame is read | closed, 1009 |
//! | the datagram must decode as a kad message ([`kad_core::wire::decode`]) | refused |
//! | requests go only to kad nodes: this node, its bootstrap list and its routing table, and addresses the relay verified itself | refused |
//! | an address named in a Nodes/Providers reply relayed to this connection from a kad node is verified before anything is sent to it: the relay pings it from a socket of its own and waits for the Pong from that address (the frame is held meanwhile); the verdict is remembered for `verified_ttl` in a table of `max_verified` | refused if no Pong came |
//! | verification pings per second: `verify_per_sec` in all, `verify_per_sec_per_connection` per connection; at most `max_held` frames held per connection | refused |
//! | replies also go to addresses that sent this connection a valid request | refused |
//! | per-connection packets/s and bytes/s (token buckets, one second of burst) | refused |
//! | more than `max_refused` refusals in a burst (refilled one per second) | closed, 1008 |
//! | at most `max_connections` connections | closed at once, 1013 |
//! | at most `max_per_ip` connections from one IPv4 address or IPv6 /64 (loopback exempt unless `limit_loopback`) | closed at once, 1008 |
//! | no frame either way for `idle_timeout` | closed, 1000 "idle" |
//!
//! Datagrams arriving at a connection's UDP socket are forwarded to the browser only if they
//! decode as kad messages, within the same rates (excess is dropped, never held against the
//! browser). A closed connection never disturbs the others. Everything is counted in
//! [`RelayStats`], which `/metrics` exports. The relay needs the client's address: serve it
//! with [`crate::Listeners::serve`] (or axum's `into_make_service_with_connect_info`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kad_core::frame::{self, Frame, MAX_FRAME, MAX_HELLO};
use kad_core::wire::{self, Body, Flags, Header, TxId, MAX_DATAGRAM, VERSION};
use kad_core::{NodeId, PeerAddr};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::node::Handle;

/// Limits of the relay. The defaults suit a node serving a few dozen browser tabs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// IP address the per-connection UDP sockets bind to (port 0). Default: the node's IP.
    pub udp_ip: Option<IpAddr>,
    /// Connections at once. Default 64.
    pub max_connections: usize,
    /// Datagrams per second each way per connection. Default 100.
    pub packets_per_sec: u32,
    /// Datagram bytes per second each way per connection. Default 128 KiB.
    pub bytes_per_sec: u32,
    /// Largest datagram relayed, in bytes; at most 1200 ([`MAX_DATAGRAM`]). Default 1200.
    pub max_datagram: usize,
    /// Refused frames a connection may send in a burst before it is closed; the allowance
    /// refills at one per second. Default 20.
    pub max_refused: u32,
    /// A connection with no frame either way for this long is closed. Default 10 min.
    pub idle_timeout: Duration,
    /// Addresses a connection may learn from replies (beyond that it learns no more).
    /// Default 4096.
    pub max_learned: usize,
    /// How old the snapshot of the routing table may be before an unknown destination makes
    /// the relay take a new one. Default 1 s.
    pub trust_refresh: Duration,
    /// Connections at once from one IPv4 address or IPv6 /64. Default 8.
    pub max_per_ip: usize,
    /// Apply `max_per_ip` to loopback clients too (a reverse proxy on the same machine makes
    /// every browser a loopback client, so they are exempt by default). Default false.
    pub limit_loopback: bool,
    /// How long the relay waits for the Pong of an address it verifies. Default 1 s.
    pub verify_timeout: Duration,
    /// How long a verification (passed or failed) is remembered. Default 10 min.
    pub verified_ttl: Duration,
    /// Verifications remembered; the oldest is forgotten first. Default 4096.
    pub max_verified: usize,
    /// Verification pings per second, all connections together (one second of burst).
    /// Default 50.
    pub verify_per_sec: u32,
    /// Verification pings per second one connection may cause (one second of burst).
    /// Default 10.
    pub verify_per_sec_per_connection: u32,
    /// Frames a connection may have waiting for their destination's verification. Default 32.
    pub max_held: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            udp_ip: None,
            max_connections: 64,
            packets_per_sec: 100,
            bytes_per_sec: 128 * 1024,
            max_datagram: MAX_DATAGRAM,
            max_refused: 20,
            idle_timeout: Duration::from_secs(600),
            max_learned: 4096,
            trust_refresh: Duration::from_secs(1),
            max_per_ip: 8,
            limit_loopback: false,
            verify_timeout: Duration::from_secs(1),
            verified_ttl: Duration::from_secs(600),
            max_verified: 4096,
            verify_per_sec: 50,
            verify_per_sec_per_connection: 10,
            max_held: 32,
        }
    }
}

/// Why a frame was not relayed, or a connection not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// From the browser: not a relay frame (connection closed).
    Malformed,
    /// From the browser: over the frame size limit (connection closed).
    Oversize,
    /// From the browser: the datagram is not a valid kad message.
    NotKad,
    /// From the browser: a destination the relay has no reason to trust.
    Untrusted,
    /// From the browser: a destination that did not answer the relay's verification ping.
    Unverified,
    /// From the browser: a destination to verify while over the verification pings/s or
    /// `max_held` (not sent, no ping).
    VerifyLimit,
    /// From the browser: over the connection's packets/s or bytes/s.
    RateLimited,
    /// From the network: not a valid kad message (dropped).
    InboundNotKad,
    /// From the network: over the connection's packets/s or bytes/s (dropped).
    InboundRateLimited,
    /// A connection over `max_connections` (closed at once).
    TooManyConnections,
    /// A connection over `max_per_ip` (closed at once).
    TooManyFromIp,
}

impl Refusal {
    /// Every reason, in the order of [`RelayStats::refused`].
    pub const ALL: [Refusal; 11] = [
        Refusal::Malformed,
        Refusal::Oversize,
        Refusal::NotKad,
        Refusal::Untrusted,
        Refusal::Unverified,
        Refusal::VerifyLimit,
        Refusal::RateLimited,
        Refusal::InboundNotKad,
        Refusal::InboundRateLimited,
        Refusal::TooManyConnections,
        Refusal::TooManyFromIp,
    ];

    /// The label used in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Oversize => "oversize",
            Refusal::NotKad => "not_kad",
            Refusal::Untrusted => "untrusted_destination",
            Refusal::Unverified => "unverified_destination",
            Refusal::VerifyLimit => "verify_limit",
            Refusal::RateLimited => "rate_limit",
            Refusal::InboundNotKad => "inbound_not_kad",
            Refusal::InboundRateLimited => "inbound_rate_limit",
            Refusal::TooManyConnections => "max_connections",
            Refusal::TooManyFromIp => "max_per_ip",
        }
    }

    fn index(self) -> usize {
        Refusal::ALL.iter().position(|r| *r == self).expect("listed")
    }
}

/// Counters of a relay, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections the relay closed for breaking a rule.
    pub connections_closed_misbehaving: u64,
    /// Connections the relay closed for being idle.
    pub connections_closed_idle: u64,
    /// Datagrams relayed from browsers to the network.
    pub frames_to_network: u64,
    /// Datagrams relayed from the network to browsers.
    pub frames_to_browser: u64,
    /// Datagram bytes relayed from browsers to the network.
    pub bytes_to_network: u64,
    /// Datagram bytes relayed from the network to browsers.
    pub bytes_to_browser: u64,
    /// Verification pings sent.
    pub verify_pings: u64,
    /// Verifications that got their Pong.
    pub verified: u64,
    /// Frames refused, by reason, in the order of [`Refusal::ALL`].
    pub refused: [u64; 11],
}

impl RelayStats {
    /// Refusals for `reason`.
    pub fn refused(&self, reason: Refusal) -> u64 {
        self.refused[reason.index()]
    }

    /// Appends the counters in the Prometheus text format.
    pub fn write_metrics(&self, m: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            m,
            "# HELP kad_relay_connections Browser connections open.\n# TYPE kad_relay_connections gauge\nkad_relay_connections {}",
            self.connections
        );
        let _ = writeln!(
            m,
            "# HELP kad_relay_connections_total Browser connections accepted.\n# TYPE kad_relay_connections_total counter\nkad_relay_connections_total {}",
            self.connections_total
        );
        let _ = writeln!(
            m,
            "# HELP kad_relay_closed_total Connections the relay closed, by reason.\n# TYPE kad_relay_closed_total counter\nkad_relay_closed_total{{reason=\"misbehaving\"}} {}\nkad_relay_closed_total{{reason=\"idle\"}} {}",
            self.connections_closed_misbehaving, self.connections_closed_idle
        );
        let _ = writeln!(
            m,
            "# HELP kad_relay_frames_total Datagrams relayed, by direction.\n# TYPE kad_relay_frames_total counter\nkad_relay_frames_total{{direction=\"to_network\"}} {}\nkad_relay_frames_total{{direction=\"to_browser\"}} {}",
            self.frames_to_network, self.frames_to_browser
        );
        let _ = writeln!(
            m,
            "# HELP kad_relay_bytes_total Datagram bytes relayed, by direction.\n# TYPE kad_relay_bytes_total counter\nkad_relay_bytes_total{{direction=\"to_network\"}} {}\nkad_relay_bytes_total{{direction=\"to_browser\"}} {}",
            self.bytes_to_network, self.bytes_to_browser
        );
        let _ = writeln!(
            m,
            "# HELP kad_relay_verify_total Verification pings of addresses named in replies, by result.\n# TYPE kad_relay_verify_total counter\nkad_relay_verify_total{{result=\"sent\"}} {}\nkad_relay_verify_total{{result=\"answered\"}} {}",
            self.verify_pings, self.verified
        );
        let _ = writeln!(m, "# HELP kad_relay_refused_total Frames refused, by reason.\n# TYPE kad_relay_refused_total counter");
        for (r, n) in Refusal::ALL.iter().zip(self.refused) {
            let _ = writeln!(m, "kad_relay_refused_total{{reason=\"{}\"}} {n}", r.name());
        }
    }
}

#[derive(Default)]
struct Counters {
    open: AtomicUsize,
    total: AtomicU64,
    closed_misbehaving: AtomicU64,
    closed_idle: AtomicU64,
    frames_out: AtomicU64,
    frames_in: AtomicU64,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    verify_pings: AtomicU64,
    verified: AtomicU64,
    refused: [AtomicU64; 11],
}

impl Counters {
    fn refuse(&self, r: Refusal) {
        self.refused[r.index()].fetch_add(1, Ordering::Relaxed);
    }
}

struct Snapshot {
    addrs: HashSet<PeerAddr>,
    taken: Option<Instant>,
}

struct Shared {
    handle: Handle,
    config: RelayConfig,
    udp_ip: IpAddr,
    /// This node and its bootstrap list: sent in HELLO, always trusted.
    seeds: Vec<PeerAddr>,
    table: RwLock<Snapshot>,
    refresh: tokio::sync::Mutex<()>,
    verifier: Mutex<Verifier>,
    /// The id in the relay's verification pings (sent as a client: nobody adds it).
    ping_id: NodeId,
    /// Connections open per IPv4 address or IPv6 /64.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    counters: Counters,
}

/// A relay attached to a running node. Cheap to clone; all clones share limits and counters.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

/// The address to reach `addr` from a socket on the same host (unspecified becomes loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// The unit of `max_per_ip`: an IPv4 address, or the /64 of an IPv6 one.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
        v4 => v4,
    }
}

impl Relay {
    /// A relay in front of the node behind `handle`, whose bootstrap list is `bootstrap`.
    pub fn new(handle: Handle, bootstrap: &[SocketAddr], config: RelayConfig) -> Relay {
        let mut seeds = vec![PeerAddr::from(reachable(handle.addr()))];
        for a in bootstrap {
            let a = PeerAddr::from(*a);
            if !seeds.contains(&a) {
                seeds.push(a);
            }
        }
        let udp_ip = config.udp_ip.unwrap_or_else(|| handle.addr().ip());
        let verifier = Mutex::new(Verifier::new(&config));
        Relay {
            shared: Arc::new(Shared {
                handle,
                config,
                udp_ip,
                seeds,
                table: RwLock::new(Snapshot { addrs: HashSet::new(), taken: None }),
                refresh: tokio::sync::Mutex::new(()),
                verifier,
                ping_id: NodeId::from_bytes(rand::random()),
                per_ip: Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
        }
    }

    /// The WebSocket endpoint at `/` and at `/relay`, for a listener of its own.
    pub fn router(&self) -> Router {
        Router::new().route("/", get(upgrade)).route("/relay", get(upgrade)).with_state(self.clone())
    }

    /// The WebSocket endpoint at `/relay`, to merge into another router (the HTTP API's).
    pub fn route(&self) -> Router {
        Router::new().route("/relay", get(upgrade)).with_state(self.clone())
    }

    /// The counters now.
    pub fn stats(&self) -> RelayStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RelayStats {
            connections: c.open.load(Ordering::Relaxed),
            connections_total: get(&c.total),
            connections_closed_misbehaving: get(&c.closed_misbehaving),
            connections_closed_idle: get(&c.closed_idle),
            frames_to_network: get(&c.frames_out),
            frames_to_browser: get(&c.frames_in),
            bytes_to_network: get(&c.bytes_out),
            bytes_to_browser: get(&c.bytes_in),
            verify_pings: get(&c.verify_pings),
            verified: get(&c.verified),
            refused: std::array::from_fn(|i| get(&c.refused[i])),
        }
    }

    /// The largest frame a connection may send.
    fn max_frame(&self) -> usize {
        MAX_FRAME - MAX_DATAGRAM + self.shared.config.max_datagram.min(MAX_DATAGRAM)
    }

    /// True if `addr` is this node, in its bootstrap list or in its routing table (taking a new
    /// snapshot of the table if the one held is older than `trust_refresh`).
    async fn trusted_by_node(&self, addr: &PeerAddr) -> bool {
        let s = &self.shared;
        if s.seeds.contains(addr) {
            return true;
        }
        let fresh = |snap: &Snapshot| snap.taken.is_some_and(|t| t.elapsed() < s.config.trust_refresh);
        {
            let snap = s.table.read().expect("not poisoned");
            if snap.addrs.contains(addr) || fresh(&snap) {
                return snap.addrs.contains(addr);
            }
        }
        let _one_at_a_time = s.refresh.lock().await;
        if !fresh(&s.table.read().expect("not poisoned")) {
            let contacts = s.handle.contacts().await.unwrap_or_default();
            let mut snap = s.table.write().expect("not poisoned");
            snap.addrs = contacts.into_iter().map(|p| p.addr).collect();
            snap.taken = Some(Instant::now());
        }
        let found = s.table.read().expect("not poisoned").addrs.contains(addr);
        found
    }

    /// Takes a place for a connection from `ip`, or `None` when it has `max_per_ip` already.
    fn ip_slot(&self, ip: IpAddr) -> Option<IpSlot<'_>> {
        let s = &self.shared;
        if ip.to_canonical().is_loopback() && !s.config.limit_loopback {
            return Some(IpSlot { map: &s.per_ip, key: None });
        }
        let key = ip_key(ip);
        let mut map = s.per_ip.lock().expect("not poisoned");
        let n = map.entry(key).or_insert(0);
        if *n >= s.config.max_per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot { map: &s.per_ip, key: Some(key) })
    }

    async fn connection(self, mut ws: WebSocket, client: IpAddr) {
        let s = &self.shared;
        let c = &s.counters;
        let open = c.open.fetch_add(1, Ordering::AcqRel) + 1;
        let _slot = Slot(&c.open);
        if open > s.config.max_connections {
            c.refuse(Refusal::TooManyConnections);
            let reason = format!("relay full: {} connections", s.config.max_connections);
            close(&mut ws, 1013, &reason, true).await;
            return;
        }
        let Some(_ip_slot) = self.ip_slot(client) else {
            c.refuse(Refusal::TooManyFromIp);
            let reason = format!("too many connections from {client}: at most {}", s.config.max_per_ip);
            close(&mut ws, 1008, &reason, true).await;
            return;
        };
        c.total.fetch_add(1, Ordering::Relaxed);
        let udp = match UdpSocket::bind((s.udp_ip, 0)).await {
            Ok(u) => u,
            Err(e) => {
                close(&mut ws, 1011, &format!("cannot open a UDP socket: {e}"), true).await;
                return;
            }
        };
        let local = match udp.local_addr() {
            Ok(a) => PeerAddr::from(a),
            Err(_) => return,
        };
        let mut hello = [0u8; MAX_HELLO];
        let n = frame::encode_hello(&local, &s.seeds, &mut hello).expect("MAX_HELLO suffices");
        if ws.send(Message::Binary(hello[..n].to_vec().into())).await.is_err() {
            return;
        }
        debug!(udp = %local, "relay connection opened");
        let mut conn = Conn::new(&s.config);
        // Frames waiting for their destination's verification: (destination, verified, datagram).
        let mut held: JoinSet<(PeerAddr, bool, axum::body::Bytes)> = JoinSet::new();
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut last_frame = Instant::now();
        let outcome = loop {
            let idle_at = last_frame + s.config.idle_timeout;
            tokio::select! {
                msg = ws.recv() => match msg {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Err(e)) => break self.read_error(e),
                    Some(Ok(Message::Binary(bytes))) => {
                        last_frame = Instant::now();
                        match self.outbound(&mut conn, held.len(), &bytes).await {
                            Ok(Out::Send(to, range)) => self.send(&udp, to, &bytes[range]).await,
                            Ok(Out::Hold(to, range, verdict)) => {
                                let payload = bytes.slice(range);
                                held.spawn(async move { (to, settled(verdict).await, payload) });
                            }
                            Ok(Out::Refused) => {}
                            Err(close) => break Some(close),
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        c.refuse(Refusal::Malformed);
                        break Some(Close::misbehaving(1003, "not a relay frame (text message)".into()));
                    }
                    Some(Ok(_)) => {} // ping and pong: answered by the WebSocket layer
                },
                Some(done) = held.join_next(), if !held.is_empty() => {
                    let Ok((to, verified, payload)) = done else { continue };
                    if verified {
                        self.send(&udp, to, &payload).await;
                    } else if let Err(close) = self.refuse(&mut conn, Refusal::Unverified, to) {
                        break Some(close);
                    }
                }
                r = udp.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    if let Some(out) = self.inbound(&mut conn, PeerAddr::from(from), &buf[..n]) {
                        if ws.send(Message::Binary(out.into())).await.is_err() {
                            break None;
                        }
                        last_frame = Instant::now();
                        c.frames_in.fetch_add(1, Ordering::Relaxed);
                        c.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                _ = tokio::time::sleep_until(idle_at) => {
                    c.closed_idle.fetch_add(1, Ordering::Relaxed);
                    let secs = s.config.idle_timeout.as_secs_f64();
                    break Some(Close { code: 1000, reason: format!("idle for {secs} s"), misbehaving: false, readable: true });
                }
            }
        };
        if let Some(cl) = outcome {
            if cl.misbehaving {
                c.closed_misbehaving.fetch_add(1, Ordering::Relaxed);
                info!(udp = %local, reason = %cl.reason, "relay closed a misbehaving connection");
            }
            close(&mut ws, cl.code, &cl.reason, cl.readable).await;
        }
        debug!(udp = %local, "relay connection closed");
    }

    /// Sends a datagram from the connection's socket, counted.
    async fn send(&self, udp: &UdpSocket, to: PeerAddr, payload: &[u8]) {
        let c = &self.shared.counters;
        if udp.send_to(payload, SocketAddr::from(to)).await.is_ok() {
            c.frames_out.fetch_add(1, Ordering::Relaxed);
            c.bytes_out.fetch_add(payload.len() as u64, Ordering::Relaxed);
        }
    }

    /// A read error of the WebSocket: an oversize frame (seen by the WebSocket layer from its
    /// header, before its payload is read) closes with 1009; any other just ends the connection.
    fn read_error(&self, e: axum::Error) -> Option<Close> {
        use tungstenite::error::{CapacityError, Error as WsError};
        let e = e.into_inner();
        let Some(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) = e.downcast_ref()
        else {
            debug!(error = %e, "relay connection failed");
            return None;
        };
        self.shared.counters.refuse(Refusal::Oversize);
        let reason = format!("frame of {size} bytes is over the limit of {max_size} bytes");
        // The rest of the frame is still unread: no close handshake, only the close frame.
        Some(Close { code: 1009, reason, misbehaving: true, readable: false })
    }

    /// Counts a refused frame; `Err` to close the connection when it has had too many.
    fn refuse(&self, conn: &mut Conn, refusal: Refusal, to: PeerAddr) -> Result<(), Close> {
        self.shared.counters.refuse(refusal);
        debug!(%to, reason = refusal.name(), "relay refused a frame");
        if !conn.strikes.take(1.0) {
            let reason = format!("too many refused frames (last: {})", refusal.name());
            return Err(Close::misbehaving(1008, reason));
        }
        Ok(())
    }

    /// Checks a frame from the browser: where it goes now, or once its destination is
    /// verified; refused (and counted); or `Err` to close the connection.
    async fn outbound(&self, conn: &mut Conn, held: usize, bytes: &[u8]) -> Result<Out, Close> {
        let s = &self.shared;
        let (to, payload) = match frame::decode(bytes) {
            Ok(Frame::Datagram { peer, payload }) => (peer, payload),
            Ok(Frame::Hello { .. }) | Err(_) => {
                s.counters.refuse(Refusal::Malformed);
                return Err(Close::misbehaving(1003, "not a relay frame".into()));
            }
        };
        let range = bytes.len() - payload.len()..bytes.len();
        let route = match wire::decode(payload) {
            Err(_) => Route::Refuse(Refusal::NotKad),
            Ok(msg) => {
                let learned = conn.learned.get(&to).copied().unwrap_or_default();
                if (learned.asked && !msg.body.is_request()) || self.trusted_by_node(&to).await {
                    Route::Go
                } else {
                    match s.verifier.lock().expect("not poisoned").verdict(&to) {
                        Some(true) => Route::Go,
                        Some(false) => Route::Refuse(Refusal::Unverified),
                        None if learned.named => Route::Verify,
                        None => Route::Refuse(Refusal::Untrusted),
                    }
                }
            }
        };
        let route = match route {
            Route::Go | Route::Verify if !conn.out.take(payload.len()) => Route::Refuse(Refusal::RateLimited),
            r => r,
        };
        match route {
            Route::Go => Ok(Out::Send(to, range)),
            Route::Verify => {
                match (held < s.config.max_held).then(|| self.verify(to, &mut conn.pings)).flatten() {
                    Some(verdict) => Ok(Out::Hold(to, range, verdict)),
                    None => self.refuse(conn, Refusal::VerifyLimit, to).map(|()| Out::Refused),
                }
            }
            Route::Refuse(r) => self.refuse(conn, r, to).map(|()| Out::Refused),
        }
    }

    /// The verdict on `to` to come: joins the verification under way, or starts one if the
    /// connection's and the relay's ping allowances have room (`None` if not).
    fn verify(&self, to: PeerAddr, conn_pings: &mut Bucket) -> Option<watch::Receiver<Option<bool>>> {
        let mut v = self.shared.verifier.lock().expect("not poisoned");
        if let Some(rx) = v.pending.get(&to) {
            return Some(rx.clone());
        }
        conn_pings.refill();
        v.pings.refill();
        if conn_pings.tokens < 1.0 || v.pings.tokens < 1.0 {
            return None;
        }
        conn_pings.tokens -= 1.0;
        v.pings.tokens -= 1.0;
        let (tx, rx) = watch::channel(None);
        v.pending.insert(to, rx.clone());
        let relay = self.clone();
        tokio::spawn(async move {
            let ok = relay.round_trip(to).await;
            let s = &relay.shared;
            s.verifier.lock().expect("not poisoned").remember(to, ok, &s.config);
            if ok {
                s.counters.verified.fetch_add(1, Ordering::Relaxed);
            }
            let _ = tx.send(Some(ok));
        });
        Some(rx)
    }

    /// Pings `to` from a socket of the relay's own; true if its Pong came back from `to`
    /// within `verify_timeout`.
    async fn round_trip(&self, to: PeerAddr) -> bool {
        let s = &self.shared;
        let to_addr = SocketAddr::from(to);
        let Ok(sock) = UdpSocket::bind((s.udp_ip, 0)).await else { return false };
        // Connected: only `to` can answer, and a closed port fails at once.
        if sock.connect(to_addr).await.is_err() {
            return false;
        }
        let txid = TxId(rand::random());
        let header = Header {
            version: VERSION,
            txid,
            sender: s.ping_id,
            flags: Flags(Flags::CLIENT),
            token: Default::default(),
        };
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        let Ok(n) = wire::encode(&wire::Message { header, body: Body::Ping }, &mut buf) else { return false };
        if sock.send(&buf[..n]).await.is_err() {
            return false;
        }
        s.counters.verify_pings.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + s.config.verify_timeout;
        loop {
            let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await else {
                return false;
            };
            if wire::decode(&buf[..n])
                .is_ok_and(|m| m.header.txid == txid && matches!(m.body, Body::Pong { .. }))
            {
                return true;
            }
        }
    }

    /// Checks a datagram from the network; returns the frame to send to the browser.
    fn inbound(&self, conn: &mut Conn, from: PeerAddr, payload: &[u8]) -> Option<Vec<u8>> {
        let s = &self.shared;
        let Ok(msg) = wire::decode(payload) else {
            s.counters.refuse(Refusal::InboundNotKad);
            return None;
        };
        if !conn.inb.take(payload.len()) {
            s.counters.refuse(Refusal::InboundRateLimited);
            return None;
        }
        let from_kad_node = s.seeds.contains(&from)
            || s.table.read().expect("not poisoned").addrs.contains(&from)
            || s.verifier.lock().expect("not poisoned").verdict(&from) == Some(true);
        let max = s.config.max_learned;
        match &msg.body {
            Body::Nodes { contacts } | Body::Value { closer: contacts, .. } if from_kad_node => {
                conn.learn(contacts.iter().map(|p| p.addr), max)
            }
            Body::Providers { providers, closer } if from_kad_node => {
                conn.learn(providers.iter().chain(closer.iter()).map(|p| p.addr), max)
            }
            body if body.is_request() => conn.asked(from, max),
            _ => {}
        }
        let mut out = vec![0u8; MAX_FRAME];
        let n = frame::encode_datagram(&from, payload, &mut out)?;
        out.truncate(n);
        Some(out)
    }
}

/// The verdict a verification settled on (false if it was dropped).
async fn settled(mut verdict: watch::Receiver<Option<bool>>) -> bool {
    verdict.wait_for(Option::is_some).await.is_ok_and(|v| *v == Some(true))
}

async fn upgrade(
    State(relay): State<Relay>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    // The WebSocket layer refuses a larger frame from its header, before reading it; the
    // relay turns that into its 1009 close.
    let max = relay.max_frame();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| relay.connection(socket, client.ip()))
}

/// How long a connection closed in the middle of a frame stays open after its close frame,
/// so that the client reads it before the socket goes.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Sends a close frame; if the connection is `readable`, waits (bounded) for the client's
/// close, otherwise for [`CLOSE_GRACE`].
async fn close(ws: &mut WebSocket, code: u16, reason: &str, readable: bool) {
    // Close reasons are limited to 123 bytes by the protocol.
    let reason: String = reason.chars().take(120).collect();
    let _ = ws.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
    if !readable {
        tokio::time::sleep(CLOSE_GRACE).await;
        return;
    }
    // Give the close handshake a moment, bounded.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = ws.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place in `per_ip` (`key` is `None` for an exempt client).
struct IpSlot<'a> {
    map: &'a Mutex<HashMap<IpAddr, usize>>,
    key: Option<IpAddr>,
}

impl Drop for IpSlot<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut map = self.map.lock().expect("not poisoned");
        if let Some(n) = map.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&key);
            }
        }
    }
}

struct Close {
    code: u16,
    reason: String,
    misbehaving: bool,
    /// The connection can still be read (false in the middle of an oversize frame).
    readable: bool,
}

impl Close {
    fn misbehaving(code: u16, reason: String) -> Close {
        Close { code, reason, misbehaving: true, readable: true }
    }
}

/// Where a frame from the browser goes.
enum Route {
    Go,
    Verify,
    Refuse(Refusal),
}

/// What to do with a frame from the browser.
enum Out {
    /// Send the datagram at this range of the frame.
    Send(PeerAddr, std::ops::Range<usize>),
    /// Send it once the destination's verification settles, if it passed.
    Hold(PeerAddr, std::ops::Range<usize>, watch::Receiver<Option<bool>>),
    /// Refused (counted).
    Refused,
}

/// What a connection learned about an address.
#[derive(Clone, Copy, Debug, Default)]
struct Learned {
    /// Named in a reply from a kad node: may be verified, then receive requests.
    named: bool,
    /// Sent this connection a request: may receive replies.
    asked: bool,
}

/// One connection's state: what it learned, and its allowances.
struct Conn {
    learned: HashMap<PeerAddr, Learned>,
    out: Rate,
    inb: Rate,
    strikes: Bucket,
    pings: Bucket,
}

impl Conn {
    fn new(c: &RelayConfig) -> Conn {
        Conn {
            learned: HashMap::new(),
            out: Rate::new(c),
            inb: Rate::new(c),
            strikes: Bucket::new(1.0, c.max_refused.max(1) as f64),
            pings: Bucket::per_second(c.verify_per_sec_per_connection),
        }
    }

    /// Remembers addresses named in a reply (up to `max` addresses in all).
    fn learn(&mut self, addrs: impl Iterator<Item = PeerAddr>, max: usize) {
        for a in addrs {
            if self.learned.len() >= max && !self.learned.contains_key(&a) {
                return;
            }
            self.learned.entry(a).or_default().named = true;
        }
    }

    /// Remembers an address that sent a request (up to `max` addresses in all).
    fn asked(&mut self, from: PeerAddr, max: usize) {
        if self.learned.len() < max || self.learned.contains_key(&from) {
            self.learned.entry(from).or_default().asked = true;
        }
    }
}

/// The relay's verifications: verdicts remembered for `verified_ttl` (at most `max_verified`,
/// the oldest forgotten first), those under way, and the relay-wide ping allowance.
struct Verifier {
    known: HashMap<PeerAddr, (bool, Instant)>,
    order: VecDeque<(PeerAddr, Instant)>,
    pending: HashMap<PeerAddr, watch::Receiver<Option<bool>>>,
    pings: Bucket,
    ttl: Duration,
}

impl Verifier {
    fn new(c: &RelayConfig) -> Verifier {
        Verifier {
            known: HashMap::new(),
            order: VecDeque::new(),
            pending: HashMap::new(),
            pings: Bucket::per_second(c.verify_per_sec),
            ttl: c.verified_ttl,
        }
    }

    /// The remembered verdict on `addr`, if not older than `verified_ttl`.
    fn verdict(&self, addr: &PeerAddr) -> Option<bool> {
        self.known.get(addr).filter(|(_, at)| at.elapsed() < self.ttl).map(|(ok, _)| *ok)
    }

    fn remember(&mut self, addr: PeerAddr, ok: bool, c: &RelayConfig) {
        self.pending.remove(&addr);
        let now = Instant::now();
        self.known.insert(addr, (ok, now));
        self.order.push_back((addr, now));
        // Forget the oldest verdicts beyond `max_verified`; `order` also holds the places of
        // verdicts since replaced, which go the same way, so it stays within twice the table.
        let max = c.max_verified.max(1);
        while self.known.len() > max || self.order.len() > 2 * max {
            let Some((old, at)) = self.order.pop_front() else { break };
            if self.known.get(&old).is_some_and(|(_, t)| *t == at) {
                self.known.remove(&old);
            }
        }
    }
}

/// Packets and bytes per second.
struct Rate {
    packets: Bucket,
    bytes: Bucket,
}

impl Rate {
    fn new(c: &RelayConfig) -> Rate {
        Rate { packets: Bucket::per_second(c.packets_per_sec), bytes: Bucket::per_second(c.bytes_per_sec) }
    }

    /// Takes one packet of `len` bytes if both allowances have room (neither is charged
    /// otherwise).
    fn take(&mut self, len: usize) -> bool {
        self.packets.refill();
        self.bytes.refill();
        if self.packets.tokens >= 1.0 && self.bytes.tokens >= len as f64 {
            self.packets.tokens -= 1.0;
            self.bytes.tokens -= len as f64;
            true
        } else {
            false
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst`, full at the start.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket { tokens: burst, rate, burst, last: Instant::now() }
    }

    /// `rate` a second (at least one), with one second of burst.
    fn per_second(rate: u32) -> Bucket {
        let rate = rate.max(1) as f64;
        Bucket::new(rate, rate)
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
    }

    fn take(&mut self, n: f64) -> bool {
        self.refill();
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}
