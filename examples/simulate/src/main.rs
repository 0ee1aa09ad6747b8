//! `kad-simulate`: runs real kad-core nodes in a simulated network and reports how they did.
//!
//! One JSON result on stdout, a progress bar and a short table on stderr:
//!
//! ```sh
//! cargo run --release -p kad-simulate -- --scenario static --nodes 10000
//! ```

use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kad_simulate::params::parse_duration;
use kad_simulate::{Params, Progress, Scenario};

/// Simulates a kad network of real kad-core nodes on virtual time. Same seed, same result.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Scenario whose defaults to start from (the options below override them).
    #[arg(long, value_enum, default_value = "static")]
    scenario: Scenario,
    /// Nodes in the network.
    #[arg(long)]
    nodes: Option<usize>,
    /// FIND_NODE lookups of random targets.
    #[arg(long)]
    lookups: Option<usize>,
    /// FIND_VALUE lookups of random stored values.
    #[arg(long)]
    gets: Option<usize>,
    /// Values stored at the start.
    #[arg(long)]
    puts: Option<usize>,
    /// Packet loss, 0.0..1.0 (0.1 = 10%).
    #[arg(long)]
    loss: Option<f64>,
    /// Smallest one-way link latency in ms (default 10).
    #[arg(long)]
    latency_min_ms: Option<u64>,
    /// Largest one-way link latency in ms (default 200).
    #[arg(long)]
    latency_max_ms: Option<u64>,
    /// Extra random delay per datagram, 0..=ms (default 0).
    #[arg(long)]
    jitter_ms: Option<u64>,
    /// Share of nodes that leave per simulated hour, each replaced at once (0.2 = 20%/h).
    #[arg(long)]
    churn: Option<f64>,
    /// Share of leavers that come back later with their state (default 0.25).
    #[arg(long)]
    rejoin: Option<f64>,
    /// Length of the measured phase, e.g. 300s, 24h.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Seed of everything random.
    #[arg(long)]
    seed: Option<u64>,
    /// Publishers leave this long after their puts, e.g. 1h.
    #[arg(long, value_parser = parse_duration)]
    publishers_leave_after: Option<Duration>,
    /// Nodes joining per simulated second while the network is built (default 100).
    #[arg(long)]
    join_rate: Option<f64>,
    /// Quiet time after the last join (default 10m).
    #[arg(long, value_parser = parse_duration)]
    settle: Option<Duration>,
    /// Values probed every simulated hour (default 100).
    #[arg(long)]
    probe: Option<usize>,
    /// Record lifetime, e.g. 24h (the publisher republishes at the same interval).
    #[arg(long, value_parser = parse_duration)]
    record_ttl: Option<Duration>,
    /// Share of hostile nodes among those built at the start, 0.0..0.5 (0.1 = 10%): Sybils
    /// that name each other, liars on gets, store droppers.
    #[arg(long)]
    hostile: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Cli {
    fn params(&self) -> Params {
        let mut p = Params::scenario(self.scenario);
        macro_rules! set {
            ($($field:ident => $target:ident),* $(,)?) => {
                $(if let Some(v) = self.$field { p.$target = v; })*
            };
        }
        set!(nodes => nodes, lookups => lookups, gets => gets, puts => puts, loss => loss,
             latency_min_ms => latency_min_ms, latency_max_ms => latency_max_ms,
             jitter_ms => jitter_ms, churn => churn_per_hour, rejoin => rejoin,
             duration => duration, seed => seed, join_rate => join_rate, settle => settle,
             probe => probe, record_ttl => record_ttl, hostile => hostile);
        if self.publishers_leave_after.is_some() {
            p.publishers_leave_after = self.publishers_leave_after;
        }
        p
    }
}

fn main() {
    let cli = Cli::parse();
    let params = cli.params();
    if let Err(e) = params.validate() {
        eprintln!("kad-simulate: {e}");
        std::process::exit(2);
    }
    let bar = if cli.quiet { ProgressBar::hidden() } else { ProgressBar::new(1000) };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {percent:>3}% {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut on_progress = |p: Progress<'_>| {
        bar.set_prefix(p.phase.to_string());
        bar.set_position(p.done * 1000 / p.total.max(1));
        bar.set_message(format!("{:.0} s virtual, {} nodes up", p.done as f64 / 1000.0, p.nodes));
    };
    let report = kad_simulate::run(&params, &mut on_progress);
    bar.finish_and_clear();
    eprint!("{}", report.table());
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("kad-simulate: cannot write the result: {e}");
            std::process::exit(1);
        }
    }
}
