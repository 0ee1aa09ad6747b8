//! The listeners' limits ([`kad_host::listen`]): idle connections cannot use up the node's
//! descriptors, idle and slow connections are closed, and the read-only views answer while
//! lookups queue. Each test prints its figure.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use kad_core::Key;
use kad_host::listen::Reason;
use kad_host::{http, Config, ListenConfig, Listeners, Node};

/// A loopback listener serving `app` under `listeners`.
async fn serve(listeners: &Listeners, app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    listeners.serve(listener, app);
    addr
}

/// The value of the metric line starting with `name ` in `text`.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// Raises this process's soft open-file limit to at least `n` (the hard limit must allow it).
fn raise_own_nofile(n: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current.is_some_and(|c| c < n) {
        assert!(
            lim.maximum.is_none_or(|m| m >= n),
            "this test holds {n} sockets: raise the hard open-file limit (ulimit -Hn)"
        );
        lim.current = Some(n);
        setrlimit(Resource::Nofile, lim).unwrap();
    }
}

#[test]
fn status_answers_while_1100_idle_connections_are_held() {
    raise_own_nofile(2048);
    let http = common::free_tcp();
    // The node of issue 14: 1,024 descriptors, 1,100 idle connections.
    let node =
        common::spawn_node_with_nofile(&["--memory", "--port", "0", "--http", &http.to_string()], 1024);
    node.line("http:", 20);
    let mut idle = Vec::with_capacity(1100);
    let start = Instant::now();
    for _ in 0..1100 {
        idle.push(TcpStream::connect_timeout(&http, Duration::from_secs(5)).unwrap());
    }
    let opened = start.elapsed();
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (code, body) = common::http(http, "GET", "/status", None);
        latencies.push(t.elapsed());
        assert_eq!(code, 200, "{body}");
    }
    let (code, metrics) = common::http(http, "GET", "/metrics", None);
    assert_eq!(code, 200);
    let open = metric(&metrics, "kad_http_connections");
    let evicted = metric(&metrics, "kad_http_refused_total{reason=\"evicted\"}");
    let worst = latencies.iter().max().unwrap();
    println!(
        "listeners: /status with 1,100 idle connections held (node limited to 1,024 descriptors): {:?} \
         (worst {worst:?}); the node holds {open} connections, closed {evicted} idle ones to make room \
         (1,100 opened in {opened:?})",
        latencies
    );
    assert!(*worst < Duration::from_secs(1), "{latencies:?}");
    assert!(open <= 512, "at most half the descriptor limit: {open}");
    assert!(evicted >= 1100 - 512, "{evicted}");
    drop(idle);
}

/// Reads one HTTP response with a Content-Length from a kept-alive connection; returns its
/// status.
fn read_response(s: &mut TcpStream) -> u16 {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the response ended");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ")?.trim().parse().ok())
                .expect("a Content-Length");
            if body.len() >= len {
                return head.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
    }
}

