//! The HTTP API, in the shape of the Python library's HTTP fork: `POST/GET /dht/{key}` with
//! PUBLIC or SECURED (ed25519-signed) records, text or bytes (`"encoding": "base64"` or `"hex"`),
//! an optional bearer token for writes; the read-only views `GET /status`, `GET /metrics` (for
//! Prometheus, with the listeners' counters and, when a [`Relay`] is attached, the relay's) and
//! the live dashboard ([`crate::dashboard`]); and the rule that every error answer, from any
//! route, is JSON `{"error": "..."}`. The listeners' limits (connections, timeouts, requests to
//! the DHT in flight) are [`crate::listen`]'s; the views never wait behind lookups.
//!
//! PUBLIC records are last-writer-wins, as in the Python library: anyone who can reach a node
//! that holds one can overwrite it, and a later `POST` replaces it everywhere it lands. Use
//! SECURED records for values that must have an owner: only the holder of the key can replace
//! them, and only with a higher `seq`.
//!
//! SECURED records are BEP 44 records: the URL key is the salt, the record lives at
//! SHA-1(public key ‖ key), and `sign` is the ed25519 signature of the bencoded
//! `4:salt{len}:{key}3:seqi{seq}e1:v{len}:{value}` (see [`kad_core::signed`]). Read them back
//! with `GET /dht/{key}?pub_key=HEX`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kad_core::signed::HexError;
use kad_core::store::MAX_VALUE_LEN;
use kad_core::{PerKind, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dashboard::{self, History};
use crate::explain;
use crate::listen::Listeners;
use crate::node::{Error, Handle, LATENCY_BUCKETS_MS};
use crate::relay::Relay;
use crate::value::{Encoding, Value};

/// Largest request body read. Values are at most 1000 bytes; base64, JSON and a signature
/// stay well under this.
pub const MAX_BODY: usize = 16 * 1024;

/// The whole HTTP surface of a node on one listener, without a write token: the API, the
/// read-only views and the dashboard at `/`, and with a relay its endpoint at `/relay` and its
/// counters in `/metrics`; serve it with [`Listeners::serve`]. Spawns the dashboard's sampler
/// (needs a tokio runtime).
pub fn router(handle: Handle, relay: Option<Relay>, listeners: &Listeners) -> Router {
    let history = History::spawn(handle.clone());
    let mut app = api(handle.clone(), None, listeners);
    if let Some(r) = &relay {
        app = app.merge(r.route());
    }
    with_json_errors(app.merge(views(handle, relay, listeners, history, true)))
}

/// `POST /dht/{key}` and `GET /dht/{key}`. With `token`, a POST must carry
/// `Authorization: Bearer TOKEN` (reads stay open). Over `listeners`' `max_pending` requests
/// in flight, a request is answered 503 at once.
pub fn api(handle: Handle, token: Option<String>, listeners: &Listeners) -> Router {
    let state = Api { handle, token: token.map(Arc::from) };
    Router::new()
        .route("/dht/{key}", get(get_record).post(post_record))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(listeners.clone(), pending))
        .with_state(state)
}

/// The read-only views: `GET /status`, `GET /metrics`, and the dashboard (`/dashboard`, its
/// JSON at `/api/dashboard`, and at `/` too when `dashboard_at_root`).
pub fn views(
    handle: Handle,
    relay: Option<Relay>,
    listeners: &Listeners,
    history: History,
    dashboard_at_root: bool,
) -> Router {
    let state = Views { handle, relay, listeners: listeners.clone() };
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(dashboard::routes(state.handle, state.relay, history, dashboard_at_root))
}

/// Makes every error answer of `router` JSON (`{"error": "..."}`, keeping its status and
/// headers such as `Allow`), including the framework's own 404, 405, 413 and 400 answers.
pub fn with_json_errors(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(json_errors))
}

#[derive(Clone)]
struct Api {
    handle: Handle,
    token: Option<Arc<str>>,
}

#[derive(Clone)]
struct Views {
    handle: Handle,
    relay: Option<Relay>,
    listeners: Listeners,
}

/// Body of `POST /dht/{key}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct PostBody {
    /// The value, written in `encoding`.
    pub data: String,
    /// How `data` is written: `utf-8` (default: a text value), `base64` or `hex` (bytes).
    #[serde(default)]
    pub encoding: Encoding,
    /// Optional, checked against `encoding`: `text` or `bytes`.
    pub kind: Option<String>,
    /// `PUBLIC` (default: last writer wins, anyone may overwrite it) or `SECURED` (signed:
    /// only the key's owner may replace it).
    #[serde(default)]
    pub persist_mode: PersistMode,
    /// Required for SECURED.
    pub authorization: Option<Authorization>,
    /// Sequence number of a SECURED record (default 0); raise it to replace the record.
    #[serde(default)]
    pub seq: u64,
}

