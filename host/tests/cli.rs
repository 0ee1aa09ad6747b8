//! The `kad` command end to end: node processes on loopback, `kad put`/`kad get` and friends.

mod common;

use common::{kad, spawn_node};

#[test]
fn put_and_get_through_a_network_of_node_processes() {
    let first = spawn_node(&["--memory", "--port", "0"]);
    let seed = first.addr.to_string();
    let _others: Vec<_> =
        (0..3).map(|_| spawn_node(&["--memory", "--port", "0", "--bootstrap", &seed])).collect();

    let (code, out, err) = kad(&["put", "--bootstrap", &seed, "my-key", "my awesome value"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("stored \"my-key\" on"), "{out}");

    let (code, out, _) = kad(&["get", "--bootstrap", &seed, "my-key"]);
    assert_eq!((code, out.trim()), (0, "my awesome value"));

    let (code, out, _) = kad(&["get", "--bootstrap", &seed, "--json", "my-key"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["found"].as_bool(), v["kind"].as_str(), v["data"].as_str()),
        (Some(true), Some("text"), Some("my awesome value"))
    );

    // Bytes stay bytes.
    assert_eq!(kad(&["put", "--bootstrap", &seed, "--hex", "raw", "00ff10"]).0, 0);
    let (_, out, _) = kad(&["get", "--bootstrap", &seed, "--json", "raw"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["kind"].as_str(), v["data"].as_str()), (Some("bytes"), Some("00ff10")));

    // Exit codes that mean something.
    let (code, _, err) = kad(&["get", "--bootstrap", &seed, "never-stored"]);
    assert_eq!(code, 1, "not found is exit code 1: {err}");
    let big = "x".repeat(1001);
    let (code, _, err) = kad(&["put", "--bootstrap", &seed, "big", &big]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("over the limit of 1000 bytes"), "{err}");
    let (code, _, err) = kad(&["get", "--bootstrap", "not-an-address", "k"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, _) = kad(&["get", "k"]);
    assert_eq!(code, 2, "a missing --bootstrap is a usage error");

    let (code, out, _) = kad(&["find-node", "--bootstrap", &seed, "--json", "anything"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().len(), 4);
}

#[test]
fn signed_records_and_providers_from_the_command_line() {
    let first = spawn_node(&["--memory", "--port", "0"]);
    let seed = first.addr.to_string();
    let _other = spawn_node(&["--memory", "--port", "0", "--bootstrap", &seed]);
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("me.key");
    let keyfile = keyfile.to_str().unwrap();
    let (code, out, _) = kad(&["keygen", "--out", keyfile]);
    assert_eq!(code, 0);
    let pk = out.lines().find_map(|l| l.strip_prefix("public key: ")).unwrap().to_string();
    assert_eq!(kad(&["keygen", "--out", keyfile]).0, 4, "keygen never overwrites a key");

    assert_eq!(kad(&["put", "--bootstrap", &seed, "--sign", keyfile, "--seq", "1", "profile", "v1"]).0, 0);
    assert_eq!(kad(&["put", "--bootstrap", &seed, "--sign", keyfile, "--seq", "2", "profile", "v2"]).0, 0);
    let (code, out, _) = kad(&["get", "--bootstrap", &seed, "--pub-key", &pk, "--json", "profile"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["data"].as_str(), v["seq"].as_u64()), (Some("v2"), Some(2)));
    let (code, _, err) =
        kad(&["put", "--bootstrap", &seed, "--sign", keyfile, "--seq", "1", "profile", "old"]);
    assert_eq!(code, 3, "a stale sequence number is refused by every holder: {err}");

    let mut provide = {
        let mut p = std::process::Command::new(env!("CARGO_BIN_EXE_kad"))
            .args(["provide", "--memory", "--port", "0", "--bootstrap", &seed, "dataset"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = p.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
        let announced = lines.any(|l| l.map(|l| l.starts_with("providing \"dataset\"")).unwrap_or(false));
        assert!(announced);
        p
    };
    let (code, out, _) = kad(&["providers", "--bootstrap", &seed, "--json", "dataset"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().len(), 1);
    let _ = provide.kill();
    let _ = provide.wait();
    assert_eq!(kad(&["providers", "--bootstrap", &seed, "nobody-has-this"]).0, 1);
}
