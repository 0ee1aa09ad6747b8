//! The tokio node: one task owns a kad-core `Node` and its UDP socket; cloneable [`Handle`]s
//! send it commands over a bounded channel and await the results. Back-pressure is kad-core's
//! policy ([`kad_core::backlog`]): queries wait for a slot in a backlog of [`BACKLOG`], and while
//! it is full the channel is not read, so senders wait. Reads of the node's state (status,
//! contacts) and stop go through a second channel that is always read: they never queue behind
//! lookups.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kad_core::presets::host;
use kad_core::wire::{Peer, MAX_DATAGRAM};
use kad_core::{
    Backlog, Event, Key, NodeId, Outcome, Output, PublicKey, QueryError, QueryId, RecordStore, Signature,
    SignedPut, Stats,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::store::{DbError, HostRecord, HostStore};
use crate::value::Value;

/// The core node of the host preset with the host's store.
pub type CoreNode = host::Node<HostStore>;

/// Settings of a host node.
#[derive(Clone, Debug)]
pub struct Config {
    /// UDP address to bind. Default `127.0.0.1:0` (any free port on loopback).
    pub bind: SocketAddr,
    /// Where to keep the id, contacts and records. `None` (the default) keeps them in memory.
    pub data_dir: Option<PathBuf>,
    /// The node id. `None` (the default) reuses the id saved in `data_dir`, or makes a random
    /// one; a given id replaces the saved one.
    pub id: Option<NodeId>,
    /// Most records held. Default 65,536.
    pub max_records: usize,
    /// Commands that may wait in the channel, behind the [`BACKLOG`] waiting for a query slot,
    /// before senders wait. Default 1,024.
    pub queue: usize,
    /// Protocol settings (client mode, TTLs, timeouts, ...).
    pub core: kad_core::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            id: None,
            max_records: 65_536,
            queue: 1024,
            core: kad_core::Config::default(),
        }
    }
}

/// What went wrong with a node or a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be used.
    #[error(transparent)]
    Storage(#[from] DbError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The core refused the command.
    #[error("{0}")]
    Refused(kad_core::Error),
    /// The query ran and failed.
    #[error("{0}")]
    Query(QueryError),
}

impl Error {
    /// True when the cause is the network (no peers, no answer), not the input.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            Error::Query(_) | Error::Refused(kad_core::Error::NoPeers | kad_core::Error::Busy { .. })
        )
    }
}

/// A snapshot of the node for `/status` and `/metrics`.
#[derive(Clone, Debug)]
pub struct Status {
    /// The node id.
    pub id: NodeId,
    /// The bound address.
    pub addr: SocketAddr,
    /// Client mode.
    pub client: bool,
    /// Contacts per bucket, farthest bucket first.
    pub buckets: Vec<usize>,
    /// The contacts themselves, bucket by bucket in the order of `buckets`.
    pub contacts: Vec<kad_core::routing::Contact>,
    /// Records held.
    pub records: usize,
    /// Bytes of the values held (salts of signed records included); this and the three
    /// counts below are at most [`STORE_SUMMARY_EVERY`] old.
    pub record_bytes: usize,
    /// Records held because this node published them.
    pub published: usize,
    /// Records held as one of the nodes closest to their key.
    pub replicas: usize,
    /// Records cached after a lookup.
    pub cached: usize,
    /// Provider records held.
    pub providers: usize,
    /// Whether records are on disk.
    pub persistent: bool,
    /// Core counters.
    pub stats: Stats,
    /// User queries finished, and their latency histogram.
    pub lookups: Lookups,
}

/// Upper bounds (milliseconds) of the lookup latency histogram.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/// Counts of finished user queries.
#[derive(Clone, Debug, Default)]
pub struct Lookups {
    /// Finished queries.
    pub count: u64,
    /// Failed queries.
    pub failed: u64,
    /// Sum of latencies in milliseconds.
    pub sum_ms: u64,
    /// Queries at or under each bound of [`LATENCY_BUCKETS_MS`].
    pub buckets: [u64; LATENCY_BUCKETS_MS.len()],
}

/// A signed record as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedValue {
    /// The value.
    pub value: Value,
    /// Its sequence number.
    pub seq: u64,
    /// The writer's public key.
    pub public_key: PublicKey,
    /// The signature.
    pub signature: Signature,
}

