//! kad for Python: the `kad` module. A [`kad_host::Node`] on its own tokio runtime behind an
//! asyncio API shaped like `kademlia.network.Server`, so that the Python library's examples run
//! with their import line changed. Glue only: the protocol lives in kad-core, sockets and
//! records in kad-host; this crate converts arguments, results and errors.
//!
//! Threads: a listening `Server` owns one thread that runs a current-thread tokio runtime with
//! the node's task. The async methods are PyO3 coroutines that await kad-host's [`Handle`]
//! (channels, which need no runtime) on the caller's asyncio loop; the node thread wakes the
//! loop with `call_soon_threadsafe`. `stop()` stops the node and joins its thread, so neither
//! a thread nor a socket is left behind. Methods that wait for the node thread (`stop`,
//! `stats`, `bootstrappable_neighbors`, `save_state`, `listen`) release the GIL meanwhile,
//! since the node thread takes it to wake a coroutine or to log.
//!
//! Logs: kad-host's `tracing` events go to Python's `logging`, logger `kad` (`kad.node` for
//! kad-host's `node` module, ...). Events under the effective level of `logging.getLogger("kad")`
//! are dropped without taking the GIL; the level is read again at every call into the module.
//!
//! Why this crate is not a member of the repository's workspace (it has its own `[workspace]`
//! and `Cargo.lock`): `cargo test --workspace` links every member's tests, and a PyO3 crate's
//! test binaries link libpython, which a machine without a Python development install lacks;
//! its build script also needs a Python interpreter. Kept apart, `cargo clippy --workspace`
//! and `cargo test --workspace` need no Python, and pyo3 stays out of the workspace's lock.
//! `scripts/test-python` checks this crate's format and lints, builds the wheel with maturin
//! and runs its tests.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

use kad_core::signed::Keypair;
use kad_core::{Key, NodeId};
use kad_host::{Config, Handle, Node, Value};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use tokio::sync::oneshot;

create_exception!(kad, KadError, PyException, "An error of a kad node.");
create_exception!(
    kad,
    NetworkError,
    KadError,
    "The network could not serve the request: no known peers, no answer, no peer stored it."
);

/// Contacts per bucket, replication factor and lookup width (K): fixed at compile time.
const K: usize = kad_core::presets::host::K;

/// The Python exception for a kad-host error, with its message: the network's fault is a
/// `NetworkError`, a refused input a `ValueError` (as the `kad` command's exit codes sort them).
fn py_err(e: kad_host::Error) -> PyErr {
    let msg = e.to_string();
    match e {
        e if e.is_network() => NetworkError::new_err(msg),
        kad_host::Error::Refused(_) => PyValueError::new_err(msg),
        kad_host::Error::Bind { .. } => PyOSError::new_err(msg),
        _ => KadError::new_err(msg),
    }
}

/// A key as the Python library takes it: text (its UTF-8 bytes) or bytes.
struct KeyArg(Vec<u8>);

impl<'py> FromPyObject<'_, 'py> for KeyArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        match ValueArg::extract(obj) {
            Ok(ValueArg(v)) => Ok(KeyArg(v.as_bytes().to_vec())),
            Err(_) => Err(PyTypeError::new_err(format!("key must be str or bytes, not {}", type_name(obj)))),
        }
    }
}

/// A value: `str` stays text, `bytes` stays bytes.
struct ValueArg(Value);

impl<'py> FromPyObject<'_, 'py> for ValueArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(ValueArg(Value::Text(s.to_cow()?.into_owned())));
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(ValueArg(Value::Bytes(b.as_bytes().to_vec())));
        }
        Err(PyTypeError::new_err(format!("value must be str or bytes, not {}", type_name(obj))))
    }
}

fn type_name(obj: Borrowed<'_, '_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "this type".into())
}

/// A value going back to Python as it came in.
struct PyValue(Value);

impl<'py> IntoPyObject<'py> for PyValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(match self.0 {
            Value::Text(s) => PyString::new(py, &s).into_any(),
            Value::Bytes(b) => PyBytes::new(py, &b).into_any(),
        })
    }
}

fn bytes_arg<const N: usize>(b: &[u8], what: &str) -> PyResult<[u8; N]> {
    b.try_into().map_err(|_| PyValueError::new_err(format!("{what} must be {N} bytes, not {}", b.len())))
}

