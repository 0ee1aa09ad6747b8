//! Running `kad node` as an operator does: SIGTERM, the data directory rule, the config file,
//! the separate metrics listener and the write token, on `kad node` processes on loopback.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_tcp, http, kad, spawn_node, spawn_node_with};

/// Sends SIGTERM and waits (at most 20 s) for the exit code.
fn terminate(node: &mut common::KadProcess) -> i32 {
    let pid = node.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            return status.code().expect("exited, not killed by a signal");
        }
        assert!(Instant::now() < deadline, "kad node did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_cleanly_and_the_default_data_dir_keeps_the_identity_across_ports() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let env: [(&str, &Path); 2] = [("HOME", home.path()), ("XDG_DATA_HOME", &data)];
    let mut node = spawn_node_with(&["--port", "0"], &env);
    let dir = data.join("kad").join("node");
    assert_eq!(
        node.line("data:", 10),
        format!("data:  {} (id, contacts and records survive restarts)", dir.display())
    );
    let peer = spawn_node(&["--memory", "--port", "0", "--bootstrap", &node.addr.to_string()]);
    assert_eq!(kad(&["put", "-b", &node.addr.to_string(), "kept", "across restarts"]).0, 0);

    assert_eq!(terminate(&mut node), 0, "SIGTERM is a clean stop");
    node.line("stopping (SIGTERM)", 10);

    // Another port, the same directory: the same node.
    let again = spawn_node_with(&["--port", "0"], &env);
    assert_ne!(again.addr.port(), node.addr.port());
    assert_eq!(again.id, node.id);
    let (code, out, err) = kad(&["get", "-b", &peer.addr.to_string(), "kept"]);
    assert_eq!((code, out.trim()), (0, "across restarts"), "{err}");

    // A second node on the same directory is refused, saying what to do.
    let (code, _, err) = kad(&["node", "--port", "0", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("if another kad node is using it, give this one its own with --data-dir DIR"),
        "{err}"
    );
}

#[test]
fn a_config_file_with_a_metrics_listener_and_a_write_token() {
    let dir = tempfile::tempdir().unwrap();
    let (api, views) = (free_tcp(), free_tcp());
    let seed = spawn_node(&["--memory", "--port", "0"]);
    let file = dir.path().join("kad.toml");
    // --print-config writes the file from flags; the node then runs from the file alone.
    let (code, toml, err) = kad(&[
        "node",
        "--print-config",
        "--memory",
        "--port",
        "0",
        "-b",
        &seed.addr.to_string(),
        "--http",
        &api.to_string(),
        "--metrics",
        &views.to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(&file, format!("{toml}\nhttp_token = \"s3cret\"\n")).unwrap();
    let node = spawn_node(&["--config", file.to_str().unwrap()]);
    node.line("joined the network", 20);

    // The API listener: reads open, writes need the token, no read-only views.
    let (code, body) = http(api, "POST", "/dht/k", Some(r#"{"data":"v"}"#));
    assert_eq!(code, 401, "{body}");
    assert_eq!(http(api, "GET", "/metrics", None).0, 404);
    assert_eq!(http(api, "GET", "/dht/nothing", None).0, 404);
    // The views listener: metrics, status and the dashboard, and no API.
    let (code, metrics) = http(views, "GET", "/metrics", None);
    assert_eq!(code, 200);
    assert!(metrics.contains("kad_routing_contacts 1"), "{metrics}");
    let (code, page) = http(views, "GET", "/", None);
    assert!(code == 200 && page.contains("dashboard.js"), "{page}");
    let (code, status) = http(views, "GET", "/api/dashboard", None);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["id"].as_str(), Some(node.id.as_str()));
    assert_eq!(http(views, "POST", "/dht/k", Some(r#"{"data":"v"}"#)).0, 404);

    // A key the file does not know is an error, naming it.
    std::fs::write(&file, "prot = 8468\n").unwrap();
    let (code, _, err) = kad(&["node", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 4);
    assert!(err.contains("unknown field `prot`"), "{err}");
}
