//! Prints how many bytes a `Node` of each capacity preset takes (`core::mem::size_of`).
//!
//! `cargo run -p kad-core --example sizes`

use core::mem::size_of;
use kad_core::presets::{embedded, host, sim};

fn main() {
    println!("{:<10} {:>14} {:>14} {:>14}", "preset", "node (bytes)", "store (bytes)", "node w/o store");
    for (name, node, store) in [
        ("host", size_of::<host::Node>(), size_of::<host::Store>()),
        ("embedded", size_of::<embedded::Node>(), size_of::<embedded::Store>()),
        ("sim", size_of::<sim::Node>(), size_of::<sim::Store>()),
    ] {
        println!("{name:<10} {node:>14} {store:>14} {:>14}", node - store);
    }
}
