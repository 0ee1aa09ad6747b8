//! The engine: real nodes, an event queue on virtual time, links, faults and the workload.
//!
//! A run has three phases on one virtual clock:
//! 1. build: `nodes` nodes join at `join_rate` per second, each bootstrapping from a random
//!    node that has finished its own bootstrap, then the network settles (bucket refreshes
//!    finish);
//! 2. measure (`duration`): values are put in the first minute; FIND_NODE and FIND_VALUE
//!    lookups start at uniformly random times from random nodes; churn replaces nodes;
//!    publishers may leave; every hour a sample of values is probed;
//! 3. check: churn stops and every stored value is looked up once from a random node other
//!    than its publisher.
//!
//! The simulator is the nodes' front end and nothing more: it hands each node the datagrams
//! addressed to it and its timeouts, drains its outputs, and reads results from its events.
//! Time, links, faults and the drive loop are kad-core's test network
//! ([`kad_core::testnet::Medium`]); the simulator keeps the node table, churn and workload.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant as WallClock};

use kad_core::presets::sim;
use kad_core::testnet::{
    self, addr_of, mix, Armed, Datagram, Delivery, Ev, FaultInjector, Latency, Medium, Queue,
};
use kad_core::{Config, Event, Instant, Key, NodeId, Origin, Outcome, QueryId, QueryStats, ValueKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::hostile::{Coalition, Hostile, Outbox, FORGED};
use crate::oracle::Oracle;
use crate::params::Params;
use crate::report::{round2, round4, Cost, Dist, Hour, Lookups, Network, Phase, Puts, Report, ValueLife};

/// The simulated node: the `sim` capacity preset with its in-memory record store.
pub type SimNode = sim::Node;

/// Node slots (addresses) a run may use: 24 bits of an IPv4 address.
pub const MAX_SLOTS: usize = testnet::medium::MAX_NODES as usize;

/// Departed nodes kept (with their state) for a later return, at most this share of `nodes`.
const OFFLINE_POOL_SHARE: usize = 10;
/// Bootstrap attempts of a joining node before it gives up.
const BOOTSTRAP_ATTEMPTS: u8 = 5;
/// Other nodes tried when a command is refused (busy, or no peers yet).
const COMMAND_ATTEMPTS: usize = 16;
/// Longest wait for the end-of-run checks.
const CHECK_LIMIT: Duration = Duration::from_secs(15 * 60);
/// Puts are spread over this window at the start of the measured phase.
const PUT_WINDOW: Duration = Duration::from_secs(60);
/// FIND_VALUE lookups start this long after the first put (when runs are long enough).
const GET_DELAY: Duration = Duration::from_secs(90);
/// Events between two progress reports.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Where a run is, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// "build", "measure" or "check".
    pub phase: &'a str,
    /// Virtual milliseconds of the phase done.
    pub done: u64,
    /// Virtual milliseconds of the phase in all.
    pub total: u64,
    /// Nodes up.
    pub nodes: usize,
}

#[derive(Clone, Copy, Debug)]
enum Work {
    /// A fresh node joins.
    Join,
    /// A joined node (re)tries to bootstrap.
    Bootstrap {
        slot: u32,
        attempt: u8,
    },
    FindNode,
    Get,
    Put {
        value: u32,
        attempt: u8,
    },
    Churn,
    PublishersLeave,
    Probe {
        hour: u32,
    },
    Check {
        value: u32,
    },
}

/// The medium of a run: its queue and datagrams grow as the run needs them.
type SimMedium = Medium<Work, Vec<testnet::Slot<Ev<Work>>>, Vec<Datagram>>;

struct Slot {
    /// `None` once a departed node is gone for good (its memory is freed).
    node: Option<Box<SimNode>>,
    up: bool,
    /// The earliest wake-up queued for this node.
    armed: Armed,
    /// A publisher (until it leaves on purpose): never picked to leave by churn.
    protected: bool,
    /// Position in `live` while up.
    live_pos: u32,
    /// A hostile node's answers waiting to go out (`None` for an honest node).
    hostile: Option<Box<Outbox>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GetKind {
    Measure,
    Probe(u32),
    Check,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Bootstrap { attempt: u8 },
    FindNode { target: Key },
    Get { value: u32, kind: GetKind },
    Put { value: u32 },
}

struct Value {
    key: Key,
    data: [u8; 32],
    publisher: u32,
    ok: bool,
}

#[derive(Default)]
struct Samples {
    issued: usize,
    abandoned: usize,
    finished: usize,
    succeeded: usize,
    busy_retries: usize,
    rounds: Vec<u64>,
    rpcs: Vec<u64>,
    latency: Vec<u64>,
    k_found: f64,
    returned: usize,
}

impl Samples {
    fn record(&mut self, stats: &QueryStats, ok: bool) {
        self.finished += 1;
        self.succeeded += usize::from(ok);
        self.rounds.push(stats.rounds.into());
        self.rpcs.push(stats.requests.into());
        self.latency.push(stats.finished.saturating_since(stats.started).as_millis() as u64);
    }

