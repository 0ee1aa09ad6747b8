//! What a run simulates: network size, workload, faults and timing, with per-scenario defaults.

use std::time::Duration;

use serde::Serialize;

/// The scenarios of issue 3. Each one sets defaults; every option can still be overridden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A static network: 1,000 nodes, 1,000 puts, then 10,000 FIND_NODE and 10,000
    /// FIND_VALUE lookups over 5 minutes.
    Static,
    /// As static with 10,000 nodes and 10% packet loss.
    Loss,
    /// 10,000 nodes, 20% replaced per hour for 24 hours, 1,000 values whose publishers stay.
    Churn,
    /// As churn, but the publishers leave after 1 hour; runs 26 hours to show when values die.
    PublisherGone,
}

/// Everything a run depends on. Same `Params` (seed included) ⇒ same result.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    /// The scenario whose defaults these are.
    pub scenario: Scenario,
    /// Nodes in the network (kept constant under churn).
    pub nodes: usize,
    /// FIND_NODE lookups of random targets from random nodes, spread over the run.
    pub lookups: usize,
    /// FIND_VALUE lookups of random stored keys from random nodes, spread over the run.
    pub gets: usize,
    /// Values stored at the start, each by its own random publisher.
    pub puts: usize,
    /// Probability that any datagram is lost, 0.0..1.0.
    pub loss: f64,
    /// Smallest one-way latency of a link, in milliseconds.
    pub latency_min_ms: u64,
    /// Largest one-way latency of a link, in milliseconds.
    pub latency_max_ms: u64,
    /// Extra random delay of each datagram on top of its link's latency, 0..=jitter ms.
    pub jitter_ms: u64,
    /// Share of the nodes that leave per simulated hour (each is replaced at once).
    pub churn_per_hour: f64,
    /// Share of the leavers that come back later with their state (the rest are replaced by
    /// fresh nodes with new ids and addresses).
    pub rejoin: f64,
    /// Length of the measured phase (after the network is built).
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Seed of everything random.
    pub seed: u64,
    /// When set, every publisher leaves this long after the puts (never to return).
    #[serde(serialize_with = "opt_secs")]
    pub publishers_leave_after: Option<Duration>,
    /// Nodes joining per simulated second while the network is built.
    pub join_rate: f64,
    /// Quiet time after the last join, for bucket refreshes to finish.
    #[serde(serialize_with = "secs")]
    pub settle: Duration,
    /// Values probed with a FIND_VALUE every simulated hour (0 = none).
    pub probe: usize,
    /// Lifetime of a record; the publisher republishes at the same interval and cached copies
    /// live at most half of it, as in the core's defaults (24 h).
    #[serde(serialize_with = "secs")]
    pub record_ttl: Duration,
    /// Share of the nodes built at the start that are hostile (`crate::hostile`: Sybils that
    /// name each other, liars on gets, store droppers); they never leave, and they neither
    /// start lookups nor count in the truth lookups are judged against.
    #[serde(skip_serializing_if = "is_zero")]
    pub hostile: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Params {
    /// The defaults of a scenario.
    pub fn scenario(scenario: Scenario) -> Self {
        let base = Params {
            scenario,
            nodes: 1000,
            lookups: 10_000,
            gets: 10_000,
            puts: 1000,
            loss: 0.0,
            latency_min_ms: 10,
            latency_max_ms: 200,
            jitter_ms: 0,
            churn_per_hour: 0.0,
            rejoin: 0.25,
            duration: Duration::from_secs(300),
            seed: 1,
            publishers_leave_after: None,
            join_rate: 100.0,
            settle: Duration::from_secs(600),
            probe: 100,
            record_ttl: Duration::from_secs(24 * 3600),
            hostile: 0.0,
        };
        match scenario {
            Scenario::Static => base,
            Scenario::Loss => Params { nodes: 10_000, loss: 0.10, ..base },
            Scenario::Churn => Params {
                nodes: 10_000,
                churn_per_hour: 0.20,
                duration: Duration::from_secs(24 * 3600),
                ..base
            },
            Scenario::PublisherGone => Params {
                nodes: 10_000,
                churn_per_hour: 0.20,
                duration: Duration::from_secs(26 * 3600),
                publishers_leave_after: Some(Duration::from_secs(3600)),
                gets: 0,
                ..base
            },
        }
    }

    /// Checks the values a run cannot work with.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes < 2 {
            return Err("--nodes must be at least 2".into());
        }
        if self.nodes > crate::sim::MAX_SLOTS / 2 {
            return Err(format!("--nodes must be at most {}", crate::sim::MAX_SLOTS / 2));
        }
        if !(0.0..1.0).contains(&self.loss) {
            return Err("--loss must be in 0.0..1.0".into());
        }
        if self.latency_min_ms == 0 || self.latency_min_ms > self.latency_max_ms {
            return Err("latency needs 1 <= --latency-min-ms <= --latency-max-ms".into());
        }
        if !(0.0..=10.0).contains(&self.churn_per_hour) {
            return Err("--churn must be in 0.0..=10.0 (share of nodes per hour)".into());
        }
        if !(0.0..0.5).contains(&self.hostile) {
            return Err("--hostile must be in 0.0..0.5 (share of the nodes)".into());
        }
        if !(0.0..=1.0).contains(&self.rejoin) {
            return Err("--rejoin must be in 0.0..=1.0".into());
        }
        if !(self.join_rate > 0.0 && self.join_rate <= 100_000.0) {
            return Err("--join-rate must be in (0, 100000] nodes per second".into());
        }
        if self.duration < Duration::from_secs(1) || self.duration > Duration::from_secs(30 * 24 * 3600) {
            return Err("--duration must be between 1s and 30 days".into());
        }
        if self.record_ttl < Duration::from_secs(60) || self.record_ttl > Duration::from_secs(30 * 24 * 3600)
        {
            return Err("--record-ttl must be between 1m and 30 days".into());
        }
        if self.puts > 1_000_000 || self.lookups > 10_000_000 || self.gets > 10_000_000 {
            return Err("at most 1,000,000 puts and 10,000,000 lookups or gets".into());
        }
        Ok(())
    }
}

/// Parses `90`, `90s`, `15m`, `24h` or `2d` into a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?} (try 90s, 15m, 24h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use ms, s, m, h or d)")),
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_millis((secs * 1000.0).round() as u64))
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("3 parsecs").is_err());
    }

    #[test]
    fn every_scenario_default_is_valid() {
        for s in [Scenario::Static, Scenario::Loss, Scenario::Churn, Scenario::PublisherGone] {
            assert_eq!(Params::scenario(s).validate(), Ok(()), "{s:?}");
        }
    }
}
