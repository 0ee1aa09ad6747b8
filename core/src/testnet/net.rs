//! [`Net`]: N real nodes on one [`Medium`], with what a test does to them: give commands and
//! wait for their outcomes, run for a while, silence nodes (building a network of kad-core
//! nodes is in [`super::scenarios`]).

use core::convert::Infallible;
use core::marker::PhantomData;
use core::time::Duration;

use crate::NodeRng;
use rand_core::SeedableRng;

use super::medium::{Armed, Datagram, Driven, Ev, Medium};
use super::queue::Slot;
use crate::node::{Error, Event, Outcome, QueryId, QueryStats};
use crate::time::Instant;

/// Finished queries a node keeps until a test takes them; beyond, the oldest is dropped.
pub const DONE: usize = 8;
/// Events one [`Net::run_for`] or [`Net::wait`] may handle before the test counts the network
/// as running away.
pub const MAX_STEPS: u64 = 100_000_000;
/// How long [`Net::wait`] waits for a query, in virtual time.
pub const WAIT_LIMIT: Duration = Duration::from_secs(3600);

/// A finished query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done<const V: usize> {
    /// The id its command returned.
    pub id: QueryId,
    /// Its counters.
    pub stats: QueryStats,
    /// Its result.
    pub outcome: Outcome<V>,
}

/// A place for one node of a [`Net`]; fill new storage with [`Host::EMPTY`].
pub struct Host<N, const V: usize> {
    node: Option<N>,
    up: bool,
    armed: Armed,
    done: heapless::Vec<Done<V>, DONE>,
}

impl<N, const V: usize> Host<N, V> {
    /// An empty place.
    pub const EMPTY: Self = Host { node: None, up: false, armed: Armed::NONE, done: heapless::Vec::new() };
}

/// N real nodes exchanging datagrams in memory on virtual time (the quinn-proto `Pair` idea,
/// for N nodes). Node `i` has address [`super::addr_of`]`(i)`. All storage is the caller's: `HS`
/// holds the nodes (its length is the most nodes the network can have), `QS` and `BS` are the
/// [`Medium`]'s queue and datagrams in flight.
pub struct Net<N, const V: usize, HS, QS, BS> {
    hosts: HS,
    len: usize,
    nodes: PhantomData<N>,
    /// Datagrams, wake-ups and the link; its counters say what happened to the datagrams.
    pub medium: Medium<Infallible, QS, BS>,
    /// Seeded: node ids and seeds, latencies and faults, and whatever a test draws.
    pub rng: NodeRng,
}