/// A node of the network: its id and UDP address.
#[pyclass(module = "kad", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
struct Peer {
    node_id: [u8; kad_core::id::ID_LEN],
    /// Its IP address.
    #[pyo3(get)]
    ip: String,
    /// Its UDP port.
    #[pyo3(get)]
    port: u16,
}

impl From<kad_core::Peer> for Peer {
    fn from(p: kad_core::Peer) -> Self {
        let addr = SocketAddr::from(p.addr);
        Peer { node_id: *p.id.as_bytes(), ip: addr.ip().to_string(), port: addr.port() }
    }
}

#[pymethods]
impl Peer {
    /// The node id (20 bytes).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.node_id)
    }

    fn __repr__(&self) -> String {
        format!("Peer(id={}, ip='{}', port={})", hex::encode(self.node_id), self.ip, self.port)
    }
}

/// A signed (SECURED) record as found.
#[pyclass(module = "kad", frozen)]
struct SignedValue {
    value: Value,
    /// Its sequence number.
    #[pyo3(get)]
    seq: u64,
    key: [u8; 32],
    sig: [u8; 64],
}

#[pymethods]
impl SignedValue {
    /// The value, `str` or `bytes` as it was put.
    #[getter]
    fn value(&self) -> PyValue {
        PyValue(self.value.clone())
    }

    /// The writer's ed25519 public key (32 bytes).
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key)
    }

    /// The signature (64 bytes).
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.sig)
    }

    fn __repr__(&self) -> String {
        format!(
            "SignedValue(value={:?}, seq={}, public_key={})",
            self.value.to_string(),
            self.seq,
            hex::encode(self.key)
        )
    }
}

/// A new ed25519 key pair for signed records: `(secret_key, public_key)`, 32 bytes each.
#[pyfunction]
fn keygen<'py>(py: Python<'py>) -> (Bound<'py, PyBytes>, Bound<'py, PyBytes>) {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let kp = Keypair::from_secret(&secret);
    (PyBytes::new(py, &secret), PyBytes::new(py, &kp.public_key().0))
}

/// The node thread and the way to stop it.
struct Running {
    handle: Handle,
    quit: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

enum State {
    Idle,
    Running(Running),
    Stopped,
}

/// Servers that may still be running, stopped by the module's `atexit` hook.
static LIVE: Mutex<Vec<Weak<Mutex<State>>>> = Mutex::new(Vec::new());

/// Stops the node of `state`, if running, and waits for its thread with the GIL released.
fn stop_state(py: Python<'_>, state: &Mutex<State>) {
    let taken = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *s, State::Stopped) {
            State::Running(r) => Some(r),
            other => {
                *s = other;
                None
            }
        }
    };
    if let Some(r) = taken {
        r.stop(py);
    }
}

impl Running {
    fn stop(self, py: Python<'_>) {
        let _ = self.quit.send(());
        let thread = self.thread;
        py.detach(move || {
            let _ = thread.join();
        });
    }
}

/// The error for a server that cannot take a command in `state`, if any.
fn not_idle(state: &State) -> Option<PyErr> {
    match state {
        State::Idle => None,
        State::Running(r) => Some(KadError::new_err(format!("already listening on {}", r.handle.addr()))),
        State::Stopped => Some(py_err(kad_host::Error::Stopped)),
    }
}

/// Runs the node: binds it, reports the handle (or the error), serves until told to stop.
fn node_thread(
    config: Config,
    ready: std::sync::mpsc::Sender<PyResult<Handle>>,
    stop: oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(PyOSError::new_err(format!("cannot start the node's runtime: {e}"))));
            return;
        }
    };
    rt.block_on(async move {
        let node = match Node::bind(config).await {
            Ok(node) => node,
            Err(e) => {
                let _ = ready.send(Err(py_err(e)));
                return;
            }
        };
        if ready.send(Ok(node.handle())).is_ok() {
            // Told to stop, or the Server is gone (the sender dropped): stop either way.
            let _ = stop.await;
        }
        node.stop().await;
    });
}

