//! Malformed datagrams and oversized values: clear errors, counted drops, the node keeps serving.

use kad_host::{Config, Node, Value};
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_dropped_and_counted_and_the_node_keeps_serving() {
    let a = Node::bind(Config::default()).await.unwrap();
    let b = Node::bind(Config::default()).await.unwrap();
    b.bootstrap(&[a.addr()]).await.unwrap();

    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut junk = vec![0u8; 1500];
    for i in 0..300usize {
        for (j, byte) in junk.iter_mut().enumerate() {
            *byte = (i * 31 + j * 7) as u8;
        }
        junk[0] = if i % 2 == 0 { 1 } else { 7 }; // version 1 garbage and unknown versions
        let len = [0, 1, 10, 200, 1199, 1300][i % 6];
        attacker.send_to(&junk[..len], a.addr()).await.unwrap();
        if i % 10 == 9 {
            // Paced so that the kernel's receive buffer does not overflow.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    // Let the node read them.
    let mut dropped = 0;
    for _ in 0..100 {
        let s = a.status().await.unwrap().stats;
        dropped = s.dropped_malformed + s.dropped_version + s.dropped_too_large;
        if dropped >= 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(dropped, 300, "every datagram is counted once");
    let s = a.status().await.unwrap().stats;
    assert!(s.dropped_too_large > 0 && s.dropped_version > 0 && s.dropped_malformed > 0, "{s:?}");

    assert!(b.put("still", "works").await.unwrap() >= 1);
    assert_eq!(a.get("still").await.unwrap(), Some(Value::from("works")));
    let err = b.put("huge", vec![1u8; 5000]).await.unwrap_err();
    assert_eq!(err.to_string(), "value of 5000 bytes is over the limit of 1000 bytes");
    a.stop().await;
    b.stop().await;
}
