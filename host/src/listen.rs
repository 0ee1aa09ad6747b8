//! The TCP listeners' rules (HTTP API, read-only views, relay), shared by all of a node's
//! listeners so that together they stay well under the process's descriptor limit:
//!
//! | rule | on breach |
//! |---|---|
//! | at most `max_connections` open at once (default: half the descriptor limit, at most 512) | the connection idle the longest is closed to make room; a new one is refused (closed at once) only when none is idle |
//! | a new connection sends a complete request header within `header_timeout` | closed |
//! | a kept-alive connection sends its next request within `idle_timeout` of the last answer | closed |
//! | at most `max_pending` requests to the DHT (`/dht/KEY`) in flight at once | answered 503 at once |
//!
//! A connection with a request in flight is never closed by these rules, and one handed over to
//! the relay (a WebSocket) keeps its slot but follows the relay's own rules. Listeners made with
//! [`bind`] queue up to [`BACKLOG`] connections in the kernel, so a burst is not dropped before
//! these rules see it. Everything is counted in [`ListenStats`], which `/metrics` exports.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::ServiceExt as _;
use tracing::{debug, warn};

/// Most connections at once when the descriptor limit allows more than twice as many.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections the kernel may hold for a listener before it accepts them (capped by the
/// system's `somaxconn`). The standard library's 128 drops connections during a burst, each
/// then retried a second later.
pub const BACKLOG: u32 = 1024;

/// A TCP listener on `addr` with a backlog of [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// At most one log line about failed accepts per this interval.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// The process's open-file (descriptor) limit, if it has one.
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// [`MAX_CONNECTIONS`], or half the descriptor limit when that is lower: the other half is
/// left to the UDP socket, the database, the relay's sockets and the process.
pub fn default_max_connections() -> usize {
    let half = descriptor_limit().map_or(u64::MAX, |l| l / 2);
    (MAX_CONNECTIONS as u64).min(half).max(1) as usize
}

/// Limits of the listeners.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// Connections open at once, over all listeners. Default [`default_max_connections`].
    pub max_connections: usize,
    /// Requests to the DHT (`/dht/KEY`) in flight at once; `None`: half of `max_connections`,
    /// so that the read-only views always find room.
    pub max_pending: Option<usize>,
    /// A new connection must send a complete request header within this. Default 10 s.
    pub header_timeout: Duration,
    /// A kept-alive connection must send its next request within this of the last answer.
    /// Default 30 s.
    pub idle_timeout: Duration,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            max_connections: default_max_connections(),
            max_pending: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl ListenConfig {
    /// `max_pending`, or its default.
    pub fn max_pending(&self) -> usize {
        self.max_pending.unwrap_or(self.max_connections / 2).max(1)
    }
}

/// Why a connection was refused or closed, or a request refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A new connection while every open one had a request in flight (closed at once).
    Full,
    /// Idle the longest when a new connection came at `max_connections`.
    Evicted,
    /// No complete request header within `header_timeout`.
    HeaderTimeout,
    /// No next request within `idle_timeout`.
    Idle,
    /// A request to the DHT over `max_pending` (answered 503; the connection stays).
    Busy,
}

impl Reason {
    /// Every reason, in the order of [`ListenStats::closed`].
    pub const ALL: [Reason; 5] =
        [Reason::Full, Reason::Evicted, Reason::HeaderTimeout, Reason::Idle, Reason::Busy];

    /// The label used in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Reason::Full => "max_connections",
            Reason::Evicted => "evicted",
            Reason::HeaderTimeout => "header_timeout",
            Reason::Idle => "idle",
            Reason::Busy => "busy",
        }
    }

    fn index(self) -> usize {
        Reason::ALL.iter().position(|r| *r == self).expect("listed")
    }
}

/// Counters of the listeners, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenStats {
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused or closed, and requests refused, by reason, in the order of
    /// [`Reason::ALL`].
    pub closed: [u64; 5],
}

impl ListenStats {
    /// The count for `reason`.
    pub fn closed(&self, reason: Reason) -> u64 {
        self.closed[reason.index()]
    }

