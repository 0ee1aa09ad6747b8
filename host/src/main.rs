//! `kad`: run a node, or use the DHT from the command line.

mod bench;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kad_core::signed::Keypair;
use kad_core::Key;
use kad_host::{Config, Error, Node, Relay, RelayConfig, Value};
use serde_json::json;

/// A Kademlia DHT node and client. Start a node with `kad node`; the first node of a new
/// network needs no bootstrap.
#[derive(Parser)]
#[command(name = "kad", version, about, propagate_version = true)]
struct Cli {
    /// More logs (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node until Ctrl-C.
    Node(NodeArgs),
    /// Store a value (as `set.py` in the Python library).
    Put(PutArgs),
    /// Read a value (as `get.py`).
    Get(GetArgs),
    /// Find the nodes closest to an id or key.
    FindNode(FindNodeArgs),
    /// Run a node that announces itself as a provider of KEY, until Ctrl-C.
    Provide(ProvideArgs),
    /// List the providers of KEY.
    Providers(KeyArgs),
    /// Make an ed25519 key pair for signed (SECURED) records.
    Keygen(KeygenArgs),
    /// Benchmark sets and gets on loopback, optionally against the Python library.
    Bench(bench::BenchArgs),
}

#[derive(Args, Clone)]
struct NodeArgs {
    /// UDP port.
    #[arg(long, default_value_t = 8468)]
    port: u16,
    /// Address to bind (0.0.0.0 or :: to accept peers from other machines).
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// A node of the network to join (HOST:PORT), repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Vec<String>,
    /// Where to keep the id, contacts and records [default: a per-user data directory].
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long)]
    memory: bool,
    /// Serve the HTTP API on this address, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Client mode: query and store, but stay out of other nodes' routing tables.
    #[arg(long)]
    client: bool,
    /// Relay for browsers: a WebSocket endpoint on this address (ws://ADDR/), e.g.
    /// 127.0.0.1:8081; also served at /relay on the HTTP server when --http is given.
    #[arg(long, value_name = "ADDR")]
    relay: Option<SocketAddr>,
    /// Most browser connections the relay serves at once.
    #[arg(long, value_name = "N", default_value_t = 64, requires = "relay")]
    relay_max_connections: usize,
    /// Serve the files of DIR at / on the HTTP server (the browser demo: examples/browser).
    #[arg(long, value_name = "DIR", requires = "http")]
    web: Option<PathBuf>,
}

#[derive(Args)]
struct Common {
    /// A node of the network (HOST:PORT).
    #[arg(long, short, value_name = "HOST:PORT", required = true)]
    bootstrap: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Args)]
struct PutArgs {
    #[command(flatten)]
    common: Common,
    /// Sign the record with this key file (from `kad keygen`): a SECURED record.
    #[arg(long, value_name = "FILE")]
    sign: Option<PathBuf>,
    /// Sequence number of a signed record; raise it to replace the record.
    #[arg(long, default_value_t = 0, requires = "sign")]
    seq: u64,
    /// VALUE is hex-encoded bytes, not text.
    #[arg(long)]
    hex: bool,
    /// The key.
    key: String,
    /// The value.
    value: String,
}

#[derive(Args)]
struct GetArgs {
    #[command(flatten)]
    common: Common,
    /// Read the signed record of this public key (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub_key: Option<String>,
    /// The key.
    key: String,
}

#[derive(Args)]
struct FindNodeArgs {
    #[command(flatten)]
    common: Common,
    /// A node id (40 hex digits) or any key (hashed).
    target: String,
}

#[derive(Args)]
struct KeyArgs {
    #[command(flatten)]
    common: Common,
    /// The key.
    key: String,
}

#[derive(Args)]
struct ProvideArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The key to provide.
    key: String,
}

#[derive(Args)]
struct KeygenArgs {
    /// Where to write the secret key (hex, readable only by you).
    #[arg(long, default_value = "kad.key")]
    out: PathBuf,
}

/// Exit codes.
const NOT_FOUND: u8 = 1;
const NETWORK: u8 = 3;
const INPUT: u8 = 4;
const FAILURE: u8 = 5;

struct Failure(u8, String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            e if e.is_network() => NETWORK,
            Error::Refused(_) => INPUT,
            _ => FAILURE,
        };
        Failure(code, e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Plain target filters (no regex engine in the binary: less code resident at idle).
    let default = ["kad=info,kad_host=info", "kad=debug,kad_host=debug", "kad=trace,kad_host=trace"]
        [cli.verbose.min(2) as usize];
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default.parse().expect("valid default filter"));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    let multi_thread = matches!(cli.command, Command::Bench(_));
    let rt = if multi_thread {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(FAILURE);
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, msg)) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            ExitCode::from(code)
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Node(args) => run_node(args, None).await,
        Command::Provide(args) => run_node(args.node, Some(args.key)).await,
        Command::Put(args) => put(args).await,
        Command::Get(args) => get(args).await,
        Command::FindNode(args) => find_node(args).await,
        Command::Providers(args) => providers(args).await,
        Command::Keygen(args) => keygen(args),
        Command::Bench(args) => bench::run(args).await.map_err(|e| Failure(FAILURE, e)),
    }
}

