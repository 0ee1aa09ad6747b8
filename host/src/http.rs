//! The HTTP API, in the shape of the Python library's HTTP fork: `POST/GET /dht/{key}` with
//! PUBLIC or SECURED (ed25519-signed) records, `GET /status`, and `GET /metrics` for Prometheus
//! (with the relay's counters when a [`crate::Relay`] is attached as an `Extension`).
//!
//! SECURED records are BEP 44 records: the URL key is the salt, the record lives at
//! SHA-1(public key ‖ key), and `sign` is the ed25519 signature of the BEP 44 form of
//! (key, seq, data). Read them back with `GET /dht/{key}?pub_key=HEX`.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use kad_core::store::MAX_VALUE_LEN;
use kad_core::{PerKind, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::node::{Error, Handle, LATENCY_BUCKETS_MS};
use crate::value::Value;

/// The router of a node's HTTP API.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/dht/{key}", get(get_record).post(post_record))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(handle)
}

/// Body of `POST /dht/{key}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct PostBody {
    /// The value (stored as text).
    pub data: String,
    /// `PUBLIC` (default) or `SECURED`.
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
    /// Anyone may overwrite it.
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

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn node_error(e: Error) -> Response {
    match e {
        Error::Refused(kad_core::Error::ValueTooLarge { .. }) => {
            problem(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        Error::Refused(kad_core::Error::BadSignature) => problem(StatusCode::UNAUTHORIZED, e.to_string()),
        Error::Refused(kad_core::Error::SaltTooLarge { .. }) => {
            problem(StatusCode::BAD_REQUEST, e.to_string())
        }
        e if e.is_network() => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        e => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn post_record(State(h): State<Handle>, Path(key): Path<String>, body: Bytes) -> Response {
    let body: PostBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("malformed body: {e}")),
    };
    let limit = MAX_VALUE_LEN
        - match body.persist_mode {
            PersistMode::Public => 0,
            PersistMode::Secured => key.len(),
        };
    if body.data.len() > limit {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("data of {} bytes is over the limit of {limit} bytes", body.data.len()),
        );
    }
    let result = match body.persist_mode {
        PersistMode::Public => h.put(&key, body.data).await,
        PersistMode::Secured => {
            let Some(auth) = body.authorization else {
                return problem(StatusCode::BAD_REQUEST, "SECURED needs an authorization");
            };
            let public_key = match auth.pub_key.key.parse::<PublicKey>() {
                Ok(k) => k,
                Err(e) => return problem(StatusCode::BAD_REQUEST, format!("pub_key.key: {e}")),
            };
            let signature = match auth.sign.parse::<Signature>() {
                Ok(s) => s,
                Err(e) => return problem(StatusCode::BAD_REQUEST, format!("sign: {e}")),
            };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            if auth.pub_key.exp_time.is_some_and(|t| t <= now.as_secs()) {
                return problem(StatusCode::UNAUTHORIZED, "the authorization has expired (exp_time)");
            }
            h.put_presigned(public_key, &key, body.seq, signature, None, Value::Text(body.data)).await
        }
    };
    match result {
        Ok(acks) => (StatusCode::OK, Json(json!({ "key": key, "acks": acks }))).into_response(),
        Err(e) => node_error(e),
    }
}

/// Query of `GET /dht/{key}`.
#[derive(Debug, Deserialize)]
pub struct GetQuery {
    /// Read the SECURED record of this public key (64 hex digits).
    pub pub_key: Option<String>,
}

async fn get_record(State(h): State<Handle>, Path(key): Path<String>, Query(q): Query<GetQuery>) -> Response {
    let encode = |v: &Value| match v {
        Value::Text(s) => ("text", s.clone()),
        Value::Bytes(b) => ("bytes", hex::encode(b)),
    };
    match q.pub_key {
        None => match h.get(&key).await {
            Ok(Some(v)) => {
                let (kind, data) = encode(&v);
                Json(json!({ "key": key, "data": data, "kind": kind, "persist_mode": "PUBLIC" }))
                    .into_response()
            }
            Ok(None) => problem(StatusCode::NOT_FOUND, format!("no value under {key:?}")),
            Err(e) => node_error(e),
        },
        Some(pk) => {
            let public_key = match pk.parse::<PublicKey>() {
                Ok(k) => k,
                Err(e) => return problem(StatusCode::BAD_REQUEST, format!("pub_key: {e}")),
            };
            match h.get_signed(public_key, &key).await {
                Ok(Some(s)) => {
                    let (kind, data) = encode(&s.value);
                    Json(json!({
                        "key": key, "data": data, "kind": kind, "persist_mode": "SECURED", "seq": s.seq,
                        "authorization": {
                            "pub_key": { "key": s.public_key.to_string(), "exp_time": null },
                            "sign": s.signature.to_string(),
                        },
                    }))
                    .into_response()
                }
                Ok(None) => {
                    problem(StatusCode::NOT_FOUND, format!("no SECURED value under {key:?} for {pk}"))
                }
                Err(e) => node_error(e),
            }
        }
    }
}

async fn status(State(h): State<Handle>) -> Response {
    match h.status().await {
        Ok(s) => Json(json!({
            "id": s.id.to_string(),
            "address": s.addr.to_string(),
            "client_mode": s.client,
            "routing_table": { "contacts": s.buckets.iter().sum::<usize>(), "buckets": s.buckets },
            "records": s.records,
            "published": s.published,
            "providers": s.providers,
            "persistent": s.persistent,
        }))
        .into_response(),
        Err(e) => node_error(e),
    }
}

async fn metrics(State(h): State<Handle>, relay: Option<Extension<crate::Relay>>) -> Response {
    let s = match h.status().await {
        Ok(s) => s,
        Err(e) => return node_error(e),
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
    if let Some(Extension(relay)) = relay {
        relay.stats().write_metrics(&mut m);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m).into_response()
}
