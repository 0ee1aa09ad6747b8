//! The README's quick starts, run as written: the shell blocks marked `<!-- readme-test: NAME -->`
//! are read from README.md and run with bash, `kad` on the PATH and HOME in a fresh directory.
//! Only the ports are changed (to free ones, the same README port always to the same free port,
//! so two steps that collide in the README collide here too), since other tests and engineers
//! share this machine.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const README: &str = include_str!("../../README.md");

/// The ports the README uses, UDP then TCP.
const UDP_PORTS: [&str; 3] = ["8468", "8469", "8470"];
const TCP_PORTS: [&str; 3] = ["8080", "8090", "8091"];

/// The shell blocks marked `name`, in order.
fn blocks(name: &str) -> Vec<String> {
    let marker = format!("<!-- readme-test: {name} -->");
    let mut out = Vec::new();
    let mut rest = README;
    while let Some(i) = rest.find(&marker) {
        rest = &rest[i + marker.len()..];
        let start = rest.find("```sh\n").expect("a ```sh block after the marker") + 6;
        let end = rest[start..].find("```").expect("the block ends") + start;
        out.push(rest[start..end].to_string());
        rest = &rest[end..];
    }
    assert!(!out.is_empty(), "README.md has no block marked {marker}");
    out
}

struct Env {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
    path: String,
    ports: Vec<(&'static str, String)>,
    nodes: Vec<Child>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
    }
}

impl Env {
    fn new() -> Env {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_kad")).parent().unwrap().to_path_buf();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        // Held together so that no two README ports get the same free port.
        let udp: Vec<_> = UDP_PORTS.iter().map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let tcp: Vec<_> = TCP_PORTS.iter().map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let mut ports = Vec::new();
        for (p, s) in UDP_PORTS.iter().zip(&udp) {
            ports.push((*p, s.local_addr().unwrap().port().to_string()));
        }
        for (p, s) in TCP_PORTS.iter().zip(&tcp) {
            ports.push((*p, s.local_addr().unwrap().port().to_string()));
        }
        Env {
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            path,
            ports,
            nodes: Vec::new(),
        }
    }

    fn localize(&self, text: &str) -> String {
        self.ports.iter().fold(text.to_string(), |t, (from, to)| t.replace(from, to))
    }

    fn bash(&self, script: &str, dir: &Path) -> Command {
        let mut c = Command::new("bash");
        c.args(["-c", script]).current_dir(dir).env("HOME", self.home.path()).env("PATH", &self.path);
        c.env_remove("XDG_DATA_HOME");
        c
    }

    /// Starts one `kad node ...` line and waits (at most 30 s) until it is serving: joined
    /// its bootstrap node if it has one.
    fn start_node(&mut self, line: &str, dir: &Path) {
        let line = self.localize(line);
        let mut child = self
            .bash(&format!("exec {line}"), dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = if line.contains("--bootstrap") { "joined the network" } else { "read:" };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if l.starts_with(ready) {
                    let _ = tx.send(());
                }
            }
        });
        self.nodes.push(child);
        rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{line} did not get ready"));
    }

    /// Runs a block with `set -euo pipefail` in the work directory; returns its stdout.
    fn run(&self, block: &str) -> String {
        let script = format!("set -euo pipefail\n{}", self.localize(block));
        let out = self.bash(&script, self.work.path()).stderr(Stdio::inherit()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "the README block failed ({}):\n{block}\nstdout:\n{stdout}",
            out.status
        );
        stdout
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn node_lines(block: &str) -> Vec<String> {
    block.lines().map(str::trim).filter(|l| l.starts_with("kad node")).map(String::from).collect()
}

#[test]
fn the_quick_starts_work_as_written() {
    let mut env = Env::new();
    let root = repo_root();
    // "The two commands": `cargo install --locked --path host && kad node` (installed already:
    // the binary under test is on the PATH); the first node uses the default port, 8468.
    let two = README.split("## Quick starts").next().unwrap();
    assert!(two.contains("cargo install --locked --path host && kad node\n"), "the install command changed");
    env.start_node("kad node --port 8468", &root);
    let node_blocks = blocks("nodes");
    let (first, later) = node_blocks.split_first().unwrap();
    for line in node_lines(first) {
        env.start_node(&line, &root);
    }

    let out = env.run(&blocks("cli")[0]);
    assert!(out.contains("stored \"my-key\" on 2 peers\n"), "{out}");
    assert!(out.lines().any(|l| l == "my awesome value"), "{out}");

    let out = env.run(&blocks("http")[0]);
    assert!(out.contains(r#"{"acks":1,"key":"greeting","local_copy":true}"#), "{out}");
    assert!(out.contains(r#""data":"hello""#), "{out}");
    assert!(
        out.contains(r#""data":"AP8=","encoding":"base64""#) && out.contains(r#""kind":"bytes""#),
        "{out}"
    );
    assert!(out.contains(r#""contacts":1"#), "the HTTP node knows the first node: {out}");

    let out = env.run(&blocks("secured")[0]);
    assert!(
        out.contains(r#""data":"my signed value""#) && out.contains(r#""persist_mode":"SECURED","seq":1"#),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("my signed value"), "{out}");
    assert!(env.work.path().join("me.key.pub").is_file());

    // The later steps (the browser's node) start beside the earlier ones: no port is taken twice.
    for block in later {
        for line in node_lines(block) {
            env.start_node(&line, &root);
        }
    }
    let (code, body) = common::http(
        format!("127.0.0.1:{}", env.localize("8090")).parse().unwrap(),
        "GET",
        "/index.html",
        None,
    );
    assert_eq!(code, 200, "the browser demo is served: {body}");
}

#[test]
fn every_config_key_is_documented() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kad"))
        .args(["node", "--print-config"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches("# "))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .collect();
    assert_eq!(keys.len(), 18, "{text}");
    for key in keys {
        assert!(README.contains(&format!("| `{key}` |")), "the README's config table lacks `{key}`");
    }
}
