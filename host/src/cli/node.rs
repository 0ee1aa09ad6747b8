//! `kad node` and `kad provide`: a long-running node with its listeners (HTTP API, read-only
//! views, browser relay), stopped cleanly by Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use kad_host::dashboard::History;
use kad_host::store::DbError;
use kad_host::{http, listen, Config, Error, ListenConfig, Listeners, Node, Relay, RelayConfig};

use super::client::resolve;
use super::config::{NodeFlags, Settings};
use super::{Failure, FAILURE, INPUT};

/// Options of `kad node`.
pub type NodeArgs = NodeFlags;

/// Options of `kad provide`.
#[derive(Args)]
pub struct ProvideArgs {
    #[command(flatten)]
    pub node: NodeFlags,
    /// The key to provide.
    pub key: String,
}

fn listen(addr: SocketAddr, what: &str) -> Result<tokio::net::TcpListener, Failure> {
    listen::bind(addr).map_err(|e| Failure(FAILURE, format!("cannot listen for {what} on {addr}: {e}")))
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
async fn stop_requested() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

/// Runs a node until asked to stop; with `provide`, announces it as a provider of that key.
pub async fn run(flags: NodeFlags, provide: Option<String>) -> Result<(), Failure> {
    let s = Settings::load(&flags)?;
    if flags.print_config {
        print!("{}", s.to_toml());
        return Ok(());
    }
    let bootstrap = resolve(&s.bootstrap).await?;
    let mut config =
        Config { bind: SocketAddr::new(s.bind, s.port), data_dir: s.data_dir.clone(), ..Config::default() };
    config.core.client_mode = s.client;
    config.core.limits.on_loopback = s.limit_loopback;
    config.core.limits.on_private = !s.trust_private;
    let node = Node::bind(config).await.map_err(|e| match (&e, &s.data_dir) {
        (Error::Storage(DbError::Open { .. }), Some(dir)) => Failure(
            FAILURE,
            format!(
                "{e}\nthe data directory {} cannot be used; if another kad node is using it, give this one \
                 its own with --data-dir DIR (or --memory)",
                dir.display()
            ),
        ),
        _ => e.into(),
    })?;
    let addr = node.addr();
    println!(
        "kad node {} listening on udp {addr}{}",
        node.id(),
        if s.client { " (client mode)" } else { "" }
    );
    match &s.data_dir {
        Some(d) => println!("data:  {} (id, contacts and records survive restarts)", d.display()),
        None => println!("data:  in memory (nothing survives a restart)"),
    }
    let listeners = Listeners::new(ListenConfig {
        max_connections: s.http_max_connections.unwrap_or_else(listen::default_max_connections),
        max_pending: None,
        header_timeout: Duration::from_secs(s.http_header_timeout),
        idle_timeout: Duration::from_secs(s.http_idle_timeout),
    });
    let relay = s.relay.map(|_| {
        let config = RelayConfig {
            max_connections: s.relay_max_connections,
            max_per_ip: s.relay_max_per_ip,
            limit_loopback: s.limit_loopback,
            ..RelayConfig::default()
        };
        Relay::new(node.handle(), &bootstrap, config)
    });
    if let (Some(relay_addr), Some(relay)) = (s.relay, &relay) {
        listeners.serve(listen(relay_addr, "the relay")?, relay.router());
        println!("relay: ws://{relay_addr}/  (browsers: DhtNode.connect(\"ws://{relay_addr}/\"))");
    }
    let history = (s.http.is_some() || s.metrics.is_some()).then(|| History::spawn(node.handle()));
    if let (Some(metrics), Some(history)) = (s.metrics, &history) {
        let app = http::views(node.handle(), relay.clone(), &listeners, history.clone(), true);
        listeners.serve(listen(metrics, "metrics")?, http::with_json_errors(app));
        println!("views: http://{metrics}/  (dashboard, /status, /metrics)");
    }
    if let (Some(http_addr), Some(history)) = (s.http, &history) {
        let listener = listen(http_addr, "HTTP")?;
        let mut app = http::api(node.handle(), s.http_token.clone(), &listeners);
        if let Some(relay) = &relay {
            app = app.merge(relay.route());
        }
        if s.metrics.is_none() {
            app = app.merge(http::views(
                node.handle(),
                relay.clone(),
                &listeners,
                history.clone(),
                s.web.is_none(),
            ));
        }
        if let Some(dir) = &s.web {
            if !dir.join("index.html").is_file() {
                return Err(Failure(INPUT, format!("web {}: no index.html there", dir.display())));
            }
            app = app.fallback_service(tower_http::services::ServeDir::new(dir));
            println!("web:   http://{http_addr}/  (files of {})", dir.display());
        }
        listeners.serve(listener, http::with_json_errors(app));
        let views = if s.metrics.is_none() { "; dashboard, /status, /metrics" } else { "" };
        let guard = if s.http_token.is_some() { ", writes need the token" } else { "" };
        println!("http:  http://{http_addr}/  (POST/GET /dht/KEY{guard}{views})");
        if s.http_token.is_none() && !http_addr.ip().is_loopback() {
            eprintln!(
                "warning: the HTTP API on {http_addr} takes writes from anyone who can reach it; set http_token \
                 (see the README, \"Running a public node\")"
            );
        }
    }
    let next = addr.port().wrapping_add(1);
    let second_dir = match &s.data_dir {
        Some(d) => format!("--data-dir {}", d.with_file_name(format!("node-{next}")).display()),
        None => "--memory".to_owned(),
    };
    println!("join:  kad node --port {next} {second_dir} --bootstrap {addr}");
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
    let why = stop_requested().await;
    println!("stopping ({why})");
    node.stop().await;
    Ok(())
}
