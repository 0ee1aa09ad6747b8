//! The core at work: a network of real kad-core nodes in memory, on virtual time.
//!
//! `cargo run --release -p kad-core --example demo -- [NODES] [VALUES]`
//!
//! Builds the network (every node bootstraps from node 0), stores values from random nodes,
//! reads each back from 50 other nodes, and prints what it took.

use std::time::{Duration, Instant as WallClock};

use kad_core::testnet::Done;
use kad_core::{Config, Key, Outcome, ValueKind};
use rand::Rng;

#[path = "../tests/harness/mod.rs"]
mod harness;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let nodes = match args.next() {
        Some(Ok(n)) if n >= 2 => n,
        None => 200,
        _ => return eprintln!("usage: demo [NODES >= 2] [VALUES]"),
    };
    let values = match args.next() {
        Some(Ok(n)) => n,
        None => 20,
        _ => return eprintln!("usage: demo [NODES >= 2] [VALUES]"),
    };
    let wall = WallClock::now();
    eprintln!("building a network of {nodes} nodes ...");
    let mut net = harness::build(nodes, 42, Config::default());
    let contacts: usize = (0..nodes).map(|i| net.node(i).routing().len()).sum();
    println!("{nodes} nodes bootstrapped; {:.1} contacts per routing table", contacts as f64 / nodes as f64);

    let mut acks = Vec::new();
    let mut keys = Vec::new();
    for v in 0..values {
        let publisher = net.rng.gen_range(0..nodes);
        let key = Key::hash(format!("key-{v}").as_bytes());
        let value = format!("value-{v}");
        match net.query(publisher, |node, now| node.put(key, ValueKind::Text, value.as_bytes(), now)).outcome
        {
            Outcome::Put(Ok(a)) => acks.push(a.stored),
            other => println!("put {v} failed: {other:?}"),
        }
        keys.push((key, value));
    }
    println!("{} puts, acknowledged by {:.1} peers on average", acks.len(), mean(&acks));

    let (mut ok, mut total, mut rounds, mut rpcs, mut latency) = (0, 0, Vec::new(), Vec::new(), Vec::new());
    for (key, value) in &keys {
        for _ in 0..50 {
            let reader = net.rng.gen_range(0..nodes);
            let Done { outcome, stats, .. } = net.query(reader, |node, now| node.get(*key, now));
            total += 1;
            if matches!(outcome, Outcome::Get(Ok(ref r)) if r.value() == value.as_bytes()) {
                ok += 1;
            }
            rounds.push(stats.rounds as u16);
            rpcs.push(stats.requests);
            latency.push(stats.finished.saturating_since(stats.started).as_millis() as u16);
        }
    }
    println!(
        "{ok}/{total} gets returned the right value; per get: {:.2} rounds, {:.1} requests, {:.0} ms virtual latency",
        mean(&rounds),
        mean(&rpcs),
        mean(&latency)
    );
    println!(
        "{} datagrams delivered; {:.2} s of wall-clock time for {:?} of virtual time",
        net.medium.counters().delivered,
        wall.elapsed().as_secs_f64(),
        Duration::from_millis(net.now().as_millis())
    );
    println!("size of one node here: {} bytes", std::mem::size_of::<harness::TestNode>());
}

fn mean(v: &[u16]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}
