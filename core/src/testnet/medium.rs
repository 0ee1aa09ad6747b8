//! The medium between test nodes: their addresses, the datagrams in flight, the event queue
//! and the one drive loop (feed an input, then take `poll_output` until `Timeout`). Shared by
//! [`super::Net`] and by a simulator that keeps its own node table.

use core::convert::Infallible;

use rand::Rng;

use super::link::{Fate, FaultInjector};
use super::queue::{Queue, Slot};
use crate::addr::PeerAddr;
use crate::node::{Event, Node, Output};
use crate::store::RecordStore;
use crate::time::Instant;
use crate::wire::MAX_DATAGRAM;

/// The UDP port of every test node.
pub const PORT: u16 = 4000;
/// Node numbers fit in 22 bits: node `n` is `w.x.y.1:4000` with `w = 10 + (n >> 16)` and
/// `x.y` the low 16 bits of `n`, so that every node has a /24 of its own, as on the internet
/// (the routing table's diversity limits count /24s), and no address is loopback (127/8).
pub const MAX_NODES: u32 = 1 << 22;

/// The address of node `n` (an in-memory label: nothing touches a socket).
pub fn addr_of(n: u32) -> PeerAddr {
    PeerAddr::V4([10 + (n >> 16) as u8, (n >> 8) as u8, n as u8, 1], PORT)
}

/// The node an address belongs to, if it is a test node's.
pub fn node_of(addr: PeerAddr) -> Option<u32> {
    match addr {
        PeerAddr::V4([w @ 10..=73, x, y, 1], PORT) => Some(u32::from_be_bytes([0, w - 10, x, y])),
        _ => None,
    }
}

/// A datagram in flight; fill new storage with [`Datagram::EMPTY`].
#[derive(Clone, Debug)]
pub struct Datagram {
    len: u16,
    next_free: u32,
    bytes: [u8; MAX_DATAGRAM],
}

impl Datagram {
    /// An unused buffer.
    pub const EMPTY: Self = Datagram { len: 0, next_free: NONE, bytes: [0; MAX_DATAGRAM] };
}

const NONE: u32 = u32::MAX;

/// A datagram due for delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Sender.
    pub from: u32,
    /// Destination.
    pub to: u32,
    buf: u32,
}

/// What the queue holds: datagrams, nodes' wake-ups, and the caller's own events `W`
/// (a workload; [`Infallible`] when there is none).
#[derive(Clone, Copy, Debug)]
pub enum Ev<W = Infallible> {
    /// A datagram arrives.
    Deliver(Delivery),
    /// A node's wake-up (possibly superseded: see [`Medium::wake`]).
    Timer {
        /// The node.
        node: u32,
    },
    /// The caller's event.
    Work(W),
}

/// What the medium needs of a node: its inputs and its one output. Implemented for kad-core's
/// [`Node`] of every capacity, so that the medium and [`super::Net`] need not name them all.
pub trait Driven<const V: usize> {
    /// [`Node::handle_datagram`].
    fn handle_datagram(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]);
    /// [`Node::handle_timeout`].
    fn handle_timeout(&mut self, now: Instant);
    /// [`Node::poll_output`].
    fn poll_output(&mut self, buf: &mut [u8]) -> Output<V>;
    /// [`Node::poll_timeout`].
    fn poll_timeout(&self) -> Instant;
}

impl<
        S: RecordStore<V>,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
    > Driven<V> for Node<S, B, K, R, Q, P, V, PV, E>
{
    fn handle_datagram(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        Node::handle_datagram(self, now, from, bytes)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now)
    }
    fn poll_output(&mut self, buf: &mut [u8]) -> Output<V> {
        Node::poll_output(self, buf)
    }
    fn poll_timeout(&self) -> Instant {
        Node::poll_timeout(self)
    }
}

/// The earliest wake-up queued for a node, kept by whoever keeps the node, so that a wake-up
/// is queued once and superseded ones are recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Armed(Option<Instant>);

impl Armed {
    /// Nothing queued.
    pub const NONE: Armed = Armed(None);
}

/// What the medium did with the datagrams it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams the nodes sent.
    pub sent: u64,
    /// Lost to the link's loss probability.
    pub lost: u64,
    /// Dropped at a partition.
    pub cut: u64,
    /// Sent to an address of no node.
    pub unroutable: u64,
    /// Dropped because the datagram storage was full (a test's storage too small).
    pub no_room: u64,
    /// Handed to their destination.
    pub delivered: u64,
    /// Arrived at a node that was down or gone.
    pub to_down: u64,
}

