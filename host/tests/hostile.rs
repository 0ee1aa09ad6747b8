//! Hostile peers on loopback (issue 14): a Sybil flood from one /24, ids changing at one
//! address, a FIND_NODE flood from one source, and a replication-reflection attempt. The
//! victim applies its limits to loopback (`limits.on_loopback`, `kad node --limit-loopback`);
//! honest nodes and attackers sit on 127.0.x.y, each /24 a network of its own. Each test prints
//! its figure and asserts the defence holds; every loop is bounded in count and time.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use kad_core::wire::{self, Body, Flags, Header, Message, TxId, MAX_DATAGRAM, VERSION};
use kad_core::{Key, NodeId, PeerAddr};
use kad_host::{Config, Node};
use tokio::net::UdpSocket;

/// A node bound at `ip` that applies every limit to loopback sources too.
fn limited(ip: [u8; 4]) -> Config {
    let mut c = Config { bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 0), ..Config::default() };
    c.core.limits.on_loopback = true;
    c
}

/// A made-up node id.
fn fake_id(tag: &str, n: usize) -> NodeId {
    NodeId::from_bytes(*Key::hash(format!("{tag} {n}").as_bytes()).as_bytes())
}

/// The datagram of `body` sent by `sender`.
fn datagram(sender: NodeId, txid: [u8; 4], body: Body<'_>) -> Vec<u8> {
    let header = Header {
        version: VERSION,
        txid: TxId(txid),
        sender,
        flags: Flags::default(),
        token: Default::default(),
    };
    let mut buf = [0u8; MAX_DATAGRAM];
    let n = wire::encode(&Message { header, body }, &mut buf).expect("fits a datagram");
    buf[..n].to_vec()
}

/// A victim at 127.0.1.1 and `honest` nodes at 127.0.(10 + i).1 that joined through it; waits
/// (at most 30 s) until the victim's table holds every honest node.
async fn network(honest: usize) -> (Node, Vec<Node>) {
    let victim = Node::bind(limited([127, 0, 1, 1])).await.unwrap();
    let mut nodes = Vec::new();
    for i in 0..honest {
        let n = Node::bind(limited([127, 0, 10 + i as u8, 1])).await.unwrap();
        n.bootstrap(&[victim.addr()]).await.unwrap();
        nodes.push(n);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while victim.contacts().await.unwrap().len() < honest && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (victim, nodes)
}

async fn stop(victim: Node, nodes: Vec<Node>) {
    victim.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

/// An attacker socket at `ip`: sends a FIND_NODE under each of `ids` in turn, and answers the
/// victim's pings (verifications included) under the id it sent last, waiting at most
/// `wait` for a ping after each request.
async fn sybil(ip: [u8; 4], victim: SocketAddr, ids: Vec<NodeId>, wait: Duration) {
    let sock = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 0)).await.unwrap();
    let mut buf = [0u8; MAX_DATAGRAM];
    for (i, id) in ids.into_iter().enumerate() {
        let target = fake_id("target", i).as_key();
        let req = datagram(id, (i as u32).to_le_bytes(), Body::FindNode { target });
        sock.send_to(&req, victim).await.unwrap();
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
            let Ok(msg) = wire::decode(&buf[..n]) else { continue };
            if let Body::Ping = msg.body {
                let observed = PeerAddr::from(from);
                let pong = datagram(id, msg.header.txid.0, Body::Pong { observed });
                sock.send_to(&pong, victim).await.unwrap();
                break;
            }
        }
    }
}

/// 2,000 ids from 100 addresses of one /24 that answer every verification take at most 10% of
/// a table of 20 honest nodes and more (2 contacts of a bucket, 10 of the table); 500 ids from
/// one address take one contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sybil_flood_from_one_slash_24_takes_a_bounded_share_of_the_table() {
    let (victim, nodes) = network(24).await;
    let to = victim.addr();
    let mut attackers = Vec::new();
    for a in 1..=100u8 {
        let ids = (0..20).map(|i| fake_id("sybil", a as usize * 100 + i)).collect();
        attackers.push(tokio::spawn(sybil([127, 0, 99, a], to, ids, Duration::from_millis(50))));
    }
    let one = (0..500).map(|i| fake_id("one address", i)).collect();
    attackers.push(tokio::spawn(sybil([127, 0, 98, 1], to, one, Duration::from_millis(20))));
    for a in attackers {
        tokio::time::timeout(Duration::from_secs(60), a).await.expect("the attackers finish").unwrap();
    }
    let contacts = victim.contacts().await.unwrap();
    let in_net = |c: &&kad_core::Peer, net: [u8; 3]| matches!(c.addr, PeerAddr::V4([a, b, c, _], _) if [a, b, c] == net);
    let sybils = contacts.iter().filter(|c| in_net(c, [127, 0, 99])).count();
    let one_addr = contacts.iter().filter(|c| in_net(c, [127, 0, 98])).count();
    let honest = contacts.len() - sybils - one_addr;
    let s = victim.status().await.unwrap();
    let per_bucket = s.buckets.len();
    println!(
        "sybil flood: 2,000 ids from 127.0.99.0/24 hold {sybils} of {} contacts ({:.1}%), {honest} honest; \
         500 ids from one address hold {one_addr}; {} buckets; refused: {} over the source rate, {} by diversity; \
         {} verification pings, {} contacts replaced by another id at their address",
        contacts.len(),
        100.0 * sybils as f64 / contacts.len() as f64,
        per_bucket,
        s.stats.requests_limited,
        s.stats.diversity_refused,
        s.stats.verify_pings,
        s.stats.address_reused,
    );
    assert!(honest >= 20, "the honest nodes stay: {honest}");
    assert!(sybils <= 10, "one /24 holds at most 10 contacts: {sybils}");
    assert!(
        sybils * 10 <= contacts.len(),
        "one /24 holds at most 10% of the table: {sybils} of {}",
        contacts.len()
    );
    assert!(sybils <= 2 * per_bucket, "at most 2 per bucket: {sybils} in {per_bucket} buckets");
    assert!(one_addr <= 1, "one address holds one id: {one_addr}");
    let ids: HashSet<_> = contacts.iter().map(|c| c.addr).collect();
    assert_eq!(ids.len(), contacts.len(), "one id per address");
    stop(victim, nodes).await;
}