/// A kad node with the shape of `kademlia.network.Server`.
#[pyclass(module = "kad", frozen)]
struct Server {
    alpha: usize,
    node_id: Option<NodeId>,
    storage: Option<PathBuf>,
    client_mode: bool,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn handle(&self) -> PyResult<Handle> {
        Python::attach(refresh_log_level);
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Running(r) => Ok(r.handle.clone()),
            State::Idle => Err(KadError::new_err("not listening: await listen(port) first")),
            State::Stopped => Err(py_err(kad_host::Error::Stopped)),
        }
    }

    /// Starts the node thread. The state's lock is never held while waiting: the node thread
    /// may need the GIL (to log) before it is ready, and a caller of `handle()` holds the GIL.
    fn start(&self, py: Python<'_>, bind: SocketAddr) -> PyResult<()> {
        refresh_log_level(py);
        if let Some(e) = not_idle(&self.state.lock().unwrap_or_else(|e| e.into_inner())) {
            return Err(e);
        }
        let mut config =
            Config { bind, data_dir: self.storage.clone(), id: self.node_id, ..Config::default() };
        config.core.alpha = self.alpha;
        config.core.client_mode = self.client_mode;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (quit, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("kad-node".into())
            .spawn(move || node_thread(config, ready_tx, stop_rx))
            .map_err(|e| PyOSError::new_err(format!("cannot start the node's thread: {e}")))?;
        let handle = match py.detach(move || ready_rx.recv()) {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => {
                py.detach(|| thread.join()).ok();
                return Err(e);
            }
            Err(_) => return Err(KadError::new_err("the node's thread ended before it started")),
        };
        let running = Running { handle, quit, thread };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match not_idle(&state) {
            None => {
                *state = State::Running(running);
                Ok(())
            }
            Some(e) => {
                // Another listen() or a stop() came first.
                drop(state);
                running.stop(py);
                Err(e)
            }
        }
    }

    async fn contacts(handle: &Handle) -> PyResult<Vec<Peer>> {
        Ok(handle.contacts().await.map_err(py_err)?.into_iter().map(Peer::from).collect())
    }
}

/// Waits for `f` (a call to the node thread) with the GIL released.
fn wait<T: Send>(py: Python<'_>, f: impl std::future::Future<Output = T> + Send) -> T {
    py.detach(|| block_on(f))
}

/// Drives a future that needs no runtime (a kad-host call: channels) on the calling thread.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn resolve(host: &str, port: u16) -> PyResult<Vec<SocketAddr>> {
    (host, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| PyValueError::new_err(format!("bad address ({host:?}, {port}): {e}")))
}

