//! The HTTP API: every status code it promises.

mod common;

use std::net::SocketAddr;

use common::http;
use kad_core::signed::Keypair;
use kad_host::{Config, ListenConfig, Listeners, Node};
use serde_json::{json, Value};

async fn serve(nodes: usize) -> (Vec<Node>, SocketAddr) {
    let net = network(nodes).await;
    let listeners = Listeners::new(ListenConfig::default());
    let addr = listen(&listeners, kad_host::http::router(net[0].handle(), None, &listeners)).await;
    (net, addr)
}

async fn network(nodes: usize) -> Vec<Node> {
    let mut net = Vec::new();
    for _ in 0..nodes {
        net.push(Node::bind(Config::default()).await.unwrap());
    }
    for n in &net[1..] {
        n.bootstrap(&[net[0].addr()]).await.unwrap();
    }
    net
}

async fn listen(listeners: &Listeners, app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    listeners.serve(listener, app);
    addr
}

/// A request with extra headers and a body of any size; the server may answer before it has
/// read the whole body (then the rest of the write may fail, which is fine).
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let _ =
        write!(s, "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.into())))
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
    // acks: the other four nodes; the answering node's own copy is reported apart.
    assert_eq!((v["acks"].as_u64(), v["local_copy"].as_bool()), (Some(4), Some(true)), "{v}");

    let (status, v) = call(addr, "GET", "/dht/test_id".into(), None).await;
    assert_eq!(status, 200);
    assert_eq!((v["data"].as_str(), v["persist_mode"].as_str()), (Some("string_payload"), Some("PUBLIC")));
    assert_eq!(v["holders"].as_u64(), Some(0), "the answering node's own copy: no lookup");

    // Bytes go in and come back with their encoding: base64 by default, hex on request.
    let bytes = json!({ "data": "AP8=", "encoding": "base64" }).to_string();
    assert_eq!(call(addr, "POST", "/dht/raw".into(), Some(bytes)).await.0, 200);
    let (_, v) = call(addr, "GET", "/dht/raw".into(), None).await;
    assert_eq!(
        (v["kind"].as_str(), v["encoding"].as_str(), v["data"].as_str()),
        (Some("bytes"), Some("base64"), Some("AP8="))
    );
    let (_, v) = call(addr, "GET", "/dht/raw?encoding=hex".into(), None).await;
    assert_eq!((v["encoding"].as_str(), v["data"].as_str()), (Some("hex"), Some("00ff")));
    let hex_body = json!({ "data": "0a0b", "encoding": "hex" }).to_string();
    assert_eq!(call(addr, "POST", "/dht/raw".into(), Some(hex_body)).await.0, 200);
    assert_eq!(call(addr, "GET", "/dht/raw".into(), None).await.1["data"].as_str(), Some("Cgs="));
    // The fork's `"kind": "bytes"` without an encoding is refused, not stored as text.
    let (status, v) =
        call(addr, "POST", "/dht/raw".into(), Some(json!({ "data": "00ff", "kind": "bytes" }).to_string()))
            .await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("\"encoding\": \"base64\" or \"hex\""), "{v}");
    let (status, v) = call(
        addr,
        "POST",
        "/dht/raw".into(),
        Some(json!({ "data": "A!", "encoding": "base64" }).to_string()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("not base64"), "{v}");

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
        "kad_rpcs_deferred_total",
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

    // A lower seq than the one held: 409, saying which seq is held.
    let (status, v) =
        call(addr, "POST", "/dht/doc".into(), Some(secured(&kp, "doc", 0, "older", None))).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        v["error"].as_str(),
        Some("a newer value (seq 1) is already stored under \"doc\" for this public key; POST again with \"seq\": 2 or higher")
    );

    // The fork's sample: a 33-byte secp256k1 key. The answer says what kad uses and how to make a key.
    let mut fork: Value = serde_json::from_str(&secured(&kp, "doc", 5, "x", None)).unwrap();
    fork["authorization"]["pub_key"]["key"] = json!(format!("02{}", "ab".repeat(32)));
    let (status, v) = call(addr, "POST", "/dht/doc".into(), Some(fork.to_string())).await;
    assert_eq!(status, 400);
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("not 66 (33 bytes)") && msg.contains("ed25519") && msg.contains("kad keygen"),
        "{msg}"
    );

    // Signed elsewhere, over the message form the README documents: accepted.
    let elsewhere = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let message = b"4:salt7:profile3:seqi1e1:v2:hi";
    let body = json!({
        "data": "hi", "persist_mode": "SECURED", "seq": 1,
        "authorization": {
            "pub_key": { "key": hex::encode(elsewhere.verifying_key().as_bytes()), "exp_time": null },
            "sign": hex::encode(ed25519_dalek::Signer::sign(&elsewhere, message).to_bytes()),
        }
    });
    assert_eq!(call(addr, "POST", "/dht/profile".into(), Some(body.to_string())).await.0, 200);

    // Signed bytes: the signature covers the decoded bytes.
    let data = [0u8, 1, 2, 255];
    let body = json!({
        "data": "AAEC/w==", "encoding": "base64", "persist_mode": "SECURED", "seq": 1,
        "authorization": {
            "pub_key": { "key": pk, "exp_time": null },
            "sign": hex::encode(kp.sign(b"blob", 1, &data)),
        }
    });
    assert_eq!(call(addr, "POST", "/dht/blob".into(), Some(body.to_string())).await.0, 200);
    let (_, v) = call(addr, "GET", format!("/dht/blob?pub_key={pk}&encoding=hex"), None).await;
    assert_eq!((v["kind"].as_str(), v["data"].as_str()), (Some("bytes"), Some("000102ff")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_on_every_path_and_method() {
    let (_net, addr) = serve(2).await;
    for (method, path, status, says) in [
        ("GET", "/nowhere", 404, "no such path: GET /nowhere"),
        ("POST", "/dht/a/b/c", 404, "a key is one path segment"),
        ("PUT", "/dht/k", 405, "PUT is not allowed on /dht/k: use GET or POST"),
        ("DELETE", "/dht/k", 405, "DELETE is not allowed"),
        ("POST", "/status", 405, "use GET"),
    ] {
        let (code, v) = call(addr, method, path.into(), None).await;
        assert_eq!(code, status, "{method} {path}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(says)), "{method} {path}: {v}");
    }
    let big = vec![b'a'; 3 << 20];
    let (code, v) =
        tokio::task::spawn_blocking(move || raw(addr, "POST /dht/big HTTP/1.1", &big)).await.unwrap();
    assert_eq!(code, 413);
    assert!(v["error"].as_str().unwrap().contains("over the limit of 16384 bytes"), "{v}");
    let (code, v) = call(addr, "GET", "/dht/k?encoding=morse".into(), None).await;
    assert_eq!(code, 400);
    assert!(v["error"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_says_what_is_true() {
    let (net, addr) = serve(1).await;
    let (status, v) = call(addr, "GET", "/dht/never".into(), None).await;
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("knows no other node"), "{v}");
    let (status, v) = call(addr, "POST", "/dht/x".into(), Some(json!({ "data": "x" }).to_string())).await;
    assert_eq!(status, 503, "{v}");
    let msg = v["error"].as_str().unwrap();
    let own = net[0].addr();
    assert!(msg.contains(&format!("this node ({own}) knows no other node yet")), "{msg}");
    assert!(msg.contains(&format!("start a second one with `kad node --port {} ", own.port() + 1)), "{msg}");
    assert!(!msg.contains("bootstrap from a running node first"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_token_when_one_is_set() {
    let net = network(2).await;
    let listeners = Listeners::new(ListenConfig::default());
    let app = kad_host::http::with_json_errors(kad_host::http::api(
        net[0].handle(),
        Some("s3cret".into()),
        &listeners,
    ));
    let addr = listen(&listeners, app).await;
    let body = br#"{"data":"guarded"}"#;
    let head = "POST /dht/g HTTP/1.1\r\nContent-Type: application/json";
    for auth in ["", "\r\nAuthorization: Bearer wrong", "\r\nAuthorization: s3cret"] {
        let head = format!("{head}{auth}");
        let (code, v) = tokio::task::spawn_blocking(move || raw(addr, &head, body)).await.unwrap();
        assert_eq!(code, 401, "{auth}: {v}");
        assert!(v["error"].as_str().unwrap().contains("Authorization: Bearer"), "{v}");
    }
    let head = format!("{head}\r\nAuthorization: Bearer s3cret");
    let (code, v) = tokio::task::spawn_blocking(move || raw(addr, &head, body)).await.unwrap();
    assert_eq!(code, 200, "{v}");
    // Reads stay open.
    let (code, v) = call(addr, "GET", "/dht/g".into(), None).await;
    assert_eq!((code, v["data"].as_str()), (200, Some("guarded")));
}
