//! A 20-node network on loopback in one process, through the public library API.

use std::time::Duration;

use kad_host::{Config, Node, Value};

async fn network(n: usize, config: Config) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(Node::bind(config.clone()).await.unwrap());
    }
    let seed = nodes[0].addr();
    for node in &nodes[1..] {
        node.bootstrap(&[seed]).await.unwrap();
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_put_get_providers_and_signed_records() {
    let nodes = network(20, Config::default()).await;
    // Text comes back as text, bytes as bytes.
    let acks = nodes[3].put("my-key", "my awesome value").await.unwrap();
    assert!(acks >= 15, "{acks} acks");
    assert_eq!(nodes[17].get("my-key").await.unwrap(), Some(Value::from("my awesome value")));
    nodes[4].put(b"raw".as_slice(), vec![0u8, 159, 146, 150]).await.unwrap();
    assert_eq!(nodes[9].get("raw").await.unwrap(), Some(Value::Bytes(vec![0, 159, 146, 150])));
    assert_eq!(nodes[9].get("never-set").await.unwrap(), None);

    // Providers.
    assert!(nodes[5].provide("dataset").await.unwrap() >= 10);
    let providers = nodes[12].providers("dataset").await.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].id, nodes[5].id());

    // Signed records: newer sequence numbers win, older ones are refused.
    let kp = kad_core::signed::Keypair::from_secret(&[9; 32]);
    nodes[6].put_signed(&kp, "profile", 1, "v1").await.unwrap();
    nodes[6].put_signed(&kp, "profile", 2, "v2").await.unwrap();
    let got = nodes[15].get_signed(kp.public_key(), "profile").await.unwrap().unwrap();
    assert_eq!((got.seq, got.value), (2, Value::from("v2")));
    // Node 7 holds a copy (20 nodes, K = 20): it refuses before asking anyone.
    let stale = nodes[7].put_signed(&kp, "profile", 1, "old").await;
    let conflict = kad_core::Error::Conflict(kad_core::wire::StoreStatus::StaleSeq);
    assert!(matches!(stale, Err(kad_host::Error::Refused(e)) if e == conflict), "{stale:?}");

    // Values over the limit are refused with a clear error before anything is sent.
    let err = nodes[1].put("big", vec![0u8; 1001]).await.unwrap_err();
    assert_eq!(err.to_string(), "value of 1001 bytes is over the limit of 1000 bytes");

    let status = nodes[0].status().await.unwrap();
    assert!(status.buckets.iter().sum::<usize>() >= 19);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_expire_after_a_short_ttl() {
    let mut config = Config::default();
    config.core.record_ttl = Duration::from_secs(2);
    config.core.maintenance_interval = Duration::from_millis(200);
    let mut nodes = network(8, config).await;
    nodes[1].put("fleeting", "here").await.unwrap();
    // The publisher leaves: nobody refreshes the TTL.
    nodes.remove(1).stop().await;
    assert_eq!(nodes[4].get("fleeting").await.unwrap(), Some(Value::from("here")));
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(nodes[4].get("fleeting").await.unwrap(), None);
    for n in &nodes {
        assert_eq!(n.status().await.unwrap().records, 0);
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_commands_wait_for_query_slots_instead_of_failing() {
    let nodes = network(10, Config::default()).await;
    let h = nodes[2].handle();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.put(format!("k{i}"), format!("v{i}")).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap() >= 5);
    }
    assert_eq!(nodes[7].get("k42").await.unwrap(), Some(Value::from("v42")));
    for n in nodes {
        n.stop().await;
    }
}