/// How long after `since` the server closed `s` (EOF or reset), reading at most 5 s.
fn closed_after(s: &mut TcpStream, since: Instant) -> Duration {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return since.elapsed(),
            Err(e) => panic!("not closed within 5 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_after_the_timeouts() {
    let node = Node::bind(Config::default()).await.unwrap();
    let header = Duration::from_millis(300);
    let idle = Duration::from_millis(800);
    let listeners = Listeners::new(ListenConfig {
        header_timeout: header,
        idle_timeout: idle,
        ..ListenConfig::default()
    });
    let addr = serve(&listeners, http::router(node.handle(), None, &listeners)).await;
    let results = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut silent: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // A header sent a byte at a time, every 50 ms: busy, but never complete in time.
        let mut slow = TcpStream::connect(addr).unwrap();
        let mut dribble = slow.try_clone().unwrap();
        let dribbler = std::thread::spawn(move || {
            for b in b"GET /status HTTP/1.1\r\nHost: kad\r\nX-Slow: ".iter().chain([b'x'; 40].iter()) {
                if dribble.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // A kept-alive connection that asks once, then waits.
        let mut kept = TcpStream::connect(addr).unwrap();
        kept.write_all(b"GET /status HTTP/1.1\r\nHost: kad\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut kept), 200);
        let answered = Instant::now();
        let silent_closed: Vec<Duration> = silent.iter_mut().map(|s| closed_after(s, start)).collect();
        let slow_closed = closed_after(&mut slow, start);
        let kept_closed = closed_after(&mut kept, answered);
        let _ = dribbler.join();
        (silent_closed, slow_closed, kept_closed)
    })
    .await
    .unwrap();
    let (silent, slow, kept) = results;
    let (first, last) = (silent.iter().min().unwrap(), silent.iter().max().unwrap());
    println!(
        "listeners: 20 silent connections closed {first:?}..{last:?} after opening, a header sent a byte every 50 ms \
         after {slow:?} (header timeout {header:?}); a kept-alive connection {kept:?} after its answer (idle \
         timeout {idle:?})"
    );
    assert!(*first >= header && *last < header + Duration::from_millis(700), "{silent:?}");
    assert!(slow >= header && slow < header + Duration::from_millis(700), "{slow:?}");
    // The node's idle clock starts when it has written the answer, a little before it is read.
    assert!(kept >= idle - Duration::from_millis(50) && kept < idle + Duration::from_millis(700), "{kept:?}");
    let s = listeners.stats();
    assert_eq!((s.closed(Reason::HeaderTimeout), s.closed(Reason::Idle), s.connections), (21, 1, 0), "{s:?}");
    node.stop().await;
}

/// Sends `GET path` and waits at most `wait` for the status line; `None` if none came.
fn get_within(addr: SocketAddr, path: &str, wait: Duration) -> Option<(u16, Duration)> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(wait)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: kad\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    let code = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
    Some((code, t.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_views_answer_while_the_command_queue_is_full_of_slow_commands() {
    // A UDP socket that never answers: each bootstrap through it waits for its timeout (1 s).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let node = Node::bind(Config::default()).await.unwrap();
    let listeners = Listeners::new(ListenConfig { max_pending: Some(8), ..ListenConfig::default() });
    let addr = serve(&listeners, http::router(node.handle(), None, &listeners)).await;
    // A second listener whose every connection may be busy: max_pending = max_connections.
    let tight =
        Listeners::new(ListenConfig { max_connections: 4, max_pending: Some(4), ..ListenConfig::default() });
    let tight_addr = serve(&tight, http::api(node.handle(), None, &tight)).await;

    // 3,000 slow commands: 32 run, 1,024 wait in the backlog, 1,024 in the channel, the rest
    // wait to be sent.
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..3000 {
        let h = node.handle();
        slow.spawn(async move { drop(h.bootstrap(&[silent_addr]).await) });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued = tokio::time::timeout(Duration::from_millis(500), node.find_node(Key::hash(b"k"))).await;
    assert!(queued.is_err(), "a query waits behind the slow commands");

    // 20 gets at once: 8 wait for the node, 12 are answered 503 at once; 4 on the tight
    // listener fill it, and a 5th connection there is refused.
    let wait = Duration::from_millis(1500);
    let gets: Vec<_> =
        (0..20).map(|_| tokio::task::spawn_blocking(move || get_within(addr, "/dht/k", wait))).collect();
    let busy: Vec<_> =
        (0..4).map(|_| tokio::task::spawn_blocking(move || get_within(tight_addr, "/dht/k", wait))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let refused = tokio::task::spawn_blocking(move || get_within(tight_addr, "/dht/k", wait)).await.unwrap();
    let refused_after = t.elapsed();

    let mut views = Vec::new();
    for path in ["/status", "/metrics", "/api/dashboard", "/status"] {
        let got = tokio::task::spawn_blocking(move || get_within(addr, path, Duration::from_secs(5)))
            .await
            .unwrap();
        let (code, took) = got.unwrap_or_else(|| panic!("{path} did not answer"));
        assert_eq!(code, 200, "{path}");
        views.push((path, took));
    }
    let (mut unavailable, mut waiting) = (Vec::new(), 0);
    for g in gets {
        match g.await.unwrap() {
            Some((503, took)) => unavailable.push(took),
            None => waiting += 1,
            other => panic!("503 at once or a wait, got {other:?}"),
        }
    }
    for b in busy {
        assert_eq!(b.await.unwrap(), None, "waits for the node");
    }
    let worst_view = views.iter().map(|(_, t)| *t).max().unwrap();
    println!(
        "listeners: with 3,000 slow commands queued, {views:?}; 20 gets at once: {} answered 503 (slowest {:?}), \
         {waiting} waiting; a 5th connection to a listener of 4 busy ones: {refused:?} after {refused_after:?}",
        unavailable.len(),
        unavailable.iter().max()
    );
    assert!(worst_view < Duration::from_secs(1), "{views:?}");
    assert_eq!((unavailable.len(), waiting), (12, 8));
    assert!(unavailable.iter().all(|t| *t < Duration::from_secs(1)), "{unavailable:?}");
    assert!(refused.is_none() && refused_after < Duration::from_secs(1), "closed at once, no answer");
    assert_eq!((listeners.stats().closed(Reason::Busy), tight.stats().closed(Reason::Full)), (12, 1));
    node.stop().await;
    slow.shutdown().await;
}