type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A command answered at once, on the channel the task always reads.
enum Control {
    Status(oneshot::Sender<Status>),
    Contacts(oneshot::Sender<Vec<Peer>>),
    Stop(oneshot::Sender<()>),
}

/// A command that starts a query: it waits in the backlog for a free query slot.
enum QueryCommand {
    Bootstrap(Vec<SocketAddr>, Reply<usize>),
    Put(Key, Value, Reply<u16>),
    PutSigned { put: OwnedSignedPut, value: Value, reply: Reply<u16> },
    Get(Key, Reply<Option<(HostRecord, u16)>>),
    GetSigned { public_key: PublicKey, salt: Vec<u8>, reply: Reply<Option<(HostRecord, u16)>> },
    FindNode(Key, Reply<Vec<Peer>>),
    Provide(Key, Reply<u16>),
    Providers(Key, Reply<Vec<Peer>>),
}

struct OwnedSignedPut {
    public_key: PublicKey,
    salt: Vec<u8>,
    seq: u64,
    signature: Signature,
    cas: Option<u64>,
}

enum Waiter {
    Count(Reply<usize>),
    Acks(Reply<u16>),
    /// A record found, and how many holders returned it (`QueryStats::agreeing`).
    Record(Reply<Option<(HostRecord, u16)>>),
    Peers(Reply<Vec<Peer>>),
}

/// A cheap, cloneable handle to a running node.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Box<QueryCommand>>,
    control: mpsc::Sender<Control>,
    id: NodeId,
    addr: SocketAddr,
}

/// A running node: its task and a handle to it.
pub struct Node {
    handle: Handle,
    task: JoinHandle<()>,
}

impl Node {
    /// Binds the UDP socket, opens the data directory (if any) and starts the node's task.
    /// A node with saved contacts bootstraps from them on its own.
    pub async fn bind(config: Config) -> Result<Node, Error> {
        let socket =
            UdpSocket::bind(config.bind).await.map_err(|source| Error::Bind { addr: config.bind, source })?;
        let addr = socket.local_addr().map_err(|source| Error::Bind { addr: config.bind, source })?;
        let store = match &config.data_dir {
            Some(dir) => HostStore::open(dir, config.max_records)?,
            None => HostStore::in_memory(config.max_records),
        };
        let mut rng = rand::rngs::OsRng;
        let id = config.id.or_else(|| store.saved_id()).unwrap_or_else(|| NodeId::random(&mut rng));
        if let Err(e) = store.save_id(&id) {
            warn!(error = %e, "could not save the node id");
        }
        let saved: Vec<SocketAddr> = store.saved_contacts().into_iter().map(|(_, a)| a).collect();
        let clock = Clock::new();
        // Built in its heap slot, not on the stack and copied: the core's tables are written
        // only as they fill, so the pages of slots never used stay unmapped (an idle node
        // costs ~50 KiB of its 220 KiB). This is `Box::write`, stable only from Rust 1.87.
        let mut slot = Box::<CoreNode>::new_uninit();
        slot.write(CoreNode::new(id, config.core, store, &mut rng, clock.now()));
        // SAFETY: `write` has just initialized the slot.
        let core = unsafe { slot.assume_init() };
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let task = Task {
            core,
            socket: Arc::new(socket),
            clock,
            rx,
            control: control_rx,
            waiters: HashMap::new(),
            backlog: Box::new(Backlog::new()),
            lookups: Lookups::default(),
            addr,
            last_drop_log: (tokio::time::Instant::now(), 0),
            last_contacts_save: tokio::time::Instant::now(),
            store_summary: None,
        };
        let task = tokio::spawn(task.run());
        let handle = Handle { tx, control, id, addr };
        if !saved.is_empty() {
            let h = handle.clone();
            info!(contacts = saved.len(), "rejoining through saved contacts");
            tokio::spawn(async move {
                match h.bootstrap(&saved).await {
                    Ok(n) => info!(contacts = n, "rejoined the network"),
                    Err(e) => warn!(error = %e, "could not rejoin through saved contacts"),
                }
            });
        }
        Ok(Node { handle, task })
    }

    /// A handle to send commands.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The node id.
    pub fn id(&self) -> NodeId {
        self.handle.id
    }