/// PUBLIC or SECURED.
#[derive(Debug, Default, Deserialize, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
pub enum PersistMode {
    /// Last writer wins, as in the Python library: anyone may overwrite it.
    #[default]
    Public,
    /// Signed: only the key's owner may write, with a higher sequence number.
    Secured,
}

/// Who signed a SECURED record.
#[derive(Debug, Deserialize, Serialize)]
pub struct Authorization {
    /// The public key.
    pub pub_key: PubKey,
    /// 128 hex digits: the ed25519 signature.
    pub sign: String,
}

/// A public key and when its authorization lapses.
#[derive(Debug, Deserialize, Serialize)]
pub struct PubKey {
    /// 64 hex digits: the ed25519 public key.
    pub key: String,
    /// UNIX time (seconds) after which the authorization is refused; `null` for never.
    pub exp_time: Option<u64>,
}

/// A JSON answer, ending with a newline so that `curl` output reads well in a terminal.
fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], format!("{body}\n")).into_response()
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    reply(status, json!({ "error": message.into() }))
}

/// The answer for a failed command; `lone` is the answer when the node knows no other node.
fn node_error(e: Error, lone: impl FnOnce() -> Response) -> Response {
    let status = match &e {
        Error::Refused(kad_core::Error::NoPeers) => return lone(),
        Error::Refused(kad_core::Error::ValueTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Refused(kad_core::Error::BadSignature) => StatusCode::UNAUTHORIZED,
        Error::Refused(kad_core::Error::StoreFull) => StatusCode::INSUFFICIENT_STORAGE,
        Error::Refused(kad_core::Error::Conflict(_)) => StatusCode::CONFLICT,
        e if explain::is_input(e) => StatusCode::BAD_REQUEST,
        e if e.is_network() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    problem(status, explain::describe(&e))
}

const ED25519_HINT: &str = "kad's SECURED records are BEP 44 records signed with ed25519, not \
secp256k1: make a key with `kad keygen` and a signed body with `kad sign`";

/// A public key or signature from hex; a wrong length says what kad expects (a 33-byte
/// secp256k1 key is the fork's, not ours) and how to make one.
fn parse_hex<T: std::str::FromStr<Err = HexError>>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|e: HexError| {
        let got = if hex::decode(s).is_ok() {
            format!(", not {} ({} bytes)", s.len(), s.len() / 2)
        } else {
            String::new()
        };
        format!("{what}: {e}{got}; {ED25519_HINT}")
    })
}

/// Constant-time comparison of the `Authorization` header with `Bearer TOKEN`.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(given) = given.strip_prefix("Bearer ") else { return false };
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn post_record(
    State(api): State<Api>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(token) = &api.token {
        if !authorized(&headers, token) {
            let mut r = problem(
                StatusCode::UNAUTHORIZED,
                "writes to this node need its token: send the header `Authorization: Bearer TOKEN`",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kad\""));
            return r;
        }
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return rejection.into_response(),
    };
    let body: PostBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("malformed body: {e}")),
    };
    match (body.kind.as_deref(), body.encoding) {
        (None, _) | (Some("text"), Encoding::Utf8) | (Some("bytes"), Encoding::Base64 | Encoding::Hex) => {}
        (Some("bytes"), Encoding::Utf8) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "kind \"bytes\" needs \"encoding\": \"base64\" or \"hex\" to say how data is written",
            )
        }
        (Some(kind), encoding) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("kind {kind:?} does not go with encoding {:?}: text is \"utf-8\", bytes are \"base64\" or \"hex\"", encoding.name()),
            )
        }
    }
    let value = match Value::decode(&body.data, body.encoding) {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let limit = MAX_VALUE_LEN
        - match body.persist_mode {
            PersistMode::Public => 0,
            PersistMode::Secured => key.len().min(MAX_VALUE_LEN),
        };
    let len = value.as_bytes().len();
    if len > limit {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("data of {len} bytes is over the limit of {limit} bytes"),
        );
    }
    let h = &api.handle;
    let lone = || {
        problem(StatusCode::SERVICE_UNAVAILABLE, format!("nothing stored: {}", explain::lone_node(h.addr())))
    };
    let result = match body.persist_mode {
        PersistMode::Public => h.put(&key, value).await,
        PersistMode::Secured => {
            let Some(auth) = body.authorization else {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("SECURED needs an authorization; {ED25519_HINT}"),
                );
            };
            let public_key = match parse_hex::<PublicKey>(&auth.pub_key.key, "pub_key.key") {
                Ok(k) => k,
                Err(m) => return problem(StatusCode::BAD_REQUEST, m),
            };
            let signature = match parse_hex::<Signature>(&auth.sign, "sign") {
                Ok(s) => s,
                Err(m) => return problem(StatusCode::BAD_REQUEST, m),
            };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            if auth.pub_key.exp_time.is_some_and(|t| t <= now.as_secs()) {
                return problem(StatusCode::UNAUTHORIZED, "the authorization has expired (exp_time)");
            }
            let result = h.put_presigned(public_key, &key, body.seq, signature, None, value).await;
            if let Err(e) = &result {
                if let Some(held) = explain::newer_seq(h, e, public_key, &key, body.seq).await {
                    return problem(
                        StatusCode::CONFLICT,
                        format!(
                            "{}; POST again with \"seq\": {} or higher",
                            explain::stale(&key, held),
                            held + 1
                        ),
                    );
                }
            }
            result
        }
    };
    match result {
        // `acks` counts the other nodes that stored it; this node keeps its own copy too.
        Ok(acks) => reply(StatusCode::OK, json!({ "key": key, "acks": acks, "local_copy": true })),
        Err(e) => node_error(e, lone),
    }
}

