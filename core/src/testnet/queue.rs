//! The event queue on virtual time: events come out by time, events of the same millisecond in
//! the order they were scheduled, so that a seeded run is the same run every time.
//!
//! A binary heap ordered by (time, scheduling order) in storage the caller gives: a fixed array
//! on a microcontroller, a `Vec` on a host; storage that may grow names how with
//! [`Queue::growing`] (the simulator's queue holds millions of events, a number no one knows
//! before the run).

use core::marker::PhantomData;

use crate::time::Instant;

/// One place in a queue's storage; fill new storage with [`Slot::EMPTY`].
#[derive(Clone, Copy, Debug)]
pub struct Slot<E> {
    at: Instant,
    seq: u64,
    ev: Option<E>,
}

impl<E> Slot<E> {
    /// An unused place.
    pub const EMPTY: Self = Slot { at: Instant::ZERO, seq: 0, ev: None };

    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

/// Events of type `E` on a virtual clock, in storage `S` (`[Slot<E>; N]`, `&mut [Slot<E>]`,
/// `Vec<Slot<E>>`, ...).
pub struct Queue<E, S> {
    slots: S,
    len: usize,
    seq: u64,
    now: Instant,
    grow: Option<fn(&mut S)>,
    events: PhantomData<E>,
}

impl<E, S: AsRef<[Slot<E>]> + AsMut<[Slot<E>]>> Queue<E, S> {
    /// An empty queue at time zero that holds at most as many events as `storage` has slots.
    pub fn new(storage: S) -> Self {
        Queue { slots: storage, len: 0, seq: 0, now: Instant::ZERO, grow: None, events: PhantomData }
    }

    /// An empty queue whose storage `grow` lengthens (with [`Slot::EMPTY`]) when it is full.
    pub fn growing(storage: S, grow: fn(&mut S)) -> Self {
        Queue { grow: Some(grow), ..Queue::new(storage) }
    }

    /// The virtual time: that of the last event taken, or where [`Queue::advance`] moved it.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `ev` at `at` (a time in the past means now: after what is already due now).
    /// Gives `ev` back when the storage is full and cannot grow.
    pub fn push(&mut self, at: Instant, ev: E) -> Result<(), E> {
        if self.len == self.slots.as_ref().len() {
            if let Some(grow) = self.grow {
                grow(&mut self.slots);
            }
            if self.len >= self.slots.as_ref().len() {
                return Err(ev);
            }
        }
        self.seq += 1;
        let slot = Slot { at: at.max(self.now), seq: self.seq, ev: Some(ev) };
        let slots = self.slots.as_mut();
        // Sift up: bounded by the heap's depth.
        let mut i = self.len;
        while i > 0 {
            let parent = (i - 1) / 2;
            if slots[parent].key() <= slot.key() {
                break;
            }
            slots[i] = Slot { ev: slots[parent].ev.take(), ..slots[parent] };
            i = parent;
        }
        slots[i] = slot;
        self.len += 1;
        Ok(())
    }

    /// Takes the next event due at or before `until` and moves the clock to its time.
    pub fn pop(&mut self, until: Instant) -> Option<(Instant, E)> {
        if self.len == 0 || self.slots.as_ref()[0].at > until {
            return None;
        }
        self.len -= 1;
        let slots = self.slots.as_mut();
        let first = Slot { ev: slots[0].ev.take(), ..slots[0] };
        let last = Slot { ev: slots[self.len].ev.take(), ..slots[self.len] };
        // Sift the last entry down from the root: bounded by the heap's depth.
        let mut i = 0;
        loop {
            let mut child = 2 * i + 1;
            if child >= self.len {
                break;
            }
            if child + 1 < self.len && slots[child + 1].key() < slots[child].key() {
                child += 1;
            }
            if last.key() <= slots[child].key() {
                break;
            }
            slots[i] = Slot { ev: slots[child].ev.take(), ..slots[child] };
            i = child;
        }
        if self.len > 0 {
            slots[i] = last;
        }
        self.now = first.at;
        first.ev.map(|ev| (first.at, ev))
    }

    /// Moves the clock forward to `until` (never back).
    pub fn advance(&mut self, until: Instant) {
        self.now = self.now.max(until);
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    crate::selftest::unit_tests! {
        fn events_come_out_by_time_then_in_scheduling_order() {
            let mut q = Queue::new([Slot::EMPTY; 16]);
            let times = [5u64, 70_000, 3, 5, 4095, 4096, 9000, 3, 70_000, 0];
            for (i, &t) in times.iter().enumerate() {
                q.push(ms(t), i).unwrap();
            }
            let mut expected: heapless::Vec<(u64, usize), 16> = times.iter().copied().zip(0..).collect();
            expected.sort_unstable();
            let mut got = heapless::Vec::<(u64, usize), 16>::new();
            while let Some((at, i)) = q.pop(ms(u64::MAX)) {
                got.push((at.as_millis(), i)).unwrap();
            }
            assert_eq!(got, expected);
            assert!(q.is_empty());
        }

        fn nothing_after_until_is_taken_and_later_pushes_still_order() {
            let mut q = Queue::new([Slot::EMPTY; 4]);
            q.push(ms(10), 'a').unwrap();
            q.push(ms(20_000), 'c').unwrap();
            assert_eq!(q.pop(ms(15)), Some((ms(10), 'a')));
            assert_eq!(q.pop(ms(15)), None);
            q.push(ms(16), 'b').unwrap();
            q.push(ms(15), 'x').unwrap();
            assert_eq!(q.pop(ms(u64::MAX)), Some((ms(15), 'x')));
            assert_eq!(q.pop(ms(u64::MAX)), Some((ms(16), 'b')));
            assert_eq!(q.pop(ms(u64::MAX)), Some((ms(20_000), 'c')));
            assert_eq!(q.pop(ms(u64::MAX)), None);
        }

        fn an_event_scheduled_for_now_or_the_past_comes_after_what_is_already_due() {
            let mut q = Queue::new([Slot::EMPTY; 4]);
            q.push(ms(7), 1).unwrap();
            q.push(ms(7), 2).unwrap();
            assert_eq!(q.pop(ms(100)), Some((ms(7), 1)));
            q.push(ms(7), 3).unwrap();
            q.push(ms(2), 4).unwrap();
            assert_eq!(q.pop(ms(100)), Some((ms(7), 2)));
            assert_eq!(q.pop(ms(100)), Some((ms(7), 3)));
            assert_eq!(q.pop(ms(100)), Some((ms(7), 4)));
            assert_eq!(q.now(), ms(7));
        }

        fn a_full_queue_gives_the_event_back_unless_its_storage_grows() {
            let mut fixed = Queue::new([Slot::EMPTY; 2]);
            fixed.push(ms(1), 1).unwrap();
            fixed.push(ms(2), 2).unwrap();
            assert_eq!(fixed.push(ms(3), 3), Err(3));
            let mut growing = Queue::growing(heapless::Vec::<Slot<u32>, 8>::new(), |v| {
                let _ = v.push(Slot::EMPTY);
            });
            for t in (0..8).rev() {
                growing.push(ms(t), t as u32).unwrap();
            }
            assert_eq!(growing.push(ms(9), 9), Err(9), "heapless storage stops at its capacity");
            for t in 0..8 {
                assert_eq!(growing.pop(ms(100)), Some((ms(t), t as u32)));
            }
        }
    }
}