#[pymethods]
impl Server {
    /// A node that is not listening yet. `ksize` is kad's K, fixed at 20 at compile time;
    /// `alpha` the lookup parallelism; `node_id` 20 bytes (random by default); `storage` a
    /// directory that keeps the id, contacts and records across restarts (in memory by
    /// default); `client_mode` queries and stores but stays out of others' routing tables.
    #[new]
    #[pyo3(signature = (ksize=20, alpha=3, node_id=None, storage=None, client_mode=false))]
    fn new(
        py: Python<'_>,
        ksize: usize,
        alpha: usize,
        node_id: Option<&[u8]>,
        storage: Option<&Bound<'_, PyAny>>,
        client_mode: bool,
    ) -> PyResult<Self> {
        refresh_log_level(py);
        if ksize != K {
            return Err(PyValueError::new_err(format!(
                "ksize must be {K}: kad's K is fixed at compile time (kad_core::presets::host::K)"
            )));
        }
        if alpha == 0 {
            return Err(PyValueError::new_err("alpha must be at least 1"));
        }
        let node_id = node_id.map(|b| bytes_arg::<{ kad_core::id::ID_LEN }>(b, "node_id")).transpose()?;
        let storage = match storage {
            None => None,
            Some(s) if s.is_none() => None,
            Some(s) => Some(s.extract::<PathBuf>().map_err(|_| {
                PyTypeError::new_err(
                    "storage must be None (in memory) or the path of a directory: kad keeps records in its own store",
                )
            })?),
        };
        let state = Arc::new(Mutex::new(State::Idle));
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&state));
        Ok(Server { alpha, node_id: node_id.map(NodeId::from_bytes), storage, client_mode, state })
    }

    /// K (always 20).
    #[getter]
    fn ksize(&self) -> usize {
        K
    }

    /// Requests in flight per lookup.
    #[getter]
    fn alpha(&self) -> usize {
        self.alpha
    }

    /// Binds the UDP socket on `interface`:`port` (0: any free port) and starts the node.
    #[pyo3(signature = (port, interface="127.0.0.1".to_string()))]
    async fn listen(&self, port: u16, interface: String) -> PyResult<()> {
        let bind = resolve(&interface, port)?
            .into_iter()
            .next()
            .ok_or_else(|| PyValueError::new_err(format!("no address for {interface:?}")))?;
        Python::attach(|py| self.start(py, bind))
    }

    /// Joins the network through known nodes, `[(host, port), ...]`; returns the peers known
    /// then. Raises `NetworkError` when none answered.
    async fn bootstrap(&self, addrs: Vec<(String, u16)>) -> PyResult<Vec<Peer>> {
        let handle = self.handle()?;
        let mut resolved = Vec::new();
        for (host, port) in &addrs {
            resolved.extend(resolve(host, *port)?);
        }
        handle.bootstrap(&resolved).await.map_err(py_err)?;
        Server::contacts(&handle).await
    }

    /// Stores `value` (str or bytes) under `key` on the closest nodes. True when at least one
    /// peer stored it, False when none did (the reason is logged on logger `kad`).
    async fn set(&self, key: KeyArg, value: ValueArg) -> PyResult<bool> {
        match self.handle()?.put(key.0, value.0).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_network() => {
                tracing::warn!(error = %e, "set: the value is stored nowhere");
                Ok(false)
            }
            Err(e) => Err(py_err(e)),
        }
    }

    /// As `set`, but returns how many peers stored the value; raises `NetworkError` when none did.
    async fn set_acks(&self, key: KeyArg, value: ValueArg) -> PyResult<u16> {
        self.handle()?.put(key.0, value.0).await.map_err(py_err)
    }

    /// The value under `key`, `str` or `bytes` as it was set; None if no node has it.
    async fn get(&self, key: KeyArg) -> PyResult<Option<PyValue>> {
        Ok(self.handle()?.get(key.0).await.map_err(py_err)?.map(PyValue))
    }

    /// The closest nodes to `target` (a node id: 20 bytes or 40 hex digits) that answered,
    /// nearest first.
    async fn find_node(&self, target: KeyArg) -> PyResult<Vec<Peer>> {
        let id: [u8; kad_core::id::ID_LEN] = match hex::decode(&target.0) {
            Ok(b) if target.0.len() == 2 * kad_core::id::ID_LEN => bytes_arg(&b, "target")?,
            _ => bytes_arg(&target.0, "target (a node id: 20 bytes or 40 hex digits)")?,
        };
        let found = self.handle()?.find_node(Key::from_bytes(id)).await.map_err(py_err)?;
        Ok(found.into_iter().map(Peer::from).collect())
    }

    /// `(value, [])` when a node has `key`, else `(None, closest peers)`: the peers come from a
    /// second lookup, for the node id nearest the key.
    async fn find_value(&self, key: KeyArg) -> PyResult<(Option<PyValue>, Vec<Peer>)> {
        let handle = self.handle()?;
        if let Some(v) = handle.get(&key.0).await.map_err(py_err)? {
            return Ok((Some(PyValue(v)), Vec::new()));
        }
        let closest = handle.find_node(Key::hash(&key.0)).await.map_err(py_err)?;
        Ok((None, closest.into_iter().map(Peer::from).collect()))
    }

    /// Announces this node as a provider of `key`; returns how many nodes recorded it.
    async fn provide(&self, key: KeyArg) -> PyResult<u16> {
        self.handle()?.provide(key.0).await.map_err(py_err)
    }

    /// The providers of `key`.
    async fn get_providers(&self, key: KeyArg) -> PyResult<Vec<Peer>> {
        Ok(self.handle()?.providers(key.0).await.map_err(py_err)?.into_iter().map(Peer::from).collect())
    }

    /// Stores a record signed with `secret_key` (32 bytes, see `kad.keygen()`) under
    /// (its public key, `key`); raise `seq` to replace it. Returns how many peers stored it.
    #[pyo3(signature = (secret_key, key, value, seq=0))]
    async fn put_signed(&self, secret_key: Vec<u8>, key: KeyArg, value: ValueArg, seq: u64) -> PyResult<u16> {
        let keypair = Keypair::from_secret(&bytes_arg(&secret_key, "secret_key")?);
        self.handle()?.put_signed(&keypair, key.0, seq, value.0).await.map_err(py_err)
    }

    /// The signed record of `public_key` (32 bytes) under `key` with the highest sequence
    /// number, every signature verified; None if no node has one.
    async fn get_signed(&self, public_key: Vec<u8>, key: KeyArg) -> PyResult<Option<SignedValue>> {
        let pk = bytes_arg(&public_key, "public_key")?;
        let found = self.handle()?.get_signed(kad_core::PublicKey(pk), key.0).await.map_err(py_err)?;
        Ok(found.map(|s| SignedValue { value: s.value, seq: s.seq, key: s.public_key.0, sig: s.signature.0 }))
    }

    /// The contacts of the routing table as `[(ip, port), ...]`, to bootstrap from next time.
    fn bootstrappable_neighbors(&self, py: Python<'_>) -> PyResult<Vec<(String, u16)>> {
        let handle = self.handle()?;
        let peers = wait(py, Server::contacts(&handle))?;
        Ok(peers.into_iter().map(|p| (p.ip, p.port)).collect())
    }

    /// Writes ksize, alpha, the id and the neighbors to `path` (JSON), for `load_state`.
    fn save_state(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let handle = self.handle()?;
        let peers = wait(py, Server::contacts(&handle))?;
        let neighbors: Vec<_> = peers.iter().map(|p| (p.ip.as_str(), p.port)).collect();
        let state = serde_json::json!({
            "ksize": K,
            "alpha": self.alpha,
            "id": handle.id().to_string(),
            "neighbors": neighbors,
        });
        std::fs::write(&path, state.to_string())
            .map_err(|e| PyOSError::new_err(format!("cannot write {}: {e}", path.display())))
    }

    /// A server with the ksize, alpha and id saved by `save_state`, listening on `port`,
    /// bootstrapped from the saved neighbors (a failed bootstrap is logged; it still listens).
    #[staticmethod]
    #[pyo3(signature = (path, port=0, interface="127.0.0.1".to_string()))]
    async fn load_state(path: PathBuf, port: u16, interface: String) -> PyResult<Py<Server>> {
        let bad = |why: String| KadError::new_err(format!("{} is not a saved state: {why}", path.display()));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PyOSError::new_err(format!("cannot read {}: {e}", path.display())))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let field = |name: &str| v.get(name).ok_or_else(|| bad(format!("no {name:?}")));
        let ksize = field("ksize")?.as_u64().ok_or_else(|| bad("ksize".into()))? as usize;
        let alpha = field("alpha")?.as_u64().ok_or_else(|| bad("alpha".into()))? as usize;
        let id = field("id")?.as_str().and_then(NodeId::from_hex).ok_or_else(|| bad("id".into()))?;
        let neighbors: Vec<(String, u16)> =
            serde_json::from_value(field("neighbors")?.clone()).map_err(|e| bad(e.to_string()))?;
        let server = Python::attach(|py| {
            let s = Server::new(py, ksize, alpha, Some(id.as_bytes()), None, false)?;
            Py::new(py, s)
        })?;
        let s = server.get();
        s.listen(port, interface).await?;
        if !neighbors.is_empty() {
            if let Err(e) = s.bootstrap(neighbors).await {
                tracing::warn!(error = %e, "load_state: bootstrap from the saved neighbors failed; still listening");
            }
        }
        Ok(server)
    }

    /// The node id (20 bytes).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.handle()?.id().as_bytes()))
    }

    /// The bound UDP address, `(ip, port)`.
    #[getter]
    fn address(&self) -> PyResult<(String, u16)> {
        let addr = self.handle()?.addr();
        Ok((addr.ip().to_string(), addr.port()))
    }

    /// A snapshot of the node's counters.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let handle = self.handle()?;
        let s = wait(py, handle.status()).map_err(py_err)?;
        let d = PyDict::new(py);
        d.set_item("contacts", s.buckets.iter().sum::<usize>())?;
        d.set_item("records", s.records)?;
        d.set_item("published", s.published)?;
        d.set_item("providers", s.providers)?;
        d.set_item("persistent", s.persistent)?;
        d.set_item("client_mode", s.client)?;
        d.set_item("datagrams_in", s.stats.datagrams_in)?;
        d.set_item("datagrams_out", s.stats.datagrams_out)?;
        d.set_item("timeouts", s.stats.timeouts)?;
        d.set_item("lookups", s.lookups.count)?;
        d.set_item("lookups_failed", s.lookups.failed)?;
        Ok(d)
    }

    /// Stops the node (saving its contacts when it has storage) and waits for its thread:
    /// afterwards no thread or socket of it is left. Pending calls raise `KadError`.
    fn stop(&self, py: Python<'_>) {
        refresh_log_level(py);
        stop_state(py, &self.state);
    }

    fn __repr__(&self) -> String {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Running(r) => format!("<kad.Server {} on {}>", r.handle.id(), r.handle.addr()),
            State::Idle => "<kad.Server (not listening)>".into(),
            State::Stopped => "<kad.Server (stopped)>".into(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Garbage-collected without stop(): stop the node now rather than at exit.
        let _ = Python::try_attach(|py| stop_state(py, &self.state));
    }
}