/// Query of `GET /dht/{key}`.
#[derive(Debug, Deserialize)]
pub struct GetQuery {
    /// Read the SECURED record of this public key (64 hex digits).
    pub pub_key: Option<String>,
    /// How bytes are written in the answer: `base64` (default) or `hex`.
    pub encoding: Option<Encoding>,
}

async fn get_record(State(api): State<Api>, Path(key): Path<String>, Query(q): Query<GetQuery>) -> Response {
    let h = &api.handle;
    let bytes_as = q.encoding.unwrap_or(Encoding::Base64);
    let lone = || {
        problem(
            StatusCode::NOT_FOUND,
            format!("no value under {key:?}: this node holds none and knows no other node to ask"),
        )
    };
    match q.pub_key {
        None => match h.get_agreed(&key).await {
            Ok(Some((v, holders))) => {
                let (kind, encoding, data) = v.encode(bytes_as);
                reply(
                    StatusCode::OK,
                    json!({ "key": key, "data": data, "kind": kind, "encoding": encoding, "persist_mode": "PUBLIC", "holders": holders }),
                )
            }
            Ok(None) => problem(StatusCode::NOT_FOUND, format!("no value under {key:?}")),
            Err(e) => node_error(e, lone),
        },
        Some(pk) => {
            let public_key = match parse_hex::<PublicKey>(&pk, "pub_key") {
                Ok(k) => k,
                Err(m) => return problem(StatusCode::BAD_REQUEST, m),
            };
            match h.get_signed(public_key, &key).await {
                Ok(Some(s)) => {
                    let (kind, encoding, data) = s.value.encode(bytes_as);
                    reply(
                        StatusCode::OK,
                        json!({
                            "key": key, "data": data, "kind": kind, "encoding": encoding,
                            "persist_mode": "SECURED", "seq": s.seq,
                            "authorization": {
                                "pub_key": { "key": s.public_key.to_string(), "exp_time": null },
                                "sign": s.signature.to_string(),
                            },
                        }),
                    )
                }
                Ok(None) => {
                    problem(StatusCode::NOT_FOUND, format!("no SECURED value under {key:?} for {pk}"))
                }
                Err(e) => node_error(e, lone),
            }
        }
    }
}

/// Answers 503 at once when `max_pending` requests to the DHT are in flight, so that waiting
/// lookups do not hold every connection.
async fn pending(State(listeners): State<Listeners>, req: Request, next: Next) -> Response {
    let Some(_permit) = listeners.try_pending() else {
        let mut r = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "busy: {} requests to the DHT are in flight on this node; try again in a moment",
                listeners.config().max_pending()
            ),
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    next.run(req).await
}

