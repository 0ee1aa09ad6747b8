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
//! | a frame is at most [`kad_core::frame::MAX_FRAME`] bytes (datagram ≤ 1200) | closed, 1009 |
//! | the datagram must decode as a kad message ([`kad_core::wire::decode`]) | refused |
//! | requests go only to trusted destinations: this node's routing table, its bootstrap list and itself, and addresses named in Nodes/Providers replies relayed to this connection from a trusted source | refused |
//! | replies also go to addresses that sent this connection a valid request | refused |
//! | per-connection packets/s and bytes/s (token buckets, one second of burst) | refused |
//! | more than `max_refused` refusals in a burst (refilled one per second) | closed, 1008 |
//! | at most `max_connections` connections | closed at once, 1013 |
//! | no frame either way for `idle_timeout` | closed, 1000 "idle" |
//!
//! Datagrams arriving at a connection's UDP socket are forwarded to the browser only if they
//! decode as kad messages, within the same rates (excess is dropped, never held against the
//! browser). A closed connection never disturbs the others. Everything is counted in
//! [`RelayStats`], which `/metrics` exports.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kad_core::frame::{self, Frame, MAX_FRAME, MAX_HELLO};
use kad_core::wire::{self, Body, MAX_DATAGRAM};
use kad_core::PeerAddr;
use tokio::net::UdpSocket;
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
    /// From the browser: over the connection's packets/s or bytes/s.
    RateLimited,
    /// From the network: not a valid kad message (dropped).
    InboundNotKad,
    /// From the network: over the connection's packets/s or bytes/s (dropped).
    InboundRateLimited,
    /// A connection over `max_connections` (closed at once).
    TooManyConnections,
}

impl Refusal {
    /// Every reason, in the order of [`RelayStats::refused`].
    pub const ALL: [Refusal; 8] = [
        Refusal::Malformed,
        Refusal::Oversize,
        Refusal::NotKad,
        Refusal::Untrusted,
        Refusal::RateLimited,
        Refusal::InboundNotKad,
        Refusal::InboundRateLimited,
        Refusal::TooManyConnections,
    ];

