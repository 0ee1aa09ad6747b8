//! Stores a value (the Python library's `set.py`).
//!
//! `cargo run -p kad-host --example set -- 127.0.0.1 8468 my-key "my value"`

use std::net::SocketAddr;

use kad_host::{Config, Node};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, key, value] = args.as_slice() else {
        eprintln!("usage: set <bootstrap host> <bootstrap port> <key> <value>");
        std::process::exit(2);
    };
    let seed: SocketAddr = format!("{host}:{port}").parse()?;
    let node = Node::bind(Config::default()).await?;
    node.bootstrap(&[seed]).await?;
    let acks = node.put(key, value.as_str()).await?;
    println!("stored {key:?} on {acks} nodes");
    node.stop().await;
    Ok(())
}
