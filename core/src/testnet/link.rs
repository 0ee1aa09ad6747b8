//! Links between test nodes: how long a datagram takes ([`Latency`]) and what goes wrong on the
//! way ([`FaultInjector`]: loss, extra delay, jitter, partitions), drawn from the caller's
//! seeded RNG in a fixed order so that a run can be repeated exactly.

use core::time::Duration;

use rand::Rng;

/// How long a datagram takes from one node to another, when nothing goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// Every datagram takes `ms` milliseconds.
    Fixed {
        /// One-way delay.
        ms: u64,
    },
    /// Each datagram takes its own time, drawn uniformly from `min_ms..=max_ms`.
    Uniform {
        /// Shortest delay.
        min_ms: u64,
        /// Longest delay.
        max_ms: u64,
    },
    /// Each link (a pair of nodes) has its own delay, drawn once from `min_ms..=max_ms` by
    /// hashing the pair with `seed`: the same both ways, and it needs no memory.
    PerLink {
        /// Shortest delay.
        min_ms: u64,
        /// Longest delay.
        max_ms: u64,
        /// Chooses which link gets which delay.
        seed: u64,
    },
}

impl Latency {
    /// The delay of a datagram from node `from` to node `to` (draws from `rng` only for
    /// [`Latency::Uniform`]).
    pub fn delay_ms<G: Rng + ?Sized>(&self, from: u32, to: u32, rng: &mut G) -> u64 {
        match *self {
            Latency::Fixed { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => rng.gen_range(min_ms..=max_ms.max(min_ms)),
            Latency::PerLink { min_ms, max_ms, seed } => {
                let (x, y) = if from < to { (from, to) } else { (to, from) };
                let h = mix(seed ^ (((x as u64) << 32) | y as u64));
                min_ms + h % (max_ms.saturating_sub(min_ms) + 1)
            }
        }
    }
}

/// Nodes `start..end` (by index) on one side of a partition, every other node on the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Island {
    /// First node on the island.
    pub start: u32,
    /// One past the last node on the island.
    pub end: u32,
}

impl Island {
    /// True when `a` and `b` are on different sides.
    pub fn separates(&self, a: u32, b: u32) -> bool {
        let inside = |n: u32| (self.start..self.end).contains(&n);
        inside(a) != inside(b)
    }
}

/// What happens to one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost on the way (the loss probability).
    Lost,
    /// Sent to an address no test node has.
    Unroutable,
    /// Between the two sides of a partition.
    Cut,
    /// Arrives after this long.
    Arrives(Duration),
}

/// A link with faults, wrapped around a [`Latency`] the way smoltcp's `FaultInjector` wraps a
/// device: each datagram may be lost, is delayed by `delay_ms` plus up to `jitter_ms` more, and
/// does not cross a partition. [`FaultInjector::new`] starts with no faults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultInjector {
    /// The delay of a datagram that gets through.
    pub latency: Latency,
    /// Probability that a datagram is lost, 0.0..1.0.
    pub loss: f64,
    /// Extra delay of every datagram.
    pub delay_ms: u64,
    /// Extra random delay of each datagram, uniform in `0..=jitter_ms` (reorders datagrams).
    pub jitter_ms: u64,
    /// When set, no datagram crosses between the island and the rest.
    pub island: Option<Island>,
}

impl FaultInjector {
    /// A link that only delays, by `latency`.
    pub const fn new(latency: Latency) -> Self {
        FaultInjector { latency, loss: 0.0, delay_ms: 0, jitter_ms: 0, island: None }
    }

    /// Decides the fate of a datagram from node `from` to node `to` (`None`: an address of no
    /// node). Draws, in this order and only when they apply: loss (when `loss > 0`), the
    /// latency, jitter (when `jitter_ms > 0`); so the loss draw does not depend on the
    /// destination and a run's draws follow its datagrams one by one.
    pub fn transit<G: Rng + ?Sized>(&self, from: u32, to: Option<u32>, rng: &mut G) -> Fate {
        if self.loss > 0.0 && rng.gen::<f64>() < self.loss {
            return Fate::Lost;
        }
        let Some(to) = to else { return Fate::Unroutable };
        if self.island.is_some_and(|i| i.separates(from, to)) {
            return Fate::Cut;
        }
        let mut ms = self.latency.delay_ms(from, to, rng) + self.delay_ms;
        if self.jitter_ms > 0 {
            ms += rng.gen_range(0..=self.jitter_ms);
        }
        Fate::Arrives(Duration::from_millis(ms))
    }
}