    fn report(mut self, with_k: bool) -> Lookups {
        let rate = if self.finished == 0 { 0.0 } else { self.succeeded as f64 / self.finished as f64 };
        Lookups {
            issued: self.issued,
            abandoned: self.abandoned,
            finished: self.finished,
            succeeded: self.succeeded,
            success_rate: round4(rate),
            busy_retries: self.busy_retries,
            rounds: Dist::of(&mut self.rounds),
            rpcs: Dist::of(&mut self.rpcs),
            latency_ms: Dist::of(&mut self.latency),
            k_closest_found: with_k.then(|| round4(self.k_found / self.finished.max(1) as f64)),
            peers_returned: with_k.then(|| round2(self.returned as f64 / self.finished.max(1) as f64)),
        }
    }
}

struct Sim<'p, 'f> {
    p: &'p Params,
    config: Config,
    /// Virtual time, links with their latency, loss and jitter, datagrams in flight.
    medium: SimMedium,
    slots: Vec<Slot>,
    live: Vec<u32>,
    /// Nodes whose bootstrap finished (may hold departed ones; they are dropped when drawn).
    established: Vec<u32>,
    offline: VecDeque<u32>,
    oracle: Oracle,
    /// The hostile nodes, which name each other.
    coalition: Coalition,
    /// Forged values returned: by measured gets, by the end checks.
    forged: (usize, usize),
    /// Node ids, node seeds, latency jitter and loss.
    net_rng: ChaCha8Rng,
    /// The workload: who does what, when.
    work_rng: ChaCha8Rng,
    ops: HashMap<(u32, u64), Op>,
    done: Vec<Finished>,
    values: Vec<Value>,
    ok_values: Vec<u32>,
    churn_until: u64,
    pending_checks: usize,
    // Results.
    find_node: Samples,
    find_value: Samples,
    put_acks: Vec<u64>,
    puts_ok: usize,
    checked: usize,
    retrievable: usize,
    hours: Vec<Hour>,
    net: Network,
    events: u64,
    cpu_at_start: f64,
    phases: Vec<Phase>,
    progress: &'f mut dyn FnMut(Progress<'_>),
}

