//! The loopback benchmark behind `kad bench`: N real UDP nodes on 127.0.0.1, M sets of random
//! values through one more node, then M gets through another, at a given concurrency; with
//! `--compare-python`, the same workload against the Python `kademlia` package in the same run.
//! The two client nodes keep no replicas (kad: client mode; Python: a storage that keeps
//! nothing), so every operation crosses the network.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use kad_host::{Config, Node, Value};

/// The Python side of the benchmark, run with the Python `kademlia` package.
const PYTHON_BENCH: &str = include_str!("../../bench/python_bench.py");

/// Options of `kad bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Nodes in the network (comma-separated list to run several).
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub nodes: Vec<usize>,
    /// Sets, then as many gets (comma-separated list to run several; 0 skips the workload).
    #[arg(long, value_delimiter = ',', default_value = "200")]
    pub ops: Vec<usize>,
    /// Operations in flight at once (comma-separated list to run several).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub concurrency: Vec<usize>,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
    /// Also run the workload against the Python `kademlia` package (installed into a
    /// virtualenv with pip) and print the ratios.
    #[arg(long)]
    pub compare_python: bool,
    /// Version of the Python package.
    #[arg(long, default_value = "2.2.3")]
    pub python_kademlia: String,
    /// Where to create the virtualenv.
    #[arg(long, default_value = "target/kad-bench-venv")]
    pub venv: std::path::PathBuf,
    /// Also measure the resident memory of an idle `kad node` process.
    #[arg(long)]
    pub idle_rss: bool,
    /// Print the results as JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// Results of one phase (sets or gets).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Phase {
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Share of operations that succeeded (set acknowledged / get returned the value).
    pub success: f64,
    /// Datagrams sent by all nodes per operation.
    pub datagrams_per_op: f64,
}

/// Results of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// `kad` or `python-kademlia`.
    pub implementation: String,
    /// Nodes.
    pub nodes: usize,
    /// Operations per phase.
    pub ops: usize,
    /// Concurrency.
    pub concurrency: usize,
    /// Sets.
    pub set: Phase,
    /// Gets.
    pub get: Phase,
}

fn phase(mut latencies: Vec<Duration>, ok: usize, total: Duration, datagrams: u64) -> Phase {
    let n = latencies.len().max(1);
    latencies.sort();
    let pct =
        |p: f64| latencies.get(((n as f64 * p) as usize).min(n - 1)).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    Phase {
        ops_per_sec: latencies.len() as f64 / total.as_secs_f64().max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        success: ok as f64 / n as f64,
        datagrams_per_op: datagrams as f64 / n as f64,
    }
}

async fn datagrams(nodes: &[Node]) -> u64 {
    let mut total = 0;
    for n in nodes {
        if let Ok(s) = n.status().await {
            total += s.stats.datagrams_out;
        }
    }
    total
}

/// Runs `op(i)` for i in 0..ops with `concurrency` workers; returns latencies, successes and
/// the elapsed time.
async fn drive<F, Fut>(ops: usize, concurrency: usize, op: F) -> (Vec<Duration>, usize, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops {
                        break out;
                    }
                    let t = Instant::now();
                    let ok = op(i).await;
                    out.push((t.elapsed(), ok));
                }
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(ops);
    let mut ok = 0;
    for w in workers {
        for (d, good) in w.await.unwrap_or_default() {
            lat.push(d);
            ok += good as usize;
        }
    }
    (lat, ok, start.elapsed())
}

/// Runs the workload against `nodes` kad nodes.
pub async fn run_kad(nodes: usize, ops: usize, concurrency: usize, value_size: usize) -> Result<Run, String> {
    let mut net = Vec::new();
    for i in 0..nodes + 2 {
        let mut config = Config::default();
        // The last two are the clients that set and get: in client mode they hold no
        // replicas, so every get is a lookup on the network, not a local read.
        config.core.client_mode = i >= nodes;
        net.push(Node::bind(config).await.map_err(|e| e.to_string())?);
    }
    let seed = net[0].addr();
    for n in &net[1..] {
        n.bootstrap(&[seed]).await.map_err(|e| format!("bootstrap: {e}"))?;
    }
    let setter = net[nodes].handle();
    let getter = net[nodes + 1].handle();
    let mut values = Vec::with_capacity(ops);
    for _ in 0..ops {
        let mut v = vec![0u8; value_size];
        rand::thread_rng().fill_bytes(&mut v);
        values.push(v);
    }
    let values = Arc::new(values);
    let tag: u64 = rand::random();

    let before = datagrams(&net).await;
    let (c, v) = (setter, values.clone());
    let (lat, ok, took) = drive(ops, concurrency, move |i| {
        let (c, v) = (c.clone(), v.clone());
        async move { c.put(format!("bench-{tag}-{i}"), v[i].clone()).await.is_ok() }
    })
    .await;
    let mid = datagrams(&net).await;
    let set = phase(lat, ok, took, mid - before);

    let (c, v) = (getter, values.clone());
    let (lat, ok, took) =
        drive(ops, concurrency, move |i| {
            let (c, v) = (c.clone(), v.clone());
            async move {
                matches!(c.get(format!("bench-{tag}-{i}")).await, Ok(Some(Value::Bytes(b))) if b == v[i])
            }
        })
        .await;
    let after = datagrams(&net).await;
    let get = phase(lat, ok, took, after - mid);
    for n in net {
        n.stop().await;
    }
    Ok(Run { implementation: "kad".into(), nodes, ops, concurrency, set, get })
}

