//! The first node of a new network (the Python library's `first_node.py`).
//!
//! `cargo run -p kad-host --example first_node` then, in other terminals, the `set` and `get`
//! examples.

use kad_host::{Config, Node};

#[tokio::main]
async fn main() -> Result<(), kad_host::Error> {
    let config = Config { bind: "127.0.0.1:8468".parse().expect("valid address"), ..Config::default() };
    let node = Node::bind(config).await?;
    println!("first node {} listening on {}; Ctrl-C to stop", node.id(), node.addr());
    let _ = tokio::signal::ctrl_c().await;
    node.stop().await;
    Ok(())
}
