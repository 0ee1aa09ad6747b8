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
async fn closed_with(
    ws: &mut (impl futures_util::Stream<Item = Result<Ws, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> (u16, String) {
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
        token: kad_core::token::Token::default(),
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

/// Sends FIND_NODE to `seed` (a stand-in node on the bootstrap list) and has it answer with
/// `named`; waits for the reply to reach the browser.
async fn name(ws: &mut Client, seed: &UdpSocket, named: &[SocketAddr]) {
    send(ws, seed.local_addr().unwrap(), &message(Body::FindNode { target: Key::hash(b"x") })).await;
    let (_, from) = recv(seed).await.expect("the bootstrap list is trusted");
    let contacts =
        named.iter().map(|a| Peer { id: NodeId::from_bytes(rand::random()), addr: (*a).into() }).collect();
    seed.send_to(&message(Body::Nodes { contacts }), from).await.unwrap();
    assert!(next_binary(ws).await.is_some(), "the reply is relayed");
}

/// Every datagram `sock` receives within `QUIET` of the last: (payload, sender).
async fn drain(sock: &UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    while let Some(d) = recv(sock).await {
        got.push(d);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_destination_is_refused_until_a_relayed_reply_names_it_and_the_relay_verifies_it() {
    // A stand-in node on the bootstrap list answers FIND_NODE with the address of `target`, a
    // kad node the relay node does not know.
    let fake = udp().await;
    let target = Node::bind(Config::default()).await.unwrap();
    let net = net(RelayConfig::default(), &[fake.local_addr().unwrap()]).await;
    let (mut ws, local, _) = connect(&net.url).await;

    send(&mut ws, target.addr(), &message(Body::Ping)).await;
    assert!(nothing_within(&mut ws).await);
    assert_eq!(
        target.status().await.unwrap().stats.datagrams_in,
        0,
        "an address nobody named is not sent to"
    );
    assert_eq!(net.relay.stats().refused(Refusal::Untrusted), 1);

    send(&mut ws, fake.local_addr().unwrap(), &message(Body::FindNode { target: Key::hash(b"x") })).await;
    let (_, from) = recv(&fake).await.expect("the bootstrap list is trusted");
    assert_eq!(PeerAddr::from(from), local, "sent from the connection's own UDP socket");
    let named = Peer { id: NodeId::from_bytes([7; 20]), addr: target.addr().into() };
    fake.send_to(&message(Body::Nodes { contacts: [named].into_iter().collect() }), from).await.unwrap();
    assert!(next_binary(&mut ws).await.is_some(), "the reply is relayed");

    // Named: the frame waits for the relay's own ping to come back from `target`, then goes.
    ping_pong(&mut ws, target.addr()).await;
    let s = net.relay.stats();
    assert_eq!((s.verify_pings, s.verified, s.refused(Refusal::Untrusted)), (1, 1, 1));
    assert_eq!(target.status().await.unwrap().stats.datagrams_in, 2, "the relay's ping, then the browser's");
    // Verified: the next frames go at once, without another ping.
    ping_pong(&mut ws, target.addr()).await;
    assert_eq!(net.relay.stats().verify_pings, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_node_named_in_a_reply_gets_no_datagram_but_one_verification_ping() {
    // The seed names eight UDP ports that are no kad nodes; the browser sends to them, again
    // and again, as the attacker of issue 14 did (136 datagrams reached such a port then).
    let seed = udp().await;
    let mut fakes = Vec::new();
    for _ in 0..8 {
        fakes.push(udp().await);
    }
    let fake_addrs: Vec<SocketAddr> = fakes.iter().map(|f| f.local_addr().unwrap()).collect();
    let net = net(RelayConfig::default(), &[seed.local_addr().unwrap()]).await;
    let (mut ws, local, _) = connect(&net.url).await;
    name(&mut ws, &seed, &fake_addrs).await;
    let mut sent = 0;
    'flood: for _ in 0..40 {
        for a in &fake_addrs {
            if ws
                .send(datagram_frame((*a).into(), &message(Body::FindNode { target: Key::hash(b"y") })))
                .await
                .is_err()
            {
                break 'flood;
            }
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!(code, 1008, "{reason}");
    // Let the verifications run out (`verify_timeout`, 1 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (mut pings, mut from_browser) = (0, 0);
    for f in &fakes {
        let got = drain(f).await;
        for (payload, from) in &got {
            if PeerAddr::from(*from) == local {
                from_browser += 1;
            } else {
                assert!(matches!(wire::decode(payload).unwrap().body, Body::Ping), "only a ping");
                pings += 1;
            }
        }
        assert_eq!(got.len(), 1, "one datagram per fake node: the relay's ping");
    }
    println!(
        "relay: {sent} frames to 8 fake nodes named in a reply → datagrams at the fakes: {from_browser} from the \
         browser, {pings} verification pings (1 each); connection closed {code} ({reason})"
    );
    assert_eq!((from_browser, pings), (0, 8));
    // Another connection that learns the same fakes is refused at once: the failed
    // verifications are remembered, and nothing more is sent to them.
    let (mut again, _, _) = connect(&net.url).await;
    name(&mut again, &seed, &fake_addrs).await;
    for a in &fake_addrs {
        send(&mut again, *a, &message(Body::Ping)).await;
    }
    assert!(nothing_within(&mut again).await);
    for f in &fakes {
        assert!(recv(f).await.is_none(), "no second ping");
    }
    let s = net.relay.stats();
    assert_eq!((s.verify_pings, s.verified, s.frames_to_network), (8, 0, 2), "{s:?}");
    assert!(s.refused(Refusal::Unverified) >= 8, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_pings_are_limited_per_connection_and_in_all() {
    let config =
        RelayConfig { verify_per_sec_per_connection: 3, verify_per_sec: 4, ..RelayConfig::default() };
    let seed = udp().await;
    let mut fakes = Vec::new();
    for _ in 0..10 {
        fakes.push(udp().await);
    }
    let fake_addrs: Vec<SocketAddr> = fakes.iter().map(|f| f.local_addr().unwrap()).collect();
    let net = net(config, &[seed.local_addr().unwrap()]).await;
    let start = tokio::time::Instant::now();
    let (mut first, _, _) = connect(&net.url).await;
    name(&mut first, &seed, &fake_addrs).await;
    for a in &fake_addrs {
        send(&mut first, *a, &message(Body::Ping)).await;
    }
    assert!(nothing_within(&mut first).await);
    let by_first = net.relay.stats().verify_pings;
    let (mut second, _, _) = connect(&net.url).await;
    name(&mut second, &seed, &fake_addrs).await;
    for a in &fake_addrs {
        send(&mut second, *a, &message(Body::Ping)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut pinged = 0;
    for f in &fakes {
        pinged += drain(f).await.len() as u64;
    }
    let s = net.relay.stats();
    println!(
        "relay: 10 named fakes, 3 pings/s per connection, 4/s in all: first connection {by_first} pings, second {} \
         ({:.2} s in all; {} frames refused for the limit)",
        s.verify_pings - by_first,
        elapsed,
        s.refused(Refusal::VerifyLimit)
    );
    assert_eq!(by_first, 3, "the connection's allowance");
    // The relay's allowance had one left, and refills at 4 a second.
    let allowed = 4 + (elapsed * 4.0) as u64;
    assert!(
        s.verify_pings > by_first && s.verify_pings <= allowed.min(3 + 3 + (elapsed * 3.0) as u64),
        "{s:?}"
    );
    assert_eq!(pinged, s.verify_pings, "every ping counted, none other sent");
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
    // A 1 MiB frame is refused from its header: the relay does not read it, and says why.
    let (huge, _, _) = connect(&net.url).await;
    let (mut sink, mut stream) = huge.split();
    let sending = tokio::spawn(async move {
        let _ = sink.send(Ws::Binary(vec![1u8; 1 << 20].into())).await;
        sink
    });
    let (code, reason) = closed_with(&mut stream).await;
    println!("relay: a 1 MiB frame → close {code} ({reason})");
    assert_eq!((code, reason.as_str()), (1009, "frame of 1048576 bytes is over the limit of 1220 bytes"));
    drop(tokio::time::timeout(WAIT, sending).await);
    let s = net.relay.stats();
    assert_eq!((s.refused(Refusal::Oversize), s.connections_closed_misbehaving), (2, 2));
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

/// Connects from `ip` (a loopback address) and returns the first message: HELLO or a close.
async fn first_message_from(ip: &str, url: &str) -> (Client, Ws) {
    let server: SocketAddr = url.trim_start_matches("ws://").trim_end_matches('/').parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let stream = sock.connect(server).await.unwrap();
    let (mut ws, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)))
            .await
            .unwrap()
            .unwrap();
    let first = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    (ws, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_limited() {
    let config = RelayConfig { limit_loopback: true, ..RelayConfig::default() };
    let net = net(config, &[]).await;
    let (mut open, mut refused) = (Vec::new(), 0);
    for _ in 0..64 {
        match first_message_from("127.0.0.1", &net.url).await {
            (ws, Ws::Binary(_)) => open.push(ws),
            (_, Ws::Close(Some(f))) => {
                assert_eq!(
                    (u16::from(f.code), f.reason.as_str()),
                    (1008, "too many connections from 127.0.0.1: at most 8")
                );
                refused += 1;
            }
            (_, other) => panic!("HELLO or a close, got {other:?}"),
        }
    }
    println!("relay: 64 connections from one IP → {} accepted, {refused} closed with 1008", open.len());
    assert_eq!((open.len(), refused), (8, 56));
    assert_eq!(net.relay.stats().refused(Refusal::TooManyFromIp), 56);
    // Another address is another client.
    let (mut other, first) = first_message_from("127.0.0.2", &net.url).await;
    assert!(matches!(first, Ws::Binary(_)), "{first:?}");
    ping_pong(&mut other, net.nodes[0].addr()).await;
    // A closed connection frees its place (bounded wait for the relay to see it end).
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    while net.relay.stats().connections > 8 {
        assert!(tokio::time::Instant::now() < deadline, "the place was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(first_message_from("127.0.0.1", &net.url).await.1, Ws::Binary(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_clients_are_exempt_from_the_per_ip_limit_by_default() {
    let net = net(RelayConfig::default(), &[]).await;
    let mut open = Vec::new();
    for _ in 0..12 {
        let (ws, first) = first_message_from("127.0.0.1", &net.url).await;
        assert!(matches!(first, Ws::Binary(_)), "{first:?}");
        open.push(ws);
    }
    assert_eq!(net.relay.stats().refused(Refusal::TooManyFromIp), 0);
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
