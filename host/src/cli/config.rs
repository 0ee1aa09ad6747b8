//! The settings of `kad node`: flags, an optional TOML file (`--config FILE`) under them, and
//! the defaults under both. Every flag has a key of the same name (dashes become underscores);
//! `--print-config` writes the settings in effect as a documented file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use super::{Failure, INPUT};

/// Default UDP port.
pub const DEFAULT_PORT: u16 = 8468;
/// Default most browser connections of the relay.
pub const DEFAULT_RELAY_MAX_CONNECTIONS: usize = 64;
/// Default most relay connections from one IPv4 address or IPv6 /64.
pub const DEFAULT_RELAY_MAX_PER_IP: usize = 8;
/// Default seconds a new TCP connection has to send its request header.
pub const DEFAULT_HTTP_HEADER_TIMEOUT: u64 = 10;
/// Default seconds a kept-alive TCP connection may wait before its next request.
pub const DEFAULT_HTTP_IDLE_TIMEOUT: u64 = 30;

/// The flags of `kad node` (and `kad provide`). None of them has a default here, so that a
/// flag left out lets the config file decide.
#[derive(Args, Clone, Default)]
pub struct NodeFlags {
    /// Read settings from this TOML file; flags given here override it (`--print-config`
    /// writes one, every key documented).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the settings in effect as a TOML file and exit.
    #[arg(long)]
    pub print_config: bool,
    /// UDP port [default: 8468].
    #[arg(long, short)]
    pub port: Option<u16>,
    /// Address to bind: 0.0.0.0 or :: to accept peers from other machines [default: 127.0.0.1].
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// A node of the network to join (HOST:PORT), repeatable.
    #[arg(long, short, value_name = "HOST:PORT")]
    pub bootstrap: Vec<String>,
    /// Where to keep the id, contacts and records; one directory per node (a second node
    /// on the same directory is refused) [default: kad/node in the per-user data directory].
    /// The store holds at most 65,536 records of up to 1,000 bytes (full, as measured before
    /// issue 14: 237 MB of RAM, 184 MB on disk), and one source network (an IPv4 /24, an IPv6
    /// /64) at most 1/16 of them.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep everything in memory: nothing survives a restart (--memory=false to override a
    /// config file).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub memory: Option<bool>,
    /// Client mode: query and store, but stay out of other nodes' routing tables.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub client: Option<bool>,
    /// Serve the HTTP API (POST/GET /dht/KEY) on this address, e.g. 127.0.0.1:8080; also the
    /// dashboard (/), /status and /metrics unless --metrics moves them.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// A token that writes (POST /dht/KEY) must carry: `Authorization: Bearer TOKEN`. Prefer
    /// the config file: a flag is visible to other users in the process list.
    #[arg(long, value_name = "TOKEN")]
    pub http_token: Option<String>,
    /// Serve the read-only views (/metrics, /status, the dashboard) on a listener of their
    /// own, e.g. 127.0.0.1:9090; the --http listener then serves only the API.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Relay for browsers: a WebSocket endpoint on this address (ws://ADDR/), e.g.
    /// 127.0.0.1:8081; also served at /relay on the HTTP server when --http is given.
    #[arg(long, value_name = "ADDR")]
    pub relay: Option<SocketAddr>,
    /// Most browser connections the relay serves at once [default: 64].
    #[arg(long, value_name = "N")]
    pub relay_max_connections: Option<usize>,
    /// Most relay connections from one IPv4 address or IPv6 /64 [default: 8; loopback exempt
    /// unless --limit-loopback].
    #[arg(long, value_name = "N")]
    pub relay_max_per_ip: Option<usize>,
    /// Most TCP connections open at once on the HTTP, metrics and relay listeners together;
    /// when full, the one idle the longest is closed [default: half the open-file limit, at
    /// most 512].
    #[arg(long, value_name = "N")]
    pub http_max_connections: Option<usize>,
    /// Seconds a new TCP connection has to send a complete request header [default: 10].
    #[arg(long, value_name = "SECS")]
    pub http_header_timeout: Option<u64>,
    /// Seconds a kept-alive TCP connection may wait before its next request [default: 30].
    #[arg(long, value_name = "SECS")]
    pub http_idle_timeout: Option<u64>,
    /// Apply every per-address limit to loopback sources too: the relay's, and the node's own
    /// (requests per /24, routing-table diversity, reply sizes). Loopback is exempt by default,
    /// for a reverse proxy or tests on the same machine.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub limit_loopback: Option<bool>,
    /// Exempt private-network sources (10/8, 172.16/12, 192.168/16, link-local, fc00::/7) from
    /// the node's per-address limits, as loopback is: for a network whose nodes share one
    /// private /24 (a lab, a fleet of boards), which the diversity limits would otherwise treat
    /// as one operator. Off by default: a LAN is no more trusted than the internet.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub trust_private: Option<bool>,
    /// Serve the files of DIR at / on the HTTP server instead of the dashboard (the browser
    /// demo: examples/browser).
    #[arg(long, value_name = "DIR")]
    pub web: Option<PathBuf>,
}

