//! The live dashboard: a page served from files built into the binary (no CDN, no build step)
//! that polls `GET /api/dashboard`, and the history it charts, kept here in the host and not in
//! the core: a fixed ring of per-second samples of the node's counters, taken by a sampler task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kad_core::presets::host;
use serde_json::json;

use crate::node::{Handle, Status, LATENCY_BUCKETS_MS};
use crate::relay::Relay;

/// Samples kept: five minutes at one a second.
pub const HISTORY: usize = 300;
/// Time between samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// Counter totals at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sample {
    rpcs_in: u64,
    rpcs_out: u64,
    timeouts: u64,
}

impl Sample {
    fn of(s: &Status) -> Sample {
        Sample {
            rpcs_in: s.stats.requests_in.total(),
            rpcs_out: s.stats.requests_out.total(),
            timeouts: s.stats.timeouts,
        }
    }
}

/// The last [`HISTORY`] samples, shared by the sampler task and the dashboard's handler.
#[derive(Clone)]
pub struct History {
    samples: Arc<Mutex<VecDeque<Sample>>>,
    started: tokio::time::Instant,
}

impl History {
    /// Starts sampling the node behind `handle` every [`SAMPLE_EVERY`], until it stops.
    pub fn spawn(handle: Handle) -> History {
        let history = History::new();
        let sampler = history.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Ok(status) = handle.status().await else { break };
                sampler.record(Sample::of(&status));
            }
        });
        history
    }

    fn new() -> History {
        History {
            samples: Arc::new(Mutex::new(VecDeque::with_capacity(HISTORY + 1))),
            started: tokio::time::Instant::now(),
        }
    }

    /// Adds a sample, dropping the oldest beyond `HISTORY + 1` (which give `HISTORY` rates).
    fn record(&self, sample: Sample) {
        let mut ring = self.samples.lock().expect("not poisoned");
        if ring.len() > HISTORY {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    /// Per-sample increases (oldest first) of each counter: at most [`HISTORY`] values.
    fn rates(&self) -> [Vec<u64>; 3] {
        let ring = self.samples.lock().expect("not poisoned");
        let deltas = |f: fn(&Sample) -> u64| -> Vec<u64> {
            ring.iter().zip(ring.iter().skip(1)).map(|(a, b)| f(b).saturating_sub(f(a))).collect()
        };
        [deltas(|s| s.rpcs_in), deltas(|s| s.rpcs_out), deltas(|s| s.timeouts)]
    }
}

#[derive(Clone)]
struct Dashboard {
    handle: Handle,
    relay: Option<Relay>,
    history: History,
}

/// The page at `/dashboard` (and `/` when `at_root`), its script and style, and its JSON at
/// `/api/dashboard`.
pub fn routes(handle: Handle, relay: Option<Relay>, history: History, at_root: bool) -> Router {
    let page = || async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) };
    let mut r = Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT) }))
        .route("/dashboard.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE) }))
        .route("/api/dashboard", get(data));
    if at_root {
        r = r.route("/", get(page));
    }
    r.with_state(Dashboard { handle, relay, history })
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

async fn data(State(d): State<Dashboard>) -> Response {
    let s = match d.handle.status().await {
        Ok(s) => s,
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e.to_string() }))).into_response()
        }
    };
    let now = unix_ms();
    let mut contacts = s.contacts.iter();
    let buckets: Vec<_> = s
        .buckets
        .iter()
        .map(|&n| {
            let list: Vec<_> = contacts
                .by_ref()
                .take(n)
                .map(|c| {
                    json!({
                        "id": c.id.to_string(),
                        "addr": std::net::SocketAddr::from(c.addr).to_string(),
                        "failures": c.failures,
                        "rtt_ms": c.srtt_ms,
                        "last_seen_s": now.saturating_sub(c.last_seen.as_millis()) / 1000,
                    })
                })
                .collect();
            json!({ "contacts": list })
        })
        .collect();
    let [rpcs_in, rpcs_out, timeouts] = d.history.rates();
    let cumulative = s.lookups.buckets;
    let mut latency: Vec<u64> =
        cumulative.iter().enumerate().map(|(i, &n)| n - if i == 0 { 0 } else { cumulative[i - 1] }).collect();
    latency.push(s.lookups.count - cumulative.last().copied().unwrap_or(0));
    let relay = d.relay.as_ref().map(|r| {
        let r = r.stats();
        json!({
            "connections": r.connections,
            "connections_total": r.connections_total,
            "closed_misbehaving": r.connections_closed_misbehaving,
            "closed_idle": r.connections_closed_idle,
            "frames_to_network": r.frames_to_network,
            "frames_to_browser": r.frames_to_browser,
            "refused": r.refused.iter().sum::<u64>(),
        })
    });
    Json(json!({
        "id": s.id.to_string(),
        "address": s.addr.to_string(),
        "client_mode": s.client,
        "persistent": s.persistent,
        "uptime_s": d.history.started.elapsed().as_secs(),
        "bucket_size": host::K,
        "buckets": buckets,
        "records": {
            "count": s.records, "bytes": s.record_bytes,
            "published": s.published, "replicas": s.replicas, "cached": s.cached,
        },
        "providers": s.providers,
        "history": {
            "interval_s": SAMPLE_EVERY.as_secs(),
            "rpcs_in": rpcs_in, "rpcs_out": rpcs_out, "timeouts": timeouts,
        },
        "lookups": {
            "count": s.lookups.count, "failed": s.lookups.failed,
            "bounds_ms": LATENCY_BUCKETS_MS, "counts": latency,
        },
        "relay": relay,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ring_keeps_a_fixed_number_of_samples_and_gives_rates() {
        let h = History::new();
        assert_eq!(h.rates()[0].len(), 0);
        for i in 0..(HISTORY as u64 + 50) {
            h.record(Sample { rpcs_in: i * 3, rpcs_out: i, timeouts: i / 2 });
        }
        assert_eq!(h.samples.lock().unwrap().len(), HISTORY + 1);
        let [inn, out, timeouts] = h.rates();
        assert_eq!((inn.len(), out.len(), timeouts.len()), (HISTORY, HISTORY, HISTORY));
        assert!(inn.iter().all(|&d| d == 3) && out.iter().all(|&d| d == 1));
        assert_eq!(timeouts.iter().sum::<u64>(), (HISTORY as u64 + 49) / 2 - 49 / 2);
    }
}