/// Datagrams between nodes on virtual time: the queue (storage `QS`), the datagrams in flight
/// (storage `BS`), the link and its faults.
pub struct Medium<W, QS, BS> {
    queue: Queue<Ev<W>, QS>,
    bufs: BS,
    free: u32,
    grow_bufs: Option<fn(&mut BS)>,
    /// The link every datagram takes; change it at any time (a partition that heals).
    pub link: FaultInjector,
    counters: Counters,
}

impl<W, QS, BS> Medium<W, QS, BS>
where
    QS: AsRef<[Slot<Ev<W>>]> + AsMut<[Slot<Ev<W>>]>,
    BS: AsRef<[Datagram]> + AsMut<[Datagram]>,
{
    /// A medium with `queue` and `datagrams` as storage; datagrams beyond its capacity are
    /// dropped and counted (`no_room`).
    pub fn new(queue: Queue<Ev<W>, QS>, datagrams: BS, link: FaultInjector) -> Self {
        let mut m = Medium {
            queue,
            bufs: datagrams,
            free: NONE,
            grow_bufs: None,
            link,
            counters: Counters::default(),
        };
        m.link_free(0);
        m
    }

    /// As [`Medium::new`], with datagram storage that `grow` lengthens (with
    /// [`Datagram::EMPTY`]) when it is full.
    pub fn growing(queue: Queue<Ev<W>, QS>, datagrams: BS, grow: fn(&mut BS), link: FaultInjector) -> Self {
        Medium { grow_bufs: Some(grow), ..Medium::new(queue, datagrams, link) }
    }

    /// Puts buffers `from..` on the free list.
    fn link_free(&mut self, from: usize) {
        let bufs = self.bufs.as_mut();
        for i in (from..bufs.len()).rev() {
            bufs[i].next_free = self.free;
            self.free = i as u32;
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.queue.now()
    }

    /// What happened to the datagrams so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Events waiting (datagrams in flight, wake-ups, work).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Queues the caller's event `work` at `at`.
    ///
    /// # Panics
    /// When the queue is full and cannot grow: the caller gave too little storage.
    pub fn schedule(&mut self, at: Instant, work: W) {
        self.push(at, Ev::Work(work));
    }

    fn push(&mut self, at: Instant, ev: Ev<W>) {
        if self.queue.push(at, ev).is_err() {
            panic!("the test network's event queue is full: give it more slots");
        }
    }

    /// The next event due at or before `until`; the clock moves to its time.
    pub fn next(&mut self, until: Instant) -> Option<(Instant, Ev<W>)> {
        self.queue.pop(until)
    }

    /// Moves the clock forward to `until`.
    pub fn advance(&mut self, until: Instant) {
        self.queue.advance(until)
    }

    /// A free datagram buffer, growing the storage when it may.
    fn take_buf(&mut self) -> Option<u32> {
        if self.free == NONE {
            if let Some(grow) = self.grow_bufs {
                let old = self.bufs.as_ref().len();
                grow(&mut self.bufs);
                self.link_free(old);
            }
        }
        let buf = self.free;
        if buf == NONE {
            return None;
        }
        self.free = self.bufs.as_ref()[buf as usize].next_free;
        Some(buf)
    }

    fn release(&mut self, buf: u32) {
        self.bufs.as_mut()[buf as usize].next_free = self.free;
        self.free = buf;
    }

    /// Sends the first `len` bytes of buffer `buf` (`None`: there was no room) from node `from`
    /// to `to` over the link: lost, cut, or queued for delivery.
    fn send<G: Rng + ?Sized>(&mut self, from: u32, to: PeerAddr, buf: Option<u32>, len: usize, rng: &mut G) {
        self.counters.sent += 1;
        let dest = node_of(to);
        let c = &mut self.counters;
        match (self.link.transit(from, dest, rng), dest, buf) {
            (Fate::Arrives(delay), Some(to), Some(buf)) => {
                self.bufs.as_mut()[buf as usize].len = len as u16;
                let at = self.now() + delay;
                return self.push(at, Ev::Deliver(Delivery { from, to, buf }));
            }
            (Fate::Arrives(_), Some(_), None) => c.no_room += 1,
            (Fate::Lost, ..) => c.lost += 1,
            (Fate::Cut, ..) => c.cut += 1,
            (Fate::Arrives(_) | Fate::Unroutable, ..) => c.unroutable += 1,
        }
        if let Some(buf) = buf {
            self.release(buf);
        }
    }

    /// Queues node `n`'s wake-up at `at` unless one at or before it is queued already.
    pub fn arm(&mut self, n: u32, at: Instant, armed: &mut Armed) {
        let at = at.max(self.now());
        if armed.0.is_none_or(|queued| at < queued) {
            *armed = Armed(Some(at));
            self.push(at, Ev::Timer { node: n });
        }
    }

    /// The one drive loop, after any input to node `n` (a datagram, a timeout, a command):
    /// takes its outputs until `Timeout`, sending each datagram over the link, handing each
    /// event to `on_event`, and queuing the wake-up.
    pub fn drain<N: Driven<V>, const V: usize, G: Rng + ?Sized>(
        &mut self,
        n: u32,
        node: &mut N,
        armed: &mut Armed,
        rng: &mut G,
        mut on_event: impl FnMut(Event<V>),
    ) {
        // Bounded: a node's datagrams and events are bounded by its capacities.
        loop {
            // The node writes straight into the buffer the datagram travels in.
            let buf = self.take_buf();
            let out = match buf {
                Some(b) => node.poll_output(&mut self.bufs.as_mut()[b as usize].bytes),
                None => node.poll_output(&mut [0u8; MAX_DATAGRAM]),
            };
            if let Output::Transmit(t) = out {
                self.send(n, t.to, buf, t.len, rng);
                continue;
            }
            if let Some(b) = buf {
                self.release(b);
            }
            match out {
                Output::Event(e) => on_event(e),
                Output::Timeout(at) => return self.arm(n, at, armed),
                Output::Transmit(_) => {}
            }
        }
    }

    /// Hands datagram `d` to its destination `to` (`None`: down or gone, counted) and drains it.
    pub fn deliver<N: Driven<V>, const V: usize, G: Rng + ?Sized>(
        &mut self,
        d: Delivery,
        to: Option<(&mut N, &mut Armed)>,
        rng: &mut G,
        on_event: impl FnMut(Event<V>),
    ) {
        let now = self.now();
        match to {
            Some((node, armed)) => {
                let b = &self.bufs.as_ref()[d.buf as usize];
                node.handle_datagram(now, addr_of(d.from), &b.bytes[..b.len as usize]);
                self.release(d.buf);
                self.counters.delivered += 1;
                self.drain(d.to, node, armed, rng, on_event);
            }
            None => {
                self.release(d.buf);
                self.counters.to_down += 1;
            }
        }
    }

    /// Handles the wake-up of node `n` queued at `at`: only the node's current one acts (an
    /// earlier one was queued since, or it is down: nothing); when the node's deadline moved
    /// later it is queued again, else the node handles its timeout and is drained.
    pub fn wake<N: Driven<V>, const V: usize, G: Rng + ?Sized>(
        &mut self,
        n: u32,
        at: Instant,
        node: &mut N,
        armed: &mut Armed,
        rng: &mut G,
        on_event: impl FnMut(Event<V>),
    ) {
        if *armed != Armed(Some(at)) {
            return;
        }
        *armed = Armed::NONE;
        let due = node.poll_timeout();
        if due > at {
            self.arm(n, due, armed);
        } else {
            node.handle_timeout(self.now());
            self.drain(n, node, armed, rng, on_event);
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::id::NodeId;
    use crate::presets::embedded;
    use crate::testnet::link::Latency;
    use crate::NodeRng;
    use rand_core::SeedableRng;

    /// A node that has just pinged nodes 1, 2 and 3 (three datagrams waiting), its wake-up
    /// (none queued yet) and the RNG of the test.
    fn pinging(seed: u64) -> (embedded::Node, Armed, NodeRng) {
        let mut rng = NodeRng::seed_from_u64(seed);
        let id = NodeId::random(&mut rng);
        let mut node =
            embedded::Node::new(id, Config::default(), embedded::Store::new(), &mut rng, Instant::ZERO);
        node.bootstrap(&[addr_of(1), addr_of(2), addr_of(3)], Instant::ZERO).unwrap();
        (node, Armed::NONE, rng)
    }

    /// A medium with room for `N` datagrams in flight.
    fn medium<const N: usize>() -> Medium<Infallible, [Slot<Ev>; 8], [Datagram; N]> {
        Medium::new(Queue::new([Slot::EMPTY; 8]), [Datagram::EMPTY; N], LINK)
    }

    const LINK: FaultInjector = FaultInjector::new(Latency::Fixed { ms: 5 });

    crate::selftest::unit_tests! {
        fn addresses_map_to_node_numbers_and_back() {
            for n in [0, 1, 255, 256, 65_536, MAX_NODES - 1] {
                assert_eq!(node_of(addr_of(n)), Some(n));
            }
            assert_eq!(node_of(PeerAddr::V4([10, 0, 0, 1], PORT + 1)), None);
            assert_ne!(addr_of(0).prefix(), addr_of(1).prefix(), "neighbours are in different /24s");
            assert_eq!(node_of(PeerAddr::V4([192, 0, 2, 1], PORT)), None);
        }

        fn a_drained_node_s_datagrams_arrive_in_order_after_its_link_s_delay() {
            let (mut node, mut armed, mut rng) = pinging(1);
            let mut m = medium::<4>();
            m.drain(0, &mut node, &mut armed, &mut rng, |_| {});
            assert_eq!((m.counters().sent, m.pending()), (3, 4), "three datagrams and a wake-up");
            for to in 1..=3 {
                match m.next(Instant::from_millis(1000)) {
                    Some((at, Ev::Deliver(d))) => {
                        assert_eq!((at, d.from, d.to), (Instant::from_millis(5), 0, to));
                        // Nobody is there: counted, and its buffer is free again.
                        m.deliver::<embedded::Node, { embedded::VALUE }, _>(d, None, &mut rng, |_| {});
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(m.counters().to_down, 3);
            let (mut free, mut b) = (0, m.free);
            while b != NONE {
                (free, b) = (free + 1, m.bufs[b as usize].next_free);
            }
            assert_eq!(free, 4, "every buffer is free again");
            assert!(matches!(m.next(Instant::from_millis(60_000)), Some((_, Ev::Timer { node: 0 }))));
        }

        fn a_full_datagram_storage_counts_what_it_drops_unless_it_grows() {
            let (mut node, mut armed, mut rng) = pinging(2);
            let mut fixed = medium::<1>();
            fixed.drain(0, &mut node, &mut armed, &mut rng, |_| {});
            assert_eq!((fixed.counters().sent, fixed.counters().no_room), (3, 2));
            let (mut node, mut armed, mut rng) = pinging(2);
            let grow = |v: &mut heapless::Vec<Datagram, 4>| {
                let _ = v.push(Datagram::EMPTY);
            };
            let mut growing = Medium::growing(Queue::new([Slot::<Ev>::EMPTY; 8]), heapless::Vec::new(), grow, LINK);
            growing.drain(0, &mut node, &mut armed, &mut rng, |_| {});
            // Three datagrams, and the buffer offered to the poll that said Timeout.
            assert_eq!((growing.counters().no_room, growing.bufs.len()), (0, 4));
        }

        fn only_a_node_s_latest_wake_up_acts() {
            let (mut node, mut armed, mut rng) = pinging(3);
            let mut m = medium::<4>();
            let (early, late) = (Instant::from_millis(1), Instant::from_millis(3_600_000));
            m.arm(0, late, &mut armed);
            m.arm(0, early, &mut armed);
            m.arm(0, late, &mut armed);
            assert_eq!((armed, m.pending()), (Armed(Some(early)), 2), "a later one is not queued again");
            // A superseded wake-up does nothing.
            let stats = *node.stats();
            m.wake(0, late, &mut node, &mut armed, &mut rng, |_| {});
            assert_eq!((armed, m.pending(), *node.stats()), (Armed(Some(early)), 2, stats));
            // The current one, before the node's deadline: queued again for the deadline.
            assert!(matches!(m.next(late), Some((at, Ev::Timer { node: 0 })) if at == early));
            m.wake(0, early, &mut node, &mut armed, &mut rng, |_| {});
            let deadline = node.poll_timeout();
            assert!(deadline > early);
            assert_eq!((armed, *node.stats()), (Armed(Some(deadline)), stats));
            // At the deadline the node handles its timeout: its pings are sent again.
            assert!(matches!(m.next(late), Some((at, Ev::Timer { node: 0 })) if at == deadline));
            m.wake(0, deadline, &mut node, &mut armed, &mut rng, |_| {});
            assert!(node.stats().retries > stats.retries, "{:?}", node.stats());
        }
    }
}