/// Creates the virtualenv with the Python `kademlia` package if needed; returns its python.
async fn python_env(args: &BenchArgs) -> Result<std::path::PathBuf, String> {
    let python = args.venv.join("bin").join("python");
    let marker = args.venv.join(format!("kademlia-{}", args.python_kademlia));
    if marker.exists() {
        return Ok(python);
    }
    let status = |what: &str, s: std::io::Result<std::process::ExitStatus>| match s {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{what} failed: {s}")),
        Err(e) => Err(format!("{what} failed: {e}")),
    };
    eprintln!("creating {} with kademlia=={} ...", args.venv.display(), args.python_kademlia);
    status(
        "python3 -m venv",
        tokio::process::Command::new("python3").arg("-m").arg("venv").arg(&args.venv).status().await,
    )?;
    status(
        "pip install",
        tokio::process::Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", &format!("kademlia=={}", args.python_kademlia)])
            .status()
            .await,
    )?;
    std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    Ok(python)
}

/// Runs the same workload against the Python library.
async fn run_python(
    python: &std::path::Path,
    nodes: usize,
    ops: usize,
    concurrency: usize,
    value_size: usize,
) -> Result<Run, String> {
    let script = std::env::temp_dir().join(format!("kad_python_bench_{}.py", std::process::id()));
    std::fs::write(&script, PYTHON_BENCH).map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new(python)
        .arg(&script)
        .args([nodes.to_string(), ops.to_string(), concurrency.to_string(), value_size.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("python: {e}"))?;
    let _ = std::fs::remove_file(&script);
    if !out.status.success() {
        return Err(format!("python benchmark failed: {}", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("python benchmark output: {e}"))
}

/// Resident memory (KiB) of an idle `kad node` after it has started and settled.
async fn idle_rss() -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("kad-idle-{}", std::process::id()));
    let mut child = tokio::process::Command::new(exe)
        .args(["node", "--port", "0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = child.id().ok_or("kad node exited")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

fn print_run(r: &Run) {
    println!(
        "{:<16} {:>5} {:>6} {:>4} | set {:>9.0} ops/s p50 {:>7.2} ms p99 {:>7.2} ms ok {:>6.1}% {:>6.1} dgram/op | get {:>9.0} ops/s p50 {:>7.2} ms p99 {:>7.2} ms ok {:>6.1}% {:>6.1} dgram/op",
        r.implementation, r.nodes, r.ops, r.concurrency,
        r.set.ops_per_sec, r.set.p50_ms, r.set.p99_ms, r.set.success * 100.0, r.set.datagrams_per_op,
        r.get.ops_per_sec, r.get.p50_ms, r.get.p99_ms, r.get.success * 100.0, r.get.datagrams_per_op,
    );
}

/// `kad bench`.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    let python = if args.compare_python { Some(python_env(&args).await?) } else { None };
    if !args.json {
        println!("{:<16} {:>5} {:>6} {:>4} |", "implementation", "nodes", "ops", "conc");
    }
    for &nodes in &args.nodes {
        for &ops in &args.ops {
            for &conc in &args.concurrency {
                if ops == 0 {
                    continue;
                }
                let kad = run_kad(nodes, ops, conc, args.value_size).await?;
                let py = match &python {
                    Some(p) => Some(run_python(p, nodes, ops, conc, args.value_size).await?),
                    None => None,
                };
                if args.json {
                    println!("{}", serde_json::to_string(&kad).map_err(|e| e.to_string())?);
                    if let Some(py) = &py {
                        println!("{}", serde_json::to_string(py).map_err(|e| e.to_string())?);
                    }
                } else {
                    print_run(&kad);
                    if let Some(py) = &py {
                        print_run(py);
                        println!(
                            "{:<16} {:>5} {:>6} {:>4} | set {:>8.1}x faster, p50 {:.1}x lower         | get {:>8.1}x faster, p50 {:.1}x lower",
                            "ratio", nodes, ops, conc,
                            kad.set.ops_per_sec / py.set.ops_per_sec.max(1e-9),
                            py.set.p50_ms / kad.set.p50_ms.max(1e-9),
                            kad.get.ops_per_sec / py.get.ops_per_sec.max(1e-9),
                            py.get.p50_ms / kad.get.p50_ms.max(1e-9),
                        );
                    }
                }
            }
        }
    }
    if args.idle_rss {
        let kib = idle_rss().await?;
        if args.json {
            println!("{}", serde_json::json!({ "idle_rss_kib": kib }));
        } else {
            println!("idle RSS of `kad node`: {kib} KiB ({:.1} MiB)", kib as f64 / 1024.0);
        }
    }
    Ok(())
}
