//! Reads a value (the Python library's `get.py`).
//!
//! `cargo run -p kad-host --example get -- 127.0.0.1 8468 my-key`

use std::net::SocketAddr;

use kad_host::{Config, Node};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, key] = args.as_slice() else {
        eprintln!("usage: get <bootstrap host> <bootstrap port> <key>");
        std::process::exit(2);
    };
    let seed: SocketAddr = format!("{host}:{port}").parse()?;
    let node = Node::bind(Config::default()).await?;
    node.bootstrap(&[seed]).await?;
    match node.get(key).await? {
        Some(value) => println!("{value}"),
        None => println!("{key:?} not found"),
    }
    node.stop().await;
    Ok(())
}
