//! The result of a run: what the issue asks to report, as JSON (stdout) and a short table.

use std::fmt::Write as _;

use serde::Serialize;

use crate::params::Params;

/// Percentiles of a sample (nearest rank). All zero for an empty sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Dist {
    /// Number of samples.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
}

impl Dist {
    /// Summarises `samples` (sorted in place).
    pub fn of(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Dist::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let rank = |p: f64| samples[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        let sum: u64 = samples.iter().sum();
        Dist {
            n,
            mean: round2(sum as f64 / n as f64),
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: samples[n - 1],
        }
    }
}

/// FIND_NODE or FIND_VALUE lookups.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Lookups {
    /// Lookups started.
    pub issued: usize,
    /// Lookups whose node left the network before the result came back (not judged).
    pub abandoned: usize,
    /// Lookups that finished.
    pub finished: usize,
    /// Finished with the right answer: for FIND_NODE, the live node truly closest to the target
    /// is among the returned peers; for FIND_VALUE, the stored value came back.
    pub succeeded: usize,
    /// `succeeded / finished`.
    pub success_rate: f64,
    /// Commands refused because every query slot of the chosen node was busy (another node
    /// was then tried).
    pub busy_retries: usize,
    /// Lookup rounds (hops).
    pub rounds: Dist,
    /// Requests sent per lookup.
    pub rpcs: Dist,
    /// Virtual time from command to result, in milliseconds.
    pub latency_ms: Dist,
    /// FIND_NODE only: mean share of the true `K` closest live nodes among the returned peers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_closest_found: Option<f64>,
    /// FIND_NODE only: mean number of peers returned (at most `K`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peers_returned: Option<f64>,
}

/// Puts and what became of the values.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Puts {
    /// Puts started.
    pub issued: usize,
    /// Puts acknowledged by at least one peer.
    pub succeeded: usize,
    /// Acknowledgements (peers that stored the value) per put.
    pub acks: Dist,
    /// Values checked at the end, each with a FIND_VALUE from a random live node that is not
    /// its publisher.
    pub checked_at_end: usize,
    /// Of those, found with the right value.
    pub retrievable_at_end: usize,
    /// `retrievable_at_end / checked_at_end`.
    pub retrievable_share: f64,
}

/// One hour of a run with values: how many of them could still be found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Hour {
    /// Hours since the puts.
    pub hour: u32,
    /// Values probed with a FIND_VALUE from a random node this hour.
    pub probed: usize,
    /// Of those, found.
    pub found: usize,
    /// Share of all stored values that some live node holds as a live primary copy
    /// (publisher or replica; cached copies not counted), by the simulator's own count.
    pub held: f64,
    /// Mean live primary copies per stored value.
    pub copies: f64,
}

/// How long values lived (from the hourly probes).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ValueLife {
    /// The hourly probes.
    pub hours: Vec<Hour>,
    /// The last hour up to which every probe found at least 99% of the probed values.
    pub retrievable_99_until_hour: Option<u32>,
    /// The first hour whose probe found none.
    pub gone_at_hour: Option<u32>,
}

/// The network over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Network {
    /// Nodes up at the end.
    pub nodes_up_at_end: usize,
    /// Fresh nodes that joined (the initial ones included).
    pub joins: usize,
    /// Nodes that left.
    pub leaves: usize,
    /// Departed nodes that came back with their state.
    pub rejoins: usize,
    /// Bootstraps that ended with a non-empty routing table.
    pub bootstraps_ok: usize,
    /// Bootstrap attempts that failed (retried with another seed).
    pub bootstraps_failed: usize,
    /// Mean routing table size of the nodes up at the end.
    pub contacts_per_node: f64,
    /// Mean buckets in use per routing table (nodes up at the end).
    pub buckets_per_node: f64,
    /// Most buckets in use by one routing table (the preset allows `B`).
    pub buckets_max: usize,
    /// Datagrams sent by nodes.
    pub datagrams: u64,
    /// Datagrams dropped by the simulated loss.
    pub lost: u64,
    /// Datagrams addressed to a node that was down.
    pub to_down_nodes: u64,
    /// Requests that timed out, summed over nodes up at the end.
    pub timeouts: u64,
    /// Requests sent again after a timeout, summed over nodes up at the end.
    pub retries: u64,
    /// Background pings of contacts about to turn questionable (nodes up at the end).
    pub liveness_pings: u64,
    /// Bootstraps the nodes started on their own (table ran dry, or a bootstrap failed; nodes
    /// up at the end).
    pub rebootstraps: u64,
    /// Requests that found a node's pending table full and waited for a slot (a query's) or
    /// were skipped (a background ping, cache copy or retry; nodes up at the end).
    pub requests_deferred: u64,
    /// Replies not sent because a node's reply queue was full (nodes up at the end).
    pub replies_dropped: u64,
    /// Records evicted from full stores (nodes up at the end).
    pub records_evicted: u64,
    /// Records pushed to newly seen closer nodes (nodes up at the end).
    pub replications: u64,
    /// Records republished (nodes up at the end).
    pub republished: u64,
    /// Requests sent by kind, summed over nodes up at the end: ping, find_node, find_value,
    /// store, add_provider, get_providers.
    pub requests_by_kind: [u64; 6],
}