/// Stops every server still running (the module's `atexit` hook).
#[pyfunction]
fn _stop_all(py: Python<'_>) {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for state in live.iter().filter_map(Weak::upgrade) {
        stop_state(py, &state);
    }
}

// ----- logging ----------------------------------------------------------------------------

/// Lowest Python level that logger `kad` passes on (Python's numbers: DEBUG 10, INFO 20, ...).
static LOG_THRESHOLD: AtomicU8 = AtomicU8::new(30);

fn py_level(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::TRACE => 5,
        tracing::Level::DEBUG => 10,
        tracing::Level::INFO => 20,
        tracing::Level::WARN => 30,
        tracing::Level::ERROR => 40,
    }
}

/// Reads the effective level of logger `kad` (and `logging.disable`) into [`LOG_THRESHOLD`].
fn refresh_log_level(py: Python<'_>) {
    let level = (|| -> PyResult<i64> {
        let logging = py.import("logging")?;
        let level: i64 =
            logging.call_method1("getLogger", ("kad",))?.call_method0("getEffectiveLevel")?.extract()?;
        let disabled: i64 = logging.getattr("root")?.getattr("manager")?.getattr("disable")?.extract()?;
        Ok(level.max(disabled + 1))
    })();
    if let Ok(level) = level {
        LOG_THRESHOLD.store(level.clamp(0, u8::MAX as i64) as u8, Ordering::Relaxed);
    }
}

