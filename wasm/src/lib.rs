//! kad-wasm: a kad node in the browser (or Node ≥ 20), reaching the UDP network through the
//! WebSocket relay of a host node (`kad node --relay ADDR`).
//!
//! The whole kad-core engine runs here, boxed in the wasm instance; this crate only moves
//! bytes and time in and out of it: WebSocket messages framed by [`kad_core::frame`] in,
//! `performance.now()` as the clock, `crypto.getRandomValues` for randomness, one JS timer for
//! the node's next timeout, and Promises for query results. No protocol logic lives here.
//! Back-pressure is kad-core's policy ([`kad_core::backlog`]): calls wait for a query slot in a
//! backlog of [`BACKLOG`]; a call made while it is full rejects.
//!
//! ```js
//! import { DhtNode } from "kad-wasm";
//! const node = await DhtNode.connect("ws://127.0.0.1:8081/");
//! const acks = await node.put("greeting", "hello");   // peers that stored it
//! console.log(await node.get("greeting"));              // "hello"
//! node.close();
//! ```

#![warn(missing_docs)]

pub mod js;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Number, Promise, Reflect, Uint8Array};
use kad_core::frame::{self, Frame, MAX_FRAME};
use kad_core::signed::Keypair;
use kad_core::wire::MAX_DATAGRAM;
use kad_core::{Backlog, Config, Event, Instant, NodeId, Outcome, Output, PeerAddr, QueryError, QueryId};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

pub use js::{Clock, JsRng};

/// Capacities of a browser node: a host-sized routing table and lookups (K = 20, values up to
/// 1000 bytes), a small store (a client-mode node holds mostly its own records).
pub mod preset {
    /// Buckets.
    pub const B: usize = 32;
    /// Contacts per bucket, lookup width, replication.
    pub const K: usize = 20;
    /// Replacements per bucket.
    pub const R: usize = 5;
    /// Queries at once.
    pub const QUERIES: usize = 16;
    /// Requests awaiting answers.
    pub const PENDING: usize = 64;
    /// Largest value.
    pub const VALUE: usize = 1000;
    /// Records held.
    pub const RECORDS: usize = 64;
    /// Provider records held.
    pub const PROVIDERS: usize = 64;
    /// Peer events waiting.
    pub const EVENTS: usize = 32;
    /// The record store.
    pub type Store = kad_core::MemoryStore<RECORDS, VALUE>;
    /// The core node of a browser.
    pub type Node = kad_core::Node<Store, B, K, R, QUERIES, PENDING, VALUE, PROVIDERS, EVENTS>;
}

use preset::Node as Core;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** A value as stored: text stays a string, bytes stay a Uint8Array. */
export type Value = string | Uint8Array;

/** A peer: its node id (40 hex digits) and UDP address. */
export interface PeerInfo { id: string; addr: string }

/** A signed record found by getSigned. */
export interface SignedRecord { value: Value; seq: number; publicKey: Uint8Array }

/** Something that happened, given to the onEvent callback. */
export type DhtEvent =
  | { type: "peer-added"; id: string; addr: string }
  | { type: "peer-removed"; id: string; addr: string }
  | { type: "query-done"; query: "bootstrap" | "findNode" | "get" | "put" | "provide" | "getProviders";
      ok: boolean; ms: number; requests: number }
  | { type: "closed"; code: number; reason: string };

/** Options of DhtNode.connect. */
export interface ConnectOptions {
  /** Nodes to bootstrap from ("IP:PORT"); default: the ones the relay names. `false`: do not bootstrap. */
  bootstrap?: string[] | false;
  /** Client mode (query and store, stay out of others' routing tables). Default true. */
  clientMode?: boolean;
  /** Called with every DhtEvent. */
  onEvent?: (event: DhtEvent) => void;
  /** Milliseconds to wait for the relay and the bootstrap. Default 15000. */
  timeoutMs?: number;
  /** A WebSocket constructor, for runtimes without a global one (e.g. the `ws` package in Node 20). */
  WebSocket?: unknown;
}
"#;

thread_local! {
    /// Nodes whose connection is open: kept alive by their connection, as a WebSocket is.
    static LIVE: RefCell<Vec<Rc<RefCell<Inner>>>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Connect,
    Count,
    Acks,
    Value,
    Signed,
    Peers,
}

struct Waiter {
    id: Option<QueryId>,
    want: Want,
    resolve: Function,
    reject: Function,
}

