// The zipper's status page: polls the monitor's JSON once a second and redraws.
// No framework, no CDN; every client-chosen string goes through textContent.
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

function fmtNum(n) {
  if (n === undefined || n === null) return "–";
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + " k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function fmtAge(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

// One table row from a list of [text, className, dataAttributes] cells.
function row(cells, rowClass) {
  const tr = document.createElement("tr");
  if (rowClass) tr.className = rowClass;
  for (const [text, cls, data] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    for (const [k, v] of Object.entries(data || {})) td.dataset[k] = v;
    tr.appendChild(td);
  }
  return tr;
}

function fill(tableId, rows, columns, emptyText) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = columns;
    td.className = "empty";
    td.textContent = emptyText;
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

function renderStats(stats, history) {
  $("name").textContent = stats.name;
  document.title = `YoMo zipper ${stats.name}`;
  const state = $("state");
  state.textContent = stats.state;
  state.className = "state " + stats.state;
  $("meta").textContent = `${stats.version ? "v" + stats.version + " · " : ""}up ${fmtAge(stats.uptime)}`;
  const conns = Object.values(stats.connections).reduce((a, b) => a + b, 0);
  $("card-connections").textContent = fmtNum(conns);
  const last = history.points[history.points.length - 1];
  $("card-in").textContent = last ? fmtNum(last.frames_in) : "–";
  $("card-out").textContent = last ? fmtNum(last.frames_out) : "–";
  $("card-drops").textContent = fmtNum(stats.drops);
  $("card-unobserved").textContent = fmtNum(stats.unobserved);
  $("card-rejections").textContent = fmtNum(stats.rejections);

  const rates = history.tag_rates || {};
  const tags = Object.entries(stats.tags);
  const other = stats.other_tags;
  if (Object.values(other).some((v) => v)) tags.push(["other", other]);
  fill("tags", tags.map(([tag, c]) => {
    const r = rates[tag] || { frames_in: 0, frames_out: 0 };
    return row([
      [tag, "tag"],
      [fmtNum(r.frames_in), "n rate", { tag, rate: String(r.frames_in) }],
      [fmtNum(r.frames_out), "n", {}],
      [fmtNum(c.frames_in), "n"], [fmtNum(c.frames_out), "n"],
      [fmtBytes(c.bytes_in), "n"], [fmtBytes(c.bytes_out), "n"],
      [fmtNum(c.unobserved), "n"], [fmtNum(c.dropped), "n"],
    ]);
  }), 9, "no data frames yet");

  const mesh = Object.entries(stats.mesh || {});
  $("mesh-section").hidden = mesh.length === 0;
  const now = Date.now() / 1000;
  fill("mesh", mesh.map(([peer, l]) => row([
    [peer], [l.address], [l.state, "link-state"], [fmtAge(now - l.since)],
    [fmtNum(l.forwarded), "n"], [fmtNum(l.dropped), "n"],
    [`${fmtNum(l.queued_frames)} (${fmtBytes(l.queued_bytes)})`, "n"], [l.last_error || ""],
  ], l.state === "up" ? "up" : "down")), 8, "no mesh peers");
}

function renderConnections(list) {
  const now = Date.now() / 1000;
  fill("connections", list.map((c) => row([
    [String(c.number), "n"], [c.client_type], [c.name, "name", { name: c.name }], [c.client_id],
    [c.observed_tags.join(", ")], [c.wanted_target], [c.remote_address],
    [fmtAge(now - c.connected_at) + " ago"],
    [fmtNum(c.frames_in), "n"], [fmtNum(c.frames_out), "n"], [fmtNum(c.dropped), "n"],
    [fmtBytes(c.send_backlog), "n"],
  ])), 12, "no connections");
}

function drawChart(history) {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 960, height = canvas.clientHeight || 220;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const pad = { l: 56, r: 12, t: 12, b: 22 };
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  const points = history.points;
  const span = history.window * history.interval;
  $("window").textContent = String(Math.round(span / 60));
  const now = points.length ? points[points.length - 1].t : Date.now() / 1000;
  let max = 1;
  for (const p of points) max = Math.max(max, p.frames_in, p.frames_out, p.drops);
  const x = (t) => pad.l + w - ((now - t) / span) * w;
  const y = (v) => pad.t + h - (v / max) * h;
  ctx.strokeStyle = "#e3e6ee";
  ctx.fillStyle = "#6b7385";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad.l, y(v)); ctx.lineTo(pad.l + w, y(v)); ctx.stroke();
    ctx.fillText(fmtNum(v), 4, y(v) + 4);
  }
  for (let m = 0; m <= span / 60; m++) ctx.fillText(m ? `-${m}m` : "now", x(now - m * 60) - 10, height - 6);
  const line = (key, color) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
    ctx.stroke();
  };
  const css = getComputedStyle(document.documentElement);
  line("frames_in", css.getPropertyValue("--in").trim() || "#2f6fed");
  line("frames_out", css.getPropertyValue("--out").trim() || "#1a9e63");
  line("drops", css.getPropertyValue("--drop").trim() || "#d6453d");
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function poll() {
  try {
    const [stats, connections, history] = await Promise.all([
      getJSON("api/stats"), getJSON("api/connections"), getJSON("api/history"),
    ]);
    renderStats(stats, history);
    renderConnections(connections);
    drawChart(history);
    $("error").hidden = true;
    document.body.dataset.updated = String(Date.now());
  } catch (err) {
    const state = $("state");
    state.textContent = "unreachable";
    state.className = "state unreachable";
    $("error").textContent = String(err.message || err);
    $("error").hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