/// Runs the simulation `p` describes; `progress` is called now and then.
pub fn run(p: &Params, progress: &mut dyn FnMut(Progress<'_>)) -> Report {
    let wall = WallClock::now();
    let mut s = Sim {
        p,
        config: node_config(p),
        medium: medium(p),
        slots: Vec::with_capacity(p.nodes + 16),
        live: Vec::with_capacity(p.nodes),
        established: Vec::with_capacity(p.nodes),
        offline: VecDeque::new(),
        oracle: Oracle::new(),
        coalition: Coalition::default(),
        forged: (0, 0),
        net_rng: ChaCha8Rng::seed_from_u64(p.seed),
        work_rng: ChaCha8Rng::seed_from_u64(mix(p.seed ^ 0x5eed)),
        ops: HashMap::new(),
        done: Vec::new(),
        values: Vec::new(),
        ok_values: Vec::new(),
        churn_until: 0,
        pending_checks: 0,
        find_node: Samples::default(),
        find_value: Samples::default(),
        put_acks: Vec::new(),
        puts_ok: 0,
        checked: 0,
        retrievable: 0,
        hours: Vec::new(),
        net: Network::default(),
        events: 0,
        cpu_at_start: crate::report::cpu_seconds(),
        phases: Vec::new(),
        progress,
    };
    s.build();
    s.phase_done("build");
    s.measure();
    s.phase_done("measure");
    s.check();
    s.phase_done("check");
    s.report(wall.elapsed().as_secs_f64())
}

/// The network of `p`: each link has its own latency, drawn once (by hashing the pair) from
/// the configured range; each datagram may be lost and gets its own jitter.
fn medium(p: &Params) -> SimMedium {
    let latency =
        Latency::PerLink { min_ms: p.latency_min_ms, max_ms: p.latency_max_ms, seed: mix(p.seed ^ 0x11) };
    let link = FaultInjector { loss: p.loss, jitter_ms: p.jitter_ms, ..FaultInjector::new(latency) };
    let queue = Queue::growing(Vec::new(), |q| q.push(testnet::Slot::EMPTY));
    Medium::growing(queue, Vec::new(), |d| d.push(Datagram::EMPTY), link)
}

/// A finished query, judged once the node is drained; peer events are not.
type Finished = (QueryId, QueryStats, Outcome<{ sim::VALUE }>);

fn keep(done: &mut Vec<Finished>, e: Event<{ sim::VALUE }>) {
    if let Event::QueryDone { id, stats, outcome } = e {
        done.push((id, stats, outcome));
    }
}

/// The nodes' settings: the core's defaults, with the record TTL of `p`.
fn node_config(p: &Params) -> Config {
    let mut c = Config::default();
    c.record_ttl = p.record_ttl;
    c.publisher_republish_interval = p.record_ttl;
    c.cache_ttl_max = c.cache_ttl_max.min(p.record_ttl / 2);
    c
}

impl Sim<'_, '_> {
    // ----- phases ----------------------------------------------------------------------------

    /// Records what the phase that just ended cost.
    fn phase_done(&mut self, name: &'static str) {
        let (events, cpu, virt) = self
            .phases
            .iter()
            .fold((0, 0.0, 0.0), |(e, c, v), p| (e + p.events, c + p.cpu_seconds, v + p.virtual_seconds));
        let cpu_now = crate::report::cpu_seconds() - self.cpu_at_start;
        self.phases.push(Phase {
            name,
            virtual_seconds: self.now() as f64 / 1000.0 - virt,
            events: self.events - events,
            cpu_seconds: round2(cpu_now - cpu),
        });
    }

    fn build(&mut self) {
        let gap = 1000.0 / self.p.join_rate;
        for i in 0..self.p.nodes {
            self.schedule((i as f64 * gap) as u64, Work::Join);
        }
        let end = (self.p.nodes as f64 * gap) as u64 + self.p.settle.as_millis() as u64;
        self.run_until(end, "build", 0, end);
    }

    fn measure(&mut self) {
        let p = self.p;
        let start = self.now();
        let dur = p.duration.as_millis() as u64;
        let end = start + dur;
        // Values: distinct random publishers (while there are enough nodes).
        let mut candidates = self.live.clone();
        for v in 0..p.puts {
            let i = v % candidates.len();
            let j = self.work_rng.gen_range(i..candidates.len());
            candidates.swap(i, j);
            let publisher = candidates[i];
            let mut key = [0u8; 20];
            self.work_rng.fill(&mut key);
            let mut data = [0u8; 32];
            self.work_rng.fill(&mut data);
            self.values.push(Value { key: Key::from_bytes(key), data, publisher, ok: false });
            // Publishers stay: for good, or until `publishers_leave_after`.
            self.slots[publisher as usize].protected = true;
            let at = start + (v as u64 * PUT_WINDOW.as_millis() as u64) / p.puts as u64;
            self.schedule(at, Work::Put { value: v as u32, attempt: 0 });
        }
        for _ in 0..p.lookups {
            let at = start + self.work_rng.gen_range(0..dur);
            self.schedule(at, Work::FindNode);
        }
        if p.puts > 0 {
            let from = if dur > 2 * GET_DELAY.as_millis() as u64 { GET_DELAY.as_millis() as u64 } else { 0 };
            for _ in 0..p.gets {
                let at = start + self.work_rng.gen_range(from..dur);
                self.schedule(at, Work::Get);
            }
            for hour in 1..=(dur / 3_600_000) as u32 {
                if p.probe > 0 {
                    self.schedule(start + hour as u64 * 3_600_000, Work::Probe { hour });
                }
            }
        }
        if let Some(after) = p.publishers_leave_after {
            self.schedule(start + after.as_millis() as u64, Work::PublishersLeave);
        }
        if p.churn_per_hour > 0.0 {
            self.churn_until = end;
            let next = self.next_churn_gap();
            self.schedule(start + next, Work::Churn);
        }
        self.run_until(end, "measure", start, end);
    }

    fn check(&mut self) {
        let start = self.now();
        let n = self.ok_values.len().max(1) as u64;
        for (i, &v) in self.ok_values.clone().iter().enumerate() {
            let at = start + (i as u64 * PUT_WINDOW.as_millis() as u64) / n;
            self.schedule(at, Work::Check { value: v });
            self.pending_checks += 1;
        }
        // Until every check and every lookup still under way has finished (bounded).
        let limit = start + CHECK_LIMIT.as_millis() as u64;
        let mut t = start;
        while t < limit {
            t = (t + 10_000).min(limit);
            self.run_until(t, "check", start, limit);
            let busy = self.ops.values().any(|op| !matches!(op, Op::Bootstrap { .. }));
            if self.pending_checks == 0 && !busy && t >= start + PUT_WINDOW.as_millis() as u64 {
                break;
            }
        }
    }

    /// Handles every event up to `until` (inclusive) and moves the clock there.
    fn run_until(&mut self, until: u64, phase: &str, from: u64, to: u64) {
        // Bounded by the queue: every event is popped once, and new ones lie in the future
        // except a node's own deliveries, which the nodes' fixed capacities bound.
        while let Some((at, ev)) = self.medium.next(Instant::from_millis(until)) {
            self.events += 1;
            match ev {
                Ev::Deliver(d) => self.deliver(d),
                Ev::Timer { node } => self.timer(node, at),
                Ev::Work(w) => self.work(w),
            }
            if self.events % PROGRESS_EVERY == 0 {
                let (nodes, done) = (self.live.len(), self.now() - from);
                (self.progress)(Progress { phase, done, total: to - from, nodes });
            }
        }
        self.medium.advance(Instant::from_millis(until));
        let (nodes, done) = (self.live.len(), self.now().min(to) - from);
        (self.progress)(Progress { phase, done, total: to - from, nodes });
    }

    // ----- the network -------------------------------------------------------------------------

    /// The virtual time in milliseconds.
    fn now(&self) -> u64 {
        self.medium.now().as_millis()
    }

    fn instant(&self) -> Instant {
        self.medium.now()
    }

    /// Queues workload `w` at `at` ms.
    fn schedule(&mut self, at: u64, w: Work) {
        self.medium.schedule(Instant::from_millis(at), w);
    }

    /// Drains node `slot`'s outputs after an input (the test network's drive loop: datagrams
    /// onto links, its next wake-up into the queue) and takes its finished queries.
    fn flush(&mut self, slot: u32) {
        let Sim { slots, medium, net_rng, done, coalition, .. } = self;
        let Slot { node: Some(node), armed, hostile, .. } = &mut slots[slot as usize] else { return };
        let on_event = |e| keep(done, e);
        match hostile.as_deref_mut() {
            Some(outbox) => {
                medium.drain(slot, &mut Hostile { node, outbox, coalition }, armed, net_rng, on_event)
            }
            None => medium.drain(slot, &mut **node, armed, net_rng, on_event),
        }
        self.take_done(slot);
    }

    fn deliver(&mut self, d: Delivery) {
        let Sim { slots, medium, net_rng, done, coalition, .. } = self;
        let on_event = |e| keep(done, e);
        match slots.get_mut(d.to as usize) {
            Some(Slot { node: Some(node), up: true, armed, hostile: Some(outbox), .. }) => {
                medium.deliver(d, Some((&mut Hostile { node, outbox, coalition }, armed)), net_rng, on_event)
            }
            Some(Slot { node: Some(node), up: true, armed, .. }) => {
                medium.deliver(d, Some((&mut **node, armed)), net_rng, on_event)
            }
            _ => medium.deliver::<SimNode, { sim::VALUE }, _>(d, None, net_rng, on_event),
        }
        self.take_done(d.to);
    }

    fn timer(&mut self, slot: u32, at: Instant) {
        let Sim { slots, medium, net_rng, done, coalition, .. } = self;
        let Slot { node: Some(node), up: true, armed, hostile, .. } = &mut slots[slot as usize] else {
            return;
        };
        let on_event = |e| keep(done, e);
        match hostile.as_deref_mut() {
            Some(outbox) => {
                medium.wake(slot, at, &mut Hostile { node, outbox, coalition }, armed, net_rng, on_event)
            }
            None => medium.wake(slot, at, &mut **node, armed, net_rng, on_event),
        }
        self.take_done(slot);
    }

    /// Judges the queries node `slot` finished.
    fn take_done(&mut self, slot: u32) {
        let mut finished = std::mem::take(&mut self.done);
        for (id, stats, outcome) in finished.drain(..) {
            self.query_done(slot, id, stats, outcome);
        }
        self.done = finished;
    }

    // ----- membership -----------------------------------------------------------------------

    fn random_live(&mut self) -> Option<u32> {
        if self.live.is_empty() {
            return None;
        }
        Some(self.live[self.work_rng.gen_range(0..self.live.len())])
    }

    /// A bootstrap node for `joiner`: a random node that is up and has finished its own
    /// bootstrap, as a front end's configured bootstrap list would hold.
    fn random_seed(&mut self, joiner: u32) -> Option<u32> {
        // Bounded: every draw either returns or removes a departed node from the list.
        for _ in 0..self.established.len() + COMMAND_ATTEMPTS {
            if self.established.is_empty() {
                break;
            }
            let i = self.work_rng.gen_range(0..self.established.len());
            let slot = self.established[i];
            if !self.slots[slot as usize].up {
                self.established.swap_remove(i);
            } else if slot != joiner {
                return Some(slot);
            }
        }
        (0..COMMAND_ATTEMPTS).find_map(|_| self.random_live().filter(|&s| s != joiner))
    }

    fn set_up(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.up = true;
        if s.hostile.is_some() {
            // Never picked for work or churn, never the truth.
            return;
        }
        s.live_pos = self.live.len() as u32;
        self.live.push(slot);
        if let Some(n) = &s.node {
            self.oracle.insert(n.id(), slot);
        }
    }

    fn set_down(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.up = false;
        s.armed = Armed::NONE;
        let pos = s.live_pos as usize;
        if let Some(n) = &s.node {
            self.oracle.remove(&n.id());
        }
        self.live.swap_remove(pos);
        if let Some(&moved) = self.live.get(pos) {
            self.slots[moved as usize].live_pos = pos as u32;
        }
        // Its queries will never report back while it is away: they are not judged.
        let (fnode, fvalue, hours) = (&mut self.find_node, &mut self.find_value, &mut self.hours);
        let mut checks = 0;
        self.ops.retain(|&(s, _), op| {
            if s != slot {
                return true;
            }
            match op {
                Op::FindNode { .. } => fnode.abandoned += 1,
                Op::Get { kind: GetKind::Measure, .. } => fvalue.abandoned += 1,
                Op::Get { kind: GetKind::Check, .. } => checks += 1,
                Op::Get { kind: GetKind::Probe(hour), .. } => {
                    if let Some(h) = hours.iter_mut().find(|h| h.hour == *hour) {
                        h.probed -= 1;
                    }
                }
                _ => {}
            }
            false
        });
        self.pending_checks -= checks;
    }

    /// A fresh node with a new id and address joins through a random node that is up.
    fn join(&mut self) {
        if self.slots.len() >= MAX_SLOTS {
            return;
        }
        let slot = self.slots.len() as u32;
        let id = NodeId::random(&mut self.net_rng);
        let now = self.instant();
        let node = Box::new(SimNode::new(id, self.config, sim::Store::new(), &mut self.net_rng, now));
        // The first `nodes` joins build the network; `hostile` of them, spread evenly, are
        // hostile (no random draw, so runs without hostile nodes are unchanged).
        let i = self.net.joins as f64;
        let hostile = self.net.joins < self.p.nodes
            && ((i + 1.0) * self.p.hostile).floor() > (i * self.p.hostile).floor();
        if hostile {
            self.coalition.join(kad_core::Peer { id, addr: addr_of(slot) });
        }
        self.slots.push(Slot {
            node: Some(node),
            up: false,
            armed: Armed::NONE,
            protected: false,
            live_pos: 0,
            hostile: hostile.then(Box::default),
        });
        self.net.joins += 1;
        let first = self.live.is_empty();
        self.set_up(slot);
        if first {
            self.established.push(slot);
            self.flush(slot);
        } else {
            self.bootstrap(slot, 0);
        }
    }

    fn bootstrap(&mut self, slot: u32, attempt: u8) {
        if !self.slots[slot as usize].up {
            return;
        }
        let Some(seed) = self.random_seed(slot) else { return };
        let now = self.instant();
        let Some(node) = self.slots[slot as usize].node.as_deref_mut() else { return };
        if let Ok(q) = node.bootstrap(&[addr_of(seed)], now) {
            self.ops.insert((slot, q.0), Op::Bootstrap { attempt });
        }
        self.flush(slot);
    }

    /// A node leaves silently; it may come back later with its state, or never.
    fn leave(&mut self, slot: u32, may_return: bool) {
        self.set_down(slot);
        self.net.leaves += 1;
        if may_return {
            self.offline.push_back(slot);
            if self.offline.len() > self.p.nodes / OFFLINE_POOL_SHARE + 1 {
                if let Some(old) = self.offline.pop_front() {
                    self.slots[old as usize].node = None;
                }
            }
        } else {
            self.slots[slot as usize].node = None;
        }
    }

    /// A departed node comes back: its clock jumps, its timers fire, it carries on.
    fn come_back(&mut self, slot: u32) {
        self.set_up(slot);
        self.established.push(slot);
        self.net.rejoins += 1;
        let now = self.instant();
        if let Some(node) = self.slots[slot as usize].node.as_deref_mut() {
            node.handle_timeout(now);
        }
        self.flush(slot);
    }

    fn next_churn_gap(&mut self) -> u64 {
        let per_ms = self.p.churn_per_hour * self.p.nodes as f64 / 3_600_000.0;
        let u: f64 = self.work_rng.gen_range(f64::EPSILON..1.0);
        (-u.ln() / per_ms).ceil() as u64
    }

    fn churn(&mut self) {
        if self.now() >= self.churn_until {
            return;
        }
        let gap = self.next_churn_gap();
        self.schedule(self.now() + gap, Work::Churn);
        let leaver = (0..COMMAND_ATTEMPTS)
            .find_map(|_| self.random_live().filter(|&s| !self.slots[s as usize].protected));
        let Some(leaver) = leaver else { return };
        let keep_state = self.work_rng.gen_bool(self.p.rejoin);
        self.leave(leaver, keep_state);
        let returning = !self.offline.is_empty() && self.work_rng.gen_bool(self.p.rejoin);
        if returning {
            let i = self.work_rng.gen_range(0..self.offline.len());
            if let Some(slot) = self.offline.swap_remove_back(i) {
                if slot != leaver {
                    self.come_back(slot);
                    return;
                }
                self.offline.push_back(slot);
            }
        }
        self.join();
    }

    // ----- the workload ---------------------------------------------------------------------

    fn work(&mut self, w: Work) {
        match w {
            Work::Join => self.join(),
            Work::Bootstrap { slot, attempt } => self.bootstrap(slot, attempt),
            Work::FindNode => self.start_find_node(),
            Work::Get => {
                if self.ok_values.is_empty() {
                    return;
                }
                let v = self.ok_values[self.work_rng.gen_range(0..self.ok_values.len())];
                self.start_get(v, GetKind::Measure);
            }
            Work::Put { value, attempt } => self.start_put(value, attempt),
            Work::Churn => self.churn(),
            Work::PublishersLeave => {
                for v in 0..self.values.len() {
                    let slot = self.values[v].publisher;
                    self.slots[slot as usize].protected = false;
                    if self.slots[slot as usize].up {
                        self.leave(slot, false);
                        self.join();
                    }
                }
            }
            Work::Probe { hour } => self.probe(hour),
            Work::Check { value } => {
                if !self.start_get(value, GetKind::Check) {
                    self.pending_checks -= 1;
                }
            }
        }
    }

    /// Runs `command` on random live nodes (not `avoid`) until one accepts it.
    fn on_some_node(
        &mut self,
        avoid: Option<u32>,
        mut command: impl FnMut(&mut SimNode, Instant) -> Result<QueryId, kad_core::Error>,
    ) -> Result<(u32, QueryId), usize> {
        let now = self.instant();
        let mut refused = 0;
        for _ in 0..COMMAND_ATTEMPTS {
            let Some(slot) = self.random_live() else { break };
            if Some(slot) == avoid {
                continue;
            }
            let Some(node) = self.slots[slot as usize].node.as_deref_mut() else { continue };
            match command(node, now) {
                Ok(q) => return Ok((slot, q)),
                Err(_) => refused += 1,
            }
        }
        Err(refused)
    }

    fn start_find_node(&mut self) {
        let mut t = [0u8; 20];
        self.work_rng.fill(&mut t);
        let target = Key::from_bytes(t);
        self.find_node.issued += 1;
        match self.on_some_node(None, |n, now| n.find_node(target, now)) {
            Ok((slot, q)) => {
                self.ops.insert((slot, q.0), Op::FindNode { target });
                self.flush(slot);
            }
            Err(refused) => {
                self.find_node.busy_retries += refused;
                self.find_node.abandoned += 1;
            }
        }
    }

    /// Starts a FIND_VALUE of value `v` from a random node other than its publisher.
    fn start_get(&mut self, v: u32, kind: GetKind) -> bool {
        let (key, publisher) = (self.values[v as usize].key, self.values[v as usize].publisher);
        let measured = kind == GetKind::Measure;
        self.find_value.issued += usize::from(measured);
        match self.on_some_node(Some(publisher), |n, now| n.get(key, now)) {
            Ok((slot, q)) => {
                self.ops.insert((slot, q.0), Op::Get { value: v, kind });
                self.flush(slot);
                true
            }
            Err(refused) => {
                if measured {
                    self.find_value.busy_retries += refused;
                    self.find_value.abandoned += 1;
                }
                false
            }
        }
    }

    fn start_put(&mut self, v: u32, attempt: u8) {
        let now = self.instant();
        let (key, data, slot) = {
            let val = &self.values[v as usize];
            (val.key, val.data, val.publisher)
        };
        let s = &mut self.slots[slot as usize];
        let Some(node) = s.node.as_deref_mut().filter(|_| s.up) else { return };
        match node.put(key, ValueKind::Bytes, &data, now) {
            Ok(q) => {
                self.ops.insert((slot, q.0), Op::Put { value: v });
                self.flush(slot);
            }
            Err(_) if attempt < 10 => {
                let next = Work::Put { value: v, attempt: attempt + 1 };
                self.schedule(self.now() + 5_000, next);
            }
            Err(_) => self.put_acks.push(0),
        }
    }

    /// Probes a sample of the stored values and counts the live primary copies of each.
    fn probe(&mut self, hour: u32) {
        let now = self.instant();
        let mut copies: HashMap<Key, u32> = HashMap::new();
        for &slot in &self.live {
            let Some(node) = self.slots[slot as usize].node.as_deref() else { continue };
            for r in node.store().iter() {
                let primary =
                    r.origin == Origin::Publisher || (r.origin == Origin::Replica && r.expires_at > now);
                if primary {
                    *copies.entry(r.key).or_default() += 1;
                }
            }
        }
        let n = self.values.len().max(1) as f64;
        let held = self.values.iter().filter(|v| copies.contains_key(&v.key)).count();
        let total: u32 = self.values.iter().filter_map(|v| copies.get(&v.key)).sum();
        self.hours.push(Hour {
            hour,
            probed: 0,
            found: 0,
            held: round4(held as f64 / n),
            copies: round2(total as f64 / n),
        });
        let sample = self.p.probe.min(self.values.len());
        let mut order: Vec<u32> = (0..self.values.len() as u32).collect();
        for i in 0..sample {
            let j = self.work_rng.gen_range(i..order.len());
            order.swap(i, j);
            if self.start_get(order[i], GetKind::Probe(hour)) {
                if let Some(h) = self.hours.last_mut() {
                    h.probed += 1;
                }
            }
        }
    }

    // ----- results --------------------------------------------------------------------------

    fn query_done(&mut self, slot: u32, id: QueryId, stats: QueryStats, outcome: Outcome<{ sim::VALUE }>) {
        let Some(op) = self.ops.remove(&(slot, id.0)) else { return };
        match (op, outcome) {
            (Op::Bootstrap { attempt }, Outcome::Bootstrap(r)) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.net.bootstraps_ok += 1;
                    if self.slots[slot as usize].hostile.is_none() {
                        self.established.push(slot);
                    }
                } else {
                    self.net.bootstraps_failed += 1;
                    if attempt + 1 < BOOTSTRAP_ATTEMPTS {
                        let w = Work::Bootstrap { slot, attempt: attempt + 1 };
                        self.schedule(self.now() + 30_000, w);
                    }
                }
            }
            (Op::FindNode { target }, Outcome::FindNode(r)) => {
                let own = self.slots[slot as usize].node.as_ref().map(|n| n.id());
                let truth = self.oracle.closest(&target, sim::K, own.as_ref());
                let found = r
                    .as_ref()
                    .map_or(0, |peers| truth.iter().filter(|t| peers.iter().any(|p| p.id == **t)).count());
                let ok = match (&r, truth.first()) {
                    (Ok(peers), Some(best)) => peers.iter().any(|p| p.id == *best),
                    _ => false,
                };
                self.find_node.k_found += found as f64 / truth.len().max(1) as f64;
                self.find_node.returned += r.as_ref().map_or(0, |peers| peers.len());
                self.find_node.record(&stats, ok);
            }
            (Op::Get { value, kind }, Outcome::Get(r)) => {
                let ok = matches!(&r, Ok(rec) if rec.value() == self.values[value as usize].data);
                let forged = usize::from(matches!(&r, Ok(rec) if rec.value() == FORGED));
                match kind {
                    GetKind::Measure => {
                        self.forged.0 += forged;
                        self.find_value.record(&stats, ok)
                    }
                    GetKind::Probe(hour) => {
                        if let Some(h) = self.hours.iter_mut().find(|h| h.hour == hour) {
                            h.found += usize::from(ok);
                        }
                    }
                    GetKind::Check => {
                        self.forged.1 += forged;
                        self.pending_checks -= 1;
                        self.checked += 1;
                        self.retrievable += usize::from(ok);
                    }
                }
            }
            (Op::Put { value }, Outcome::Put(r)) => {
                let acks = r.map_or(0, |a| a.stored);
                self.put_acks.push(acks.into());
                if acks > 0 {
                    self.puts_ok += 1;
                    self.values[value as usize].ok = true;
                    self.ok_values.push(value);
                }
            }
            _ => {}
        }
    }

    fn report(mut self, wall_seconds: f64) -> Report {
        // Queries still under way never reported back: their nodes were up, so count them as
        // finished without success rather than hide them.
        let mut left: Vec<((u32, u64), Op)> = self.ops.drain().collect();
        left.sort_by_key(|(k, _)| *k);
        for (_, op) in left {
            let stats = QueryStats::default();
            match op {
                Op::FindNode { .. } => self.find_node.record(&stats, false),
                Op::Get { kind: GetKind::Measure, .. } => self.find_value.record(&stats, false),
                Op::Get { kind: GetKind::Check, .. } => self.checked += 1,
                _ => {}
            }
        }
        let (mut contacts, mut buckets) = (0usize, 0usize);
        for &slot in &self.live {
            let Some(node) = self.slots[slot as usize].node.as_deref() else { continue };
            contacts += node.routing().len();
            buckets += node.routing().bucket_count();
            self.net.buckets_max = self.net.buckets_max.max(node.routing().bucket_count());
            let st = node.stats();
            self.net.timeouts += st.timeouts;
            self.net.retries += st.retries;
            self.net.liveness_pings += st.liveness_pings;
            self.net.rebootstraps += st.rebootstraps;
            self.net.requests_deferred += st.requests_deferred;
            self.net.replies_dropped += st.replies_dropped;
            self.net.records_evicted += st.records_evicted;
            self.net.replications += st.replications;
            self.net.republished += st.republished;
            for (sum, n) in self.net.requests_by_kind.iter_mut().zip(st.requests_out.iter().map(|(_, n)| n)) {
                *sum += n;
            }
        }
        let sent = self.medium.counters();
        (self.net.datagrams, self.net.lost, self.net.to_down_nodes) = (sent.sent, sent.lost, sent.to_down);
        self.net.nodes_up_at_end = self.live.len();
        self.net.contacts_per_node = round2(contacts as f64 / self.live.len().max(1) as f64);
        self.net.buckets_per_node = round2(buckets as f64 / self.live.len().max(1) as f64);
        let mut life = ValueLife { hours: std::mem::take(&mut self.hours), ..ValueLife::default() };
        for h in &life.hours {
            if h.probed > 0 && h.found == 0 && life.gone_at_hour.is_none() {
                life.gone_at_hour = Some(h.hour);
            }
        }
        life.retrievable_99_until_hour = life
            .hours
            .iter()
            .take_while(|h| h.probed > 0 && h.found as f64 >= 0.99 * h.probed as f64)
            .last()
            .map(|h| h.hour);
        let checked = self.checked;
        let puts = Puts {
            issued: self.values.len(),
            succeeded: self.puts_ok,
            acks: Dist::of(&mut self.put_acks),
            checked_at_end: checked,
            retrievable_at_end: self.retrievable,
            retrievable_share: round4(self.retrievable as f64 / checked.max(1) as f64),
        };
        let cost = Cost {
            bytes_per_node: std::mem::size_of::<SimNode>(),
            events: self.events,
            virtual_seconds: self.now() as f64 / 1000.0,
            wall_seconds: round2(wall_seconds),
            cpu_seconds: round2(crate::report::cpu_seconds() - self.cpu_at_start),
            events_per_second: (self.events as f64 / wall_seconds.max(1e-9)).round(),
            peak_rss_bytes: crate::report::peak_rss_bytes(),
            phases: std::mem::take(&mut self.phases),
        };
        let hostile = (!self.coalition.is_empty()).then(|| crate::report::Hostile {
            nodes: self.coalition.len(),
            forged_returned: self.forged.0,
            forged_at_end: self.forged.1,
            forged_held_by_honest: self
                .live
                .iter()
                .filter_map(|&s| self.slots[s as usize].node.as_deref())
                .filter(|n| n.store().iter().any(|r| r.value() == FORGED))
                .count(),
        });
        Report {
            params: self.p.clone(),
            hostile,
            find_node: std::mem::take(&mut self.find_node).report(true),
            find_value: std::mem::take(&mut self.find_value).report(false),
            puts,
            value_life: life,
            network: self.net,
            cost,
        }
    }
}
