//! Hostile peers against writes and values (issue 14), on loopback with every limit applied to
//! loopback too (`limits.on_loopback`): the honest nodes live on a /24 each (127.0.10.1 and
//! up), the attackers on others (127.0.1.x, 127.0.2.x, 127.0.3.x), played by hand with raw UDP sockets that speak
//! the wire format. Each test prints its figure and asserts the defence:
//! - a STORE flood from one source: the records the victim is responsible for stay, the
//!   flooder holds at most its share, PING stays fast;
//! - forged-source stores (no write token, or another address's): all refused and counted;
//! - a liar on the get path: its forged value is never returned while two honest holders
//!   exist, and never cached on an honest node.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use kad_core::token::Token;
use kad_core::wire::{
    self, Body, Bytes, Flags, Header, Message, StoreStatus, TxId, WireRecord, MAX_DATAGRAM,
};
use kad_core::{Key, NodeId, ValueKind};
use kad_host::{Config, Node, Value};
use tokio::net::UdpSocket;

/// A node whose limits apply to loopback sources, on a /24 of its own (127.0.10.1,
/// 127.0.11.1, ...: honest nodes are different operators, as the diversity limits assume).
fn limited(max_records: usize) -> Config {
    static NEXT: AtomicU8 = AtomicU8::new(10);
    let ip = Ipv4Addr::new(127, 0, NEXT.fetch_add(1, Ordering::Relaxed), 1);
    let mut c = Config { max_records, bind: SocketAddr::new(IpAddr::V4(ip), 0), ..Config::default() };
    c.core.limits.on_loopback = true;
    c
}

/// As [`limited`], without the per-source request rate: every request of the test reaches the
/// rule under test (the rate limit has its own tests in `hostile.rs`).
fn unmetered(max_records: usize) -> Config {
    let mut c = limited(max_records);
    c.core.limits.requests_per_sec = 1_000_000;
    c.core.limits.request_burst = 1_000_000;
    c
}

/// A hand-played peer: a UDP socket on `ip` that sends requests and reads their answers.
struct Raw {
    sock: UdpSocket,
    id: NodeId,
    next: u32,
}

impl Raw {
    async fn bind(ip: &str) -> Raw {
        let sock = UdpSocket::bind((ip, 0)).await.expect("bind on loopback (127.0.0.0/8 is all local)");
        Raw { sock, id: NodeId::from_bytes(rand::random()), next: rand::random() }
    }

    fn header(&mut self, token: Token) -> Header {
        self.next = self.next.wrapping_add(1);
        Header {
            version: wire::VERSION,
            txid: TxId(self.next.to_le_bytes()),
            sender: self.id,
            flags: Flags(0),
            token,
        }
    }

    async fn send(&mut self, to: SocketAddr, token: Token, body: Body<'_>) -> TxId {
        let header = self.header(token);
        let mut buf = [0u8; MAX_DATAGRAM];
        let n = wire::encode(&Message { header, body }, &mut buf).expect("fits a datagram");
        self.sock.send_to(&buf[..n], to).await.unwrap();
        header.txid
    }

    /// Sends a request and waits (at most 2 s) for its answer: the answer's bytes.
    async fn ask(&mut self, to: SocketAddr, token: Token, body: Body<'_>) -> Option<Vec<u8>> {
        let txid = self.send(to, token, body).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await.ok()?.ok()?;
            if wire::decode(&buf[..n]).is_ok_and(|m| m.header.txid == txid) {
                return Some(buf[..n].to_vec());
            }
        }
    }

    /// The write token `to` grants this socket's IP address (from its answer to a PING).
    async fn token(&mut self, to: SocketAddr) -> Token {
        let answer = self.ask(to, Token::default(), Body::Ping).await.expect("the node answers a PING");
        wire::decode(&answer).unwrap().header.token
    }

    /// What `to` answers to FIND_VALUE `key`: the value it holds, if any.
    async fn held(&mut self, to: SocketAddr, key: Key) -> Option<Vec<u8>> {
        let answer = self.ask(to, Token::default(), Body::FindValue { key }).await.expect("an answer");
        match wire::decode(&answer).unwrap().body {
            Body::Value { record, .. } => Some(record.data.0.to_vec()),
            _ => None,
        }
    }
}

fn record(key: Key, data: &[u8]) -> WireRecord<'_> {
    WireRecord {
        key,
        kind: ValueKind::Bytes,
        ttl_secs: 3600,
        cached: false,
        data: Bytes(data),
        signature: None,
    }
}

