//! The Rust side of kad-wasm, run in Node by wasm-bindgen-test-runner: the clock, randomness
//! and conversions it takes from JavaScript, and a `DhtNode` driven end to end through a fake
//! WebSocket whose "relay" is another kad-core node in the same wasm instance.
//!
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!  cargo test -p kad-wasm --target wasm32-unknown-unknown` (scripts/test-browser does this).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

use js_sys::{Array, Function, Reflect, Uint8Array};
use kad_core::frame::{self, Frame, MAX_FRAME, MAX_HELLO};
use kad_core::store::{Origin, Record, RecordStore};
use kad_core::wire::MAX_DATAGRAM;
use kad_core::{Config, Key, NodeId, Output, PeerAddr, ValueKind};
use kad_wasm::{js, preset, Clock, DhtNode, JsRng, BACKLOG};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen(inline_js = r#"
export class FakeSocket {
  constructor(url) {
    this.url = url;
    this.closedByClient = false;
    if (url === "ws://unreachable/") setTimeout(() => this.onerror && this.onerror({}), 0);
    else if (url === "ws://full/") setTimeout(() => this.onclose && this.onclose({ code: 1013, reason: "relay full: 1 connections" }), 0);
    else if (url === "ws://fake/") setTimeout(() => FakeSocket.onconnect(this), 0);
    // "ws://silent/": never answers.
  }
  send(view) { FakeSocket.onsend(this, new Uint8Array(view)); }
  close() { this.closedByClient = true; }
}
export function fakeSocket() { return FakeSocket; }
export function setHooks(onconnect, onsend) { FakeSocket.onconnect = onconnect; FakeSocket.onsend = onsend; }
export function deliverLater(socket, bytes) {
  const copy = bytes.slice();
  setTimeout(() => socket.onmessage && socket.onmessage({ data: copy.buffer }), 0);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = fakeSocket)]
    fn fake_socket() -> JsValue;
    #[wasm_bindgen(js_name = setHooks)]
    fn set_hooks(onconnect: &Function, onsend: &Function);
    #[wasm_bindgen(js_name = deliverLater)]
    fn deliver_later(socket: &JsValue, bytes: &[u8]);
}

const BROWSER: PeerAddr = PeerAddr::V4([127, 0, 0, 1], 40000);
const NETWORK: PeerAddr = PeerAddr::V4([127, 0, 0, 1], 8468);

/// The other end of the fake relay: one kad-core node at `NETWORK`.
struct World {
    core: Box<preset::Node>,
    clock: Clock,
    frames_from_browser: usize,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// The fake socket's hooks; they must live as long as the test uses the socket.
type Hooks = (Closure<dyn FnMut(JsValue)>, Closure<dyn FnMut(JsValue, Uint8Array)>);

fn install_world() -> Hooks {
    let clock = Clock::new();
    let mut rng = JsRng;
    let core = preset::Node::new(
        NodeId::random(&mut rng),
        Config::default(),
        preset::Store::new(),
        &mut rng,
        clock.now(),
    );
    WORLD.with(|w| *w.borrow_mut() = Some(World { core: Box::new(core), clock, frames_from_browser: 0 }));
    let onconnect = Closure::<dyn FnMut(JsValue)>::new(|socket: JsValue| {
        let mut hello = [0u8; MAX_HELLO];
        let n = frame::encode_hello(&BROWSER, &[NETWORK], &mut hello).unwrap();
        deliver_later(&socket, &hello[..n]);
    });
    let onsend = Closure::<dyn FnMut(JsValue, Uint8Array)>::new(|socket: JsValue, bytes: Uint8Array| {
        let bytes = bytes.to_vec();
        let Ok(Frame::Datagram { peer, payload }) = frame::decode(&bytes) else { panic!("a datagram frame") };
        assert_eq!(peer, NETWORK, "the browser sends only to the node the relay named");
        WORLD.with(|w| {
            let mut w = w.borrow_mut();
            let w = w.as_mut().unwrap();
            w.frames_from_browser += 1;
            let now = w.clock.now();
            w.core.handle_datagram(now, BROWSER, payload);
            let mut buf = [0u8; MAX_DATAGRAM];
            let mut out = [0u8; MAX_FRAME];
            loop {
                match w.core.poll_output(&mut buf) {
                    Output::Transmit(t) => {
                        assert_eq!(t.to, BROWSER);
                        let n = frame::encode_datagram(&NETWORK, &buf[..t.len], &mut out).unwrap();
                        deliver_later(&socket, &out[..n]);
                    }
                    Output::Event(_) => {}
                    Output::Timeout(_) => break,
                }
            }
        });
    });
    set_hooks(onconnect.as_ref().unchecked_ref(), onsend.as_ref().unchecked_ref());
    (onconnect, onsend)
}

async fn settle(p: impl Into<JsFuture>) -> Result<JsValue, String> {
    p.into()
        .await
        .map_err(|e| Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default())
}

fn options(fields: &[(&str, JsValue)]) -> JsValue {
    let mut all = vec![("WebSocket", fake_socket())];
    all.extend(fields.iter().cloned());
    js::object(&all)
}

#[wasm_bindgen_test]
fn the_clock_is_milliseconds_since_the_unix_epoch_and_never_runs_backwards() {
    let clock = Clock::new();
    let a = clock.now();
    let b = clock.now();
    assert!(b >= a);
    let unix_ms = js_sys::Date::now() as u64;
    assert!(a.as_millis().abs_diff(unix_ms) < 5_000, "{a:?} vs {unix_ms}");
}

#[wasm_bindgen_test]
fn randomness_comes_from_crypto_get_random_values() {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut JsRng, &mut a);
    rand_core::RngCore::fill_bytes(&mut JsRng, &mut b);
    assert_ne!(a, b);
    assert_ne!(a, [0; 32]);
    let mut big = vec![0u8; 70_000]; // over getRandomValues' 65,536-byte limit per call
    rand_core::RngCore::fill_bytes(&mut JsRng, &mut big);
    assert!(big[66_000..].iter().any(|b| *b != 0));
}

#[wasm_bindgen_test]
fn keys_are_hashed_as_the_command_line_does_whether_text_or_bytes() {
    assert_eq!(js::key_of(&"my-key".into()).unwrap(), Key::hash(b"my-key"));
    let bytes: JsValue = Uint8Array::from(&b"my-key"[..]).into();
    assert_eq!(js::key_of(&bytes).unwrap(), Key::hash(b"my-key"));
    assert!(js::key_of(&JsValue::from_f64(1.0)).is_err());
    let id = NodeId::from_bytes([0xab; 20]);
    assert_eq!(js::target_of(&id.to_string().into()).unwrap(), id.as_key());
    assert_eq!(js::target_of(&"abc".into()).unwrap(), Key::hash(b"abc"));
}

#[wasm_bindgen_test]
fn values_come_back_as_they_went_in() {
    let (bytes, kind) = js::bytes_of(&"héllo".into(), "value").unwrap();
    assert_eq!((bytes.as_slice(), kind), ("héllo".as_bytes(), ValueKind::Text));
    assert_eq!(js::value_to_js(kind, &bytes).as_string().as_deref(), Some("héllo"));
    let v = js::value_to_js(ValueKind::Bytes, &[0, 255]);
    assert_eq!(v.dyn_into::<Uint8Array>().unwrap().to_vec(), [0, 255]);
    // Text that is not UTF-8 cannot be a JS string: it comes back as bytes.
    assert!(js::value_to_js(ValueKind::Text, &[0xff]).is_instance_of::<Uint8Array>());
    let err = js::bytes_of(&JsValue::TRUE, "value").unwrap_err();
    assert!(err.is_instance_of::<js_sys::TypeError>());
}

#[wasm_bindgen_test]
fn addresses_sequence_numbers_and_keys_are_checked() {
    assert_eq!(js::parse_addr("127.0.0.1:8468").unwrap(), NETWORK);
    assert_eq!(js::parse_addr("[::1]:9").unwrap(), PeerAddr::V6(std::net::Ipv6Addr::LOCALHOST.octets(), 9));
    assert!(js::parse_addr("localhost").is_err());
    assert_eq!(js::seq_of(&JsValue::from_f64(7.0)).unwrap(), 7);
    assert_eq!(js::seq_of(&js_sys::BigInt::from(u64::MAX).into()).unwrap(), u64::MAX);
    assert!(js::seq_of(&JsValue::from_f64(-1.0)).is_err());
    assert!(js::seq_of(&JsValue::from_f64(1.5)).is_err());
    assert!(js::array32(&Uint8Array::new_with_length(31).into(), "k").is_err());
    let secret = DhtNode::generate_secret_key();
    let pk = DhtNode::public_key(secret.clone().into()).unwrap().to_vec();
    let mut s = [0u8; 32];
    secret.copy_to(&mut s);
    assert_eq!(pk, kad_core::signed::Keypair::from_secret(&s).public_key().as_bytes());
}

#[wasm_bindgen_test]
async fn connect_fails_with_clear_errors() {
    let no_ctor = js::object(&[("WebSocket", JsValue::from_f64(42.0))]);
    let e = settle(DhtNode::connect("ws://x/".into(), Some(no_ctor))).await.unwrap_err();
    assert!(e.starts_with("no WebSocket in this runtime"), "{e}");
    let e = settle(DhtNode::connect("ws://unreachable/".into(), Some(options(&[])))).await.unwrap_err();
    assert_eq!(e, "cannot reach the relay at ws://unreachable/");
    let e = settle(DhtNode::connect("ws://full/".into(), Some(options(&[])))).await.unwrap_err();
    assert_eq!(e, "the relay closed the connection (1013: relay full: 1 connections)");
    let quick = options(&[("timeoutMs", 50.into())]);
    let e = settle(DhtNode::connect("ws://silent/".into(), Some(quick))).await.unwrap_err();
    assert_eq!(e, "no answer from the relay within 50 ms");
    let bad = options(&[("bootstrap", Array::of1(&"nowhere".into()).into())]);
    let e = settle(DhtNode::connect("ws://fake/".into(), Some(bad))).await.unwrap_err();
    assert!(e.starts_with("bad address \"nowhere\""), "{e}");
}

#[wasm_bindgen_test]
async fn a_node_joins_stores_and_reads_through_the_relay() {
    let _hooks = install_world();
    let events: std::rc::Rc<RefCell<Vec<String>>> = Default::default();
    let on_event = Closure::<dyn FnMut(JsValue)>::new({
        let events = events.clone();
        move |e: JsValue| {
            let t = Reflect::get(&e, &"type".into()).unwrap().as_string().unwrap();
            events.borrow_mut().push(t);
        }
    });
    let opts = options(&[("onEvent", on_event.as_ref().clone())]);
    let node = settle(DhtNode::connect("ws://fake/".into(), Some(opts))).await.expect("connects");
    let node = DhtNode::try_from_js_value(node).expect("a DhtNode");
    assert_eq!(node.address().as_deref(), Some("127.0.0.1:40000"));
    assert!(node.client_mode());
    let peers: Array = node.peers().unchecked_into();
    assert_eq!(peers.length(), 1);
    let addr = Reflect::get(&peers.get(0), &"addr".into()).unwrap().as_string();
    assert_eq!(addr.as_deref(), Some("127.0.0.1:8468"));

    let acks = settle(node.put("greeting".into(), "hello".into())).await.unwrap();
    assert_eq!(acks.as_f64(), Some(1.0));
    let held = WORLD.with(|w| w.borrow().as_ref().unwrap().core.store().get(&Key::hash(b"greeting")));
    let held = held.expect("the network node stored it");
    assert_eq!((held.kind, held.value()), (ValueKind::Text, &b"hello"[..]));

    // A value only the network holds, as bytes.
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        let w = w.as_mut().unwrap();
        let now = w.clock.now();
        let record = Record {
            key: Key::hash(b"raw"),
            kind: ValueKind::Bytes,
            data: heapless::Vec::from_slice(&[0, 255, 16]).unwrap(),
            signer: None,
            origin: Origin::Replica,
            expires_at: now + core::time::Duration::from_secs(60),
            stored_at: now,
            republished_at: now,
            source: None,
        };
        w.core.store_mut().put(record).unwrap();
    });
    let got = settle(node.get("raw".into())).await.unwrap();
    assert_eq!(got.dyn_into::<Uint8Array>().unwrap().to_vec(), [0, 255, 16]);
    assert!(settle(node.get("nothing".into())).await.unwrap().is_null());

    let big = "x".repeat(1001);
    let e = settle(node.put("big".into(), big.into())).await.unwrap_err();
    assert_eq!(e, "value of 1001 bytes is over the limit of 1000 bytes");

    let before = WORLD.with(|w| w.borrow().as_ref().unwrap().frames_from_browser);
    assert!(before >= 4, "ping, lookups, store went through the relay: {before}");
    node.close();
    assert_eq!(node.closed_reason().as_deref(), Some("closed by the application"));
    let e = settle(node.get("greeting".into())).await.unwrap_err();
    assert_eq!(e, "the node is closed: closed by the application");
    let seen = events.borrow().clone();
    assert!(seen.contains(&"peer-added".to_string()), "{seen:?}");
    assert!(seen.iter().filter(|t| *t == "query-done").count() >= 4, "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("closed"));
}

#[wasm_bindgen_test]
async fn calls_beyond_the_query_slots_wait_and_a_call_beyond_the_backlog_rejects() {
    let _hooks = install_world();
    let node = settle(DhtNode::connect("ws://fake/".into(), Some(options(&[])))).await.expect("connects");
    let node = DhtNode::try_from_js_value(node).expect("a DhtNode");
    // All at once: at most QUERIES start, BACKLOG wait for a slot, the rest reject at once.
    // Each Promise is handled as it is made (a rejection nobody handles stops Node).
    let calls = preset::QUERIES + BACKLOG + 1;
    let promises: Vec<JsFuture> =
        (0..calls).map(|i| node.get(format!("missing-{i}").into()).into()).collect();
    let mut found_nothing = 0;
    let mut refused = Vec::new();
    for p in promises {
        match settle(p).await {
            Ok(v) if v.is_null() => found_nothing += 1,
            Ok(v) => panic!("nothing was stored, yet a get found {v:?}"),
            Err(e) => refused.push(e),
        }
    }
    // Maintenance may hold up to half of the slots, so between half and all of them served.
    assert!(found_nothing >= BACKLOG + preset::QUERIES / 2, "{found_nothing} served, refused: {refused:?}");
    assert_eq!(found_nothing + refused.len(), calls);
    let full =
        format!("{BACKLOG} commands are already waiting for a free query slot; retry when a query finishes");
    assert!(!refused.is_empty() && refused.iter().all(|e| *e == full), "{refused:?}");

    // Closing rejects the calls in flight and those still waiting for a slot alike.
    let promises: Vec<JsFuture> =
        (0..preset::QUERIES + 3).map(|i| node.get(format!("late-{i}").into()).into()).collect();
    node.close();
    for p in promises {
        assert_eq!(settle(p).await.unwrap_err(), "the node closed: closed by the application");
    }
}