/// Rewrites error answers that are not JSON yet as `{"error": "..."}`.
async fn json_errors(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = match status {
        // The router adds the `Allow` header outside this layer; the routes are GET, and POST on /dht/.
        StatusCode::METHOD_NOT_ALLOWED => {
            format!(
                "{method} is not allowed on {path}: use {}",
                if path.starts_with("/dht/") { "GET or POST" } else { "GET" }
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is over the limit of {MAX_BODY} bytes (a value is at most {MAX_VALUE_LEN} bytes)")
        }
        StatusCode::NOT_FOUND if text.is_empty() => {
            let nested = path.strip_prefix("/dht/").is_some_and(|key| key.contains('/'));
            let hint = if nested { " (a key is one path segment: write / inside a key as %2F)" } else { "" };
            format!("no such path: {method} {path}{hint}")
        }
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let body = format!("{}\n", json!({ "error": message }));
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn status(State(v): State<Views>) -> Response {
    match v.handle.status().await {
        Ok(s) => reply(
            StatusCode::OK,
            json!({
                "id": s.id.to_string(),
                "address": s.addr.to_string(),
                "client_mode": s.client,
                "routing_table": { "contacts": s.buckets.iter().sum::<usize>(), "buckets": s.buckets },
                "records": s.records,
                "published": s.published,
                "providers": s.providers,
                "persistent": s.persistent,
            }),
        ),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn metrics(State(v): State<Views>) -> Response {
    let s = match v.handle.status().await {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let st = &s.stats;
    let mut m = String::new();
    let mut counter = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in samples {
            let _ = writeln!(m, "{name}{labels} {v}");
        }
    };
    let by_kind = |v: &PerKind| -> Vec<(String, u64)> {
        v.iter().map(|(k, n)| (format!("{{kind=\"{}\"}}", k.name()), n)).collect()
    };
    let one = |v: u64| [(String::new(), v)];
    let labelled = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(l, v)| (l.to_string(), *v)).collect()
    };
    counter("kad_rpcs_in_total", "Requests received, by kind.", &by_kind(&st.requests_in));
    counter("kad_rpcs_out_total", "Requests sent, by kind.", &by_kind(&st.requests_out));
    counter("kad_rpc_timeouts_total", "Requests that got no answer in time.", &one(st.timeouts));
    counter(
        "kad_rpcs_deferred_total",
        "Requests that found the pending table full (a query's wait for a free slot).",
        &one(st.requests_deferred),
    );
    counter(
        "kad_rpcs_abandoned_total",
        "Requests abandoned before sending (their record vanished).",
        &one(st.requests_abandoned),
    );
    counter("kad_datagrams_in_total", "Datagrams received.", &one(st.datagrams_in));
    counter("kad_datagrams_out_total", "Datagrams sent.", &one(st.datagrams_out));
    counter(
        "kad_dropped_datagrams_total",
        "Datagrams dropped, by reason.",
        &labelled(&[
            ("{reason=\"malformed\"}", st.dropped_malformed),
            ("{reason=\"version\"}", st.dropped_version),
            ("{reason=\"too_large\"}", st.dropped_too_large),
            ("{reason=\"own_id\"}", st.dropped_own_id),
            ("{reason=\"unmatched\"}", st.dropped_unmatched),
            ("{reason=\"bad_response\"}", st.dropped_bad_response),
        ]),
    );
    counter(
        "kad_stores_total",
        "STOREs received, by result.",
        &labelled(&[
            ("{result=\"accepted\"}", st.stores_accepted),
            ("{result=\"refused\"}", st.stores_refused),
        ]),
    );
    counter(
        "kad_refused_total",
        "Requests, contacts and replicated records refused by the limits against hostile peers, by reason.",
        &labelled(&[
            ("{reason=\"source_rate\"}", st.requests_limited),
            ("{reason=\"diversity\"}", st.diversity_refused),
            ("{reason=\"address_reused\"}", st.address_reused),
            ("{reason=\"replication_rate\"}", st.replications_limited),
        ]),
    );
    counter(
        "kad_verify_pings_total",
        "Pings sent to verify a stranger's address before it may enter the routing table.",
        &one(st.verify_pings),
    );
    counter(
        "kad_replies_trimmed_total",
        "Replies to unverified addresses cut to 3x their request.",
        &one(st.replies_trimmed),
    );
    counter("kad_records_expired_total", "Records dropped at expiry.", &one(st.records_expired));
    counter("kad_records_evicted_total", "Records evicted to make room.", &one(st.records_evicted));
    counter("kad_republished_total", "Records republished.", &one(st.republished));
    counter("kad_lookups_failed_total", "User queries that failed.", &one(s.lookups.failed));
    let _ =
        writeln!(m, "# HELP kad_records Records held.\n# TYPE kad_records gauge\nkad_records {}", s.records);
    let _ = writeln!(
        m,
        "# HELP kad_routing_contacts Contacts in the routing table.\n# TYPE kad_routing_contacts gauge\nkad_routing_contacts {}",
        s.buckets.iter().sum::<usize>()
    );
    let _ = writeln!(
        m,
        "# HELP kad_lookup_duration_seconds Latency of user queries.\n# TYPE kad_lookup_duration_seconds histogram"
    );
    for (bound, n) in LATENCY_BUCKETS_MS.iter().zip(s.lookups.buckets) {
        let _ = writeln!(m, "kad_lookup_duration_seconds_bucket{{le=\"{}\"}} {n}", *bound as f64 / 1000.0);
    }
    let _ = writeln!(m, "kad_lookup_duration_seconds_bucket{{le=\"+Inf\"}} {}", s.lookups.count);
    let _ = writeln!(m, "kad_lookup_duration_seconds_sum {}", s.lookups.sum_ms as f64 / 1000.0);
    let _ = writeln!(m, "kad_lookup_duration_seconds_count {}", s.lookups.count);
    v.listeners.stats().write_metrics(&mut m);
    if let Some(relay) = &v.relay {
        relay.stats().write_metrics(&mut m);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m).into_response()
}