fn status_of(answer: &[u8]) -> Option<StoreStatus> {
    match wire::decode(answer).ok()?.body {
        Body::Stored { status } => Some(status),
        _ => None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_flood_from_one_source_keeps_the_victims_records_and_its_pings_fast() {
    const CAPACITY: usize = 1024;
    const FLOOD: usize = 30_000;
    let victim = Node::bind(unmetered(CAPACITY)).await.unwrap();
    let mut honest = Vec::new();
    for _ in 0..3 {
        let n = Node::bind(limited(CAPACITY)).await.unwrap();
        n.bootstrap(&[victim.addr()]).await.unwrap();
        honest.push(n);
    }
    // Twenty records the victim is responsible for (a network of four: every node holds each).
    let legit: Vec<String> = (0..20).map(|i| format!("legit {i}")).collect();
    for k in &legit {
        assert!(honest[0].put(k, k.as_str()).await.unwrap() >= 1);
    }
    let mut checker = Raw::bind("127.0.2.2").await;
    for k in &legit {
        assert!(checker.held(victim.addr(), Key::hash(k.as_bytes())).await.is_some(), "{k} not held");
    }

    // The flooder asks for a token like any peer, then sends STOREs of 900-byte values under
    // random keys as fast as the victim answers, 32 at a time; PINGs from another /24 are timed
    // meanwhile.
    let to = victim.addr();
    let flood = tokio::spawn(async move {
        let mut f = Raw::bind("127.0.1.2").await;
        let token = f.token(to).await;
        let data = [0xabu8; 900];
        let (mut stored, mut over_share, mut other) = (0usize, 0usize, 0usize);
        let mut buf = [0u8; MAX_DATAGRAM];
        for chunk in 0..FLOOD / 32 {
            for i in 0..32 {
                let key = Key::hash(format!("flood {chunk} {i}").as_bytes());
                f.send(to, token, Body::Store { record: record(key, &data) }).await;
            }
            for _ in 0..32 {
                let Ok(Ok((n, _))) =
                    tokio::time::timeout(Duration::from_secs(2), f.sock.recv_from(&mut buf)).await
                else {
                    break;
                };
                match status_of(&buf[..n]) {
                    Some(StoreStatus::Stored) => stored += 1,
                    Some(StoreStatus::OverShare) => over_share += 1,
                    _ => other += 1,
                }
            }
        }
        (stored, over_share, other)
    });
    let mut pings = Vec::new();
    let mut pinger = Raw::bind("127.0.2.3").await;
    while !flood.is_finished() && pings.len() < 5000 {
        let t = Instant::now();
        assert!(pinger.ask(to, Token::default(), Body::Ping).await.is_some(), "a PING went unanswered");
        pings.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (stored, over_share, other) = flood.await.unwrap();
    pings.sort();
    let kept = {
        let mut n = 0;
        for k in &legit {
            n +=
                usize::from(checker.held(to, Key::hash(k.as_bytes())).await.as_deref() == Some(k.as_bytes()));
        }
        n
    };
    let s = victim.status().await.unwrap();
    println!(
        "STORE flood from one /24: {} STOREs answered ({stored} stored, {over_share} refused over share, \
         {other} other); flooder holds {stored} of {CAPACITY} records ({:.1}%); legit records kept {kept}/{}; \
         PING during the flood p50 {:.2} ms, p99 {:.2} ms ({} pings); victim holds {} records",
        stored + over_share + other,
        100.0 * stored as f64 / CAPACITY as f64,
        legit.len(),
        percentile(&pings, 0.5).as_secs_f64() * 1000.0,
        percentile(&pings, 0.99).as_secs_f64() * 1000.0,
        pings.len(),
        s.records,
    );
    assert_eq!(kept, legit.len(), "the flood evicted records the victim is responsible for");
    assert!(stored <= CAPACITY / 16, "one source holds {stored}, over its share of {}", CAPACITY / 16);
    assert!(over_share >= FLOOD / 2, "the flood was not refused: {over_share}");
    // Every refusal the flooder read was counted (a few answers may be lost on a full socket).
    assert!(s.stats.stores_over_share as usize >= over_share, "{} < {over_share}", s.stats.stores_over_share);
    assert!(pings.len() >= 10, "too few pings measured: {}", pings.len());
    assert!(
        percentile(&pings, 0.99) < Duration::from_millis(100),
        "PING p99 under the flood: {:?}",
        percentile(&pings, 0.99)
    );
    for n in honest {
        n.stop().await;
    }
    victim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_without_the_senders_own_write_token_are_refused_and_counted() {
    const EACH: usize = 100;
    let victim = Node::bind(unmetered(1024)).await.unwrap();
    let to = victim.addr();
    let mut forger = Raw::bind("127.0.1.3").await;
    let mut other = Raw::bind("127.0.1.4").await;
    // A token of another address: what a forger of that address's datagrams could at best show.
    let borrowed = other.token(to).await;
    let (mut refused, mut stored) = (0, 0);
    for i in 0..EACH {
        for (j, token) in [Token::default(), borrowed, Token(rand::random())].into_iter().enumerate() {
            let key = Key::hash(format!("forged {i} {j}").as_bytes());
            let answer = forger.ask(to, token, Body::Store { record: record(key, b"forged") }).await.unwrap();
            match status_of(&answer) {
                Some(StoreStatus::BadToken) => refused += 1,
                Some(StoreStatus::Stored) => stored += 1,
                s => panic!("unexpected answer {s:?}"),
            }
        }
    }
    let provider =
        forger.ask(to, Token::default(), Body::AddProvider { key: Key::hash(b"p") }).await.unwrap();
    let provider_refused =
        matches!(wire::decode(&provider).unwrap().body, Body::ProviderAdded { stored: false });
    // With its own token the same source stores.
    let own = forger.token(to).await;
    let answer =
        forger.ask(to, own, Body::Store { record: record(Key::hash(b"honest"), b"v") }).await.unwrap();
    let s = victim.status().await.unwrap();
    println!(
        "forged-source stores: {refused} of {} refused (no token, another address's token, a random token), \
         {stored} stored; ADD_PROVIDER without a token refused: {provider_refused}; writes_bad_token = {}",
        3 * EACH,
        s.stats.writes_bad_token
    );
    assert_eq!((refused, stored), (3 * EACH, 0));
    assert!(provider_refused);
    assert_eq!(s.stats.writes_bad_token as usize, 3 * EACH + 1);
    assert_eq!(status_of(&answer), Some(StoreStatus::Stored), "a source's own token is good");
    assert_eq!(s.records, 1);
    victim.stop().await;
}

/// A liar: answers every FIND_VALUE with a forged value for the key asked, PING and FIND_NODE
/// as an honest node would (so that it is contacted), and acknowledges STOREs it drops.
async fn lie(mut liar: Raw) {
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut out = [0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, from)) = liar.sock.recv_from(&mut buf).await else { return };
        let Ok(msg) = wire::decode(&buf[..n]) else { continue };
        let body = match msg.body {
            Body::Ping => Body::Pong { observed: from.into() },
            Body::FindNode { .. } => Body::Nodes { contacts: heapless::Vec::new() },
            Body::FindValue { key } => {
                Body::Value { record: record(key, b"FORGED"), closer: heapless::Vec::new() }
            }
            Body::Store { .. } => Body::Stored { status: StoreStatus::Stored },
            _ => continue,
        };
        let header = Header { txid: msg.header.txid, token: Token([1; 8]), ..liar.header(Token::default()) };
        let len = wire::encode(&Message { header, body }, &mut out).unwrap();
        let _ = liar.sock.send_to(&out[..len], from).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_on_the_get_path_neither_wins_nor_poisons_caches() {
    const GETS: usize = 100;
    let mut honest: Vec<Node> = Vec::new();
    for _ in 0..4 {
        let n = Node::bind(limited(1024)).await.unwrap();
        if let Some(first) = honest.first() {
            n.bootstrap(&[first.addr()]).await.unwrap();
        }
        honest.push(n);
    }
    honest[0].bootstrap(&[honest[1].addr()]).await.unwrap();
    let stored = Key::hash(b"stored key");
    let unstored = Key::hash(b"nobody stored this");
    assert!(honest[1].put("stored key", "honest").await.unwrap() >= 2);

    // The liar's id is next to the stored key, so it is the first peer every lookup asks.
    let mut liar = Raw::bind("127.0.3.2").await;
    let mut id = *stored.as_bytes();
    id[19] ^= 1;
    liar.id = NodeId::from_bytes(id);
    let liar_addr = liar.sock.local_addr().unwrap();
    for n in &honest {
        // It makes itself known the way any newcomer does.
        liar.ask(n.addr(), Token::default(), Body::FindNode { target: liar.id.as_key() }).await;
    }
    tokio::spawn(lie(liar));

    let mut getter_config = limited(1024);
    getter_config.core.client_mode = true;
    let getter = Node::bind(getter_config).await.unwrap();
    // A client: it holds no copy itself, so every get is a lookup. It knows the liar and one
    // honest holder (a client's table is its seeds); that holder's answer names the others.
    getter.bootstrap(&[liar_addr, honest[2].addr()]).await.unwrap();
    let mut forged = 0;
    let mut honest_answers = 0;
    for _ in 0..GETS {
        match getter.get("stored key").await.unwrap() {
            Some(v) if v == Value::from("honest") => honest_answers += 1,
            Some(_) => forged += 1,
            None => {}
        }
    }
    // A key nobody stored: the liar is its only "holder"; what it says must stay with the getter.
    let mut unstored_forged = 0;
    for _ in 0..10 {
        unstored_forged += usize::from(getter.get("nobody stored this").await.unwrap().is_some());
    }
    let mut checker = Raw::bind("127.0.2.4").await;
    let mut poisoned = 0;
    let mut holders = 0;
    for n in &honest {
        let held = checker.held(n.addr(), stored).await;
        holders += usize::from(held.as_deref() == Some(&b"honest"[..]));
        poisoned += usize::from(held.as_deref() == Some(&b"FORGED"[..]));
        poisoned += usize::from(checker.held(n.addr(), unstored).await.is_some());
    }
    println!(
        "liar on the get path: forged value returned in {forged} of {GETS} gets of a key {holders} honest \
         nodes hold (honest value {honest_answers}); a key only the liar claims: its value returned {unstored_forged} \
         of 10 times; honest nodes serving a forged value afterwards: {poisoned}"
    );
    assert!(holders >= 2, "the scenario needs two honest holders: {holders}");
    assert_eq!(forged, 0, "the liar won {forged} of {GETS} gets");
    assert_eq!(honest_answers, GETS);
    assert_eq!(poisoned, 0, "a forged value was cached on an honest node");
    getter.stop().await;
    for n in honest {
        n.stop().await;
    }
}