/// The config file: the same settings as the flags.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    port: Option<u16>,
    bind: Option<IpAddr>,
    bootstrap: Option<Vec<String>>,
    data_dir: Option<PathBuf>,
    memory: Option<bool>,
    client: Option<bool>,
    http: Option<SocketAddr>,
    http_token: Option<String>,
    metrics: Option<SocketAddr>,
    relay: Option<SocketAddr>,
    relay_max_connections: Option<usize>,
    relay_max_per_ip: Option<usize>,
    http_max_connections: Option<usize>,
    http_header_timeout: Option<u64>,
    http_idle_timeout: Option<u64>,
    limit_loopback: Option<bool>,
    trust_private: Option<bool>,
    web: Option<PathBuf>,
}

/// The settings in effect.
#[derive(Clone, Debug)]
pub struct Settings {
    /// UDP port.
    pub port: u16,
    /// Address to bind.
    pub bind: IpAddr,
    /// Nodes to join through.
    pub bootstrap: Vec<String>,
    /// Data directory; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Client mode.
    pub client: bool,
    /// HTTP API listener.
    pub http: Option<SocketAddr>,
    /// Token for writes.
    pub http_token: Option<String>,
    /// Listener of the read-only views.
    pub metrics: Option<SocketAddr>,
    /// Relay listener.
    pub relay: Option<SocketAddr>,
    /// Most relay connections.
    pub relay_max_connections: usize,
    /// Most relay connections from one IPv4 address or IPv6 /64.
    pub relay_max_per_ip: usize,
    /// Most TCP connections on the listeners; `None`: from the open-file limit.
    pub http_max_connections: Option<usize>,
    /// Seconds for a new connection's request header.
    pub http_header_timeout: u64,
    /// Seconds a kept-alive connection may idle.
    pub http_idle_timeout: u64,
    /// Per-address limits (relay and node) apply to loopback sources too.
    pub limit_loopback: bool,
    /// The node's per-address limits spare private-network sources.
    pub trust_private: bool,
    /// Directory served at / instead of the dashboard.
    pub web: Option<PathBuf>,
}

/// The data directory a node uses when given none: `kad/node` in the per-user data directory
/// (`~/.local/share` on Linux). It does not depend on the port, so a node keeps its identity
/// when its port changes; a second node on the same machine needs `--data-dir` (or `--memory`).
pub fn default_data_dir() -> Result<PathBuf, Failure> {
    dirs::data_dir().map(|d| d.join("kad").join("node")).ok_or_else(|| {
        Failure(
            INPUT,
            "no per-user data directory is known (is HOME set?): give --data-dir DIR or --memory".into(),
        )
    })
}

