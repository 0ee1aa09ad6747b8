//! The browser relay's safety rules, each checked against the relay directly with a WebSocket
//! client standing in for a browser, real nodes and raw UDP sockets on loopback.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kad_core::frame::{self, Frame};
use kad_core::wire::{self, Body, Flags, Header, Message, Peer, TxId, MAX_DATAGRAM, VERSION};
use kad_core::{Key, NodeId, PeerAddr};
use kad_host::relay::Refusal;
use kad_host::{Config, ListenConfig, Listeners, Node, Relay, RelayConfig};
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// A relay node (with a second node in its routing table) serving the relay on loopback.
struct Net {
    nodes: Vec<Node>,
    relay: Relay,
    url: String,
}

async fn net(config: RelayConfig, extra_seeds: &[SocketAddr]) -> Net {
    let a = Node::bind(Config::default()).await.unwrap();
    let b = Node::bind(Config::default()).await.unwrap();
    b.bootstrap(&[a.addr()]).await.unwrap();
    let relay = Relay::new(a.handle(), extra_seeds, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    Listeners::new(ListenConfig::default()).serve(listener, relay.router());
    Net { nodes: vec![a, b], relay, url }
}

/// Connects and reads the HELLO: (this connection's UDP address, bootstrap peers).
async fn connect(url: &str) -> (Client, PeerAddr, Vec<PeerAddr>) {
    let (mut ws, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await.unwrap().unwrap();
    let hello = next_binary(&mut ws).await.expect("a HELLO frame");
    let f = frame::decode(&hello).unwrap();
    let Frame::Hello { local, .. } = f else { panic!("first frame is HELLO, got {f:?}") };
    let peers = f.hello_peers().collect();
    (ws, local, peers)
}

/// The next binary message within `WAIT`, `None` if the connection closed.
async fn next_binary(ws: &mut Client) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a message in time") {
            Some(Ok(Ws::Binary(b))) => return Some(b.to_vec()),
            Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Nothing arrives for `QUIET`.
async fn nothing_within(ws: &mut Client) -> bool {
    tokio::time::timeout(QUIET, ws.next()).await.is_err()
}

/// Reads until the close frame: (code, reason).
async fn closed_with(ws: &mut Client) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("closed in time") {
            Some(Ok(Ws::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Ws::Close(None))) | None | Some(Err(_)) => panic!("closed without a reason"),
            Some(Ok(_)) => {}
        }
    }
}