    /// Appends the counters in the Prometheus text format.
    pub fn write_metrics(&self, m: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            m,
            "# HELP kad_http_connections TCP connections open on the HTTP, views and relay listeners.\n# TYPE kad_http_connections gauge\nkad_http_connections {}",
            self.connections
        );
        let _ = writeln!(
            m,
            "# HELP kad_http_connections_total TCP connections accepted.\n# TYPE kad_http_connections_total counter\nkad_http_connections_total {}",
            self.connections_total
        );
        let _ = writeln!(
            m,
            "# HELP kad_http_refused_total Connections refused or closed by the listeners' limits, and DHT requests answered 503, by reason.\n# TYPE kad_http_refused_total counter"
        );
        for (r, n) in Reason::ALL.iter().zip(&self.closed) {
            let _ = writeln!(m, "kad_http_refused_total{{reason=\"{}\"}} {n}", r.name());
        }
    }
}

/// The listeners of one node: their shared limits and counters. Cheap to clone.
#[derive(Clone)]
pub struct Listeners {
    shared: Arc<Shared>,
}

struct Shared {
    config: ListenConfig,
    pending: Arc<Semaphore>,
    table: Mutex<Table>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    closed: [AtomicU64; 5],
    epoch: Instant,
}

/// The open connections.
#[derive(Default)]
struct Table {
    conns: HashMap<u64, Arc<Conn>>,
    /// Told to close, not closed yet: their slots are as good as free.
    doomed: usize,
}

/// One connection's state, shared by its task, its requests and the table.
struct Conn {
    /// Requests whose answer has not been written out yet.
    in_flight: AtomicUsize,
    /// Requests started.
    requests: AtomicU64,
    /// Milliseconds since the epoch when it became idle (opened, or answered its last request).
    idle_since: AtomicU64,
    /// Its task still serves HTTP on it (false once it ended or handed the socket over).
    closable: AtomicBool,
    doomed: AtomicBool,
    /// Told when it is to close, and when its last request in flight ends.
    wake: Notify,
}

impl Listeners {
    /// Listeners with these limits.
    pub fn new(config: ListenConfig) -> Listeners {
        let pending = Arc::new(Semaphore::new(config.max_pending()));
        Listeners {
            shared: Arc::new(Shared {
                config,
                pending,
                table: Mutex::new(Table::default()),
                next_id: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                closed: Default::default(),
                epoch: Instant::now(),
            }),
        }
    }

    /// The limits.
    pub fn config(&self) -> &ListenConfig {
        &self.shared.config
    }

    /// The counters now.
    pub fn stats(&self) -> ListenStats {
        let s = &self.shared;
        ListenStats {
            connections: s.table.lock().expect("not poisoned").conns.len(),
            connections_total: s.accepted.load(Ordering::Relaxed),
            closed: std::array::from_fn(|i| s.closed[i].load(Ordering::Relaxed)),
        }
    }