async fn resolve(hosts: &[String]) -> Result<Vec<SocketAddr>, Failure> {
    let mut out = Vec::new();
    for h in hosts {
        let found = tokio::net::lookup_host(h.as_str())
            .await
            .map_err(|e| Failure(INPUT, format!("bad address {h:?} (want HOST:PORT): {e}")))?;
        out.extend(found);
    }
    Ok(out)
}

fn data_dir(args: &NodeArgs) -> Option<PathBuf> {
    if args.memory {
        return None;
    }
    args.data_dir
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("kad").join(format!("node-{}", args.port))))
}

async fn run_node(args: NodeArgs, provide: Option<String>) -> Result<(), Failure> {
    let bootstrap = resolve(&args.bootstrap).await?;
    let data_dir = data_dir(&args);
    let mut config = Config {
        bind: SocketAddr::new(args.bind, args.port),
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    config.core.client_mode = args.client;
    let node = Node::bind(config).await?;
    let addr = node.addr();
    println!(
        "kad node {} listening on udp {addr}{}",
        node.id(),
        if args.client { " (client mode)" } else { "" }
    );
    match &data_dir {
        Some(d) => println!("data:  {} (id, contacts and records survive restarts)", d.display()),
        None => println!("data:  in memory (nothing survives a restart)"),
    }
    let relay = args.relay.map(|_| {
        let config = RelayConfig { max_connections: args.relay_max_connections, ..RelayConfig::default() };
        Relay::new(node.handle(), &bootstrap, config)
    });
    if let (Some(relay_addr), Some(relay)) = (args.relay, &relay) {
        let listener = tokio::net::TcpListener::bind(relay_addr)
            .await
            .map_err(|e| Failure(FAILURE, format!("cannot listen for the relay on {relay_addr}: {e}")))?;
        let app = relay.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "relay stopped");
            }
        });
        println!("relay: ws://{relay_addr}/  (browsers: DhtNode.connect(\"ws://{relay_addr}/\"))");
    }
    if let Some(http) = args.http {
        let listener = tokio::net::TcpListener::bind(http)
            .await
            .map_err(|e| Failure(FAILURE, format!("cannot listen for HTTP on {http}: {e}")))?;
        let mut app = kad_host::http::router(node.handle());
        if let Some(relay) = &relay {
            app = app.merge(relay.route()).layer(axum::Extension(relay.clone()));
        }
        if let Some(dir) = &args.web {
            if !dir.join("index.html").is_file() {
                return Err(Failure(INPUT, format!("--web {}: no index.html there", dir.display())));
            }
            app = app.fallback_service(tower_http::services::ServeDir::new(dir));
            println!("web:   http://{http}/  (files of {})", dir.display());
        }
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
        println!("http:  http://{http}/status  (POST/GET /dht/KEY, /metrics)");
    }
    let next = addr.port().wrapping_add(1);
    println!("join:  kad node --port {next} --bootstrap {addr}");
    println!("store: kad put --bootstrap {addr} my-key \"my value\"");
    println!("read:  kad get --bootstrap {addr} my-key");
    if !bootstrap.is_empty() {
        match node.bootstrap(&bootstrap).await {
            Ok(n) => println!("joined the network: {n} contacts"),
            Err(e) => eprintln!("warning: bootstrap failed ({e}); still running, others can join this node"),
        }
    }
    if let Some(key) = provide {
        match node.provide(&key).await {
            Ok(n) => println!("providing {key:?}: announced to {n} nodes"),
            Err(e) => return Err(e.into()),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    println!("stopping");
    node.stop().await;
    Ok(())
}

/// A short-lived client-mode node joined to the network through `common.bootstrap`.
async fn client(common: &Common) -> Result<Node, Failure> {
    let seeds = resolve(&common.bootstrap).await?;
    let first = seeds.first().ok_or_else(|| Failure(INPUT, "no bootstrap address".into()))?;
    let bind: SocketAddr = match (first.is_ipv4(), first.ip().is_loopback()) {
        (true, true) => "127.0.0.1:0".parse().expect("valid"),
        (true, false) => "0.0.0.0:0".parse().expect("valid"),
        (false, true) => "[::1]:0".parse().expect("valid"),
        (false, false) => "[::]:0".parse().expect("valid"),
    };
    let mut config = Config { bind, ..Config::default() };
    config.core.client_mode = true;
    let node = Node::bind(config).await?;
    node.bootstrap(&seeds).await?;
    Ok(node)
}

async fn with_timeout<T>(
    secs: u64,
    f: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| Err(Failure(NETWORK, format!("no result within {secs} s"))))
}

