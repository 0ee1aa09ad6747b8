// kad-wasm in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// nothing is downloaded): the demo page served by `kad node --http … --web examples/browser`,
// used as a person would, against a local network of kad node processes with a relay.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startNetwork, kad } from "./network.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WAIT = 30_000;

let net;
let context;
let profile;
const pageErrors = [];

before(async () => {
  net = await startNetwork({ others: 3 });
  profile = mkdtempSync(path.join(tmpdir(), "kad-chromium-"));
  // A persistent context is how playwright takes a fresh --user-data-dir of our choosing.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: WAIT,
  });
});

after(async () => {
  await context?.close();
  net?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Opens the demo page and connects it to the relay on the HTTP server (/relay). */
async function openDemo() {
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`${net.httpUrl}/?autoconnect`, { timeout: WAIT });
  await page.waitForFunction(() => /^connected/.test(document.getElementById("status").textContent), null, {
    timeout: WAIT,
  });
  return page;
}

/** Fills key (and value), clicks a button and waits for the result line to settle. */
async function act(page, button, key, value) {
  await page.fill("#key", key);
  if (value !== undefined) await page.fill("#value", value);
  await page.click(`#${button}`);
  await page.waitForFunction(() => !/…$/.test(document.getElementById("result").textContent), null, {
    timeout: WAIT,
  });
  return page.textContent("#result");
}

test("the demo page connects through the relay and shows the network's nodes as peers", async () => {
  const page = await openDemo();
  assert.match(await page.textContent("#node-id"), /^[0-9a-f]{40}$/);
  assert.match(await page.textContent("#node-addr"), /^127\.0\.0\.1:\d+$/);
  // The page shows peers as they arrive (a client learns the network in the background).
  await page
    .waitForFunction(() => Number(document.querySelector("#peer-count").textContent) >= 2, null, { timeout: 5000 })
    .catch(() => {});
  const peers = Number(await page.textContent("#peer-count"));
  assert.ok(peers >= 2, `peers shown within 5 s: ${peers}`);
  const rows = await page.$$eval("#peers tr", (trs) => trs.map((tr) => tr.cells[1].textContent));
  assert.ok(rows.includes(net.seed), `the relay node is listed: ${rows}`);
  if (process.env.KAD_SCREENSHOT) await page.screenshot({ path: process.env.KAD_SCREENSHOT, fullPage: true });
  await page.close();
});

test("a value the page puts is read by `kad get`, and the page reads what `kad put` stored", async () => {
  const page = await openDemo();
  assert.match(await act(page, "put", "from-chromium", "written in a browser"), /^stored on [1-9]\d* peers?$/);
  const got = await kad(["get", "--bootstrap", net.seed, "from-chromium"]);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout.trim(), "written in a browser");

  const put = await kad(["put", "--bootstrap", net.seed, "from-cli", "written by kad put"]);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(await act(page, "get", "from-cli"), "found: written by kad put");
  assert.equal(await act(page, "get", "nobody-stored-this"), "not found");
  assert.equal(
    await act(page, "put", "too-big", "x".repeat(1001)),
    "value of 1001 bytes is over the limit of 1000 bytes",
  );
  await page.close();
});

test("two pages on the same relay exchange a value", async () => {
  const [writer, reader] = [await openDemo(), await openDemo()];
  assert.notEqual(await writer.textContent("#node-addr"), await reader.textContent("#node-addr"));
  assert.match(await act(writer, "put", "between-tabs", "hello from the other tab"), /^stored on [1-9]\d* peers?$/);
  assert.equal(await act(reader, "get", "between-tabs"), "found: hello from the other tab");
  await writer.click("#disconnect");
  await writer.waitForFunction(() => /^closed/.test(document.getElementById("status").textContent), null, {
    timeout: WAIT,
  });
  assert.equal(await act(reader, "get", "between-tabs"), "found: hello from the other tab");
  await writer.close();
  await reader.close();
});

test("no page threw an uncaught error", () => {
  assert.deepEqual(pageErrors, []);
});