/// Calls waiting for a free query slot (kad-core's back-pressure policy, [`kad_core::backlog`]);
/// a call made while it is full rejects at once.
pub const BACKLOG: usize = 64;

/// Starts a query on the node.
type Start = Box<dyn FnOnce(&mut Core, Instant) -> Result<QueryId, kad_core::Error>>;

/// A call waiting in the backlog: what starts its query, and its waiter (no id yet).
type Waiting = (Start, Waiter);

struct Inner {
    core: Box<Core>,
    clock: Clock,
    ws: WebSocket,
    url: String,
    bootstrap: Option<Vec<PeerAddr>>,
    auto_bootstrap: bool,
    local: Option<PeerAddr>,
    seeds: Vec<PeerAddr>,
    backlog: Backlog<Waiting, BACKLOG>,
    waiters: Vec<Waiter>,
    on_event: Option<Function>,
    timer: Option<(JsValue, Instant)>,
    /// Rejects `connect` when the relay or the bootstrap does not answer in time.
    connect_timer: Option<JsValue>,
    closed: Option<String>,
    send_errors: u64,
    on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
    on_error: Option<Closure<dyn FnMut(JsValue)>>,
    on_timer: Option<Closure<dyn FnMut()>>,
}

/// Calls to make once the node is no longer borrowed (user code may call the node again).
type Calls = Vec<(Function, JsValue)>;

/// A kad node running in this page, connected to the network through a relay.
#[wasm_bindgen]
pub struct DhtNode {
    inner: Rc<RefCell<Inner>>,
}

#[wasm_bindgen]
impl DhtNode {
    /// Connects to the relay at `relayUrl` (`ws://HOST:PORT/`), then bootstraps through the
    /// nodes it names (or `options.bootstrap`). Resolves to the node once it knows peers.
    #[wasm_bindgen(unchecked_return_type = "Promise<DhtNode>")]
    pub fn connect(
        #[wasm_bindgen(js_name = relayUrl)] relay_url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "ConnectOptions")] options: Option<JsValue>,
    ) -> Promise {
        match Self::open(relay_url, &options.unwrap_or(JsValue::UNDEFINED)) {
            Ok(p) => p,
            Err(e) => Promise::reject(&e),
        }
    }

