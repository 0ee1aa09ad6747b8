//! The `kad` command line: its subcommands, and the rule that every failure is one sentence
//! and one documented exit code (0 done, 1 not found, 2 usage, 3 network, 4 bad input, 5 other).

mod bench;
mod client;
mod config;
mod keys;
mod node;

use clap::{Parser, Subcommand};
use kad_host::Error;

/// A Kademlia DHT node and client. Start a node with `kad node`; the first node of a new
/// network needs no bootstrap.
#[derive(Parser)]
#[command(name = "kad", version, about, propagate_version = true)]
pub struct Cli {
    /// More logs (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run a node until Ctrl-C or SIGTERM.
    Node(node::NodeArgs),
    /// Store a value (as `set.py` in the Python library).
    Put(client::PutArgs),
    /// Read a value (as `get.py`).
    Get(client::GetArgs),
    /// Find the nodes closest to an id or key.
    FindNode(client::FindNodeArgs),
    /// Run a node that announces itself as a provider of KEY, until Ctrl-C or SIGTERM.
    Provide(node::ProvideArgs),
    /// List the providers of KEY.
    Providers(client::KeyArgs),
    /// Make an ed25519 key pair for signed (SECURED) records.
    Keygen(keys::KeygenArgs),
    /// Print the JSON body of a signed (SECURED) `POST /dht/KEY`.
    Sign(keys::SignArgs),
    /// Benchmark sets and gets on loopback, optionally against the Python library.
    Bench(bench::BenchArgs),
}

impl Command {
    /// True for the commands that want every core.
    pub fn wants_threads(&self) -> bool {
        matches!(self, Command::Bench(_))
    }

    /// True when the user asked for JSON output (then failures are JSON on stdout too).
    pub fn json(&self) -> bool {
        match self {
            Command::Put(a) => a.common.json,
            Command::Get(a) => a.common.json,
            Command::FindNode(a) => a.common.json,
            Command::Providers(a) => a.common.json,
            _ => false,
        }
    }
}

/// Exit code: not found.
pub const NOT_FOUND: u8 = 1;
/// Exit code: the network (no peer answered or stored).
pub const NETWORK: u8 = 3;
/// Exit code: bad input (asking again unchanged cannot succeed).
pub const INPUT: u8 = 4;
/// Exit code: anything else.
pub const FAILURE: u8 = 5;

/// A failed command: its exit code and a sentence.
#[derive(Debug)]
pub struct Failure(pub u8, pub String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            e if kad_host::explain::is_input(e) => INPUT,
            e if e.is_network() => NETWORK,
            _ => FAILURE,
        };
        Failure(code, kad_host::explain::describe(&e))
    }
}

/// Runs one command.
pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Node(args) => node::run(args, None).await,
        Command::Provide(args) => node::run(args.node, Some(args.key)).await,
        Command::Put(args) => client::put(args).await,
        Command::Get(args) => client::get(args).await,
        Command::FindNode(args) => client::find_node(args).await,
        Command::Providers(args) => client::providers(args).await,
        Command::Keygen(args) => keys::keygen(args),
        Command::Sign(args) => keys::sign(args),
        Command::Bench(args) => bench::run(args).await.map_err(|e| Failure(FAILURE, e)),
    }
}
