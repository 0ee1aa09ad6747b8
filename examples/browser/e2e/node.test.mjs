// kad-wasm in Node (>= 20, run with --experimental-websocket): the package as users import it,
// against a local network of kad node processes with a relay.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { DhtNode } from "kad-wasm";
import { startNetwork, startNode, freePort, kad } from "./network.mjs";

let net;
const open = [];

before(async () => {
  net = await startNetwork({ others: 3 });
});

after(() => {
  for (const n of open) n.close();
  net?.stop();
});

async function connect(options = {}) {
  const node = await DhtNode.connect(net.relayUrl, options);
  open.push(node);
  return node;
}

test("a node in Node joins through the relay and knows the host nodes", async () => {
  const node = await connect();
  assert.match(node.id, /^[0-9a-f]{40}$/);
  assert.match(node.address, /^127\.0\.0\.1:\d+$/, "the relay gave it a UDP address");
  assert.equal(node.clientMode, true, "client mode by default");
  // A client has joined when the seed answered; it learns the rest in the background.
  let peers = node.peers();
  for (let i = 0; i < 50 && peers.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 100));
    peers = node.peers();
  }
  assert.ok(peers.length >= 2, `knows the network within 5 s: ${JSON.stringify(peers)}`);
  assert.ok(peers.some((p) => p.addr === net.seed), "the relay node is a peer");
});

test("text stays text and bytes stay bytes", async () => {
  const node = await connect();
  assert.ok((await node.put("node-text", "héllo wörld")) >= 1);
  assert.equal(await node.get("node-text"), "héllo wörld");
  const bytes = new Uint8Array([0, 1, 254, 255]);
  assert.ok((await node.put(new Uint8Array([1, 2, 3]), bytes)) >= 1);
  const back = await node.get(new Uint8Array([1, 2, 3]));
  assert.ok(back instanceof Uint8Array);
  assert.deepEqual([...back], [...bytes]);
  assert.equal(await node.get("never-stored-anywhere"), null);
});

test("a value put from Node is read by `kad get`, and one `kad put` stored is read from Node", async () => {
  const node = await connect();
  assert.ok((await node.put("from-node", "written in Node")) >= 1);
  const got = await kad(["get", "--bootstrap", net.seed, "from-node"]);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout.trim(), "written in Node");

  const put = await kad(["put", "--bootstrap", net.seed, "from-cli", "written by kad put"]);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(await node.get("from-cli"), "written by kad put");
  const hex = await kad(["put", "--bootstrap", net.seed, "--hex", "cli-bytes", "00ff10"]);
  assert.equal(hex.code, 0, hex.stderr);
  assert.deepEqual([...(await node.get("cli-bytes"))], [0, 255, 16]);
});

test("put rejects with a clear Error when the value is too large or of the wrong type", async () => {
  const node = await connect();
  await assert.rejects(node.put("big", "x".repeat(1001)), {
    message: "value of 1001 bytes is over the limit of 1000 bytes",
  });
  await assert.rejects(node.put("n", 42), { name: "TypeError", message: "value must be a string or a Uint8Array" });
  await assert.rejects(node.get({}), { name: "TypeError" });
});

test("findNode, provide and getProviders", async () => {
  const node = await connect();
  const closest = await node.findNode(net.nodes[1].output().match(/kad node ([0-9a-f]{40})/)[1]);
  assert.ok(closest.length >= 3, JSON.stringify(closest));
  assert.ok(closest.every((p) => /^[0-9a-f]{40}$/.test(p.id) && p.addr.startsWith("127.0.0.1:")));
  assert.ok((await node.provide("dataset-n")) >= 1);
  const other = await connect();
  const providers = await other.getProviders("dataset-n");
  assert.deepEqual(providers.map((p) => p.id), [node.id]);
  assert.equal(providers[0].addr, node.address, "providers are reached at their relay address");
  assert.deepEqual(await other.getProviders("nobody-provides-this"), []);
});

test("signed records: putSigned, getSigned and `kad get --pub-key`", async () => {
  const node = await connect();
  const secret = DhtNode.generateSecretKey();
  const pk = DhtNode.publicKey(secret);
  assert.equal(pk.length, 32);
  assert.ok((await node.putSigned(secret, "profile", 1, "v1")) >= 1);
  assert.ok((await node.putSigned(secret, "profile", 2n, "v2")) >= 1);
  const rec = await node.getSigned(pk, "profile");
  assert.equal(rec.value, "v2");
  assert.equal(rec.seq, 2);
  assert.deepEqual([...rec.publicKey], [...pk]);
  const hexKey = Buffer.from(pk).toString("hex");
  const cli = await kad(["get", "--bootstrap", net.seed, "--pub-key", hexKey, "--json", "profile"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual(JSON.parse(cli.stdout).data, "v2");
  // The node holds seq 2 itself (it is the publisher): it refuses before asking anyone.
  await assert.rejects(node.putSigned(secret, "profile", 1, "old"), /holds a record it may not replace/);
  assert.equal(await node.getSigned(pk, "other-name"), null);
});

test("events report peers and queries; close rejects later calls and reports why", async () => {
  const events = [];
  const node = await connect({ onEvent: (e) => events.push(e) });
  assert.ok(events.some((e) => e.type === "peer-added"));
  assert.ok(events.some((e) => e.type === "query-done" && e.query === "bootstrap" && e.ok));
  await node.get("anything");
  const done = events.filter((e) => e.type === "query-done" && e.query === "get");
  assert.equal(done.length, 1);
  assert.ok(done[0].requests >= 1 && done[0].ms >= 0);
  node.close();
  assert.deepEqual(events.at(-1), { type: "closed", code: 1000, reason: "closed by the application" });
  assert.equal(node.closedReason, "closed by the application");
  await assert.rejects(node.get("x"), { message: "the node is closed: closed by the application" });
});

test("connect rejects with a clear Error when no relay listens", async () => {
  const port = await freePort();
  await assert.rejects(DhtNode.connect(`ws://127.0.0.1:${port}/`), {
    message: `cannot reach the relay at ws://127.0.0.1:${port}/`,
  });
  await assert.rejects(DhtNode.connect(net.relayUrl, { bootstrap: ["not-an-address"] }), { name: "TypeError" });
});

test("a relay that is full closes new connections with its reason", async () => {
  const relayPort = await freePort();
  const full = await startNode(["--port", "0", "--relay", `127.0.0.1:${relayPort}`, "--relay-max-connections", "1"]);
  try {
    const first = await DhtNode.connect(`ws://127.0.0.1:${relayPort}/`, { bootstrap: false });
    await assert.rejects(DhtNode.connect(`ws://127.0.0.1:${relayPort}/`), {
      message: "the relay closed the connection (1013: relay full: 1 connections)",
    });
    first.close();
  } finally {
    full.proc.kill();
  }
});
