// The npm tarball as a user gets it: `npm install` of target/kad-wasm-<version>.tgz (made by
// scripts/pack-wasm) into a fresh, empty project, imported there by Node, and used to put and
// get against a `kad node` with a relay.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startNetwork, kad, root } from "./network.mjs";

const version = JSON.parse(readFileSync(path.join(root, "wasm/npm/package.json"), "utf8")).version;
const TARBALL =
  process.env.KAD_WASM_TGZ ??
  path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), `kad-wasm-${version}.tgz`);

let net;
let project;

before(async () => {
  net = await startNetwork({ others: 2 });
  project = mkdtempSync(path.join(tmpdir(), "kad-npm-"));
});

after(() => {
  net?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

test("npm install of the tarball in an empty project, then put and get through a relay", () => {
  writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "uses-kad", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", TARBALL], {
    cwd: project,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 120_000,
  });
  writeFileSync(
    path.join(project, "main.mjs"),
    `import { DhtNode } from "kad-wasm";
const node = await DhtNode.connect(process.argv[2]);
console.log("acks", await node.put("from-the-tarball", "installed with npm"));
console.log("got", await node.get("from-the-tarball"));
node.close();
`,
  );
  const out = execFileSync("node", ["--experimental-websocket", "main.mjs", net.relayUrl], {
    cwd: project,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.match(out, /^acks [1-9]\d*$/m, out);
  assert.match(out, /^got installed with npm$/m, out);
});

test("what the installed package stored is read by `kad get`", async () => {
  const got = await kad(["get", "--bootstrap", net.seed, "from-the-tarball"]);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout.trim(), "installed with npm", JSON.stringify(got));
});
