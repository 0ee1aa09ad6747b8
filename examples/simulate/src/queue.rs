//! The event queue on virtual time: a calendar (timing wheel) of one-millisecond slots for
//! the next few seconds, and a binary heap for anything later.
//!
//! Nearly every event (a datagram in flight, a request timeout) falls within the wheel, where
//! scheduling and taking are O(1); the heap holds the sparse far future (maintenance ticks,
//! the workload). Events of the same millisecond come out in the order they were scheduled,
//! exactly as from a heap ordered by (time, sequence number), so runs are deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Milliseconds covered by the wheel (a power of two).
const WHEEL: u64 = 4096;
const MASK: u64 = WHEEL - 1;

struct Far<E> {
    at: u64,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Far<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<E> Eq for Far<E> {}
impl<E> PartialOrd for Far<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Far<E> {
    /// Reversed: the heap pops the earliest first, ties in scheduling order.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Events of type `E` ordered by virtual time in milliseconds.
pub struct Queue<E> {
    wheel: Vec<Vec<E>>,
    /// The millisecond being drained; nothing earlier is left.
    cur: u64,
    /// Events of `cur` being handed out, and the next to hand out.
    draining: Vec<E>,
    pos: usize,
    in_wheel: usize,
    far: BinaryHeap<Far<E>>,
    seq: u64,
}

impl<E: Copy> Default for Queue<E> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<E: Copy> Queue<E> {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        Queue {
            wheel: (0..WHEEL).map(|_| Vec::new()).collect(),
            cur: 0,
            draining: Vec::new(),
            pos: 0,
            in_wheel: 0,
            far: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.in_wheel + self.far.len() + (self.draining.len() - self.pos)
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `ev` at `at` (an event in the past is due at once).
    pub fn push(&mut self, at: u64, ev: E) {
        let at = at.max(self.cur);
        if at < self.cur + WHEEL {
            self.wheel[(at & MASK) as usize].push(ev);
            self.in_wheel += 1;
        } else {
            self.seq += 1;
            self.far.push(Far { at, seq: self.seq, ev });
        }
    }

    /// The next event due at or before `until`, with its time.
    pub fn pop(&mut self, until: u64) -> Option<(u64, E)> {
        // Bounded: each pass hands out an event, refills from a slot, or moves `cur` forward
        // by at least one millisecond towards `until`.
        loop {
            if self.pos < self.draining.len() {
                if self.cur > until {
                    return None;
                }
                self.pos += 1;
                return Some((self.cur, self.draining[self.pos - 1]));
            }
            self.draining.clear();
            self.pos = 0;
            let slot = &mut self.wheel[(self.cur & MASK) as usize];
            if !slot.is_empty() {
                std::mem::swap(&mut self.draining, slot);
                self.in_wheel -= self.draining.len();
                continue;
            }
            let next = if self.in_wheel > 0 {
                self.cur + 1
            } else {
                match self.far.peek() {
                    Some(f) => f.at,
                    None => return None,
                }
            };
            if next > until {
                return None;
            }
            self.cur = next;
            // Far events now within the wheel move into it, oldest first, so that they come
            // before anything scheduled directly into their slot later.
            while self.far.peek().is_some_and(|f| f.at < self.cur + WHEEL) {
                if let Some(f) = self.far.pop() {
                    self.wheel[(f.at & MASK) as usize].push(f.ev);
                    self.in_wheel += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_in_scheduling_order() {
        let mut q = Queue::new();
        let times = [5u64, 70_000, 3, 5, 4095, 4096, 9000, 3, 70_000, 0];
        for (i, &t) in times.iter().enumerate() {
            q.push(t, i);
        }
        let mut expected: Vec<(u64, usize)> = times.iter().copied().zip(0..).collect();
        expected.sort();
        let mut got = Vec::new();
        while let Some(e) = q.pop(u64::MAX) {
            got.push(e);
        }
        assert_eq!(got, expected);
        assert!(q.is_empty());
    }

    #[test]
    fn nothing_after_until_is_taken_and_later_pushes_still_order() {
        let mut q = Queue::new();
        q.push(10, 'a');
        q.push(20_000, 'c');
        assert_eq!(q.pop(15), Some((10, 'a')));
        assert_eq!(q.pop(15), None);
        q.push(16, 'b');
        q.push(15, 'x');
        assert_eq!(q.pop(u64::MAX), Some((15, 'x')));
        assert_eq!(q.pop(u64::MAX), Some((16, 'b')));
        assert_eq!(q.pop(u64::MAX), Some((20_000, 'c')));
        assert_eq!(q.pop(u64::MAX), None);
    }

    #[test]
    fn an_event_scheduled_for_the_current_millisecond_comes_out_after_the_others() {
        let mut q = Queue::new();
        q.push(7, 1);
        q.push(7, 2);
        assert_eq!(q.pop(100), Some((7, 1)));
        q.push(7, 3);
        assert_eq!(q.pop(100), Some((7, 2)));
        assert_eq!(q.pop(100), Some((7, 3)));
    }
}
