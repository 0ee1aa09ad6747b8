//! `kad`: run a node, or use the DHT from the command line. The commands live in [`cli`]; this
//! file sets up logging and the runtime and turns the result into an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Plain target filters (no regex engine in the binary: less code resident at idle).
    let default = ["kad=info,kad_host=info", "kad=debug,kad_host=debug", "kad=trace,kad_host=trace"]
        [args.verbose.min(2) as usize];
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default.parse().expect("valid default filter"));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    let rt = if args.command.wants_threads() {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(cli::FAILURE);
        }
    };
    let json = args.command.json();
    match rt.block_on(cli::run(args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cli::Failure(code, msg)) => {
            if json {
                println!("{}", serde_json::json!({ "error": msg, "exit_code": code }));
            }
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}