/// What the run cost. Wall-clock and memory figures differ from run to run; all else in a
/// report is determined by the parameters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cost {
    /// `size_of` one simulated node, its in-memory record store included.
    pub bytes_per_node: usize,
    /// Simulated events handled (datagram deliveries, timers, workload actions).
    pub events: u64,
    /// Simulated time, in seconds.
    pub virtual_seconds: f64,
    /// Wall-clock time of the run, in seconds.
    pub wall_seconds: f64,
    /// CPU time of the run, in seconds (less than wall time when the machine is shared).
    pub cpu_seconds: f64,
    /// `events / wall_seconds`.
    pub events_per_second: f64,
    /// Peak resident memory of the process (VmHWM), in bytes; 0 where unknown.
    pub peak_rss_bytes: u64,
    /// The same, phase by phase: build (joins and settling), measure, check.
    pub phases: Vec<Phase>,
}

/// What one phase of a run cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Phase {
    /// "build", "measure" or "check".
    pub name: &'static str,
    /// Simulated seconds.
    pub virtual_seconds: f64,
    /// Events handled.
    pub events: u64,
    /// CPU seconds.
    pub cpu_seconds: f64,
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The parameters of the run.
    pub params: Params,
    /// FIND_NODE lookups.
    pub find_node: Lookups,
    /// FIND_VALUE lookups (the measured phase; probes and the end check are reported apart).
    pub find_value: Lookups,
    /// Puts and retrievability.
    pub puts: Puts,
    /// Hourly probes of the values (runs of an hour or more).
    pub value_life: ValueLife,
    /// The network.
    pub network: Network,
    /// What the hostile nodes achieved (runs with `--hostile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostile: Option<Hostile>,
    /// Cost.
    pub cost: Cost,
}

/// What the hostile nodes of a run achieved.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Hostile {
    /// Hostile nodes.
    pub nodes: usize,
    /// Measured FIND_VALUE lookups that returned the liars' forged value.
    pub forged_returned: usize,
    /// End-of-run checks that returned the forged value.
    pub forged_at_end: usize,
    /// Honest nodes holding a copy of the forged value at the end (cached by a getter).
    pub forged_held_by_honest: usize,
}

impl Report {
    /// The short human table printed on stderr.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let p = &self.params;
        let _ = writeln!(
            s,
            "{} nodes, {:?}, loss {:.0}%, latency {}-{} ms, churn {:.0}%/h, seed {}",
            p.nodes,
            p.scenario,
            p.loss * 100.0,
            p.latency_min_ms,
            p.latency_max_ms,
            p.churn_per_hour * 100.0,
            p.seed
        );
        let _ = writeln!(
            s,
            "{:<11} {:>7} {:>9} {:>18} {:>12} {:>14}",
            "lookup", "count", "success", "rounds p50/95/99", "rpcs p50/99", "latency p50/99"
        );
        for (name, l) in [("FIND_NODE", &self.find_node), ("FIND_VALUE", &self.find_value)] {
            if l.issued == 0 {
                continue;
            }
            let _ = writeln!(
                s,
                "{:<11} {:>7} {:>8.2}% {:>18} {:>12} {:>14}",
                name,
                l.finished,
                l.success_rate * 100.0,
                format!("{}/{}/{}", l.rounds.p50, l.rounds.p95, l.rounds.p99),
                format!("{}/{}", l.rpcs.p50, l.rpcs.p99),
                format!("{}/{} ms", l.latency_ms.p50, l.latency_ms.p99),
            );
        }
        if self.puts.issued > 0 {
            let _ = writeln!(
                s,
                "puts {}/{} ok, {:.1} acks per put; retrievable at the end: {}/{} ({:.2}%)",
                self.puts.succeeded,
                self.puts.issued,
                self.puts.acks.mean,
                self.puts.retrievable_at_end,
                self.puts.checked_at_end,
                self.puts.retrievable_share * 100.0
            );
        }
        let life = &self.value_life;
        if !life.hours.is_empty() {
            let line: Vec<String> = life
                .hours
                .iter()
                .map(|h| format!("{}h:{:.0}%", h.hour, 100.0 * h.found as f64 / h.probed.max(1) as f64))
                .collect();
            let _ = writeln!(s, "hourly probes: {}", line.join(" "));
            let _ = writeln!(
                s,
                "values retrievable (>=99%) until hour {:?}, gone at hour {:?}",
                life.retrievable_99_until_hour, life.gone_at_hour
            );
        }
        let n = &self.network;
        let _ = writeln!(
            s,
            "network: {} up at the end, {} joins, {} leaves, {} rejoins, {:.1} contacts per node",
            n.nodes_up_at_end, n.joins, n.leaves, n.rejoins, n.contacts_per_node
        );
        let c = &self.cost;
        let _ = writeln!(
            s,
            "cost: {:.1} s wall ({:.1} s CPU) for {:.0} s virtual, {} events ({:.0}/s), peak RSS {:.0} MiB, {} bytes per node",
            c.wall_seconds,
            c.cpu_seconds,
            c.virtual_seconds,
            c.events,
            c.events_per_second,
            c.peak_rss_bytes as f64 / (1 << 20) as f64,
            c.bytes_per_node
        );
        s
    }
}

/// Rounds to two decimals (keeps the JSON readable).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Rounds to four decimals.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// CPU time this thread has run so far (/proc/thread-self/schedstat), in seconds; 0 where unknown.
pub fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") else { return 0.0 };
    s.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).map_or(0.0, |ns| ns as f64 / 1e9)
}

/// Peak resident memory of this process (VmHWM in /proc/self/status), in bytes.
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let d = Dist::of(&mut v);
        assert_eq!((d.n, d.p50, d.p95, d.p99, d.max), (100, 50, 95, 99, 100));
        assert_eq!(Dist::of(&mut []), Dist::default());
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes() > 0);
        }
    }
}
