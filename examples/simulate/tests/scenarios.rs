//! Small versions of the scenarios of issue 3, run by the normal test suite: a few hundred
//! real nodes for minutes to hours of virtual time, a few seconds each in release mode.
//! The full-size runs are in `run-scenarios.sh`.

use std::time::Duration;

use kad_simulate::{run, Params, Report, Scenario};

const HOUR: Duration = Duration::from_secs(3600);

fn small(scenario: Scenario) -> Params {
    let mut p = Params::scenario(scenario);
    p.nodes = 500;
    p.lookups = 1000;
    p.gets = 1000;
    p.puts = 100;
    p.probe = 50;
    p.join_rate = 50.0;
    p.seed = 3;
    p
}

fn simulate(p: &Params) -> Report {
    let r = run(p, &mut |_| {});
    eprint!("{}", r.table());
    r
}

#[test]
fn in_a_static_network_lookups_find_the_closest_node_within_a_few_rounds() {
    let r = simulate(&small(Scenario::Static));
    assert_eq!(r.find_node.finished, 1000);
    assert!(r.find_node.success_rate >= 0.999, "{:?}", r.find_node);
    assert!(r.find_node.rounds.p50 <= 4, "{:?}", r.find_node.rounds);
    assert!(r.find_value.success_rate >= 0.999, "{:?}", r.find_value);
    assert_eq!(r.puts.succeeded, 100);
    assert!(r.puts.acks.mean >= 19.0, "{:?}", r.puts.acks);
    assert_eq!(r.puts.retrievable_at_end, 100);
}

#[test]
fn with_ten_percent_loss_lookups_still_succeed() {
    let mut p = small(Scenario::Loss);
    p.nodes = 500;
    let r = simulate(&p);
    assert!(r.network.lost > 0);
    assert!(r.find_node.success_rate >= 0.99, "{:?}", r.find_node);
    assert!(r.find_value.success_rate >= 0.99, "{:?}", r.find_value);
    assert!(r.puts.retrievable_share >= 0.99, "{:?}", r.puts);
}

#[test]
fn under_churn_values_whose_publishers_stay_remain_retrievable() {
    let mut p = small(Scenario::Churn);
    // The run ends when the copies of the first put expire (a 3 h TTL instead of 24 h): the
    // values are found only if the publishers' republish landed before, and if the holders'
    // hourly republish (with the old expiry) did not undo it.
    p.record_ttl = 3 * HOUR;
    p.duration = 3 * HOUR;
    let r = simulate(&p);
    // 20% of 500 nodes per hour for 3 hours: about 300 leave (and as many join or return).
    assert!(r.network.leaves > 200, "{:?}", r.network);
    assert!(r.network.rejoins > 0 && r.network.joins > 500);
    assert!(r.puts.retrievable_share >= 0.99, "{:?}", r.puts);
    assert!(r.find_node.success_rate >= 0.98, "{:?}", r.find_node);
    assert!(r.find_value.success_rate >= 0.99, "{:?}", r.find_value);
    // The hourly probes, across the TTL boundary at hour 2.
    let (found, probed) = r.value_life.hours.iter().fold((0, 0), |(f, p), h| (f + h.found, p + h.probed));
    assert!(found as f64 >= 0.99 * probed as f64, "{:?}", r.value_life);
    assert!(r.value_life.hours.iter().all(|h| h.held == 1.0), "{:?}", r.value_life);
}

#[test]
fn values_outlive_their_publishers_until_their_ttl() {
    let mut p = small(Scenario::PublisherGone);
    // The record TTL shortened to 3 h (republishing stays hourly) so that expiry is reached in
    // a short run: values must live through hour 2 without their publishers, and be gone
    // once the TTL has passed.
    p.record_ttl = 3 * HOUR;
    p.duration = 4 * HOUR;
    let r = simulate(&p);
    let life = &r.value_life;
    assert_eq!(life.hours.len(), 4);
    assert!(life.retrievable_99_until_hour >= Some(2), "{life:?}");
    assert_eq!(life.gone_at_hour, Some(4), "{life:?}");
}

#[test]
fn the_same_seed_gives_the_same_result() {
    let mut p = small(Scenario::Churn);
    p.nodes = 200;
    p.lookups = 200;
    p.gets = 200;
    p.puts = 20;
    p.loss = 0.05;
    p.duration = HOUR;
    let a = run(&p, &mut |_| {});
    let b = run(&p, &mut |_| {});
    let json = |r: &Report| {
        let mut v = serde_json::to_value(r).expect("serializable");
        v["cost"] = serde_json::Value::Null;
        v.to_string()
    };
    assert_eq!(json(&a), json(&b));
    p.seed += 1;
    assert_ne!(json(&a), json(&run(&p, &mut |_| {})));
}
