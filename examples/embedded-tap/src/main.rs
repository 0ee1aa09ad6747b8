//! The kad-embedded node on Linux, over a TAP device: the same runner, socket buffers and
//! capacity preset as the firmware, on embassy-net-tuntap and embassy-executor's `platform-std`.
//! This is how the embedded node is tested against host nodes without a board.
//!
//! ```sh
//! ip tuntap add name tap0 mode tap user $USER && ip link set tap0 up
//! ip addr add 192.168.69.100/24 dev tap0
//! kad node --memory --bind 192.168.69.100 --port 8468 &
//! cargo run --release -- --tap tap0 --ip 192.168.69.2/24 --bootstrap 192.168.69.100:8468 \
//!     --put board=hello --every 60 --get greeting
//! ```
//!
//! It prints one line per result (`put KEY: stored on N of M peers`, `get KEY: VALUE`, or
//! `... failed: REASON`) and serves the DHT until killed.

use std::process::exit;

use embassy_executor::Spawner;
use embassy_net::{Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer};
use kad_core::{Config, PeerAddr};
use kad_embedded::embedded::{self as kad, Dht, Node, Runner, Shared};
use kad_embedded::SocketBuffers;
use rand::RngCore;
use static_cell::StaticCell;

const USAGE: &str = "usage: kad-embedded-tap [--tap NAME] [--ip A.B.C.D/LEN] [--gateway A.B.C.D] [--port P] \
[--bootstrap A.B.C.D:P]... [--put KEY=VALUE [--every SECS]] [--get KEY]...";

struct Args {
    tap: String,
    ip: Ipv4Cidr,
    gateway: Option<Ipv4Address>,
    port: u16,
    bootstrap: Vec<PeerAddr>,
    put: Option<(String, String)>,
    every: Option<u64>,
    get: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        tap: "tap0".into(),
        ip: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 2), 24),
        gateway: None,
        port: 8468,
        bootstrap: Vec::new(),
        put: None,
        every: None,
        get: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tap" => a.tap = value()?,
            "--ip" => {
                let v = value()?;
                let (ip, len) = v.split_once('/').ok_or("--ip wants A.B.C.D/LEN")?;
                let ip: Ipv4Address = ip.parse().map_err(|e| format!("--ip: {e}"))?;
                let len: u8 = len.parse().map_err(|e| format!("--ip prefix length: {e}"))?;
                a.ip = Ipv4Cidr::new(ip, len);
            }
            "--gateway" => a.gateway = Some(value()?.parse().map_err(|e| format!("--gateway: {e}"))?),
            "--port" => a.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--bootstrap" => a.bootstrap.push(value()?.parse().map_err(|e| format!("--bootstrap: {e}"))?),
            "--put" => {
                let v = value()?;
                let (k, v) = v.split_once('=').ok_or("--put wants KEY=VALUE")?;
                a.put = Some((k.into(), v.into()));
            }
            "--every" => a.every = Some(value()?.parse().map_err(|e| format!("--every: {e}"))?),
            "--get" => a.get.push(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.bootstrap.len() > kad_embedded::MAX_BOOTSTRAP {
        return Err(format!("at most {} --bootstrap addresses", kad_embedded::MAX_BOOTSTRAP));
    }
    Ok(a)
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn dht_task(runner: Runner<'static>) -> ! {
    runner.run().await
}

static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
static NODE: StaticCell<Node> = StaticCell::new();
static BUFFERS: StaticCell<SocketBuffers> = StaticCell::new();
static SHARED: Shared = Shared::new();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}");
        exit(2)
    });
    let device = TunTapDevice::new(&args.tap).unwrap_or_else(|e| {
        eprintln!(
            "cannot open TAP device {:?}: {e} (create it first: ip tuntap add name {} mode tap)",
            args.tap, args.tap
        );
        exit(3)
    });
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: args.ip,
        gateway: args.gateway,
        dns_servers: Default::default(),
    });
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let (stack, net_runner) = embassy_net::new(
        device,
        config,
        RESOURCES.init(StackResources::new()),
        u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
    );
    spawner.spawn(net_task(net_runner).expect("spawned once"));

    let node = NODE.init_with(|| kad::node(seed, Config::default()));
    println!("kad node {} on udp {}:{}", node.id(), args.ip.address(), args.port);
    let buffers = BUFFERS.init(SocketBuffers::new());
    let runner = Runner::new(stack, buffers, node, &SHARED, args.port, &args.bootstrap).unwrap_or_else(|e| {
        eprintln!("cannot bind udp port {}: {e:?}", args.port);
        exit(3)
    });
    spawner.spawn(dht_task(runner).expect("spawned once"));

    let dht: Dht = SHARED.dht();
    if !args.bootstrap.is_empty() {
        // The runner bootstraps by itself; wait until it has contacts before using the DHT.
        wait_for_peers(dht).await;
    }
    for key in &args.get {
        get(dht, key).await;
    }
    let Some((key, value)) = args.put else { return std::future::pending().await };
    loop {
        match dht.put(&key, value.as_str()).await {
            Ok(a) => println!("put {key}: stored on {} of {} peers", a.stored, a.tried),
            Err(e) => println!("put {key} failed: {e}"),
        }
        let Some(every) = args.every else { break };
        Timer::after(Duration::from_secs(every)).await;
    }
    std::future::pending().await
}

/// Waits (up to 30 s) for the first contacts, by asking the DHT for this node's neighbours.
async fn wait_for_peers(dht: Dht<'static>) {
    let target = kad_core::Key::hash(b"kad-embedded-tap");
    for _ in 0..30 {
        if let Ok(peers) = dht.find_node(target).await {
            println!("joined: {} peers answered", peers.len());
            return;
        }
        Timer::after(Duration::from_secs(1)).await;
    }
    println!("no peers after 30 s; serving anyway");
}

async fn get(dht: Dht<'static>, key: &str) {
    match dht.get(key).await {
        Ok(found) => match found.as_text() {
            Some(text) => println!("get {key}: {text}"),
            None => println!("get {key}: {:02x?}", found.data),
        },
        Err(e) => println!("get {key} failed: {e}"),
    }
}
