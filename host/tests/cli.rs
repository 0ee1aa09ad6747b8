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
    assert_eq!(out, "stored \"my-key\" on 4 peers\n");

    let (code, out, _) = kad(&["get", "--bootstrap", &seed, "my-key"]);
    assert_eq!((code, out.trim()), (0, "my awesome value"));

    let (code, out, _) = kad(&["get", "--bootstrap", &seed, "--json", "my-key"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["found"].as_bool(), v["kind"].as_str(), v["data"].as_str()),
        (Some(true), Some("text"), Some("my awesome value"))
    );
    // The command's client node knows only its seed, a holder; the seed's answer names the
    // other holders beside the value, and the get waits for two to agree.
    assert!(v["holders"].as_u64().is_some_and(|n| n >= 2), "{v}");

    // Bytes stay bytes, in JSON as base64 with the encoding said.
    assert_eq!(kad(&["put", "--bootstrap", &seed, "--hex", "raw", "00ff10"]).0, 0);
    let (_, out, _) = kad(&["get", "--bootstrap", &seed, "--json", "raw"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["encoding"].as_str(), v["data"].as_str()),
        (Some("bytes"), Some("base64"), Some("AP8Q"))
    );
    assert_eq!(kad(&["put", "--bootstrap", &seed, "--base64", "raw2", "AP8Q"]).0, 0);
    assert_eq!(kad(&["get", "--bootstrap", &seed, "raw2"]).1, "00ff10\n");

    // Exit codes that mean something.
    let (code, _, err) = kad(&["get", "--bootstrap", &seed, "never-stored"]);
    assert_eq!(code, 1, "not found is exit code 1: {err}");
    // With --json, a failure is a JSON object on stdout.
    let (code, out, _) = kad(&["get", "--bootstrap", &seed, "--json", "never-stored"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (code, v["exit_code"].as_u64(), v["error"].as_str()),
        (1, Some(1), Some("\"never-stored\" not found"))
    );
    let (code, out, _) = kad(&["get", "--bootstrap", "127.0.0.1:1", "--json", "--timeout", "10", "k"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, v["exit_code"].as_u64()), (3, Some(3)));
    assert!(v["error"].as_str().unwrap().contains("no kad node answered at 127.0.0.1:1"), "{v}");
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
    // -p and -b, as put and get take -b.
    let _other = spawn_node(&["--memory", "-p", "0", "-b", &seed]);
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("me.key");
    let keyfile = keyfile.to_str().unwrap();
    let (code, out, _) = kad(&["keygen", "--out", keyfile]);
    assert_eq!(code, 0);
    let pk = out.lines().find_map(|l| l.strip_prefix("public key: ")).unwrap().to_string();
    assert_eq!(std::fs::read_to_string(format!("{keyfile}.pub")).unwrap().trim(), pk);
    assert_eq!(kad(&["keygen", "--out", keyfile]).0, 4, "keygen never overwrites a key");

    assert_eq!(kad(&["put", "--bootstrap", &seed, "--sign", keyfile, "--seq", "1", "profile", "v1"]).0, 0);
    assert_eq!(kad(&["put", "--bootstrap", &seed, "--sign", keyfile, "--seq", "2", "profile", "v2"]).0, 0);
    let (code, out, _) = kad(&["get", "--bootstrap", &seed, "--pub-key", &pk, "--json", "profile"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["data"].as_str(), v["seq"].as_u64()), (Some("v2"), Some(2)));
    let (code, _, err) =
        kad(&["put", "--bootstrap", &seed, "--sign", keyfile, "--seq", "1", "profile", "old"]);
    assert_eq!(code, 4, "a stale sequence number is bad input: {err}");
    assert!(
        err.contains("a newer value (seq 2) is already stored under \"profile\" for this public key; put again with --seq 3 or higher"),
        "{err}"
    );

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

    let lone = spawn_node(&["--memory", "--port", "0"]);
    let (code, out, _) = kad(&["put", "-b", &lone.addr.to_string(), "k", "v"]);
    assert_eq!((code, out.as_str()), (0, "stored \"k\" on 1 peer\n"));
}