    /// The bound UDP address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// Stops the node (saving its contacts) and waits for its task to end.
    pub async fn stop(self) {
        self.handle.stop().await;
        let _ = self.task.await;
    }
}

impl std::ops::Deref for Node {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Handle {
    /// The node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The bound UDP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> QueryCommand) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Box::new(make(tx))).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    async fn control<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.control.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Joins the network through known nodes; returns the number of contacts then known.
    pub async fn bootstrap(&self, addrs: &[SocketAddr]) -> Result<usize, Error> {
        self.call(|r| QueryCommand::Bootstrap(addrs.to_vec(), r)).await
    }

    /// Stores `value` under `key` on the closest nodes; returns how many acknowledged
    /// (an error when none did).
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl Into<Value>) -> Result<u16, Error> {
        let key = Key::hash(key.as_ref());
        self.call(|r| QueryCommand::Put(key, value.into(), r)).await
    }

    /// The value stored under `key`, as it was put (text or bytes); `None` if nobody has it.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>, Error> {
        Ok(self.get_agreed(key).await?.map(|(v, _)| v))
    }

    /// The value stored under `key` and how many holders returned it (0: this node's own
    /// copy); a get waits for `limits.quorum` holders to agree, see kad-core's `node/quorum.rs`.
    pub async fn get_agreed(&self, key: impl AsRef<[u8]>) -> Result<Option<(Value, u16)>, Error> {
        let key = Key::hash(key.as_ref());
        let found = self.call(|r| QueryCommand::Get(key, r)).await?;
        Ok(found.map(|(r, n)| (Value::from_parts(r.kind, r.value()), n)))
    }

    /// The record stored under `key`, with its metadata.
    pub async fn find_value(&self, key: impl AsRef<[u8]>) -> Result<Option<HostRecord>, Error> {
        let key = Key::hash(key.as_ref());
        Ok(self.call(|r| QueryCommand::Get(key, r)).await?.map(|(r, _)| r))
    }

    /// The closest nodes to `target` that answered, nearest first.
    pub async fn find_node(&self, target: Key) -> Result<Vec<Peer>, Error> {
        self.call(|r| QueryCommand::FindNode(target, r)).await
    }

    /// Announces this node as a provider of `key`; returns how many nodes recorded it.
    pub async fn provide(&self, key: impl AsRef<[u8]>) -> Result<u16, Error> {
        let key = Key::hash(key.as_ref());
        self.call(|r| QueryCommand::Provide(key, r)).await
    }

    /// The providers of `key`.
    pub async fn providers(&self, key: impl AsRef<[u8]>) -> Result<Vec<Peer>, Error> {
        let key = Key::hash(key.as_ref());
        self.call(|r| QueryCommand::Providers(key, r)).await
    }

    /// Stores a value signed with `keypair` under (its public key, `name`) with sequence
    /// number `seq`; returns the acknowledgements.
    pub async fn put_signed(
        &self,
        keypair: &kad_core::signed::Keypair,
        name: impl AsRef<[u8]>,
        seq: u64,
        value: impl Into<Value>,
    ) -> Result<u16, Error> {
        let value = value.into();
        let signature = keypair.sign(name.as_ref(), seq, value.as_bytes());
        self.put_presigned(keypair.public_key(), name, seq, signature, None, value).await
    }

    /// Stores a value signed elsewhere (verified first). With `cas`, holders replace only the
    /// record whose sequence number is `cas`.
    pub async fn put_presigned(
        &self,
        public_key: PublicKey,
        name: impl AsRef<[u8]>,
        seq: u64,
        signature: Signature,
        cas: Option<u64>,
        value: Value,
    ) -> Result<u16, Error> {
        let put = OwnedSignedPut { public_key, salt: name.as_ref().to_vec(), seq, signature, cas };
        self.call(|reply| QueryCommand::PutSigned { put, value, reply }).await
    }

    /// The signed value of `public_key` under `name` with the highest sequence number.
    pub async fn get_signed(
        &self,
        public_key: PublicKey,
        name: impl AsRef<[u8]>,
    ) -> Result<Option<SignedValue>, Error> {
        let salt = name.as_ref().to_vec();
        let rec = self.call(|reply| QueryCommand::GetSigned { public_key, salt, reply }).await?;
        Ok(rec.and_then(|(r, _)| {
            let s = r.signer?;
            Some(SignedValue {
                value: Value::from_parts(r.kind, r.value()),
                seq: s.seq,
                public_key: s.public_key,
                signature: s.signature,
            })
        }))
    }

    /// A snapshot of the node, as it is now; never waits behind queries.
    pub async fn status(&self) -> Result<Status, Error> {
        self.control(Control::Status).await
    }

    /// The contacts of the routing table (id and address), as they are now; never waits
    /// behind queries.
    pub async fn contacts(&self) -> Result<Vec<Peer>, Error> {
        self.control(Control::Contacts).await
    }

    /// Stops the node, even while queries wait; pending commands fail with [`Error::Stopped`].
    pub async fn stop(&self) {
        let _ = self.control(Control::Stop).await;
    }
}

