//! Back-pressure on full query slots: the one policy every front end follows, and the
//! fixed-capacity queue of waiting commands it needs.
//!
//! A node runs at most `Q` queries at once (user and maintenance); a command given while every
//! slot is taken is refused with [`Error::Busy`](crate::Error::Busy). Front ends do not pass
//! that refusal on to their callers. Their policy, the same in kad-host, kad-wasm and
//! kad-embedded:
//!
//! 1. **Wait in line.** Every command that starts a query waits, first in first out, in a
//!    bounded queue instead of going to the node directly: a [`Backlog`] (kad-host, kad-wasm),
//!    or a bounded command channel that holds nothing else (kad-embedded, where a second copy
//!    of each command would cost RAM).
//! 2. **Start as slots free.** After each input given to the node (a datagram, a timeout, a
//!    command) and after each finished query taken from [`Node::poll_output`](crate::Node::poll_output)
//!    (`Event::QueryDone` frees its slot), the front end starts waiting commands, oldest first,
//!    while [`Node::can_start_query`](crate::Node::can_start_query):
//!    `while let Some(c) = backlog.next_to_start(node.can_start_query()) { start(c) }`; a
//!    channel used as the backlog is read only then. A command the node refuses for another
//!    reason (no peers, value too large) fails to its caller when it starts.
//! 3. **Push back when full.** While the queue is full the front end takes no new command:
//!    callers wait in its bounded command channel (kad-host, kad-embedded), and a caller that
//!    cannot be made to wait (a browser call hands back its Promise at once) is refused with
//!    [`Full`].
//!
//! A burst of commands therefore neither fails nor grows memory: it waits, bounded at every
//! stage, and starts in the order it came.

use core::fmt;

use heapless::Deque;

/// Commands waiting for a free query slot, oldest first; at most `N`.
pub struct Backlog<C, const N: usize> {
    waiting: Deque<C, N>,
}

/// A command the backlog could not take: it already holds `capacity` commands.
pub struct Full<C> {
    /// The command, handed back to be refused to its caller.
    pub command: C,
    /// The backlog's capacity.
    pub capacity: usize,
}

impl<C> fmt::Display for Full<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} commands are already waiting for a free query slot; retry when a query finishes",
            self.capacity
        )
    }
}

impl<C> fmt::Debug for Full<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Full").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl<C, const N: usize> Default for Backlog<C, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C, const N: usize> Backlog<C, N> {
    /// An empty backlog.
    pub const fn new() -> Self {
        Backlog { waiting: Deque::new() }
    }

    /// Whether it can take another command; while it cannot, the front end takes none.
    pub fn has_room(&self) -> bool {
        !self.waiting.is_full()
    }

    /// Commands waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when no command waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Puts a command at the end of the line, or hands it back when the backlog is full.
    pub fn push(&mut self, command: C) -> Result<(), Full<C>> {
        self.waiting.push_back(command).map_err(|command| Full { command, capacity: N })
    }

    /// The oldest waiting command when `can_start` (give it [`Node::can_start_query`](crate::Node::can_start_query), so
    /// that the command is never refused as busy); `None` otherwise.
    pub fn next_to_start(&mut self, can_start: bool) -> Option<C> {
        if can_start {
            self.waiting.pop_front()
        } else {
            None
        }
    }

    /// Takes every waiting command, oldest first (a front end that stops fails them).
    pub fn drain(&mut self) -> impl Iterator<Item = C> + '_ {
        core::iter::from_fn(|| self.waiting.pop_front())
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::store::{MemoryStore, Origin, Record, RecordStore, ValueKind};
    use crate::wire::MAX_DATAGRAM;
    use crate::NodeRng;
    use crate::{Config, Error, Event, Instant, Key, Node, NodeId, Output};
    use rand_core::SeedableRng;

    /// One query slot, a store of one record.
    type OneSlot = Node<MemoryStore<1, 16>, 4, 2, 1, 1, 4, 16, 1, 2>;

    fn one_slot_node_holding(key: Key) -> OneSlot {
        let mut rng = NodeRng::seed_from_u64(3);
        let mut node = OneSlot::new(
            NodeId::random(&mut rng),
            Config::default(),
            MemoryStore::new(),
            &mut rng,
            Instant::ZERO,
        );
        let record = Record {
            key,
            kind: ValueKind::Text,
            data: heapless::Vec::from_slice(b"held").unwrap(),
            signer: None,
            origin: Origin::Publisher,
            expires_at: Instant::from_millis(1),
            stored_at: Instant::ZERO,
            republished_at: Instant::ZERO,
            source: None,
        };
        node.store_mut().put(record).unwrap();
        node
    }

    crate::selftest::unit_tests! {
        fn commands_wait_in_order_and_start_only_while_the_node_can_start_a_query() {
            let key = Key::hash(b"k");
            let mut node = one_slot_node_holding(key);
            let mut backlog: Backlog<u8, 4> = Backlog::new();
            for c in [1, 2, 3] {
                backlog.push(c).unwrap();
            }
            // A get the local store answers still holds the one slot until its result is taken.
            assert_eq!(backlog.next_to_start(node.can_start_query()), Some(1));
            node.get(key, Instant::ZERO).unwrap();
            assert_eq!(backlog.next_to_start(node.can_start_query()), None);
            // Exactly when the backlog holds back, the node itself would refuse as busy.
            assert_eq!(node.get(key, Instant::ZERO), Err(Error::Busy { capacity: 1 }));
            let mut buf = [0u8; MAX_DATAGRAM];
            assert!(matches!(node.poll_output(&mut buf), Output::Event(Event::QueryDone { .. })));
            assert_eq!(backlog.next_to_start(node.can_start_query()), Some(2));
            assert_eq!(backlog.len(), 1);
        }

        fn a_full_backlog_hands_the_command_back_and_says_what_to_do() {
            let mut backlog: Backlog<u8, 2> = Backlog::new();
            backlog.push(1).unwrap();
            assert!(backlog.has_room());
            backlog.push(2).unwrap();
            assert!(!backlog.has_room());
            let full = backlog.push(3).unwrap_err();
            assert_eq!((full.command, full.capacity), (3, 2));
            let mut msg = heapless::String::<128>::new();
            core::fmt::write(&mut msg, format_args!("{full}")).unwrap();
            assert_eq!(
                msg.as_str(),
                "2 commands are already waiting for a free query slot; retry when a query finishes"
            );
        }

        fn a_stopping_front_end_takes_every_waiting_command_oldest_first() {
            let mut backlog: Backlog<u8, 3> = Backlog::new();
            for c in [7, 8, 9] {
                backlog.push(c).unwrap();
            }
            let mut order = heapless::Vec::<u8, 3>::new();
            for c in backlog.drain() {
                order.push(c).unwrap();
            }
            assert_eq!(&order[..], &[7, 8, 9]);
            assert!(backlog.is_empty() && backlog.has_room());
        }
    }
}
