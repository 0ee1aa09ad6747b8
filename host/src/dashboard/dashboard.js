// The kad node dashboard: polls api/dashboard once a second and draws it. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const SVG = "http://www.w3.org/2000/svg";

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function duration(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function line(svg, values, slots) {
  const max = Math.max(1, ...values);
  const step = 300 / Math.max(1, slots - 1);
  const offset = slots - values.length;
  const points = values.map((v, i) => `${((offset + i) * step).toFixed(1)},${(48 - (v / max) * 44).toFixed(1)}`);
  svg.replaceChildren();
  const p = document.createElementNS(SVG, "polyline");
  p.setAttribute("points", points.join(" "));
  svg.append(p);
  const t = document.createElementNS(SVG, "title");
  t.textContent = `peak ${max}/s`;
  svg.append(t);
}

function latency(lookups) {
  const svg = $("latency");
  const counts = lookups.counts;
  const max = Math.max(1, ...counts);
  const w = 300 / counts.length;
  svg.replaceChildren();
  counts.forEach((n, i) => {
    const h = (n / max) * 84;
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", (i * w + 2).toFixed(1));
    r.setAttribute("width", (w - 4).toFixed(1));
    r.setAttribute("y", (88 - h).toFixed(1));
    r.setAttribute("height", Math.max(h, n > 0 ? 1 : 0).toFixed(1));
    const t = document.createElementNS(SVG, "title");
    t.textContent = `${n} queries`;
    r.append(t);
    svg.append(r);
  });
  const axis = $("latency-axis");
  axis.style.gridTemplateColumns = `repeat(${counts.length}, 1fr)`;
  const labels = lookups.bounds_ms.map((b) => (b >= 1000 ? `${b / 1000}s` : `${b}`)).concat([">"]);
  axis.replaceChildren(...labels.map((l) => el("span", "", l)));
}

function buckets(d) {
  const rows = d.buckets.map((b, i) => {
    const tr = el("tr");
    tr.append(el("td", "", String(i)));
    const fill = el("td", "fill");
    const bar = el("span", "bar");
    const inner = el("span");
    inner.style.width = `${(100 * b.contacts.length) / d.bucket_size}%`;
    bar.append(inner);
    fill.append(bar, `${b.contacts.length}/${d.bucket_size}`);
    tr.append(fill);
    const cell = el("td", "contacts");
    for (const c of b.contacts) {
      const chip = el("span", c.failures > 0 ? "contact failing" : "contact", c.addr);
      chip.title = `id ${c.id}\nlast heard ${c.last_seen_s} s ago\nround trip ${c.rtt_ms || "?"} ms\nfailures in a row: ${c.failures}`;
      if (c.failures > 0) chip.append(" ", el("b", "", `×${c.failures}`));
      cell.append(chip);
    }
    if (b.contacts.length === 0) cell.append(el("span", "", "—"));
    tr.append(cell);
    return tr;
  });
  $("buckets").replaceChildren(...rows);
  const contacts = d.buckets.reduce((n, b) => n + b.contacts.length, 0);
  $("contact-count").textContent = `${contacts} ${contacts === 1 ? "contact" : "contacts"}`;
  $("bucket-count").textContent = `${d.buckets.length} ${d.buckets.length === 1 ? "bucket" : "buckets"}`;
  $("bucket-size").textContent = d.bucket_size;
}

function render(d) {
  $("state").textContent = "live";
  $("state").className = "pill live";
  $("node-id").textContent = d.id;
  $("node-addr").textContent = d.address;
  $("node-mode").textContent = `${d.client_mode ? "client" : "server"}, ${d.persistent ? "on disk" : "in memory"}`;
  $("uptime").textContent = duration(d.uptime_s);

  const r = d.records;
  $("record-count").textContent = r.count;
  $("record-bytes").textContent = bytes(r.bytes);
  $("published").textContent = r.published;
  $("replicas").textContent = r.replicas;
  $("cached").textContent = r.cached;
  $("providers").textContent = d.providers;
  const parts = [["published", r.published], ["replica", r.replicas], ["cached", r.cached]].map(([cls, n]) => {
    const s = el("span", cls);
    s.style.width = `${r.count ? (100 * n) / r.count : 0}%`;
    return s;
  });
  $("origins").replaceChildren(...parts);

  const h = d.history;
  const slots = 300;
  for (const [name, values] of [["in", h.rpcs_in], ["out", h.rpcs_out], ["timeouts", h.timeouts]]) {
    line($(`chart-${name}`), values, slots);
    $(`now-${name}`).textContent = values.length ? values[values.length - 1] : 0;
    $(`peak-${name}`).textContent = `peak ${Math.max(0, ...values)}`;
  }
  for (const w of document.querySelectorAll(".window")) w.textContent = duration(slots * h.interval_s);

  $("lookup-count").textContent = d.lookups.count;
  $("lookup-failed").textContent = d.lookups.failed;
  latency(d.lookups);

  $("relay-card").hidden = d.relay === null;
  if (d.relay) {
    $("relay-open").textContent = d.relay.connections;
    $("relay-total").textContent = d.relay.connections_total;
    $("relay-frames").textContent = `${d.relay.frames_to_network} / ${d.relay.frames_to_browser}`;
    $("relay-closed").textContent = `${d.relay.closed_misbehaving} / ${d.relay.closed_idle}`;
    $("relay-refused").textContent = d.relay.refused;
  }
  buckets(d);
}

async function poll() {
  try {
    const res = await fetch("api/dashboard", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render(await res.json());
  } catch (e) {
    $("state").textContent = `unreachable (${e.message})`;
    $("state").className = "pill down";
  }
  setTimeout(poll, 1000);
}

poll();
