// The live dashboard of `kad node --http` in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): it loads with no console errors, shows the node's id and its
// contacts, and its record count goes up after a `kad put`. A screenshot is saved under
// target/ (the path is printed) for a person to look at.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startNetwork, startNode, freePort, kad, root } from "./network.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = 30_000;
const SCREENSHOT = path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "dashboard.png");

let net;
let node;
let httpUrl;
let browser;
let profile;

before(async () => {
  net = await startNetwork({ others: 2 });
  const [http, relay] = [await freePort(), await freePort()];
  httpUrl = `http://127.0.0.1:${http}`;
  node = await startNode([
    "--port", "0",
    "--bootstrap", net.seed,
    "--http", `127.0.0.1:${http}`,
    "--relay", `127.0.0.1:${relay}`,
  ]);
  profile = mkdtempSync(path.join(tmpdir(), "kad-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    timeout: WAIT,
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await browser?.close();
  node?.proc.kill();
  net?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

const count = (page) => page.textContent("#record-count").then(Number);

test("the dashboard shows the node live, its contacts, and a record count that follows puts", async () => {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));

  await page.goto(`${httpUrl}/`, { timeout: WAIT });
  await page.waitForFunction(() => document.getElementById("state").textContent === "live", null, { timeout: WAIT });
  const id = node.output().match(/kad node ([0-9a-f]{40})/)[1];
  assert.equal(await page.textContent("#node-id"), id);
  assert.equal(await page.textContent("#node-addr"), node.addr);

  // The routing table: the other nodes of the network, each a contact in some bucket.
  await page.waitForFunction((n) => document.querySelectorAll("#buckets .contact").length >= n, 3, { timeout: WAIT });
  const contacts = await page.$$eval("#buckets .contact", (cs) => cs.map((c) => c.firstChild.textContent));
  for (const other of net.nodes) assert.ok(contacts.includes(other.addr), `${other.addr} shown in ${contacts}`);
  assert.equal(await page.isVisible("#relay-card"), true, "the relay's card shows with --relay");

  // A put through another node lands here as a replica; the page shows it within seconds.
  const before = await count(page);
  const put = await kad(["put", "--bootstrap", net.seed, "seen-on-the-dashboard", "hello"]);
  assert.equal(put.code, 0, put.stderr);
  await page.waitForFunction((n) => Number(document.getElementById("record-count").textContent) > n, before, {
    timeout: WAIT,
  });
  // The rate charts have points once two samples exist.
  await page.waitForFunction(() => document.querySelector("#chart-in polyline")?.getAttribute("points")?.includes(" "), null, {
    timeout: WAIT,
  });

  mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`dashboard screenshot: ${SCREENSHOT}`);
  assert.deepEqual(problems, []);
  await page.close();
});
