//! End to end without hardware: in a network namespace made by this test, a TAP device, three
//! host nodes (`kad node`) on the kernel side and the embedded node (this example: embassy-net
//! on the TAP device, the firmware's runner and preset) on the other. The embedded node reads a
//! value a host put, puts one the host network reads, and serves a host client that uses it as
//! its only bootstrap node. Needs root, `ip` (iproute2) and the `kad` binary in `KAD_BIN`
//! (`scripts/test-embedded` sets it up). Every step has a deadline; the namespace and the
//! processes are removed whatever happens.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The namespace's only network: the kernel side of the TAP device and the embedded node.
const HOST_IP: &str = "10.213.7.1";
const BOARD_IP: &str = "10.213.7.2";
const TAP: &str = "kadtap0";

/// The namespace and everything started in it; dropping it stops the processes and deletes it.
struct Namespace {
    name: String,
    children: Vec<Child>,
}

impl Namespace {
    fn create() -> Namespace {
        let name = format!("kad-e2e-{}", std::process::id());
        let ns = Namespace { name, children: Vec::new() };
        ip(&["netns", "add", &ns.name]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["tuntap", "add", "name", TAP, "mode", "tap"]);
        ns.ip(&["link", "set", TAP, "up"]);
        ns.ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", TAP]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// Starts a long-running process; its stdout lines arrive on the returned channel.
    fn spawn(&mut self, program: &str, args: &[&str]) -> Receiver<String> {
        let mut child = self
            .command(program, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("    | {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.children.push(child);
        rx
    }

    /// Runs a command to completion (its own `--timeout` bounds it).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program, args).stderr(Stdio::piped()).output().expect("ip netns exec runs")
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("`ip` (iproute2) is installed");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Waits until a line satisfying `want` arrives, failing after `within`.
fn expect_line(rx: &Receiver<String>, within: Duration, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!("no {what} within {within:?}"),
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn the_embedded_node_on_a_tap_device_puts_and_gets_with_host_nodes() {
    let euid = Command::new("id").arg("-u").output().expect("`id` runs");
    assert_eq!(stdout(&euid), "0", "this test creates a network namespace and needs root");
    let kad = std::env::var("KAD_BIN").expect("KAD_BIN: path of the `kad` binary (cargo build -p kad-host)");
    let board = env!("CARGO_BIN_EXE_kad-embedded-tap");
    let started = Instant::now();

    let mut ns = Namespace::create();
    let seed = format!("{HOST_IP}:8468");
    let first = ns.spawn(&kad, &["node", "--memory", "--bind", HOST_IP, "--port", "8468"]);
    expect_line(&first, Duration::from_secs(10), "first host node", |l| l.contains("listening on udp"));
    for port in ["8469", "8470"] {
        let rx =
            ns.spawn(&kad, &["node", "--memory", "--bind", HOST_IP, "--port", port, "--bootstrap", &seed]);
        expect_line(&rx, Duration::from_secs(10), "host node", |l| l.contains("joined the network"));
    }

    let put = ns
        .run(&kad, &["put", "--timeout", "15", "--bootstrap", &seed, "from-host", "hello from a host node"]);
    assert!(put.status.success(), "kad put: {}", String::from_utf8_lossy(&put.stderr));

    let board_out = ns.spawn(
        board,
        &[
            "--tap",
            TAP,
            "--ip",
            &format!("{BOARD_IP}/24"),
            "--bootstrap",
            &seed,
            "--get",
            "from-host",
            "--put",
            "from-board=hello from embassy-net",
        ],
    );
    let got = expect_line(&board_out, Duration::from_secs(60), "get result from the board", |l| {
        l.starts_with("get from-host")
    });
    assert_eq!(got, "get from-host: hello from a host node");
    let stored = expect_line(&board_out, Duration::from_secs(60), "put result from the board", |l| {
        l.starts_with("put from-board")
    });
    let n: u32 = stored
        .strip_prefix("put from-board: stored on ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the board's put failed: {stored}"));
    assert!(n >= 1, "{stored}");

    // The host network reads what the board put.
    let get =
        ns.run(&kad, &["get", "--timeout", "15", "--bootstrap", &format!("{HOST_IP}:8470"), "from-board"]);
    assert!(get.status.success(), "kad get: {}", String::from_utf8_lossy(&get.stderr));
    assert_eq!(stdout(&get), "hello from embassy-net");

    // The board serves others: a host client that knows only the board finds the host's value.
    let via_board = format!("{BOARD_IP}:8468");
    let get = ns.run(&kad, &["get", "--timeout", "15", "--bootstrap", &via_board, "from-host"]);
    assert!(get.status.success(), "kad get through the board: {}", String::from_utf8_lossy(&get.stderr));
    assert_eq!(stdout(&get), "hello from a host node");

    println!("end to end in {:.1} s", started.elapsed().as_secs_f64());
}