async fn put(args: PutArgs) -> Result<(), Failure> {
    let value = if args.hex {
        Value::Bytes(hex::decode(&args.value).map_err(|e| Failure(INPUT, format!("VALUE is not hex: {e}")))?)
    } else {
        Value::Text(args.value.clone())
    };
    let keypair = match &args.sign {
        Some(path) => Some(read_keypair(path)?),
        None => None,
    };
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let acks = match &keypair {
            Some(kp) => node.put_signed(kp, &args.key, args.seq, value).await?,
            None => node.put(&args.key, value).await?,
        };
        node.stop().await;
        if args.common.json {
            let pk = keypair.as_ref().map(|k| hex::encode(k.public_key()));
            println!("{}", json!({ "key": args.key, "acks": acks, "pub_key": pk }));
        } else {
            println!("stored {:?} on {acks} nodes", args.key);
        }
        Ok(())
    })
    .await
}

async fn get(args: GetArgs) -> Result<(), Failure> {
    let public_key = match &args.pub_key {
        Some(h) => {
            Some(h.parse::<kad_core::PublicKey>().map_err(|e| Failure(INPUT, format!("--pub-key: {e}")))?)
        }
        None => None,
    };
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let found = match public_key {
            Some(pk) => node.get_signed(pk, &args.key).await?.map(|s| (s.value, Some(s.seq))),
            None => node.get(&args.key).await?.map(|v| (v, None)),
        };
        node.stop().await;
        let Some((value, seq)) = found else {
            if args.common.json {
                println!("{}", json!({ "key": args.key, "found": false }));
            }
            return Err(Failure(
                NOT_FOUND,
                if args.common.json { String::new() } else { format!("{:?} not found", args.key) },
            ));
        };
        if args.common.json {
            let (kind, data) = match &value {
                Value::Text(s) => ("text", s.clone()),
                Value::Bytes(b) => ("bytes", hex::encode(b)),
            };
            println!("{}", json!({ "key": args.key, "found": true, "kind": kind, "data": data, "seq": seq }));
        } else {
            println!("{value}");
        }
        Ok(())
    })
    .await
}

async fn find_node(args: FindNodeArgs) -> Result<(), Failure> {
    let target = Key::from_target(&args.target);
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let peers = node.find_node(target).await?;
        node.stop().await;
        print_peers(&peers, args.common.json);
        Ok(())
    })
    .await
}

async fn providers(args: KeyArgs) -> Result<(), Failure> {
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let peers = node.providers(&args.key).await?;
        node.stop().await;
        print_peers(&peers, args.common.json);
        if peers.is_empty() {
            return Err(Failure(
                NOT_FOUND,
                if args.common.json { String::new() } else { format!("no providers of {:?}", args.key) },
            ));
        }
        Ok(())
    })
    .await
}

fn print_peers(peers: &[kad_core::Peer], json_out: bool) {
    if json_out {
        let list: Vec<_> =
            peers.iter().map(|p| json!({ "id": p.id.to_string(), "addr": p.addr.to_string() })).collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for p in peers {
            println!("{} {}", p.id, p.addr);
        }
    }
}

fn keygen(args: KeygenArgs) -> Result<(), Failure> {
    if args.out.exists() {
        return Err(Failure(INPUT, format!("{} exists; not overwriting a key", args.out.display())));
    }
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let kp = Keypair::from_secret(&secret);
    write_secret(&args.out, &hex::encode(secret))
        .map_err(|e| Failure(FAILURE, format!("cannot write {}: {e}", args.out.display())))?;
    println!("secret key written to {}", args.out.display());
    println!("public key: {}", hex::encode(kp.public_key()));
    Ok(())
}

#[cfg(unix)]
fn write_secret(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    writeln!(f, "{text}")
}

#[cfg(not(unix))]
fn write_secret(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

fn read_keypair(path: &std::path::Path) -> Result<Keypair, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(INPUT, format!("cannot read {}: {e}", path.display())))?;
    Ok(Keypair::from_secret(&parse_hex::<32>(text.trim(), &path.display().to_string())?))
}

fn parse_hex<const N: usize>(s: &str, what: &str) -> Result<[u8; N], Failure> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Failure(INPUT, format!("{what} must be {} hex digits", N * 2)))
}
