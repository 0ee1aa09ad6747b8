// The demo: connect to a relay, put and get values, show the peers and the node's events.
// All protocol work happens in the wasm node; this file only wires buttons to its methods.
import { DhtNode } from "./pkg/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const defaultRelay = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/relay`;
$("relay").value = params.get("relay") ?? defaultRelay;

let node = null;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function result(text, error = false) {
  $("result").textContent = text;
  $("result").className = error ? "error" : "";
}

function log(text) {
  const line = document.createElement("div");
  line.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("log").prepend(line);
}

function showPeers() {
  const peers = node ? node.peers() : [];
  $("peer-count").textContent = String(peers.length);
  $("peers").replaceChildren(...peers.map((p) => {
    const row = document.createElement("tr");
    for (const text of [p.id, p.addr]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
}

function setConnected(connected) {
  for (const id of ["put", "get", "disconnect"]) $(id).disabled = !connected;
  $("connect").disabled = connected;
}

function onEvent(e) {
  if (e.type === "query-done") log(`${e.query} ${e.ok ? "done" : "failed"} in ${e.ms} ms, ${e.requests} requests`);
  else if (e.type === "closed") {
    log(`closed: ${e.reason}`);
    status(`closed: ${e.reason}`, e.code !== 1000);
    setConnected(false);
  } else log(`${e.type} ${e.id} ${e.addr}`);
  showPeers();
}

$("connect").onclick = async () => {
  $("connect").disabled = true;
  status("connecting…");
  try {
    node = await DhtNode.connect($("relay").value, { onEvent });
    $("node-id").textContent = node.id;
    $("node-addr").textContent = node.address ?? "-";
    status(`connected, ${node.peers().length} peers`);
    setConnected(true);
    showPeers();
  } catch (e) {
    status(e.message, true);
    $("connect").disabled = false;
  }
};

$("disconnect").onclick = () => node?.close();

$("put").onclick = async () => {
  result("storing…");
  try {
    const acks = await node.put($("key").value, $("value").value);
    result(`stored on ${acks} ${acks === 1 ? "peer" : "peers"}`);
  } catch (e) {
    result(e.message, true);
  }
};

$("get").onclick = async () => {
  result("looking up…");
  try {
    const v = await node.get($("key").value);
    if (v === null) result("not found");
    else if (typeof v === "string") result(`found: ${v}`);
    else result(`found ${v.length} bytes: ${[...v].map((b) => b.toString(16).padStart(2, "0")).join("")}`);
  } catch (e) {
    result(e.message, true);
  }
};

if (params.has("autoconnect")) $("connect").click();
