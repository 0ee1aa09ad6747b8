//! Nodes that die: real `kad node` processes on loopback, some killed or stopped, and how long
//! `kad get` takes afterwards (issue 10). Each test prints its figures.

mod common;

use std::time::{Duration, Instant};

use common::{kad, spawn_node, KadProcess};

/// Runs `kad get --bootstrap SEED KEY`; its wall time, and whether it printed `value`.
fn timed_get(seed: &str, key: &str, value: &str) -> (Duration, bool) {
    let start = Instant::now();
    let (code, out, _) = kad(&["get", "--bootstrap", seed, key]);
    (start.elapsed(), code == 0 && out.trim() == value)
}

/// The `p`th percentile (nearest rank) of `samples`, sorted in place.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p / 100.0 * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Starts `n` nodes that join through `seed`, `at_once` at a time.
fn join(n: usize, seed: &str, at_once: usize) -> Vec<KadProcess> {
    let mut nodes = Vec::new();
    while nodes.len() < n {
        let batch = at_once.min(n - nodes.len());
        let started: Vec<_> = (0..batch)
            .map(|_| {
                std::thread::spawn({
                    let seed = seed.to_string();
                    move || spawn_node(&["--memory", "--port", "0", "--bootstrap", &seed])
                })
            })
            .collect();
        nodes.extend(started.into_iter().map(|h| h.join().expect("a node started")));
    }
    nodes
}

#[test]
fn thirty_nodes_lose_nine_to_sigkill_and_every_key_stays_readable_within_two_seconds() {
    const NODES: usize = 30;
    const KEYS: usize = 200;
    const KILLED: usize = 9;
    let first = spawn_node(&["--memory", "--port", "0"]);
    let seed = first.addr.to_string();
    let mut nodes = vec![first];
    nodes.extend(join(NODES - 1, &seed, 4));

    // 200 keys, put through varying nodes, a few at a time.
    let puts: Vec<_> = (0..KEYS)
        .collect::<Vec<_>>()
        .chunks(KEYS / 8)
        .map(|chunk| {
            let addrs: Vec<String> = chunk.iter().map(|&i| nodes[i % NODES].addr.to_string()).collect();
            let chunk = chunk.to_vec();
            std::thread::spawn(move || {
                for (i, via) in chunk.into_iter().zip(addrs) {
                    let (code, out, err) =
                        kad(&["put", "--bootstrap", &via, &format!("key-{i}"), &format!("value-{i}")]);
                    assert_eq!(code, 0, "put key-{i}: {out}{err}");
                }
            })
        })
        .collect();
    for p in puts {
        p.join().expect("every put stored");
    }

    // SIGKILL 9 nodes (not the seed): no goodbye, their contacts just stop answering.
    let mut killed = 0;
    let mut survivors = Vec::new();
    for (i, mut node) in nodes.into_iter().enumerate() {
        if i % 3 == 1 && killed < KILLED {
            node.child.kill().expect("SIGKILL");
            let _ = node.child.wait();
            killed += 1;
        } else {
            survivors.push(node);
        }
    }
    assert_eq!(killed, KILLED);

    // Every key, at once, from a survivor (each in turn), four gets at a time.
    let addrs: Vec<String> = survivors.iter().map(|n| n.addr.to_string()).collect();
    let gets: Vec<_> = (0..4)
        .map(|t| {
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                (t..KEYS)
                    .step_by(4)
                    .map(|i| {
                        let via = &addrs[i % addrs.len()];
                        (i, timed_get(via, &format!("key-{i}"), &format!("value-{i}")))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = gets.into_iter().flat_map(|g| g.join().expect("gets ran")).collect();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, (took, _))| *took).collect();
    let missing: Vec<usize> = results.iter().filter(|(_, (_, found))| !found).map(|(i, _)| *i).collect();
    let (p50, p99) = (percentile(&mut latencies, 50.0), percentile(&mut latencies, 99.0));
    println!(
        "{NODES} nodes, {KEYS} keys, {KILLED} killed: {}/{KEYS} readable, `kad get` p50 {} ms, p99 {} ms, max {} ms",
        KEYS - missing.len(),
        p50.as_millis(),
        p99.as_millis(),
        latencies.last().map_or(0, |d| d.as_millis())
    );
    assert!(missing.is_empty(), "not readable after the kill: {missing:?}");
    assert!(p99 <= Duration::from_secs(2), "get p99 {p99:?}");
}

#[test]
fn three_nodes_that_joined_and_stopped_do_not_slow_a_get_through_the_seed() {
    const SAMPLES: usize = 5;
    let first = spawn_node(&["--memory", "--port", "0"]);
    let seed = first.addr.to_string();
    let _second = spawn_node(&["--memory", "--port", "0", "--bootstrap", &seed]);
    let (code, out, err) = kad(&["put", "--bootstrap", &seed, "greeting", "hello"]);
    assert_eq!(code, 0, "{out}{err}");
    let median = |seed: &str| {
        let mut took: Vec<Duration> = (0..SAMPLES)
            .map(|_| {
                let (took, found) = timed_get(seed, "greeting", "hello");
                assert!(found);
                took
            })
            .collect();
        percentile(&mut took, 50.0)
    };
    let before = median(&seed);
    // Three nodes join through the seed and stop (their processes end without a word).
    for node in join(3, &seed, 3) {
        drop(node);
    }
    let after = median(&seed);
    println!(
        "`kad get` through the seed, median of {SAMPLES}: {} ms before three nodes joined and stopped, {} ms \
         after ({:.1}x)",
        before.as_millis(),
        after.as_millis(),
        after.as_secs_f64() / before.as_secs_f64()
    );
    // The seed still hands out the three (they were heard from seconds ago, so they are good
    // until its background pings find them dead), but a client's bootstrap ends at the seed's
    // pong and the get ends at the first copy of the value: neither waits on them.
    assert!(after <= Duration::from_secs(1), "{after:?}");
    assert!(after <= before * 10, "{after:?} after, {before:?} before");
}
