//! Round trips and timeouts: how long a request waits for its answer.
//!
//! A peer whose round trip has been measured gets three of its smoothed round trips. A peer
//! never measured (most peers a lookup asks were named by another peer's answer) gets what the
//! node has measured of the network as a whole: a smoothed round trip and its variation over
//! every answer, as TCP does for one connection (RFC 6298: timeout = srtt + 4 × rttvar). Both
//! stay within the configured floor and ceiling; before the first answer the node waits the
//! configured initial timeout.

use core::time::Duration;

use crate::config::Config;

/// The node-wide round-trip estimate, from every answered request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttEstimator {
    /// Smoothed round trip in milliseconds; 0 before the first sample.
    srtt_ms: u32,
    /// Smoothed mean deviation of the round trip in milliseconds.
    rttvar_ms: u32,
}

/// Longest round-trip sample taken into account, in milliseconds: an answer later than this is
/// no measure of the network.
const MAX_SAMPLE_MS: u32 = 60_000;

impl RttEstimator {
    /// No sample yet.
    pub const fn new() -> Self {
        RttEstimator { srtt_ms: 0, rttvar_ms: 0 }
    }

    /// An answer came `rtt` after its request was sent: srtt moves 1/8 and rttvar 1/4 of the
    /// way to it, as in RFC 6298; the first sample sets srtt to it and rttvar to half of it.
    pub fn sample(&mut self, rtt: Duration) {
        let s = crate::time::millis(rtt).clamp(1, u64::from(MAX_SAMPLE_MS)) as u32;
        if self.srtt_ms == 0 {
            self.srtt_ms = s;
            self.rttvar_ms = s / 2;
        } else {
            self.rttvar_ms = (3 * self.rttvar_ms + self.srtt_ms.abs_diff(s)) / 4;
            self.srtt_ms = (7 * self.srtt_ms + s) / 8;
        }
    }

    /// The smoothed round trip, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        (self.srtt_ms > 0).then(|| Duration::from_millis(self.srtt_ms.into()))
    }

    /// Timeout of a request to a peer never measured: srtt + 4 × rttvar within
    /// `rpc_timeout_min` and `rpc_timeout_max`; `rpc_timeout_initial` before the first sample.
    pub fn timeout(&self, config: &Config) -> Duration {
        match self.srtt() {
            None => config.rpc_timeout_initial,
            Some(srtt) => (srtt + Duration::from_millis(4 * u64::from(self.rttvar_ms)))
                .clamp(config.rpc_timeout_min, config.rpc_timeout_max),
        }
    }
}

/// Timeout of a request to a peer of smoothed round trip `srtt_ms` (0 while unmeasured): three
/// round trips within `rpc_timeout_min` and `rpc_timeout_max`; the node-wide estimate while the
/// peer's own round trip is unknown.
pub fn timeout(srtt_ms: u16, node: &RttEstimator, config: &Config) -> Duration {
    if srtt_ms == 0 {
        return node.timeout(config);
    }
    (Duration::from_millis(srtt_ms.into()) * 3).clamp(config.rpc_timeout_min, config.rpc_timeout_max)
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    crate::selftest::unit_tests! {
        fn a_request_times_out_after_three_round_trips_within_floor_and_ceiling() {
            let c = Config::default();
            let node = RttEstimator::new();
            assert_eq!(timeout(100, &node, &c), ms(300));
            assert_eq!(timeout(10, &node, &c), c.rpc_timeout_min);
            assert_eq!(timeout(5000, &node, &c), c.rpc_timeout_max);
        }

        fn a_node_that_measured_nothing_waits_the_initial_timeout() {
            let c = Config::default();
            assert_eq!(timeout(0, &RttEstimator::new(), &c), c.rpc_timeout_initial);
        }

        fn a_peer_never_measured_gets_the_network_round_trip_plus_four_deviations() {
            let c = Config::default();
            let mut node = RttEstimator::new();
            node.sample(ms(100));
            // First sample: srtt 100, rttvar 50.
            assert_eq!(timeout(0, &node, &c), ms(300));
            node.sample(ms(300));
            // rttvar = (3 × 50 + 200) / 4 = 87, srtt = (7 × 100 + 300) / 8 = 125.
            assert_eq!(node.srtt(), Some(ms(125)));
            assert_eq!(timeout(0, &node, &c), ms(125 + 4 * 87));
        }

        fn the_network_estimate_stays_within_floor_and_ceiling() {
            let c = Config::default();
            let mut fast = RttEstimator::new();
            for _ in 0..20 {
                fast.sample(ms(2));
            }
            assert_eq!(fast.timeout(&c), c.rpc_timeout_min);
            let mut slow = RttEstimator::new();
            slow.sample(Duration::from_secs(3600));
            assert_eq!(slow.srtt(), Some(ms(u64::from(MAX_SAMPLE_MS))));
            assert_eq!(slow.timeout(&c), c.rpc_timeout_max);
        }
    }
}
