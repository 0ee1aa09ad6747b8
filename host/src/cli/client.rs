//! The one-shot commands (`put`, `get`, `find-node`, `providers`): each runs a short-lived
//! client-mode node joined through `--bootstrap`, prints the result as text or JSON, and stops.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use kad_core::Key;
use kad_host::{explain, Config, Encoding, Node};
use serde_json::json;

use super::keys::{parse_value, read_keypair};
use super::{Failure, INPUT, NETWORK, NOT_FOUND};

/// Options every one-shot command takes.
#[derive(Args)]
pub struct Common {
    /// A node of the network (HOST:PORT).
    #[arg(long, short, value_name = "HOST:PORT", required = true)]
    bootstrap: Vec<String>,
    /// Print JSON instead of text (failures too: {"error", "exit_code"} on stdout).
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Options of `kad put`.
#[derive(Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sign the record with this key file (from `kad keygen`): a SECURED record.
    #[arg(long, value_name = "FILE")]
    sign: Option<std::path::PathBuf>,
    /// Sequence number of a signed record; raise it to replace the record.
    #[arg(long, default_value_t = 0, requires = "sign")]
    seq: u64,
    /// VALUE is hex-encoded bytes, not text.
    #[arg(long, conflicts_with = "base64")]
    hex: bool,
    /// VALUE is base64-encoded bytes, not text.
    #[arg(long)]
    base64: bool,
    /// The key.
    key: String,
    /// The value.
    value: String,
}

/// Options of `kad get`.
#[derive(Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub common: Common,
    /// Read the signed record of this public key (64 hex digits, as in FILE.pub of `kad keygen`).
    #[arg(long, value_name = "HEX")]
    pub_key: Option<String>,
    /// The key.
    key: String,
}

/// Options of `kad find-node`.
#[derive(Args)]
pub struct FindNodeArgs {
    #[command(flatten)]
    pub common: Common,
    /// A node id (40 hex digits) or any key (hashed).
    target: String,
}

/// Options of the commands that take only a key.
#[derive(Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub common: Common,
    /// The key.
    key: String,
}

/// Resolves HOST:PORT names.
pub async fn resolve(hosts: &[String]) -> Result<Vec<SocketAddr>, Failure> {
    let mut out = Vec::new();
    for h in hosts {
        let found = tokio::net::lookup_host(h.as_str())
            .await
            .map_err(|e| Failure(INPUT, format!("bad address {h:?} (want HOST:PORT): {e}")))?;
        out.extend(found);
    }
    Ok(out)
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
    if let Err(e) = node.bootstrap(&seeds).await {
        if e.is_network() {
            let list = common.bootstrap.join(", ");
            return Err(Failure(
                NETWORK,
                format!("no kad node answered at {list}: is `kad node` running there, on that UDP port?"),
            ));
        }
        return Err(e.into());
    }
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

fn peers(n: u16) -> String {
    format!("{n} {}", if n == 1 { "peer" } else { "peers" })
}

/// `kad put`.
pub async fn put(args: PutArgs) -> Result<(), Failure> {
    let (value, _) = parse_value(&args.value, args.hex, args.base64)?;
    let keypair = match &args.sign {
        Some(path) => Some(read_keypair(path)?),
        None => None,
    };
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let result = match &keypair {
            Some(kp) => node.put_signed(kp, &args.key, args.seq, value).await,
            None => node.put(&args.key, value).await,
        };
        let acks = match (result, &keypair) {
            (Ok(acks), _) => acks,
            (Err(e), Some(kp)) => {
                let newer = explain::newer_seq(&node, &e, kp.public_key(), &args.key, args.seq).await;
                node.stop().await;
                return Err(match newer {
                    Some(held) => Failure(
                        INPUT,
                        format!(
                            "{}; put again with --seq {} or higher",
                            explain::stale(&args.key, held),
                            held + 1
                        ),
                    ),
                    None => e.into(),
                });
            }
            (Err(e), None) => {
                node.stop().await;
                return Err(e.into());
            }
        };
        node.stop().await;
        // `acks` counts the peers that stored it; this command's own node keeps no copy after it exits.
        if args.common.json {
            let pk = keypair.as_ref().map(|k| k.public_key().to_string());
            println!("{}", json!({ "key": args.key, "acks": acks, "local_copy": false, "pub_key": pk }));
        } else {
            println!("stored {:?} on {}", args.key, peers(acks));
        }
        Ok(())
    })
    .await
}

/// `kad get`.
pub async fn get(args: GetArgs) -> Result<(), Failure> {
    let public_key = match &args.pub_key {
        Some(h) => {
            Some(h.parse::<kad_core::PublicKey>().map_err(|e| Failure(INPUT, format!("--pub-key: {e}")))?)
        }
        None => None,
    };
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let found = match public_key {
            Some(pk) => node.get_signed(pk, &args.key).await.map(|s| s.map(|s| (s.value, Some(s.seq), None))),
            None => node.get_agreed(&args.key).await.map(|v| v.map(|(v, n)| (v, None, Some(n)))),
        };
        node.stop().await;
        let Some((value, seq, holders)) = found? else {
            return Err(Failure(NOT_FOUND, format!("{:?} not found", args.key)));
        };
        if args.common.json {
            let (kind, encoding, data) = value.encode(Encoding::Base64);
            println!(
                "{}",
                json!({ "key": args.key, "found": true, "kind": kind, "encoding": encoding, "data": data, "seq": seq, "holders": holders })
            );
        } else {
            println!("{value}");
        }
        Ok(())
    })
    .await
}

/// `kad find-node`.
pub async fn find_node(args: FindNodeArgs) -> Result<(), Failure> {
    let target = Key::from_target(&args.target);
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let found = node.find_node(target).await;
        node.stop().await;
        print_peers(&found?, args.common.json);
        Ok(())
    })
    .await
}

/// `kad providers`.
pub async fn providers(args: KeyArgs) -> Result<(), Failure> {
    with_timeout(args.common.timeout, async {
        let node = client(&args.common).await?;
        let found = node.providers(&args.key).await;
        node.stop().await;
        let found = found?;
        if found.is_empty() {
            return Err(Failure(NOT_FOUND, format!("no providers of {:?}", args.key)));
        }
        print_peers(&found, args.common.json);
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
