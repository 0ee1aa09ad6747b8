//! Persistence: a node killed with SIGKILL and restarted still serves what it acknowledged.

mod common;

use common::spawn_node;
use kad_host::{Config, Node, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_sigkill_still_serves_every_record_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let node = spawn_node(&["--data-dir", &data, "--port", "0"]);
    let (addr, id) = (node.addr, node.id.clone());

    // The node is the only server: every ack below is its own, so it made each record durable.
    let mut config = Config::default();
    config.core.client_mode = true;
    let client = Node::bind(config.clone()).await.unwrap();
    client.bootstrap(&[addr]).await.unwrap();
    for i in 0..20 {
        assert_eq!(client.put(format!("k{i}"), format!("v{i}")).await.unwrap(), 1);
    }
    client.stop().await;

    drop(node); // SIGKILL: no chance to flush anything
    let port = addr.port().to_string();
    let restarted = spawn_node(&["--data-dir", &data, "--port", &port]);
    assert_eq!(restarted.id, id, "the node keeps its id");

    let reader = Node::bind(config).await.unwrap();
    reader.bootstrap(&[restarted.addr]).await.unwrap();
    for i in 0..20 {
        assert_eq!(reader.get(format!("k{i}")).await.unwrap(), Some(Value::from(format!("v{i}"))), "k{i}");
    }
    reader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_rejoins_through_its_saved_contacts() {
    let seed = Node::bind(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: Some(dir.path().to_path_buf()), ..Config::default() };
    let node = Node::bind(config.clone()).await.unwrap();
    node.bootstrap(&[seed.addr()]).await.unwrap();
    node.stop().await; // a clean stop saves the contacts
    let again = Node::bind(config).await.unwrap();
    // No bootstrap call: the saved contacts are used.
    let mut known = 0;
    for _ in 0..100 {
        known = again.status().await.unwrap().buckets.iter().sum::<usize>();
        if known > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(known, 1);
    again.stop().await;
    seed.stop().await;
}

#[tokio::test]
async fn a_given_node_id_is_used_and_replaces_the_saved_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: Some(dir.path().to_path_buf()), ..Config::default() };
    let saved = Node::bind(config.clone()).await.unwrap();
    let first = saved.id();
    saved.stop().await;

    let chosen = kad_core::NodeId::from_bytes([7; 20]);
    let node = Node::bind(Config { id: Some(chosen), ..config.clone() }).await.unwrap();
    assert_eq!(node.id(), chosen);
    assert_ne!(node.id(), first);
    node.stop().await;
    let again = Node::bind(config).await.unwrap();
    assert_eq!(again.id(), chosen, "the given id is saved");
    again.stop().await;
}