/// Milliseconds since the UNIX epoch, from a monotonic clock started at the wall-clock time,
/// so that times written to disk mean the same after a restart.
struct Clock {
    start: tokio::time::Instant,
    start_unix_ms: u64,
}

impl Clock {
    fn new() -> Self {
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Clock { start: tokio::time::Instant::now(), start_unix_ms: unix.as_millis() as u64 }
    }

    fn now(&self) -> kad_core::Instant {
        kad_core::Instant::from_millis(self.start_unix_ms + self.start.elapsed().as_millis() as u64)
    }

    fn to_tokio(&self, t: kad_core::Instant) -> tokio::time::Instant {
        self.start + Duration::from_millis(t.as_millis().saturating_sub(self.start_unix_ms))
    }
}

/// How long contacts are kept between saves.
const CONTACTS_SAVE_INTERVAL: Duration = Duration::from_secs(300);
/// At most one log line about dropped datagrams per this interval.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Datagrams read in one go before the node's outputs are drained.
const RECV_BATCH: usize = 64;
/// Queries waiting for a free slot; as deep as the channel's default.
pub const BACKLOG: usize = 1024;
/// How long the store's summary in [`Status`] (bytes, records by origin) is reused: counting
/// takes milliseconds with a full store, and status requests may come at any rate.
pub const STORE_SUMMARY_EVERY: Duration = Duration::from_secs(1);
/// Status, contacts and stop requests that may wait for the task's next turn before senders
/// wait (all waiting ones are answered in one turn, with one status computed for all).
const CONTROL_QUEUE: usize = 256;

struct Task {
    core: Box<CoreNode>,
    socket: Arc<UdpSocket>,
    clock: Clock,
    rx: mpsc::Receiver<Box<QueryCommand>>,
    control: mpsc::Receiver<Control>,
    /// Boxed, so that its slots take memory only as they fill (the task's future is written
    /// whole when spawned).
    backlog: Box<Backlog<Box<QueryCommand>, BACKLOG>>,
    waiters: HashMap<QueryId, Waiter>,
    lookups: Lookups,
    addr: SocketAddr,
    last_drop_log: (tokio::time::Instant, u64),
    last_contacts_save: tokio::time::Instant,
    store_summary: Option<(tokio::time::Instant, StoreSummary)>,
}

/// Bytes and records by origin in the store, counted in one pass.
#[derive(Clone, Copy, Default)]
struct StoreSummary {
    bytes: usize,
    published: usize,
    replicas: usize,
    cached: usize,
}

impl StoreSummary {
    fn of(store: &HostStore) -> StoreSummary {
        let mut s = StoreSummary::default();
        for (meta, len) in store.metas() {
            s.bytes += len;
            match meta.origin {
                kad_core::Origin::Publisher => s.published += 1,
                kad_core::Origin::Replica => s.replicas += 1,
                kad_core::Origin::Cache => s.cached += 1,
            }
        }
        s
    }
}

