//! Caller-supplied time: the core never reads a clock.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time in milliseconds since an epoch the caller chooses (boot, UNIX, page load).
/// Only differences matter, and time must not run backwards between calls.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(&self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(&self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(millis(d)))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(millis(d)))
    }
}

/// `d` in whole milliseconds, at most `u64::MAX`: `d.as_millis()` without its 128-bit
/// arithmetic, which 32-bit targets (wasm32, RV32, Thumb) emulate in code at every use.
pub(crate) fn millis(d: Duration) -> u64 {
    d.as_secs().saturating_mul(1000).saturating_add(u64::from(d.subsec_millis()))
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    crate::selftest::unit_tests! {
        fn millis_is_as_millis_saturated_to_u64() {
            let cases = [
                Duration::ZERO,
                Duration::from_nanos(999_999),
                Duration::from_micros(1_500),
                Duration::new(12, 345_678_901),
                Duration::from_millis(u64::MAX),
                Duration::new(u64::MAX / 1000, 999_999_999),
                Duration::new(u64::MAX / 1000 + 1, 0),
                Duration::MAX,
            ];
            for d in cases {
                assert_eq!(millis(d), d.as_millis().min(u64::MAX as u128) as u64);
            }
        }
    }
}
