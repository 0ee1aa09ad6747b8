//! What an idle host node costs in memory (issue 13): at most 64 KiB of RSS per extra node,
//! the capacities of the host preset unchanged (the node's tables are bounds whose unused
//! slots are never written).

use std::time::Duration;

use kad_host::{Config, Node};

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_node_costs_at_most_64_kib() {
    // The only test of this binary: nothing else allocates while it measures.
    let first = Node::bind(Config::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let extra = 40;
    let mut nodes = Vec::new();
    for _ in 0..extra {
        let n = Node::bind(Config::default()).await.unwrap();
        n.bootstrap(&[first.addr()]).await.unwrap();
        nodes.push(n);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_node = (rss_kib() - before) as f64 / extra as f64;
    eprintln!("{per_node:.1} KiB of RSS per extra idle node");
    assert!(per_node <= 64.0, "{per_node:.1} KiB of RSS per extra idle node");
    for n in nodes {
        n.stop().await;
    }
    first.stop().await;
}