impl Task {
    /// The drive loop: start waiting commands, drain the outputs until the timeout, then wait
    /// for a datagram, a command (while the backlog has room) or the timeout.
    async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut out = vec![0u8; MAX_DATAGRAM];
        loop {
            self.start_waiting();
            let wake = self.drain(&mut out).await;
            self.housekeeping();
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        self.core.handle_datagram(self.clock.now(), from.into(), &buf[..n]);
                        for _ in 1..RECV_BATCH {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, from)) => self.core.handle_datagram(self.clock.now(), from.into(), &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => debug!(error = %e, "recv_from"),
                },
                ctl = self.control.recv() => match ctl {
                    None => break,
                    Some(first) => {
                        if let Some(done) = self.answer(first) {
                            self.save_contacts();
                            let _ = done.send(());
                            break;
                        }
                    }
                },
                // Cannot overflow the backlog: the channel is read only while it has room.
                q = self.rx.recv(), if self.backlog.has_room() => match q {
                    None => break,
                    Some(q) => drop(self.backlog.push(q)),
                },
                _ = tokio::time::sleep_until(self.clock.to_tokio(wake)) => self.core.handle_timeout(self.clock.now()),
            }
        }
        for (_, w) in self.waiters.drain() {
            w.fail(Error::Stopped);
        }
    }

    /// Sends what the node wants sent and delivers finished queries (each frees a slot for a
    /// waiting command) until the node says when to wake it.
    async fn drain(&mut self, out: &mut [u8]) -> kad_core::Instant {
        loop {
            // Taken apart before the await, so that no event is kept in the task's future.
            let t = match self.core.poll_output(out) {
                Output::Transmit(t) => t,
                Output::Event(e) => {
                    self.event(e);
                    continue;
                }
                Output::Timeout(at) => return at,
            };
            let to = SocketAddr::from(t.to);
            if let Err(e) = self.socket.send_to(&out[..t.len], to).await {
                debug!(%to, error = %e, "send_to");
            }
        }
    }

    fn event(&mut self, event: host::Event) {
        match event {
            Event::QueryDone { id, stats, outcome } => {
                self.finished(id, stats, outcome);
                self.start_waiting();
            }
            Event::PeerAdded(p) => debug!(peer = %p.id, addr = %p.addr, "peer added"),
            Event::PeerRemoved(p) => debug!(peer = %p.id, addr = %p.addr, "peer removed"),
        }
    }

    fn housekeeping(&mut self) {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.last_drop_log.0) >= DROP_LOG_INTERVAL {
            let s = self.core.stats();
            let dropped = s.dropped_malformed + s.dropped_version + s.dropped_too_large + s.dropped_unmatched;
            if dropped > self.last_drop_log.1 {
                warn!(
                    new = dropped - self.last_drop_log.1,
                    malformed = s.dropped_malformed,
                    version = s.dropped_version,
                    too_large = s.dropped_too_large,
                    unmatched = s.dropped_unmatched,
                    "dropped datagrams in the last {}s",
                    DROP_LOG_INTERVAL.as_secs()
                );
            }
            self.last_drop_log = (now, dropped);
        }
        if now.duration_since(self.last_contacts_save) >= CONTACTS_SAVE_INTERVAL {
            self.last_contacts_save = now;
            self.save_contacts();
        }
    }

    fn save_contacts(&self) {
        let contacts: Vec<(NodeId, SocketAddr)> =
            self.core.routing().iter().map(|c| (c.id, SocketAddr::from(c.addr))).collect();
        if let Err(e) = self.core.store().save_contacts(&contacts) {
            warn!(error = %e, "could not save contacts");
        }
    }

    /// Answers `first` and the control requests waiting behind it (at most [`CONTROL_QUEUE`]),
    /// computing the status once for all who asked; returns the stop request, if one came
    /// (those after it are dropped).
    fn answer(&mut self, first: Control) -> Option<oneshot::Sender<()>> {
        let mut status: Option<Status> = None;
        let mut next = Some(first);
        for _ in 0..CONTROL_QUEUE {
            let Some(ctl) = next else { break };
            match ctl {
                Control::Status(r) => drop(r.send(status.get_or_insert_with(|| self.status()).clone())),
                Control::Contacts(r) => drop(
                    r.send(self.core.routing().iter().map(|c| Peer { id: c.id, addr: c.addr }).collect()),
                ),
                Control::Stop(done) => return Some(done),
            }
            next = self.control.try_recv().ok();
        }
        None
    }

    fn start_waiting(&mut self) {
        while let Some(q) = self.backlog.next_to_start(self.core.can_start_query()) {
            self.start(*q);
        }
    }

    fn start(&mut self, q: QueryCommand) {
        let now = self.clock.now();
        let core = &mut self.core;
        let (started, waiter) = match q {
            QueryCommand::Bootstrap(addrs, r) => {
                let addrs: Vec<_> = addrs.into_iter().map(Into::into).collect();
                (core.bootstrap(&addrs, now), Waiter::Count(r))
            }
            QueryCommand::Put(key, value, r) => {
                (core.put(key, value.kind(), value.as_bytes(), now), Waiter::Acks(r))
            }
            QueryCommand::PutSigned { put, value, reply } => {
                let p = SignedPut {
                    public_key: put.public_key,
                    salt: &put.salt,
                    seq: put.seq,
                    signature: put.signature,
                    cas: put.cas,
                };
                (core.put_presigned(&p, value.kind(), value.as_bytes(), now), Waiter::Acks(reply))
            }
            QueryCommand::Get(key, r) => (core.get(key, now), Waiter::Record(r)),
            QueryCommand::GetSigned { public_key, salt, reply } => {
                (core.get_signed(&public_key, &salt, now), Waiter::Record(reply))
            }
            QueryCommand::FindNode(target, r) => (core.find_node(target, now), Waiter::Peers(r)),
            QueryCommand::Provide(key, r) => (core.provide(key, now), Waiter::Acks(r)),
            QueryCommand::Providers(key, r) => (core.get_providers(key, now), Waiter::Peers(r)),
        };
        match started {
            Ok(qid) => {
                self.waiters.insert(qid, waiter);
            }
            Err(e) => waiter.fail(Error::Refused(e)),
        }
    }

    fn finished(&mut self, id: QueryId, stats: kad_core::QueryStats, outcome: Outcome<{ host::VALUE }>) {
        let ms = stats.finished.saturating_since(stats.started).as_millis() as u64;
        let l = &mut self.lookups;
        l.count += 1;
        l.failed += outcome.is_failure() as u64;
        l.sum_ms += ms;
        for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
            if ms <= *bound {
                l.buckets[i] += 1;
            }
        }
        let Some(waiter) = self.waiters.remove(&id) else { return };
        match (waiter, outcome) {
            (Waiter::Count(r), Outcome::Bootstrap(res)) => {
                let _ = r.send(res.map_err(Error::Query));
            }
            (Waiter::Acks(r), Outcome::Put(res) | Outcome::Provide(res)) => {
                let _ = r.send(res.map(|a| a.stored).map_err(Error::Query));
            }
            (Waiter::Record(r), Outcome::Get(res)) => {
                let _ = r.send(match res {
                    Ok(rec) => Ok(Some((rec, stats.agreeing))),
                    Err(QueryError::NotFound) => Ok(None),
                    Err(e) => Err(Error::Query(e)),
                });
            }
            (Waiter::Peers(r), Outcome::FindNode(res)) => {
                let _ = r.send(res.map(|v| v.to_vec()).map_err(Error::Query));
            }
            (Waiter::Peers(r), Outcome::GetProviders(res)) => {
                let _ = r.send(match res {
                    Ok(v) => Ok(v.to_vec()),
                    Err(QueryError::NotFound) => Ok(Vec::new()),
                    Err(e) => Err(Error::Query(e)),
                });
            }
            (w, _) => w.fail(Error::Stopped),
        }
    }

    fn status(&mut self) -> Status {
        let store = self.core.store();
        let summary = match self.store_summary {
            Some((at, s)) if at.elapsed() < STORE_SUMMARY_EVERY => s,
            _ => {
                let s = StoreSummary::of(store);
                self.store_summary = Some((tokio::time::Instant::now(), s));
                s
            }
        };
        Status {
            id: self.core.id(),
            addr: self.addr,
            client: self.core.config().client_mode,
            buckets: self.core.routing().bucket_sizes().collect(),
            contacts: self.core.routing().iter().copied().collect(),
            records: store.len(),
            record_bytes: summary.bytes,
            published: summary.published,
            replicas: summary.replicas,
            cached: summary.cached,
            providers: self.core.providers().len(),
            persistent: store.is_persistent(),
            stats: *self.core.stats(),
            lookups: self.lookups.clone(),
        }
    }
}

impl Waiter {
    fn fail(self, e: Error) {
        match self {
            Waiter::Count(r) => drop(r.send(Err(e))),
            Waiter::Acks(r) => drop(r.send(Err(e))),
            Waiter::Record(r) => drop(r.send(Err(e))),
            Waiter::Peers(r) => drop(r.send(Err(e))),
        }
    }
}
