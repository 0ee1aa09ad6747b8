//! What the node takes from its JavaScript host: the clock, randomness, timers, and the
//! conversions of keys, values and peers between JavaScript and Rust.
//!
//! Nothing here reads `std::time` (it panics in browsers) or needs a `window`: the globals
//! used (`performance`, `Date`, `crypto`, `setTimeout`) exist in browsers, workers and Node ≥ 20.

use js_sys::{Array, Object, Reflect, Uint8Array};
use kad_core::{Instant, Key, Peer, PeerAddr, ValueKind};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(f: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
}

/// Milliseconds since the UNIX epoch: `Date.now()` once, then the monotonic
/// `performance.now()`, so the core's time never runs backwards when the wall clock is set.
pub struct Clock {
    start_unix_ms: f64,
    start_perf_ms: f64,
}

impl Clock {
    /// A clock started now.
    pub fn new() -> Clock {
        Clock { start_unix_ms: date_now(), start_perf_ms: performance_now() }
    }

    /// The time for the core.
    pub fn now(&self) -> Instant {
        let ms = self.start_unix_ms + (performance_now() - self.start_perf_ms).max(0.0);
        Instant::from_millis(ms as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// `crypto.getRandomValues` as a `rand_core` RNG (the core seeds its own generator from it).
pub struct JsRng;

impl rand_core::RngCore for JsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.try_fill_bytes(dest).expect("crypto.getRandomValues is available");
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        // getRandomValues fills at most 65,536 bytes per call.
        for chunk in dest.chunks_mut(65_536) {
            get_random_values(chunk).map_err(|_| {
                rand_core::Error::from(core::num::NonZeroU32::new(rand_core::Error::CUSTOM_START).unwrap())
            })?;
        }
        Ok(())
    }
}

/// A `TypeError` with `msg`.
pub fn type_error(msg: &str) -> JsValue {
    js_sys::TypeError::new(msg).into()
}

/// An `Error` with `msg`.
pub fn error(msg: &str) -> JsValue {
    js_sys::Error::new(msg).into()
}

/// The bytes of a string (UTF-8) or a `Uint8Array`, and whether it was text.
pub fn bytes_of(v: &JsValue, what: &str) -> Result<(Vec<u8>, ValueKind), JsValue> {
    if let Some(s) = v.as_string() {
        Ok((s.into_bytes(), ValueKind::Text))
    } else if let Some(a) = v.dyn_ref::<Uint8Array>() {
        Ok((a.to_vec(), ValueKind::Bytes))
    } else {
        Err(type_error(&format!("{what} must be a string or a Uint8Array")))
    }
}

/// The DHT key of a user key: SHA-1 of its bytes, as `kad put`/`kad get` and the HTTP API do.
pub fn key_of(v: &JsValue) -> Result<Key, JsValue> {
    Ok(Key::hash(&bytes_of(v, "key")?.0))
}

/// A lookup target: a string as [`Key::from_target`] reads it (40 hex digits name that point,
/// e.g. a node id; other text is hashed), or the hash of a `Uint8Array`.
pub fn target_of(v: &JsValue) -> Result<Key, JsValue> {
    match v.as_string() {
        Some(s) => Ok(Key::from_target(&s)),
        None => key_of(v),
    }
}

/// A value as it was put: text as a string (if it is UTF-8), bytes as a `Uint8Array`.
pub fn value_to_js(kind: ValueKind, bytes: &[u8]) -> JsValue {
    match (kind, core::str::from_utf8(bytes)) {
        (ValueKind::Text, Ok(s)) => JsValue::from_str(s),
        _ => Uint8Array::from(bytes).into(),
    }
}

/// `"IP:PORT"` or `"[IPv6]:PORT"` as a peer address.
pub fn parse_addr(s: &str) -> Result<PeerAddr, JsValue> {
    s.parse::<PeerAddr>()
        .map_err(|_| type_error(&format!("bad address \"{s}\": want IP:PORT, e.g. 127.0.0.1:8468")))
}

/// A plain object from (name, value) pairs.
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// `{ id, addr }` of a peer.
pub fn peer_to_js(p: &Peer) -> JsValue {
    object(&[("id", p.id.to_string().into()), ("addr", p.addr.to_string().into())])
}

/// An array of `{ id, addr }`.
pub fn peers_to_js<'a>(peers: impl Iterator<Item = &'a Peer>) -> JsValue {
    peers.map(peer_to_js).collect::<Array>().into()
}

/// A 32-byte array from a `Uint8Array`.
pub fn array32(v: &JsValue, what: &str) -> Result<[u8; 32], JsValue> {
    v.dyn_ref::<Uint8Array>()
        .filter(|a| a.length() == 32)
        .map(|a| {
            let mut out = [0u8; 32];
            a.copy_to(&mut out);
            out
        })
        .ok_or_else(|| type_error(&format!("{what} must be a Uint8Array of 32 bytes")))
}

/// A sequence number from a non-negative safe integer or a `BigInt`.
pub fn seq_of(v: &JsValue) -> Result<u64, JsValue> {
    if let Some(n) = v.as_f64() {
        if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
            return Ok(n as u64);
        }
    } else if v.is_bigint() {
        if let Ok(n) = u64::try_from(v.clone()) {
            return Ok(n);
        }
    }
    Err(type_error("seq must be a non-negative integer (number or BigInt)"))
}