impl<N: Driven<V>, const V: usize, HS, QS, BS> Net<N, V, HS, QS, BS>
where
    HS: AsRef<[Host<N, V>]> + AsMut<[Host<N, V>]>,
    QS: AsRef<[Slot<Ev>]> + AsMut<[Slot<Ev>]>,
    BS: AsRef<[Datagram]> + AsMut<[Datagram]>,
{
    /// An empty network on `medium`, with room for as many nodes as `hosts` has places (filled
    /// with [`Host::EMPTY`]), at time 1 ms, with everything random drawn from `seed`. Nodes
    /// join with [`Net::join`] (or [`Net::add`] for kad-core nodes).
    pub fn new(hosts: HS, mut medium: Medium<Infallible, QS, BS>, seed: u64) -> Self {
        medium.advance(Instant::from_millis(1));
        Net { hosts, len: 0, nodes: PhantomData, medium, rng: NodeRng::seed_from_u64(seed) }
    }

    /// Nodes added so far (up or not).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first node is added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.medium.now()
    }

    /// Adds `node`, up, and drains it; its index.
    ///
    /// # Panics
    /// When the host storage is full.
    pub fn join(&mut self, node: N) -> usize {
        let i = self.len;
        let host = self.hosts.as_mut().get_mut(i).expect("the test network's host storage is full");
        *host = Host { node: Some(node), up: true, ..Host::EMPTY };
        self.len += 1;
        self.flush(i);
        i
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &N {
        self.hosts.as_ref()[i].node.as_ref().expect("no node at this index")
    }

    /// Node `i`, to give it input directly; call [`Net::flush`] after.
    pub fn node_mut(&mut self, i: usize) -> &mut N {
        self.hosts.as_mut()[i].node.as_mut().expect("no node at this index")
    }

    /// Drains node `i` after an input: its datagrams go out, its finished queries are kept.
    pub fn flush(&mut self, i: usize) {
        let Net { hosts, medium, rng, .. } = self;
        let Host { node: Some(node), up: true, armed, done } = &mut hosts.as_mut()[i] else { return };
        medium.drain(i as u32, node, armed, rng, |e| keep(done, e));
    }

    /// Gives node `i` a command at the current time and drains it.
    pub fn command(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut N, Instant) -> Result<QueryId, Error>,
    ) -> Result<QueryId, Error> {
        let now = self.now();
        let q = f(self.node_mut(i), now);
        self.flush(i);
        q
    }

    /// Gives node `i` a command and runs the network until its query finishes.
    ///
    /// # Panics
    /// When the command is refused.
    pub fn query(&mut self, i: usize, f: impl FnOnce(&mut N, Instant) -> Result<QueryId, Error>) -> Done<V> {
        match self.command(i, f) {
            Ok(q) => self.wait(i, q),
            Err(e) => panic!("node {i} refused the command: {e}"),
        }
    }

    /// Runs until node `i` reports query `q` finished and takes it.
    ///
    /// # Panics
    /// When it does not finish within [`WAIT_LIMIT`] of virtual time.
    pub fn wait(&mut self, i: usize, q: QueryId) -> Done<V> {
        self.wait_for(i, Some(q))
    }

    /// Runs until node `i` has a finished query (the oldest not yet taken) and takes it.
    pub fn next_done(&mut self, i: usize) -> Done<V> {
        self.wait_for(i, None)
    }

    fn wait_for(&mut self, i: usize, q: Option<QueryId>) -> Done<V> {
        let until = self.now() + WAIT_LIMIT;
        for _ in 0..MAX_STEPS {
            let done = &mut self.hosts.as_mut()[i].done;
            if let Some(pos) = done.iter().position(|d| q.is_none_or(|q| d.id == q)) {
                return done.remove(pos);
            }
            if !self.step(until) {
                break;
            }
        }
        panic!("query {q:?} of node {i} did not finish within {WAIT_LIMIT:?} of virtual time");
    }

    /// Handles the next datagram or wake-up due by `until`; false when there is none.
    pub fn step(&mut self, until: Instant) -> bool {
        let Some((at, ev)) = self.medium.next(until) else { return false };
        let Net { hosts, medium, rng, .. } = self;
        match ev {
            Ev::Deliver(d) => match hosts.as_mut().get_mut(d.to as usize) {
                Some(Host { node: Some(node), up: true, armed, done }) => {
                    medium.deliver(d, Some((node, armed)), rng, |e| keep(done, e))
                }
                _ => medium.deliver::<N, V, _>(d, None, rng, |_| {}),
            },
            Ev::Timer { node: n } => {
                if let Some(Host { node: Some(node), up: true, armed, done }) =
                    hosts.as_mut().get_mut(n as usize)
                {
                    medium.wake(n, at, node, armed, rng, |e| keep(done, e));
                }
            }
            Ev::Work(never) => match never {},
        }
        true
    }

    /// Runs for `d` of virtual time.
    ///
    /// # Panics
    /// After [`MAX_STEPS`] events.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now() + d;
        for _ in 0..MAX_STEPS {
            if !self.step(until) {
                return self.medium.advance(until);
            }
        }
        panic!("the test network did not settle within {MAX_STEPS} events");
    }

    /// Silences node `i` for good: it neither sends nor receives from now on (datagrams it
    /// sent before still arrive).
    pub fn kill(&mut self, i: usize) {
        let host = &mut self.hosts.as_mut()[i];
        host.up = false;
        host.armed = Armed::NONE;
    }

    /// True when node `i` exists and is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.hosts.as_ref().get(i).is_some_and(|h| h.up)
    }

    /// The nodes that are up.
    pub fn alive(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.is_up(i))
    }
}

/// Keeps a finished query for [`Net::wait`]; peer events are dropped.
fn keep<const V: usize>(done: &mut heapless::Vec<Done<V>, DONE>, e: Event<V>) {
    if let Event::QueryDone { id, stats, outcome } = e {
        if done.is_full() {
            done.remove(0);
        }
        let _ = done.push(Done { id, stats, outcome });
    }
}