/// splitmix64: a stateless 64-bit mix, for seeds and per-link values that need no memory.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::NodeRng;
    use rand_core::SeedableRng;

    fn arrival_ms(f: Fate) -> u64 {
        match f {
            Fate::Arrives(d) => d.as_millis() as u64,
            other => panic!("{other:?}"),
        }
    }

    crate::selftest::unit_tests! {
        fn a_link_has_one_latency_both_ways_within_its_range() {
            let mut rng = NodeRng::seed_from_u64(1);
            let l = Latency::PerLink { min_ms: 10, max_ms: 200, seed: 9 };
            let mut distinct = 0;
            for a in 0..50u32 {
                let ab = l.delay_ms(a, a + 7, &mut rng);
                assert_eq!(ab, l.delay_ms(a + 7, a, &mut rng));
                assert!((10..=200).contains(&ab));
                distinct += usize::from(ab != l.delay_ms(a, a + 8, &mut rng));
            }
            assert!(distinct > 40, "links differ: {distinct}");
            assert_eq!(Latency::Fixed { ms: 2 }.delay_ms(1, 2, &mut rng), 2);
            for _ in 0..100 {
                assert!((5..=50).contains(&Latency::Uniform { min_ms: 5, max_ms: 50 }.delay_ms(1, 2, &mut rng)));
            }
        }

        fn loss_drops_about_its_share_and_delay_and_jitter_add_up() {
            let mut rng = NodeRng::seed_from_u64(2);
            let link = FaultInjector {
                loss: 0.25,
                delay_ms: 100,
                jitter_ms: 10,
                ..FaultInjector::new(Latency::Fixed { ms: 5 })
            };
            let (mut lost, mut reordered, mut last) = (0, 0, 0);
            for _ in 0..4000 {
                match link.transit(0, Some(1), &mut rng) {
                    Fate::Lost => lost += 1,
                    f => {
                        let ms = arrival_ms(f);
                        assert!((105..=115).contains(&ms), "{ms}");
                        reordered += usize::from(ms < last);
                        last = ms;
                    }
                }
            }
            assert!((850..1150).contains(&lost), "lost {lost} of 4000 at 25%");
            assert!(reordered > 100, "jitter reorders: {reordered}");
            let lossless = FaultInjector { loss: 0.0, ..link };
            assert_eq!(lossless.transit(0, None, &mut rng), Fate::Unroutable);
        }

        fn a_partition_cuts_only_the_links_that_cross_it() {
            let mut rng = NodeRng::seed_from_u64(3);
            let link = FaultInjector {
                island: Some(Island { start: 5, end: 10 }),
                ..FaultInjector::new(Latency::Fixed { ms: 1 })
            };
            assert_eq!(link.transit(1, Some(7), &mut rng), Fate::Cut);
            assert_eq!(link.transit(9, Some(0), &mut rng), Fate::Cut);
            assert_eq!(link.transit(5, Some(9), &mut rng), Fate::Arrives(Duration::from_millis(1)));
            assert_eq!(link.transit(4, Some(10), &mut rng), Fate::Arrives(Duration::from_millis(1)));
        }

        fn the_loss_draw_comes_first_and_only_when_there_is_loss() {
            let jittery = FaultInjector { jitter_ms: 1000, ..FaultInjector::new(Latency::Fixed { ms: 0 }) };
            // No loss and no destination: nothing is drawn.
            let (mut a, mut b) = (NodeRng::seed_from_u64(4), NodeRng::seed_from_u64(4));
            assert_eq!(jittery.transit(0, None, &mut a), Fate::Unroutable);
            assert_eq!(a.gen::<u64>(), b.gen::<u64>());
            // With loss, each datagram draws its loss first, then (if it gets through) its jitter.
            let lossy = FaultInjector { loss: 0.5, ..jittery };
            let (mut c, mut d) = (NodeRng::seed_from_u64(5), NodeRng::seed_from_u64(5));
            let mut both = [0; 2];
            for _ in 0..40 {
                let lost = d.gen::<f64>() < 0.5;
                let expected = if lost { Fate::Lost } else { jittery.transit(0, Some(1), &mut d) };
                assert_eq!(lossy.transit(0, Some(1), &mut c), expected);
                both[usize::from(lost)] += 1;
            }
            assert!(both[0] > 0 && both[1] > 0, "{both:?}");
        }
    }
}
