// A local network of `kad node` processes on loopback, the first with the browser relay and
// the demo page, and a runner for one-shot `kad` commands. Every wait is bounded.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../../..");
/** The kad binary: $KAD_BIN, or the release build in $CARGO_TARGET_DIR (or target/). */
export const KAD =
  process.env.KAD_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "release", "kad");

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `kad node ARGS`; resolves once it printed its UDP address (at most 20 s). */
export function startNode(args) {
  const proc = spawn(KAD, ["node", "--memory", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stderr.on("data", (d) => (err = (err + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill();
      reject(new Error(`kad node ${args.join(" ")} did not start within 20 s:\n${out}\n${err}`));
    }, 20_000);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`kad node exited with ${code}:\n${out}\n${err}`));
    });
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on udp (\S+)/);
      // The relay and web lines come before "join:"; a joining node says when it has joined.
      if (m && out.includes(args.includes("--bootstrap") ? "joined the network" : "join:")) {
        clearTimeout(timer);
        proc.removeAllListeners("exit");
        resolve({ proc, addr: m[1], output: () => out });
      }
    });
  });
}

/** Runs `kad ARGS` to completion (at most `ms`); resolves to { code, stdout, stderr }. */
export function kad(args, ms = 40_000) {
  const proc = spawn(KAD, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill();
      reject(new Error(`kad ${args.join(" ")} did not finish within ${ms} ms`));
    }, ms);
    // "close", not "exit": only then has all of stdout been read (a fast command can exit first).
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A relay node (with the HTTP API, the relay at ws://…/ and /relay, and the demo page at /)
 * and `others` nodes bootstrapped from it.
 */
export async function startNetwork({ others = 3, relayArgs = [] } = {}) {
  const [relayPort, httpPort] = [await freePort(), await freePort()];
  const nodes = [];
  try {
    const first = await startNode([
      "--port", "0",
      "--relay", `127.0.0.1:${relayPort}`,
      "--http", `127.0.0.1:${httpPort}`,
      "--web", path.join(root, "examples/browser"),
      ...relayArgs,
    ]);
    nodes.push(first);
    for (let i = 0; i < others; i++) {
      nodes.push(await startNode(["--port", "0", "--bootstrap", first.addr]));
    }
  } catch (e) {
    for (const n of nodes) n.proc.kill();
    throw e;
  }
  return {
    seed: nodes[0].addr,
    relayUrl: `ws://127.0.0.1:${relayPort}/`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    nodes,
    stop() {
      for (const n of nodes) n.proc.kill();
    },
  };
}