/// The Python logger of a tracing target: `kad_host::node` logs to `kad.node`.
fn logger_name(target: &str) -> String {
    let mut parts = target.split("::");
    let krate = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    match (krate.starts_with("kad"), rest.is_empty()) {
        (true, true) => "kad".into(),
        (true, false) => format!("kad.{}", rest.join(".")),
        (false, _) => format!("kad.{}", target.replace("::", ".")),
    }
}

/// Formats an event as `message key=value ...`.
#[derive(Default)]
struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let sep = if self.0.is_empty() { "" } else { " " };
        let _ = match field.name() {
            "message" => write!(self.0, "{sep}{value:?}"),
            name => write!(self.0, "{sep}{name}={value:?}"),
        };
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// Forwards tracing events to Python's `logging`.
struct PyLogging;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PyLogging {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        // Not cached per call site: the Python level can change at any time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>, _: tracing_subscriber::layer::Context<'_, S>) -> bool {
        py_level(meta.level()) >= LOG_THRESHOLD.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Line::default();
        event.record(&mut line);
        let name = logger_name(meta.target());
        let _ = Python::try_attach(|py| -> PyResult<()> {
            let logger = py.import("logging")?.call_method1("getLogger", (name,))?;
            logger.call_method1("log", (py_level(meta.level()), line.0))?;
            Ok(())
        });
    }
}

// ----- the module -------------------------------------------------------------------------

/// kad, a Kademlia DHT, for Python: `kad.Server` has the shape of `kademlia.network.Server`.
#[pymodule]
fn kad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    let py = m.py();
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PyLogging));
    refresh_log_level(py);
    m.add_class::<Server>()?;
    m.add_class::<Peer>()?;
    m.add_class::<SignedValue>()?;
    m.add("KadError", py.get_type::<KadError>())?;
    m.add("NetworkError", py.get_type::<NetworkError>())?;
    m.add("K", K)?;
    m.add("MAX_VALUE", kad_core::presets::host::VALUE.min(kad_core::store::MAX_VALUE_LEN))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(keygen, m)?)?;
    let stop_all = wrap_pyfunction!(_stop_all, m)?;
    py.import("atexit")?.call_method1("register", (stop_all,))?;
    Ok(())
}
