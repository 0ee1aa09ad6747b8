//! The HTTP API: every status code it promises.

mod common;

use std::net::SocketAddr;

use common::http;
use kad_core::signed::Keypair;
use kad_host::{Config, Node};
use serde_json::{json, Value};

async fn serve(nodes: usize) -> (Vec<Node>, SocketAddr) {
    let mut net = Vec::new();
    for _ in 0..nodes {
        net.push(Node::bind(Config::default()).await.unwrap());
    }
    for n in &net[1..] {
        n.bootstrap(&[net[0].addr()]).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = kad_host::http::router(net[0].handle());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (net, addr)
}

async fn call(addr: SocketAddr, method: &'static str, path: String, body: Option<String>) -> (u16, Value) {
    let (status, body) =
        tokio::task::spawn_blocking(move || http(addr, method, &path, body.as_deref())).await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

fn secured(kp: &Keypair, key: &str, seq: u64, data: &str, exp_time: Option<u64>) -> String {
    json!({
        "data": data,
        "persist_mode": "SECURED",
        "seq": seq,
        "authorization": {
            "pub_key": { "key": hex::encode(kp.public_key()), "exp_time": exp_time },
            "sign": hex::encode(kp.sign(key.as_bytes(), seq, data.as_bytes())),
        }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_records_status_and_metrics() {
    let (_net, addr) = serve(5).await;
    let body = json!({ "data": "string_payload", "persist_mode": "PUBLIC" }).to_string();
    let (status, v) = call(addr, "POST", "/dht/test_id".into(), Some(body)).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["acks"].as_u64().unwrap() >= 1);

    let (status, v) = call(addr, "GET", "/dht/test_id".into(), None).await;
    assert_eq!(status, 200);
    assert_eq!((v["data"].as_str(), v["persist_mode"].as_str()), (Some("string_payload"), Some("PUBLIC")));

    assert_eq!(call(addr, "GET", "/dht/nothing-here".into(), None).await.0, 404);
    assert_eq!(call(addr, "POST", "/dht/k".into(), Some("{not json".into())).await.0, 400);
    assert_eq!(call(addr, "POST", "/dht/k".into(), Some(json!({ "datum": 1 }).to_string())).await.0, 400);
    let big = json!({ "data": "x".repeat(1001) }).to_string();
    assert_eq!(call(addr, "POST", "/dht/k".into(), Some(big)).await.0, 413);

    let (status, v) = call(addr, "GET", "/status".into(), None).await;
    assert_eq!(status, 200);
    assert_eq!(v["routing_table"]["contacts"].as_u64(), Some(4));
    assert!(v["id"].as_str().unwrap().len() == 40);

    let (status, v) = call(addr, "GET", "/metrics".into(), None).await;
    assert_eq!(status, 200);
    let text = v.as_str().unwrap().to_string();
    for metric in [
        "kad_rpcs_in_total{kind=\"find_value\"}",
        "kad_dropped_datagrams_total{reason=\"malformed\"}",
        "kad_lookup_duration_seconds_count",
        "kad_records",
    ] {
        assert!(text.contains(metric), "missing {metric} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_records_need_a_valid_unexpired_signature() {
    let (_net, addr) = serve(5).await;
    let kp = Keypair::from_secret(&[5; 32]);
    let pk = hex::encode(kp.public_key());

    let (status, v) =
        call(addr, "POST", "/dht/doc".into(), Some(secured(&kp, "doc", 1, "signed payload", None))).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(addr, "GET", format!("/dht/doc?pub_key={pk}"), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["data"].as_str(), v["persist_mode"].as_str(), v["seq"].as_u64()),
        (Some("signed payload"), Some("SECURED"), Some(1))
    );
    assert_eq!(v["authorization"]["pub_key"]["key"].as_str(), Some(pk.as_str()));

    // Signed by someone else: 401.
    let mallory = Keypair::from_secret(&[6; 32]);
    let mut forged: Value = serde_json::from_str(&secured(&mallory, "doc", 2, "forged", None)).unwrap();
    forged["authorization"]["pub_key"]["key"] = json!(pk);
    assert_eq!(call(addr, "POST", "/dht/doc".into(), Some(forged.to_string())).await.0, 401);
    // Expired authorization: 401.
    assert_eq!(
        call(addr, "POST", "/dht/doc".into(), Some(secured(&kp, "doc", 3, "late", Some(1)))).await.0,
        401
    );
    // Missing or malformed authorization: 400.
    let no_auth = json!({ "data": "x", "persist_mode": "SECURED" }).to_string();
    assert_eq!(call(addr, "POST", "/dht/doc".into(), Some(no_auth)).await.0, 400);
    let mut bad_hex: Value = serde_json::from_str(&secured(&kp, "doc", 4, "x", None)).unwrap();
    bad_hex["authorization"]["sign"] = json!("zz");
    assert_eq!(call(addr, "POST", "/dht/doc".into(), Some(bad_hex.to_string())).await.0, 400);
    // The public record under the same name is a different record.
    assert_eq!(call(addr, "GET", "/dht/doc".into(), None).await.0, 404);
    assert_eq!(call(addr, "GET", "/dht/doc?pub_key=00".into(), None).await.0, 400);
}