    /// The label used in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Oversize => "oversize",
            Refusal::NotKad => "not_kad",
            Refusal::Untrusted => "untrusted_destination",
            Refusal::RateLimited => "rate_limit",
            Refusal::InboundNotKad => "inbound_not_kad",
            Refusal::InboundRateLimited => "inbound_rate_limit",
            Refusal::TooManyConnections => "max_connections",
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
    /// Frames refused, by reason, in the order of [`Refusal::ALL`].
    pub refused: [u64; 8],
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
    refused: [AtomicU64; 8],
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
        Relay {
            shared: Arc::new(Shared {
                handle,
                config,
                udp_ip,
                seeds,
                table: RwLock::new(Snapshot { addrs: HashSet::new(), taken: None }),
                refresh: tokio::sync::Mutex::new(()),
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
            refused: std::array::from_fn(|i| get(&c.refused[i])),
        }
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

    async fn connection(self, mut ws: WebSocket) {
        let s = &self.shared;
        let c = &s.counters;
        let open = c.open.fetch_add(1, Ordering::AcqRel) + 1;
        let _slot = Slot(&c.open);
        if open > s.config.max_connections {
            c.refuse(Refusal::TooManyConnections);
            let reason = format!("relay full: {} connections", s.config.max_connections);
            close(&mut ws, 1013, &reason).await;
            return;
        }
        c.total.fetch_add(1, Ordering::Relaxed);
        let udp = match UdpSocket::bind((s.udp_ip, 0)).await {
            Ok(u) => u,
            Err(e) => {
                close(&mut ws, 1011, &format!("cannot open a UDP socket: {e}")).await;
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
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut last_frame = Instant::now();
        let outcome = loop {
            let idle_at = last_frame + s.config.idle_timeout;
            tokio::select! {
                msg = ws.recv() => match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Binary(bytes))) => {
                        last_frame = Instant::now();
                        match self.outbound(&mut conn, &bytes).await {
                            Ok(Some((to, range))) => {
                                let payload = &bytes[range];
                                if udp.send_to(payload, SocketAddr::from(to)).await.is_ok() {
                                    c.frames_out.fetch_add(1, Ordering::Relaxed);
                                    c.bytes_out.fetch_add(payload.len() as u64, Ordering::Relaxed);
                                }
                            }
                            Ok(None) => {}
                            Err(close) => break Some(close),
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        c.refuse(Refusal::Malformed);
                        break Some(Close::misbehaving(1003, "not a relay frame (text message)".into()));
                    }
                    Some(Ok(_)) => {} // ping and pong: answered by the WebSocket layer
                },
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
                    break Some(Close { code: 1000, reason: format!("idle for {secs} s"), misbehaving: false });
                }
            }
        };
        if let Some(cl) = outcome {
            if cl.misbehaving {
                c.closed_misbehaving.fetch_add(1, Ordering::Relaxed);
                info!(udp = %local, reason = %cl.reason, "relay closed a misbehaving connection");
            }
            close(&mut ws, cl.code, &cl.reason).await;
        }
        debug!(udp = %local, "relay connection closed");
    }

    /// Checks a frame from the browser: `Ok(Some((to, payload range)))` to send it,
    /// `Ok(None)` if refused (and counted), `Err` to close the connection.
    async fn outbound(
        &self,
        conn: &mut Conn,
        bytes: &[u8],
    ) -> Result<Option<(PeerAddr, std::ops::Range<usize>)>, Close> {
        let s = &self.shared;
        let max_frame = MAX_FRAME - MAX_DATAGRAM + s.config.max_datagram.min(MAX_DATAGRAM);
        if bytes.len() > max_frame {
            s.counters.refuse(Refusal::Oversize);
            let reason = format!("frame of {} bytes is over the limit of {max_frame} bytes", bytes.len());
            return Err(Close::misbehaving(1009, reason));
        }
        let (to, payload) = match frame::decode(bytes) {
            Ok(Frame::Datagram { peer, payload }) => (peer, payload),
            Ok(Frame::Hello { .. }) | Err(_) => {
                s.counters.refuse(Refusal::Malformed);
                return Err(Close::misbehaving(1003, "not a relay frame".into()));
            }
        };
        let refusal = match wire::decode(payload) {
            Err(_) => Some(Refusal::NotKad),
            Ok(msg) => {
                let learned = conn.learned.get(&to).copied();
                let ok = match learned {
                    Some(Trust::Full) => true,
                    Some(Trust::ReplyOnly) if !msg.body.is_request() => true,
                    _ => self.trusted_by_node(&to).await,
                };
                if !ok {
                    Some(Refusal::Untrusted)
                } else if !conn.out.take(payload.len()) {
                    Some(Refusal::RateLimited)
                } else {
                    None
                }
            }
        };
        let Some(refusal) = refusal else {
            let start = bytes.len() - payload.len();
            return Ok(Some((to, start..bytes.len())));
        };
        s.counters.refuse(refusal);
        debug!(%to, reason = refusal.name(), "relay refused a frame");
        if !conn.strikes.take(1.0) {
            let reason = format!("too many refused frames (last: {})", refusal.name());
            return Err(Close::misbehaving(1008, reason));
        }
        Ok(None)
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
        let from_trusted = conn.learned.get(&from) == Some(&Trust::Full)
            || s.seeds.contains(&from)
            || s.table.read().expect("not poisoned").addrs.contains(&from);
        let max = s.config.max_learned;
        match &msg.body {
            Body::Nodes { contacts } if from_trusted => conn.learn(contacts.iter().map(|p| p.addr), max),
            Body::Providers { providers, closer } if from_trusted => {
                conn.learn(providers.iter().chain(closer.iter()).map(|p| p.addr), max)
            }
            body if body.is_request() && conn.learned.len() < max => {
                conn.learned.entry(from).or_insert(Trust::ReplyOnly);
            }
            _ => {}
        }
        let mut out = vec![0u8; MAX_FRAME];
        let n = frame::encode_datagram(&from, payload, &mut out)?;
        out.truncate(n);
        Some(out)
    }
}

async fn upgrade(State(relay): State<Relay>, ws: WebSocketUpgrade) -> Response {
    // The WebSocket layer accepts messages well over the frame limit, so that an oversize
    // frame reaches the relay's rule (and its close reason) instead of failing the connection.
    ws.max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .on_upgrade(move |socket| relay.connection(socket))
}

async fn close(ws: &mut WebSocket, code: u16, reason: &str) {
    // Close reasons are limited to 123 bytes by the protocol.
    let reason: String = reason.chars().take(120).collect();
    let _ = ws.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
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

struct Close {
    code: u16,
    reason: String,
    misbehaving: bool,
}

impl Close {
    fn misbehaving(code: u16, reason: String) -> Close {
        Close { code, reason, misbehaving: true }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trust {
    /// Named in a reply: may receive requests and replies.
    Full,
    /// Sent this connection a request: may receive replies.
    ReplyOnly,
}

/// One connection's state: what it learned, and its rate allowances.
struct Conn {
    learned: HashMap<PeerAddr, Trust>,
    out: Rate,
    inb: Rate,
    strikes: Bucket,
}

impl Conn {
    fn new(c: &RelayConfig) -> Conn {
        Conn {
            learned: HashMap::new(),
            out: Rate::new(c),
            inb: Rate::new(c),
            strikes: Bucket::new(1.0, c.max_refused.max(1) as f64),
        }
    }

    fn learn(&mut self, addrs: impl Iterator<Item = PeerAddr>, max: usize) {
        for a in addrs {
            if self.learned.len() >= max && !self.learned.contains_key(&a) {
                return;
            }
            self.learned.insert(a, Trust::Full);
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
        let pps = c.packets_per_sec.max(1) as f64;
        let bps = c.bytes_per_sec.max(1) as f64;
        Rate { packets: Bucket::new(pps, pps), bytes: Bucket::new(bps, bps) }
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