fn message(body: Body<'_>) -> Vec<u8> {
    let header = Header {
        version: VERSION,
        txid: TxId(rand::random()),
        sender: NodeId::from_bytes(rand::random()),
        flags: Flags(Flags::CLIENT),
    };
    let mut buf = [0u8; MAX_DATAGRAM];
    let n = wire::encode(&Message { header, body }, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn datagram_frame(to: PeerAddr, payload: &[u8]) -> Ws {
    let mut buf = [0u8; frame::MAX_FRAME];
    let n = frame::encode_datagram(&to, payload, &mut buf).unwrap();
    Ws::Binary(buf[..n].to_vec().into())
}

async fn send(ws: &mut Client, to: impl Into<PeerAddr>, payload: &[u8]) {
    ws.send(datagram_frame(to.into(), payload)).await.unwrap();
}

/// Pings `to` through the relay and expects its Pong back.
async fn ping_pong(ws: &mut Client, to: SocketAddr) {
    send(ws, to, &message(Body::Ping)).await;
    let reply = next_binary(ws).await.expect("a reply frame");
    let Ok(Frame::Datagram { peer, payload }) = frame::decode(&reply) else { panic!("a datagram frame") };
    assert_eq!(peer, PeerAddr::from(to));
    assert!(matches!(wire::decode(payload).unwrap().body, Body::Pong { .. }));
}

async fn udp() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Receives one datagram within `QUIET`.
async fn recv(sock: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(QUIET, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some((buf[..n].to_vec(), from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_reaches_the_relay_node_and_its_routing_table() {
    let net = net(RelayConfig::default(), &[]).await;
    let (mut ws, local, seeds) = connect(&net.url).await;
    assert_eq!(seeds, [PeerAddr::from(net.nodes[0].addr())], "HELLO names the relay node");
    assert!(local.is_routable());
    ping_pong(&mut ws, net.nodes[0].addr()).await;
    // The second node is in the relay node's routing table: trusted.
    ping_pong(&mut ws, net.nodes[1].addr()).await;
    let s = net.relay.stats();
    assert_eq!((s.connections, s.connections_total), (1, 1));
    assert_eq!((s.frames_to_network, s.frames_to_browser), (2, 2));
    assert_eq!(s.refused.iter().sum::<u64>(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_is_not_a_kad_message_is_refused() {
    let seed = udp().await;
    let net = net(RelayConfig::default(), &[seed.local_addr().unwrap()]).await;
    let (mut ws, _, _) = connect(&net.url).await;
    let mut garbage = message(Body::Ping);
    garbage.push(0); // trailing byte: wire::decode refuses it
    send(&mut ws, seed.local_addr().unwrap(), &garbage).await;
    send(&mut ws, seed.local_addr().unwrap(), b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(recv(&seed).await.is_none(), "nothing reached the destination");
    assert_eq!(net.relay.stats().refused(Refusal::NotKad), 2);
    // The connection still works.
    ping_pong(&mut ws, net.nodes[0].addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_destination_is_refused_until_a_relayed_reply_names_it() {
    // A fake node on the bootstrap list answers FIND_NODE with the address of `target`.
    let fake = udp().await;
    let target = udp().await;
    let net = net(RelayConfig::default(), &[fake.local_addr().unwrap()]).await;
    let (mut ws, local, _) = connect(&net.url).await;

    send(&mut ws, target.local_addr().unwrap(), &message(Body::Ping)).await;
    assert!(recv(&target).await.is_none(), "an address nobody named is not sent to");
    assert_eq!(net.relay.stats().refused(Refusal::Untrusted), 1);

    send(&mut ws, fake.local_addr().unwrap(), &message(Body::FindNode { target: Key::hash(b"x") })).await;
    let (_, from) = recv(&fake).await.expect("the bootstrap list is trusted");
    assert_eq!(PeerAddr::from(from), local, "sent from the connection's own UDP socket");
    let named = Peer { id: NodeId::from_bytes([7; 20]), addr: target.local_addr().unwrap().into() };
    let reply = message(Body::Nodes { contacts: [named].into_iter().collect() });
    fake.send_to(&reply, from).await.unwrap();
    assert!(next_binary(&mut ws).await.is_some(), "the reply is relayed");

    send(&mut ws, target.local_addr().unwrap(), &message(Body::Ping)).await;
    assert!(recv(&target).await.is_some(), "named in a relayed reply: now trusted");
    assert_eq!(net.relay.stats().refused(Refusal::Untrusted), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_that_sent_a_request_may_get_replies_but_no_requests() {
    let net = net(RelayConfig::default(), &[]).await;
    let (mut ws, local, _) = connect(&net.url).await;
    let stranger = udp().await;
    stranger.send_to(&message(Body::Ping), SocketAddr::from(local)).await.unwrap();
    assert!(next_binary(&mut ws).await.is_some(), "the request is relayed to the browser");
    send(&mut ws, stranger.local_addr().unwrap(), &message(Body::Pong { observed: local })).await;
    assert!(recv(&stranger).await.is_some(), "a reply to the requester goes out");
    send(&mut ws, stranger.local_addr().unwrap(), &message(Body::Ping)).await;
    assert!(recv(&stranger).await.is_none(), "a request to it does not");
    assert_eq!(net.relay.stats().refused(Refusal::Untrusted), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_from_the_network_reach_the_browser_only_if_they_are_kad_messages() {
    let net = net(RelayConfig::default(), &[]).await;
    let (mut ws, local, _) = connect(&net.url).await;
    let other = udp().await;
    other.send_to(b"\x01not kad at all", SocketAddr::from(local)).await.unwrap();
    assert!(nothing_within(&mut ws).await);
    assert_eq!(net.relay.stats().refused(Refusal::InboundNotKad), 1);
    other.send_to(&message(Body::Ping), SocketAddr::from(local)).await.unwrap();
    let got = next_binary(&mut ws).await.unwrap();
    let f = frame::decode(&got).unwrap();
    assert!(matches!(f, Frame::Datagram { peer, .. } if peer == PeerAddr::from(other.local_addr().unwrap())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_applies_and_a_flooder_is_closed_while_others_keep_working() {
    let seed = udp().await;
    let config = RelayConfig { packets_per_sec: 5, max_refused: 3, ..RelayConfig::default() };
    let net = net(config, &[seed.local_addr().unwrap()]).await;
    let (mut flooder, _, _) = connect(&net.url).await;
    let (mut honest, _, _) = connect(&net.url).await;
    for _ in 0..20 {
        if flooder
            .send(datagram_frame(seed.local_addr().unwrap().into(), &message(Body::Ping)))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = closed_with(&mut flooder).await;
    assert_eq!(code, 1008);
    assert_eq!(reason, "too many refused frames (last: rate_limit)");
    let mut delivered = 0;
    while recv(&seed).await.is_some() {
        delivered += 1;
    }
    assert!((5..=6).contains(&delivered), "one second of burst gets through, got {delivered}");
    let s = net.relay.stats();
    assert!(s.refused(Refusal::RateLimited) >= 3, "{s:?}");
    assert_eq!(s.connections_closed_misbehaving, 1);
    ping_pong(&mut honest, net.nodes[0].addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_closes_the_connection_with_a_reason() {
    let net = net(RelayConfig::default(), &[]).await;
    let (mut big, _, _) = connect(&net.url).await;
    let (mut honest, _, _) = connect(&net.url).await;
    let mut frame = vec![0u8, 4, 127, 0, 0, 1, 0x21, 0x14];
    frame.resize(frame::MAX_FRAME + 1, 1);
    big.send(Ws::Binary(frame.into())).await.unwrap();
    assert_eq!(
        closed_with(&mut big).await,
        (1009, "frame of 1221 bytes is over the limit of 1220 bytes".to_string())
    );
    assert_eq!(net.relay.stats().refused(Refusal::Oversize), 1);
    ping_pong(&mut honest, net.nodes[0].addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_a_relay_frame_closes_the_connection() {
    let net = net(RelayConfig::default(), &[]).await;
    let (mut text, _, _) = connect(&net.url).await;
    text.send(Ws::Text("hello".into())).await.unwrap();
    assert_eq!(closed_with(&mut text).await, (1003, "not a relay frame (text message)".to_string()));
    let (mut bad, _, _) = connect(&net.url).await;
    bad.send(Ws::Binary(vec![0u8, 9, 9].into())).await.unwrap();
    assert_eq!(closed_with(&mut bad).await, (1003, "not a relay frame".to_string()));
    assert_eq!(net.relay.stats().refused(Refusal::Malformed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_at_once() {
    let net = net(RelayConfig { max_connections: 2, ..RelayConfig::default() }, &[]).await;
    let (first, _, _) = connect(&net.url).await;
    let (mut second, _, _) = connect(&net.url).await;
    let (mut third, _) = tokio_tungstenite::connect_async(net.url.as_str()).await.unwrap();
    assert_eq!(closed_with(&mut third).await, (1013, "relay full: 2 connections".to_string()));
    assert_eq!(net.relay.stats().refused(Refusal::TooManyConnections), 1);
    drop(first);
    // The slot frees once the relay sees the first connection end (bounded wait).
    let deadline = tokio::time::Instant::now() + WAIT;
    while net.relay.stats().connections > 1 {
        assert!(tokio::time::Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut fourth, _, _) = connect(&net.url).await;
    ping_pong(&mut fourth, net.nodes[0].addr()).await;
    ping_pong(&mut second, net.nodes[0].addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed() {
    let net =
        net(RelayConfig { idle_timeout: Duration::from_millis(400), ..RelayConfig::default() }, &[]).await;
    let (mut ws, _, _) = connect(&net.url).await;
    ping_pong(&mut ws, net.nodes[0].addr()).await;
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!((code, reason.as_str()), (1000, "idle for 0.4 s"));
    assert_eq!(net.relay.stats().connections_closed_idle, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_frames_and_refusals() {
    let net = net(RelayConfig::default(), &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let listeners = Listeners::new(ListenConfig::default());
    let app = kad_host::http::router(net.nodes[0].handle(), Some(net.relay.clone()), &listeners);
    listeners.serve(listener, app);
    // The relay is also at /relay on the HTTP server.
    let (mut ws, _, _) = connect(&format!("ws://{http}/relay")).await;
    ping_pong(&mut ws, net.nodes[0].addr()).await;
    send(&mut ws, net.nodes[0].addr(), b"junk").await;
    assert!(nothing_within(&mut ws).await);
    let (status, text) =
        tokio::task::spawn_blocking(move || common::http(http, "GET", "/metrics", None)).await.unwrap();
    assert_eq!(status, 200);
    for line in [
        "kad_relay_connections 1",
        "kad_relay_connections_total 1",
        "kad_relay_frames_total{direction=\"to_network\"} 1",
        "kad_relay_frames_total{direction=\"to_browser\"} 1",
        "kad_relay_refused_total{reason=\"not_kad\"} 1",
        "kad_relay_refused_total{reason=\"untrusted_destination\"} 0",
        "kad_rpcs_in_total{kind=\"ping\"}",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