/// One source sends 5,000 FIND_NODE in about a second: it gets the answers its rate allows,
/// each at most 3 times its request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_find_node_flood_from_one_source_is_rate_limited_and_not_amplified() {
    let (victim, nodes) = network(20).await;
    let sock = UdpSocket::bind("127.0.97.1:0").await.unwrap();
    let id = fake_id("flooder", 0);
    let (mut sent, mut sent_bytes, mut answers, mut answer_bytes) = (0usize, 0usize, 0usize, 0usize);
    let mut buf = [0u8; MAX_DATAGRAM];
    let start = Instant::now();
    for i in 0..5_000usize {
        let req = datagram(id, (i as u32).to_le_bytes(), Body::FindNode { target: fake_id("t", i).as_key() });
        sock.send_to(&req, victim.addr()).await.unwrap();
        sent += 1;
        sent_bytes += req.len();
        if i % 50 == 49 {
            // Paced (5,000 in ~1 s) so that no socket buffer overflows; answers read meanwhile.
            let until = tokio::time::Instant::now() + Duration::from_millis(10);
            while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
                answers += 1;
                answer_bytes += n;
            }
        }
    }
    let elapsed = start.elapsed();
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
        answers += 1;
        answer_bytes += n;
    }
    let s = victim.status().await.unwrap().stats;
    let factor = answer_bytes as f64 / sent_bytes as f64;
    let req_len = sent_bytes / sent;
    println!(
        "find_node flood: {sent} requests ({sent_bytes} B) in {:.2} s from one source: {answers} answered, \
         {answer_bytes} B (x{factor:.2} of the bytes sent, x{:.2} of the requests answered); {} over the source \
         rate, {} answers trimmed to 3x",
        elapsed.as_secs_f64(),
        answer_bytes as f64 / (answers.max(1) * req_len) as f64,
        s.requests_limited,
        s.replies_trimmed
    );
    // The default limits: a burst of 200 requests, then 100 per second (and the time to read
    // the rest); answers at most 3x their request beyond a budget of 4,000 B and 1,000 B/s.
    let secs = elapsed.as_secs_f64() + 0.5;
    let allowed = 200 + (100.0 * secs) as usize;
    assert!(answers <= allowed, "{answers} answers, more than {allowed}");
    assert!(answers >= 200, "the burst is answered: {answers}");
    assert!(factor <= 3.0, "the flood is not amplified: x{factor:.2}");
    let budget = 4_000 + (1_000.0 * secs) as usize;
    assert!(answer_bytes <= 3 * answers * req_len + budget, "{answer_bytes} B for {answers} answers");
    stop(victim, nodes).await;
}

/// Pings under forged ids close to the keys a node holds, from an address that never
/// answers: the node sends that address no record (it was 1,586 STOREs, 1.6 MB for 50 pings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_ids_near_held_keys_do_not_draw_replication() {
    let (victim, nodes) = network(10).await;
    let keys: Vec<String> = (0..50).map(|i| format!("held {i}")).collect();
    for k in &keys {
        nodes[0].put(k, "a value of some size, so that a STORE is worth reflecting").await.unwrap();
    }
    let held = victim.status().await.unwrap().records;
    let sock = UdpSocket::bind("127.0.96.1:0").await.unwrap();
    let mut sent_bytes = 0;
    for (i, k) in keys.iter().enumerate() {
        let mut id = *Key::hash(k.as_bytes()).as_bytes();
        id[19] ^= 1;
        let ping = datagram(NodeId::from_bytes(id), (i as u32).to_le_bytes(), Body::Ping);
        sock.send_to(&ping, victim.addr()).await.unwrap();
        sent_bytes += ping.len();
    }
    let (mut got, mut got_bytes, mut stores) = (0usize, 0usize, 0usize);
    let mut buf = [0u8; MAX_DATAGRAM];
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
        got += 1;
        got_bytes += n;
        stores += usize::from(matches!(wire::decode(&buf[..n]).map(|m| m.body), Ok(Body::Store { .. })));
    }
    println!(
        "replication reflection: 50 forged pings ({sent_bytes} B) near {held} held records drew {got} datagrams \
         ({got_bytes} B, x{:.2}) to the unverified address, {stores} of them STOREs",
        got_bytes as f64 / sent_bytes as f64
    );
    assert!(held >= 50, "the victim holds the records: {held}");
    assert_eq!(stores, 0, "no record goes to an address that never answered");
    assert!(got_bytes <= 3 * sent_bytes, "{got_bytes} B to the forged address for {sent_bytes} B");
    stop(victim, nodes).await;
}
