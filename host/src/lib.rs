//! kad-host: kad on desktops and servers. A tokio [`Node`] that owns a kad-core engine and a
//! UDP socket, a cloneable [`Handle`] to drive it, a persistent record store, the HTTP API and
//! the browser relay behind the `kad` command.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kad_host::Error> {
//! let first = kad_host::Node::bind(kad_host::Config::default()).await?;
//! let second = kad_host::Node::bind(kad_host::Config::default()).await?;
//! second.bootstrap(&[first.addr()]).await?;
//! let acks = second.put("my-key", "my awesome value").await?;
//! assert_eq!(first.get("my-key").await?, Some("my awesome value".into()));
//! # let _ = acks; Ok(()) }
//! ```

pub mod dashboard;
pub mod explain;
pub mod http;
pub mod listen;
pub mod node;
pub mod relay;
pub mod store;
pub mod value;

pub use listen::{ListenConfig, Listeners};
pub use node::{Config, Error, Handle, Node, SignedValue, Status};
pub use relay::{Relay, RelayConfig, RelayStats};
pub use value::{Encoding, Value};