    fn open(url: String, options: &JsValue) -> Result<Promise, JsValue> {
        let opt = |name: &str| -> JsValue {
            if options.is_object() {
                Reflect::get(options, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
            } else {
                JsValue::UNDEFINED
            }
        };
        let client_mode = opt("clientMode").as_bool().unwrap_or(true);
        let timeout_ms = opt("timeoutMs").as_f64().filter(|t| *t > 0.0).unwrap_or(15_000.0);
        let on_event = opt("onEvent").dyn_into::<Function>().ok();
        let (bootstrap, auto_bootstrap) = match opt("bootstrap") {
            v if v.is_undefined() || v.is_null() => (None, true),
            v if v.as_bool() == Some(false) => (None, false),
            v => {
                let list = v.dyn_into::<Array>().map_err(|_| js::type_error("bootstrap must be an array"))?;
                let addrs = list
                    .iter()
                    .map(|a| js::parse_addr(&a.as_string().unwrap_or_default()))
                    .collect::<Result<Vec<_>, _>>()?;
                (Some(addrs), true)
            }
        };
        let ctor = match opt("WebSocket") {
            v if v.is_undefined() => Reflect::get(&js_sys::global(), &JsValue::from_str("WebSocket"))?,
            v => v,
        };
        let ctor = ctor.dyn_into::<Function>().map_err(|_| {
            js::error(
                "no WebSocket in this runtime: Node 20 needs --experimental-websocket, \
                 or pass { WebSocket } from the ws package",
            )
        })?;
        let ws: WebSocket =
            Reflect::construct(&ctor, &Array::of1(&JsValue::from_str(&url)))?.unchecked_into();
        ws.set_binary_type(BinaryType::Arraybuffer);

        let clock = Clock::new();
        let config = Config { client_mode, ..Config::default() };
        let mut rng = JsRng;
        let id = NodeId::random(&mut rng);
        let core = Box::new(Core::new(id, config, preset::Store::new(), &mut rng, clock.now()));
        let inner = Rc::new(RefCell::new(Inner {
            core,
            clock,
            ws: ws.clone(),
            url,
            bootstrap,
            auto_bootstrap,
            local: None,
            seeds: Vec::new(),
            backlog: Backlog::new(),
            waiters: Vec::new(),
            on_event,
            timer: None,
            connect_timer: None,
            closed: None,
            send_errors: 0,
            on_message: None,
            on_close: None,
            on_error: None,
            on_timer: None,
        }));
        let weak = Rc::downgrade(&inner);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
            let weak = weak.clone();
            move |e: MessageEvent| {
                if let Some(rc) = weak.upgrade() {
                    on_message(&rc, e.data());
                }
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new({
            let weak = weak.clone();
            move |e: CloseEvent| {
                if let Some(rc) = weak.upgrade() {
                    let reason = if e.reason().is_empty() { "no reason given".into() } else { e.reason() };
                    shut(&rc, e.code(), &format!("the relay closed the connection ({}: {reason})", e.code()));
                }
            }
        });
        let on_error = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |_e: JsValue| {
                if let Some(rc) = weak.upgrade() {
                    let msg = format!("cannot reach the relay at {}", rc.borrow().url);
                    shut(&rc, 1006, &msg);
                }
            }
        });
        let on_timer = Closure::<dyn FnMut()>::new({
            let weak = weak.clone();
            move || {
                if let Some(rc) = weak.upgrade() {
                    {
                        let mut i = rc.borrow_mut();
                        i.timer = None;
                        let now = i.clock.now();
                        i.core.handle_timeout(now);
                    }
                    drive(&rc);
                }
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        {
            let mut i = inner.borrow_mut();
            i.on_message = Some(on_message);
            i.on_close = Some(on_close);
            i.on_error = Some(on_error);
            i.on_timer = Some(on_timer);
        }
        LIVE.with(|l| l.borrow_mut().push(inner.clone()));
        let promise = Promise::new(&mut |resolve, reject| {
            inner.borrow_mut().waiters.push(Waiter { id: None, want: Want::Connect, resolve, reject });
        });
        let give_up = Closure::once_into_js(move || {
            if let Some(rc) = weak.upgrade() {
                let waiting = rc.borrow().waiters.iter().any(|w| w.want == Want::Connect);
                if waiting {
                    // JavaScript writes the number: Rust's float formatting would add 20 KB.
                    let ms =
                        String::from(Number::from(timeout_ms).to_string_with_radix(10).unwrap_or_default());
                    let msg = if rc.borrow().local.is_none() {
                        format!("no answer from the relay within {ms} ms")
                    } else {
                        format!("bootstrap did not finish within {ms} ms")
                    };
                    shut(&rc, 1000, &msg);
                }
            }
        });
        inner.borrow_mut().connect_timer = Some(js::set_timeout(give_up.unchecked_ref(), timeout_ms));
        Ok(promise)
    }

    /// Joins (again) through `addrs` ("IP:PORT"), or through the nodes the relay named.
    /// Resolves to the number of contacts in the routing table.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn bootstrap(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "string[]")] addrs: Option<JsValue>,
    ) -> Promise {
        let addrs: Result<Vec<PeerAddr>, JsValue> = match addrs {
            None => Ok(self.inner.borrow().seeds.clone()),
            Some(addrs) => match addrs.dyn_into::<Array>() {
                Ok(a) => a.iter().map(|v| js::parse_addr(&v.as_string().unwrap_or_default())).collect(),
                Err(_) => Err(js::type_error("addrs must be an array of \"IP:PORT\" strings")),
            },
        };
        match addrs {
            Ok(addrs) => self.command(Want::Count, move |core, now| core.bootstrap(&addrs, now)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// The value stored under `key`, as it was put (string or Uint8Array), or `null`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Value | null>")]
    pub fn get(&self, #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue) -> Promise {
        match js::key_of(&key) {
            Ok(k) => self.command(Want::Value, move |core, now| core.get(k, now)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Stores `value` (string or Uint8Array, at most 1000 bytes) under `key` on the closest
    /// nodes. Resolves to the number that stored it; rejects when none did or it is too large.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn put(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Value")] value: JsValue,
    ) -> Promise {
        let parsed = js::key_of(&key).and_then(|k| Ok((k, js::bytes_of(&value, "value")?)));
        match parsed {
            Ok((k, (bytes, kind))) => {
                self.command(Want::Acks, move |core, now| core.put(k, kind, &bytes, now))
            }
            Err(e) => Promise::reject(&e),
        }
    }

    /// The closest nodes to `target` (a node id in hex, or any key) that answered.
    #[wasm_bindgen(js_name = findNode, unchecked_return_type = "Promise<PeerInfo[]>")]
    pub fn find_node(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] target: JsValue,
    ) -> Promise {
        match js::target_of(&target) {
            Ok(t) => self.command(Want::Peers, move |core, now| core.find_node(t, now)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Announces this node as a provider of `key`; resolves to the number that recorded it.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn provide(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue,
    ) -> Promise {
        match js::key_of(&key) {
            Ok(k) => self.command(Want::Acks, move |core, now| core.provide(k, now)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// The providers of `key` (empty if none).
    #[wasm_bindgen(js_name = getProviders, unchecked_return_type = "Promise<PeerInfo[]>")]
    pub fn get_providers(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue,
    ) -> Promise {
        match js::key_of(&key) {
            Ok(k) => self.command(Want::Peers, move |core, now| core.get_providers(k, now)),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Stores `value` signed with `secretKey` (32 bytes) under (its public key, `name`) with
    /// sequence number `seq` (raise it to replace the record). Resolves to the acks.
    #[wasm_bindgen(js_name = putSigned, unchecked_return_type = "Promise<number>")]
    pub fn put_signed(
        &self,
        #[wasm_bindgen(js_name = secretKey, unchecked_param_type = "Uint8Array")] secret_key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] name: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number | bigint")] seq: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Value")] value: JsValue,
    ) -> Promise {
        let parsed = (|| {
            let kp = Keypair::from_secret(&js::array32(&secret_key, "secretKey")?);
            let (salt, _) = js::bytes_of(&name, "name")?;
            Ok::<_, JsValue>((kp, salt, js::seq_of(&seq)?, js::bytes_of(&value, "value")?))
        })();
        match parsed {
            Ok((kp, salt, seq, (bytes, kind))) => self.command(Want::Acks, move |core, now| {
                core.put_signed(&kp, &salt, seq, kind, &bytes, None, now)
            }),
            Err(e) => Promise::reject(&e),
        }
    }

    /// The signed record of `publicKey` (32 bytes) under `name` with the highest sequence
    /// number (every signature verified), or `null`.
    #[wasm_bindgen(js_name = getSigned, unchecked_return_type = "Promise<SignedRecord | null>")]
    pub fn get_signed(
        &self,
        #[wasm_bindgen(js_name = publicKey, unchecked_param_type = "Uint8Array")] public_key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] name: JsValue,
    ) -> Promise {
        let parsed =
            js::array32(&public_key, "publicKey").and_then(|pk| Ok((pk, js::bytes_of(&name, "name")?.0)));
        match parsed {
            Ok((pk, salt)) => self.command(Want::Signed, move |core, now| {
                core.get_signed(&kad_core::PublicKey(pk), &salt, now)
            }),
            Err(e) => Promise::reject(&e),
        }
    }

    /// A new random secret key (32 bytes) for signed records. Keep it to keep the identity.
    #[wasm_bindgen(js_name = generateSecretKey)]
    pub fn generate_secret_key() -> Uint8Array {
        let mut secret = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut JsRng, &mut secret);
        Uint8Array::from(&secret[..])
    }

    /// The public key (32 bytes) of a secret key.
    #[wasm_bindgen(js_name = publicKey)]
    pub fn public_key(
        #[wasm_bindgen(js_name = secretKey, unchecked_param_type = "Uint8Array")] secret_key: JsValue,
    ) -> Result<Uint8Array, JsValue> {
        let kp = Keypair::from_secret(&js::array32(&secret_key, "secretKey")?);
        Ok(Uint8Array::from(kp.public_key().as_ref()))
    }

    /// The contacts of the routing table.
    #[wasm_bindgen(unchecked_return_type = "PeerInfo[]")]
    pub fn peers(&self) -> JsValue {
        let i = self.inner.borrow();
        let peers: Vec<_> =
            i.core.routing().iter().map(|c| kad_core::Peer { id: c.id, addr: c.addr }).collect();
        js::peers_to_js(peers.iter())
    }

    /// This node's id (40 hex digits).
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.borrow().core.id().to_string()
    }

    /// The UDP address the relay gave this node (how other peers see it).
    #[wasm_bindgen(getter)]
    pub fn address(&self) -> Option<String> {
        self.inner.borrow().local.map(|a| a.to_string())
    }

    /// Client mode (the default in browsers).
    #[wasm_bindgen(getter, js_name = clientMode)]
    pub fn client_mode(&self) -> bool {
        self.inner.borrow().core.config().client_mode
    }

    /// Why the node closed, or `undefined` while it is open.
    #[wasm_bindgen(getter, js_name = closedReason)]
    pub fn closed_reason(&self) -> Option<String> {
        self.inner.borrow().closed.clone()
    }

    /// Counters of the core (datagrams in and out, drops, timeouts, ...).
    #[wasm_bindgen(unchecked_return_type = "Record<string, number>")]
    pub fn stats(&self) -> JsValue {
        let i = self.inner.borrow();
        let s = i.core.stats();
        js::object(&[
            ("datagramsIn", (s.datagrams_in as f64).into()),
            ("datagramsOut", (s.datagrams_out as f64).into()),
            ("timeouts", (s.timeouts as f64).into()),
            ("droppedMalformed", (s.dropped_malformed as f64).into()),
            ("queriesFinished", (s.queries_finished as f64).into()),
            ("sendErrors", (i.send_errors as f64).into()),
        ])
    }

    /// Sets the callback that receives every [`DhtEvent`](#) (or `null` to remove it).
    #[wasm_bindgen(setter, js_name = onEvent)]
    pub fn set_on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "((event: DhtEvent) => void) | null")] f: JsValue,
    ) {
        self.inner.borrow_mut().on_event = f.dyn_into::<Function>().ok();
    }

    /// Closes the connection; queries in flight reject.
    pub fn close(&self) {
        shut(&self.inner, 1000, "closed by the application");
    }

    /// A call that starts a query: it joins the backlog, and `drive` starts it.
    fn command(
        &self,
        want: Want,
        start: impl FnOnce(&mut Core, Instant) -> Result<QueryId, kad_core::Error> + 'static,
    ) -> Promise {
        let mut start: Option<Start> = Some(Box::new(start));
        let inner = &self.inner;
        let promise = Promise::new(&mut |resolve, reject| {
            let mut i = inner.borrow_mut();
            if let Some(why) = &i.closed {
                let _ = reject.call1(&JsValue::NULL, &js::error(&format!("the node is closed: {why}")));
                return;
            }
            let Some(start) = start.take() else { return };
            if let Err(full) = i.backlog.push((start, Waiter { id: None, want, resolve, reject })) {
                let _ = full.command.1.reject.call1(&JsValue::NULL, &js::error(&full.to_string()));
            }
        });
        drive(inner);
        promise
    }
}

fn on_message(rc: &Rc<RefCell<Inner>>, data: JsValue) {
    let bytes = Uint8Array::new(&data).to_vec();
    let mut fail = None;
    {
        let mut i = rc.borrow_mut();
        match frame::decode(&bytes) {
            Ok(Frame::Datagram { peer, payload }) => {
                let now = i.clock.now();
                i.core.handle_datagram(now, peer, payload);
            }
            Ok(f @ Frame::Hello { local, .. }) if i.local.is_none() => {
                i.local = Some(local);
                i.seeds = f.hello_peers().collect();
                if i.auto_bootstrap {
                    let addrs = i.bootstrap.clone().unwrap_or_else(|| i.seeds.clone());
                    let now = i.clock.now();
                    match i.core.bootstrap(&addrs, now) {
                        Ok(id) => {
                            if let Some(w) = i.waiters.iter_mut().find(|w| w.want == Want::Connect) {
                                w.id = Some(id);
                            }
                        }
                        Err(e) => fail = Some(format!("cannot bootstrap: {e}")),
                    }
                } else if let Some(pos) = i.waiters.iter().position(|w| w.want == Want::Connect) {
                    let w = i.waiters.remove(pos);
                    drop(i);
                    let node = JsValue::from(DhtNode { inner: rc.clone() });
                    let _ = w.resolve.call1(&JsValue::NULL, &node);
                }
            }
            // A second HELLO, or a frame this version does not know: the relay is not ours.
            _ => fail = Some("the relay sent a frame that is not a kad relay frame".into()),
        }
    }
    if let Some(msg) = fail {
        shut(rc, 1002, &msg);
        return;
    }
    drive(rc);
}

/// Drives the core after an input: starts the calls waiting for a query slot, sends its
/// datagrams, settles finished queries, tells the event callback, and sets the timer for its
/// next timeout.
fn drive(rc: &Rc<RefCell<Inner>>) {
    let mut calls: Calls = Vec::new();
    let mut failed_connect = None;
    {
        let mut guard = rc.borrow_mut();
        let i = &mut *guard;
        if i.closed.is_some() {
            return;
        }
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut out = [0u8; MAX_FRAME];
        i.start_waiting(&mut calls);
        let wake = loop {
            let event = match i.core.poll_output(&mut buf) {
                Output::Transmit(t) => {
                    let Some(n) = frame::encode_datagram(&t.to, &buf[..t.len], &mut out) else { continue };
                    // A copy: some WebSocket implementations send later, after wasm memory moved on.
                    let data = Uint8Array::from(&out[..n]);
                    if i.ws.send_with_array_buffer_view(&data).is_err() {
                        i.send_errors += 1;
                    }
                    continue;
                }
                Output::Event(event) => event,
                Output::Timeout(at) => break at,
            };
            if let Some(f) = &i.on_event {
                calls.push((f.clone(), event_to_js(&event)));
            }
            let Event::QueryDone { id, outcome, .. } = event else { continue };
            if let Some(pos) = i.waiters.iter().position(|w| w.id == Some(id)) {
                let w = i.waiters.remove(pos);
                match settle(w.want, outcome, rc) {
                    Ok(v) => calls.push((w.resolve, v)),
                    Err(msg) => {
                        if w.want == Want::Connect {
                            failed_connect = Some(msg.clone());
                        }
                        calls.push((w.reject, js::error(&msg)));
                    }
                }
            }
            i.start_waiting(&mut calls);
        };
        if !i.waiters.iter().any(|w| w.want == Want::Connect) {
            if let Some(handle) = i.connect_timer.take() {
                js::clear_timeout(&handle);
            }
        }
        if i.timer.as_ref().map(|(_, at)| *at) != Some(wake) {
            if let Some((handle, _)) = i.timer.take() {
                js::clear_timeout(&handle);
            }
            if let Some(f) = &i.on_timer {
                // setTimeout takes at most 2^31 - 1 ms; a later deadline is met by waking early.
                let wait =
                    wake.as_millis().saturating_sub(i.clock.now().as_millis()).min(i32::MAX as u64) as f64;
                let handle = js::set_timeout(f.as_ref().unchecked_ref(), wait);
                i.timer = Some((handle, wake));
            }
        }
    }
    for (f, v) in calls {
        let _ = f.call1(&JsValue::NULL, &v);
    }
    if let Some(msg) = failed_connect {
        shut(rc, 1000, &msg);
    }
}

impl Inner {
    /// Starts the calls waiting in the backlog while the node has a free query slot; a call
    /// the node refuses (no peers, value too large) rejects.
    fn start_waiting(&mut self, calls: &mut Calls) {
        while let Some((start, mut w)) = self.backlog.next_to_start(self.core.can_start_query()) {
            match start(&mut self.core, self.clock.now()) {
                Ok(id) => {
                    w.id = Some(id);
                    self.waiters.push(w);
                }
                Err(e) => calls.push((w.reject, js::error(&e.to_string()))),
            }
        }
    }
}

/// The [`DhtEvent`](#) of a core event.
fn event_to_js<const V: usize>(event: &Event<V>) -> JsValue {
    match event {
        Event::PeerAdded(p) => js::object(&[
            ("type", "peer-added".into()),
            ("id", p.id.to_string().into()),
            ("addr", p.addr.to_string().into()),
        ]),
        Event::PeerRemoved(p) => js::object(&[
            ("type", "peer-removed".into()),
            ("id", p.id.to_string().into()),
            ("addr", p.addr.to_string().into()),
        ]),
        Event::QueryDone { stats, outcome, .. } => js::object(&[
            ("type", "query-done".into()),
            ("query", query_name(outcome).into()),
            ("ok", (!outcome.is_failure()).into()),
            ("ms", (stats.finished.saturating_since(stats.started).as_millis() as f64).into()),
            ("requests", stats.requests.into()),
        ]),
    }
}

fn query_name<const V: usize>(o: &Outcome<V>) -> &'static str {
    match o {
        Outcome::Bootstrap(_) => "bootstrap",
        Outcome::FindNode(_) => "findNode",
        Outcome::Get(_) => "get",
        Outcome::Put(_) => "put",
        Outcome::Provide(_) => "provide",
        Outcome::GetProviders(_) => "getProviders",
    }
}

/// The JavaScript result of a finished query, or the message of its Error.
fn settle<const V: usize>(
    want: Want,
    outcome: Outcome<V>,
    rc: &Rc<RefCell<Inner>>,
) -> Result<JsValue, String> {
    match (want, outcome) {
        (Want::Connect, Outcome::Bootstrap(r)) => match r {
            Ok(_) => Ok(JsValue::from(DhtNode { inner: rc.clone() })),
            Err(e) => Err(format!("bootstrap failed: {e}")),
        },
        (Want::Count, Outcome::Bootstrap(r)) => r.map(|n| (n as f64).into()).map_err(|e| e.to_string()),
        (Want::Acks, Outcome::Put(r) | Outcome::Provide(r)) => {
            r.map(|a| a.stored.into()).map_err(|e| e.to_string())
        }
        (Want::Value, Outcome::Get(r)) => match r {
            Ok(rec) => Ok(js::value_to_js(rec.kind, rec.value())),
            Err(QueryError::NotFound) => Ok(JsValue::NULL),
            Err(e) => Err(e.to_string()),
        },
        (Want::Signed, Outcome::Get(r)) => match r {
            Ok(rec) => {
                let Some(sig) = rec.signer else { return Ok(JsValue::NULL) };
                Ok(js::object(&[
                    ("value", js::value_to_js(rec.kind, rec.value())),
                    ("seq", (sig.seq as f64).into()),
                    ("publicKey", Uint8Array::from(sig.public_key.as_ref()).into()),
                ]))
            }
            Err(QueryError::NotFound) => Ok(JsValue::NULL),
            Err(e) => Err(e.to_string()),
        },
        (Want::Peers, Outcome::FindNode(r)) => match r {
            Ok(peers) => Ok(js::peers_to_js(peers.iter())),
            Err(QueryError::NotFound) => Ok(Array::new().into()),
            Err(e) => Err(e.to_string()),
        },
        (Want::Peers, Outcome::GetProviders(r)) => match r {
            Ok(peers) => Ok(js::peers_to_js(peers.iter())),
            Err(QueryError::NotFound) => Ok(Array::new().into()),
            Err(e) => Err(e.to_string()),
        },
        (w, o) => Err(format!("internal: {w:?} finished as {}", query_name(&o))),
    }
}

/// Closes the node once: stops the timer and the socket, rejects what is pending, tells the
/// event callback, and lets the node go when nothing else holds it.
fn shut(rc: &Rc<RefCell<Inner>>, code: u16, why: &str) {
    let (waiters, on_event) = {
        let mut guard = rc.borrow_mut();
        let i = &mut *guard;
        if i.closed.is_some() {
            return;
        }
        i.closed = Some(why.to_string());
        if let Some((handle, _)) = i.timer.take() {
            js::clear_timeout(&handle);
        }
        if let Some(handle) = i.connect_timer.take() {
            js::clear_timeout(&handle);
        }
        i.ws.set_onmessage(None);
        i.ws.set_onclose(None);
        i.ws.set_onerror(None);
        let _ = i.ws.close();
        let waiting = i.backlog.drain().map(|(_, w)| w);
        (i.waiters.drain(..).chain(waiting).collect::<Vec<_>>(), i.on_event.clone())
    };
    for w in waiters {
        let msg = if w.want == Want::Connect { why.to_string() } else { format!("the node closed: {why}") };
        let _ = w.reject.call1(&JsValue::NULL, &js::error(&msg));
    }
    if let Some(f) = on_event {
        let info = js::object(&[("type", "closed".into()), ("code", code.into()), ("reason", why.into())]);
        let _ = f.call1(&JsValue::NULL, &info);
    }
    // Let go of the connection's hold later, not inside one of its own callbacks: dropping the
    // last reference drops the closures, one of which may be running now.
    let ptr = Rc::as_ptr(rc);
    let release = Closure::once_into_js(move || {
        LIVE.with(|l| l.borrow_mut().retain(|n| Rc::as_ptr(n) != ptr));
    });
    js::set_timeout(release.unchecked_ref(), 0.0);
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some((handle, _)) = self.timer.take() {
            js::clear_timeout(&handle);
        }
    }
}
