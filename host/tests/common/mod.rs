//! Shared test helpers: `kad` processes on loopback and a minimal HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `kad node` process, killed when dropped.
pub struct KadProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub id: String,
    /// The lines it prints on stdout after the first one.
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for KadProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kad node ARGS` and waits (at most 20 s) for it to print its address.
pub fn spawn_node(args: &[&str]) -> KadProcess {
    spawn_node_with(args, &[])
}

/// [`spawn_node`] with extra environment variables.
pub fn spawn_node_with(args: &[&str], env: &[(&str, &std::path::Path)]) -> KadProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kad"));
    cmd.arg("node").args(args).envs(env.iter().map(|(k, v)| (*k, *v)));
    spawn(cmd)
}

/// [`spawn_node`] with its open-file limit set to `nofile`, as `ulimit -n` does.
pub fn spawn_node_with_nofile(args: &[&str], nofile: u32) -> KadProcess {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" node \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kad"))
        .args(args);
    spawn(cmd)
}

/// Starts `cmd` (a `kad node`) and waits (at most 20 s) for it to print its address.
fn spawn(mut cmd: Command) -> KadProcess {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start kad node");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (line_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            // "kad node <id> listening on udp <addr>"
            if let Some(rest) = line.strip_prefix("kad node ") {
                let mut parts = rest.split_whitespace();
                let id = parts.next().unwrap_or_default().to_string();
                let addr = parts.nth(3).unwrap_or_default().to_string();
                let _ = tx.send((id, addr));
            } else {
                let _ = line_tx.send(line);
            }
        }
    });
    let (id, addr) = rx.recv_timeout(Duration::from_secs(20)).expect("kad node printed its address");
    KadProcess { child, addr: addr.parse().expect("an address"), id, lines }
}

impl KadProcess {
    /// Waits (at most `secs`) for a line starting with `prefix`; returns it.
    pub fn line(&self, prefix: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(_) => panic!("no line starting with {prefix:?} within {secs} s"),
            }
        }
    }
}

/// Runs `kad ARGS` to completion (at most 60 s); returns (exit code, stdout, stderr).
pub fn kad(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kad"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kad");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status.code().unwrap_or(-1), out, err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("kad {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP port on loopback that was free a moment ago.
pub fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// One HTTP/1.1 request; returns (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