    fn count(&self, reason: Reason) {
        self.shared.closed[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// A place for one more request to the DHT, or `None` (counted) when `max_pending` are
    /// in flight.
    pub fn try_pending(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.shared.pending.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.count(Reason::Busy);
        }
        permit
    }

    /// Serves `app` on `listener` under these limits until the runtime stops. Requests carry
    /// the client's address as [`ConnectInfo<SocketAddr>`]; upgrades (WebSockets) work.
    pub fn serve(&self, listener: TcpListener, app: Router) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut last_warning: Option<Instant> = None;
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors, most likely: wait for some to be closed.
                        if last_warning.is_none_or(|t| t.elapsed() >= ACCEPT_WARNING_EVERY) {
                            warn!(error = %e, "cannot accept a connection");
                            last_warning = Some(Instant::now());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some((id, conn)) = this.admit() else {
                    this.count(Reason::Full);
                    drop(stream);
                    continue;
                };
                this.shared.accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let io = Io { _slot: Slot { listeners: this.clone(), id }, stream };
                tokio::spawn(this.clone().connection(io, peer, conn, app.clone()));
            }
        })
    }

    fn now_ms(&self) -> u64 {
        self.shared.epoch.elapsed().as_millis() as u64
    }

    /// Registers a new connection, closing the one idle the longest if the table is full;
    /// `None` when it is full of connections with requests in flight.
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let mut t = self.shared.table.lock().expect("not poisoned");
        if t.conns.len() - t.doomed >= self.shared.config.max_connections {
            let victim = t
                .conns
                .values()
                .filter(|c| {
                    c.closable.load(Ordering::Acquire)
                        && !c.doomed.load(Ordering::Acquire)
                        && c.in_flight.load(Ordering::Acquire) == 0
                })
                .min_by_key(|c| c.idle_since.load(Ordering::Relaxed))?
                .clone();
            victim.doomed.store(true, Ordering::Release);
            victim.wake.notify_one();
            t.doomed += 1;
            self.count(Reason::Evicted);
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            closable: AtomicBool::new(true),
            doomed: AtomicBool::new(false),
            wake: Notify::new(),
        });
        t.conns.insert(id, conn.clone());
        Some((id, conn))
    }

    /// When `conn` is to be closed for idleness, if it has no request in flight: its first
    /// request must come within `header_timeout` of opening, the next within `idle_timeout`.
    fn deadline(&self, conn: &Conn) -> Option<(Instant, Reason)> {
        if conn.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.shared.epoch + Duration::from_millis(conn.idle_since.load(Ordering::Acquire));
        Some(if conn.requests.load(Ordering::Acquire) == 0 {
            (since + self.shared.config.header_timeout, Reason::HeaderTimeout)
        } else {
            (since + self.shared.config.idle_timeout, Reason::Idle)
        })
    }

    async fn connection(self, io: Io, peer: SocketAddr, conn: Arc<Conn>, app: Router) {
        let service = {
            let (this, conn) = (self.clone(), conn.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let busy = Busy::begin(this.clone(), conn.clone());
                let answer = app.clone().oneshot(req.map(Body::new));
                async move {
                    let res = answer.await?;
                    Ok::<_, Infallible>(res.map(|body| Tracked { body, _busy: busy }))
                }
            })
        };
        let http = hyper::server::conn::http1::Builder::new()
            // Timeouts are this module's rules, above.
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(http);
        loop {
            let deadline = self.deadline(&conn);
            let at = deadline.map_or_else(|| Instant::now() + Duration::from_secs(3600), |(at, _)| at);
            tokio::select! {
                r = http.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "HTTP connection ended");
                    }
                    break;
                }
                _ = conn.wake.notified() => {
                    if conn.doomed.load(Ordering::Acquire) {
                        if conn.in_flight.load(Ordering::Acquire) == 0 {
                            break;
                        }
                        http.as_mut().graceful_shutdown();
                    }
                }
                _ = tokio::time::sleep_until(at), if deadline.is_some() => {
                    if let Some((at, why)) = self.deadline(&conn) {
                        if Instant::now() >= at {
                            self.count(why);
                            break;
                        }
                    }
                }
            }
        }
        conn.closable.store(false, Ordering::Release);
    }
}

/// A request in flight on a connection, until its answer has been written out.
struct Busy {
    listeners: Listeners,
    conn: Arc<Conn>,
}

impl Busy {
    fn begin(listeners: Listeners, conn: Arc<Conn>) -> Busy {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.requests.fetch_add(1, Ordering::AcqRel);
        Busy { listeners, conn }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn.idle_since.store(self.listeners.now_ms(), Ordering::Release);
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn.wake.notify_one();
        }
    }
}

/// An answer's body, holding its request's [`Busy`] until hyper has written it out.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's place in the table, freed when its socket is closed (after an upgrade, when
/// the WebSocket closes).
struct Slot {
    listeners: Listeners,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.listeners.shared.table.lock().expect("not poisoned");
        if let Some(c) = t.conns.remove(&self.id) {
            if c.doomed.load(Ordering::Acquire) {
                t.doomed -= 1;
            }
        }
    }
}

/// The socket of a connection and its slot (freed first: fields drop in order).
struct Io {
    _slot: Slot,
    stream: TcpStream,
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