impl Settings {
    /// Flags over the file over the defaults.
    pub fn load(flags: &NodeFlags) -> Result<Settings, Failure> {
        let (file, base) = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Failure(INPUT, format!("cannot read the config file {}: {e}", path.display()))
                })?;
                let file: File = toml::from_str(&text).map_err(|e| {
                    Failure(INPUT, format!("config file {}: {}", path.display(), e.message()))
                })?;
                (file, path.parent().map(Path::to_path_buf).unwrap_or_default())
            }
            None => (File::default(), PathBuf::new()),
        };
        // Relative paths in the file are relative to the file.
        let from_file = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let memory = match (flags.memory, &flags.data_dir) {
            (Some(m), _) => m,
            (None, Some(_)) => false,
            (None, None) => file.memory.unwrap_or(false),
        };
        let data_dir = match (memory, flags.data_dir.clone(), file.data_dir) {
            (true, _, _) => None,
            (false, Some(d), _) => Some(d),
            (false, None, Some(d)) => Some(from_file(d)),
            (false, None, None) => Some(default_data_dir()?),
        };
        let s = Settings {
            port: flags.port.or(file.port).unwrap_or(DEFAULT_PORT),
            bind: flags.bind.or(file.bind).unwrap_or(IpAddr::from([127, 0, 0, 1])),
            bootstrap: if flags.bootstrap.is_empty() {
                file.bootstrap.unwrap_or_default()
            } else {
                flags.bootstrap.clone()
            },
            data_dir,
            client: flags.client.or(file.client).unwrap_or(false),
            http: flags.http.or(file.http),
            http_token: flags.http_token.clone().or(file.http_token).filter(|t| !t.is_empty()),
            metrics: flags.metrics.or(file.metrics),
            relay: flags.relay.or(file.relay),
            relay_max_connections: flags
                .relay_max_connections
                .or(file.relay_max_connections)
                .unwrap_or(DEFAULT_RELAY_MAX_CONNECTIONS),
            relay_max_per_ip: flags
                .relay_max_per_ip
                .or(file.relay_max_per_ip)
                .unwrap_or(DEFAULT_RELAY_MAX_PER_IP),
            http_max_connections: flags.http_max_connections.or(file.http_max_connections),
            http_header_timeout: flags
                .http_header_timeout
                .or(file.http_header_timeout)
                .unwrap_or(DEFAULT_HTTP_HEADER_TIMEOUT),
            http_idle_timeout: flags
                .http_idle_timeout
                .or(file.http_idle_timeout)
                .unwrap_or(DEFAULT_HTTP_IDLE_TIMEOUT),
            limit_loopback: flags.limit_loopback.or(file.limit_loopback).unwrap_or(false),
            trust_private: flags.trust_private.or(file.trust_private).unwrap_or(false),
            web: flags.web.clone().or(file.web.map(from_file)),
        };
        if s.web.is_some() && s.http.is_none() {
            return Err(Failure(INPUT, "web needs http: the files are served by the HTTP server".into()));
        }
        if s.http_max_connections == Some(0) || s.http_header_timeout == 0 || s.http_idle_timeout == 0 {
            return Err(Failure(
                INPUT,
                "http_max_connections, http_header_timeout and http_idle_timeout must be at least 1".into(),
            ));
        }
        if s.http_token.is_some() && s.http.is_none() {
            return Err(Failure(INPUT, "http_token needs http: it guards the HTTP API's writes".into()));
        }
        Ok(s)
    }

    /// The settings as a TOML file, each key with what it does; unset keys are commented out
    /// with an example.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let path = |p: &Path| q(&p.display().to_string());
        let set = |v: Option<String>, example: &str| v.ok_or_else(|| example.to_owned());
        let keys: [(&str, &str, Result<String, String>); 18] = [
            ("port", "UDP port of the node.", Ok(self.port.to_string())),
            (
                "bind",
                "Address to bind: 127.0.0.1 for this machine only; 0.0.0.0 or :: to accept peers from other machines.",
                Ok(q(&self.bind.to_string())),
            ),
            (
                "bootstrap",
                "Nodes of the network to join, as \"HOST:PORT\" (none: this node starts a new network).",
                Ok(format!("[{}]", self.bootstrap.iter().map(|b| q(b)).collect::<Vec<_>>().join(", "))),
            ),
            (
                "data_dir",
                "Where the id, contacts and records are kept (relative paths: relative to this file). One directory per node.",
                set(self.data_dir.as_deref().map(path), "\"/var/lib/kad\""),
            ),
            (
                "memory",
                "Keep everything in memory instead: nothing survives a restart (data_dir is then not used).",
                Ok(self.data_dir.is_none().to_string()),
            ),
            ("client", "Client mode: query and store, but stay out of other nodes' routing tables.", Ok(self.client.to_string())),
            (
                "http",
                "HTTP API (POST/GET /dht/KEY) on this address; also the dashboard (/), /status and /metrics unless `metrics` is set.",
                set(self.http.map(|a| q(&a.to_string())), "\"127.0.0.1:8080\""),
            ),
            (
                "http_token",
                "Writes (POST /dht/KEY) must carry `Authorization: Bearer TOKEN`; reads stay open. Keep this file private.",
                set(self.http_token.as_deref().map(q), "\"a long random string\""),
            ),
            (
                "metrics",
                "A listener of its own for the read-only views: /metrics, /status and the dashboard.",
                set(self.metrics.map(|a| q(&a.to_string())), "\"127.0.0.1:9090\""),
            ),
            (
                "relay",
                "Relay for browsers: a WebSocket endpoint at ws://ADDR/ (also /relay on the HTTP server).",
                set(self.relay.map(|a| q(&a.to_string())), "\"127.0.0.1:8081\""),
            ),
            ("relay_max_connections", "Most browser connections the relay serves at once.", Ok(self.relay_max_connections.to_string())),
            (
                "relay_max_per_ip",
                "Most relay connections from one IPv4 address or IPv6 /64 (loopback exempt unless limit_loopback).",
                Ok(self.relay_max_per_ip.to_string()),
            ),
            (
                "http_max_connections",
                "Most TCP connections open at once on the http, metrics and relay listeners together; when full, the one idle the longest is closed. Default: half the open-file limit, at most 512.",
                set(self.http_max_connections.map(|n| n.to_string()), &kad_host::listen::default_max_connections().to_string()),
            ),
            ("http_header_timeout", "Seconds a new TCP connection has to send a complete request header.", Ok(self.http_header_timeout.to_string())),
            ("http_idle_timeout", "Seconds a kept-alive TCP connection may wait before its next request.", Ok(self.http_idle_timeout.to_string())),
            (
                "limit_loopback",
                "Apply every per-address limit (the relay's, and the node's: requests per /24, routing-table diversity, reply sizes) to loopback sources too (exempt by default: a reverse proxy or tests on this machine).",
                Ok(self.limit_loopback.to_string()),
            ),
            (
                "trust_private",
                "Exempt private-network sources (10/8, 172.16/12, 192.168/16, link-local, fc00::/7) from the node's per-address limits: for nodes that share one private /24, which the diversity limits would treat as one operator.",
                Ok(self.trust_private.to_string()),
            ),
            (
                "web",
                "Serve the files of this directory at / on the HTTP server instead of the dashboard (relative: to this file).",
                set(self.web.as_deref().map(path), "\"examples/browser\""),
            ),
        ];
        let mut out = String::from(
            "# kad node settings: kad node --config FILE. Flags given with --config override the keys here.\n",
        );
        for (key, doc, value) in keys {
            out.push_str(&format!("\n# {doc}\n"));
            match value {
                Ok(v) => out.push_str(&format!("{key} = {v}\n")),
                Err(example) => out.push_str(&format!("# {key} = {example}\n")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_settings_read_back_the_same() {
        let flags = NodeFlags {
            port: Some(9000),
            bootstrap: vec!["127.0.0.1:8468".into()],
            data_dir: Some("/tmp/kad-x".into()),
            http: Some("127.0.0.1:8080".parse().unwrap()),
            http_token: Some("t\"q".into()),
            ..NodeFlags::default()
        };
        let s = Settings::load(&flags).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kad.toml");
        std::fs::write(&file, s.to_toml()).unwrap();
        let again = Settings::load(&NodeFlags { config: Some(file), ..NodeFlags::default() }).unwrap();
        assert_eq!(format!("{s:?}"), format!("{again:?}"));
    }

    #[test]
    fn flags_override_the_file_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kad.toml");
        std::fs::write(&file, "port = 9001\nmemory = true\nbootstrap = [\"10.0.0.1:8468\"]\nweb = \"site\"\nhttp = \"127.0.0.1:1\"\n").unwrap();
        let flags = NodeFlags {
            config: Some(file.clone()),
            port: Some(9002),
            memory: Some(false),
            ..NodeFlags::default()
        };
        let s = Settings::load(&flags).unwrap();
        assert_eq!((s.port, s.bootstrap.as_slice()), (9002, &["10.0.0.1:8468".to_string()][..]));
        assert!(s.data_dir.is_some(), "--memory=false overrides memory = true");
        assert_eq!(s.web, Some(dir.path().join("site")), "relative to the file");
        std::fs::write(&file, "prot = 1\n").unwrap();
        let Err(Failure(code, msg)) =
            Settings::load(&NodeFlags { config: Some(file), ..NodeFlags::default() })
        else {
            panic!("an unknown key is an error");
        };
        assert_eq!(code, INPUT);
        assert!(msg.contains("prot"), "{msg}");
    }
}
