// ktrace inspect: the page. It asks the server for what it shows; nothing here reads the capture.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const S = {
  info: null,
  t0: 0n,            // first bucket's start, ns (BigInt: ns since the epoch do not fit a double)
  bucketNs: 1000000000n,
  sel: null,         // {first, last} buckets, inclusive; null = the whole capture
  screen: "overview",
  crumbs: [],        // drill-down: [{view, filter, label}]
  viewOffset: 0, viewSort: "", viewOrder: "desc", viewTotal: 0,
  evOffset: 0, ioOffset: 0,
  pageSize: 200,
  seq: 0,
};

// --- server ----------------------------------------------------------------------------------
async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const r = await fetch(`/api/${path}?${q}`, {headers: {"X-Ktrace-Token": TOKEN}});
  const ct = r.headers.get("Content-Type") || "";
  const body = ct.includes("json") ? await r.json() : {error: await r.text()};
  if (!r.ok) { const e = new Error(body.error || r.statusText); e.body = body; throw e; }
  return body;
}

function windowParams() {
  if (!S.sel) return {};
  const from = S.t0 + BigInt(S.sel.first) * S.bucketNs;
  const to = S.t0 + BigInt(S.sel.last + 1) * S.bucketNs;
  return {from: from.toString(), to: to.toString()};
}

function status(text) { $("#status").textContent = text || ""; }

// --- formatting --------------------------------------------------------------------------------
function fmtBytes(v) {
  const units = [[5, "P"], [4, "T"], [3, "G"], [2, "M"], [1, "KB"]];
  for (const [p, u] of units) if (v > 1024 ** p) return (v / 1024 ** p).toFixed(2) + u;
  return Math.trunc(v) + "B";
}
function fmtNum(v) { return Number(v).toLocaleString("en-US"); }
function fmtValue(v, units) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return String(v);
  switch (units) {
    case "bytes": return fmtBytes(v);
    case "bytes/s": return fmtBytes(v) + "/s";
    case "time": return fmtTime(v);
    case "pct": return v.toFixed(2) + "%";
    case "rate": return v.toFixed(2);
    default: return Number.isInteger(v) ? fmtNum(v) : v.toFixed(2);
  }
}
function fmtTime(ns) {
  if (ns >= 1e9) return (ns / 1e9).toFixed(2) + "s";
  if (ns >= 1e6) return (ns / 1e6).toFixed(2) + "ms";
  if (ns >= 1e3) return (ns / 1e3).toFixed(2) + "us";
  return Math.trunc(ns) + "ns";
}
function clock(bucket) {
  const ms = Number(S.t0 / 1000000n) + bucket * Number(S.bucketNs / 1000000n);
  return new Date(ms).toISOString().slice(11, 21);
}
function esc(s) {
  return String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
}
function andFilters(...parts) {
  const ps = parts.filter(p => p && p.trim());
  return ps.length <= 1 ? (ps[0] || "") : ps.map(p => `(${p})`).join(" and ");
}

// --- filter boxes: the error in place, a caret under the spot ------------------------------------
function showFilterError(input, err) {
  const pre = input.parentElement.querySelector(".caret");
  if (!err) { pre.hidden = true; input.classList.remove("bad"); return; }
  input.classList.add("bad");
  const b = err.body || {};
  const text = b.text !== undefined ? b.text : input.value;
  const pos = Math.max(0, Math.min(b.pos || 0, text.length));
  pre.textContent = `${text}\n${" ".repeat(pos)}^ ${b.error || err.message}`;
  pre.hidden = false;
}

// --- timeline ----------------------------------------------------------------------------------
const COLORS = {file: "#2b7bb9", io: "#8e44ad", net: "#16a085", process: "#d35400", memory: "#7f8c8d",
  ipc: "#c0392b", wait: "#bdc3c7", other: "#95a5a6"};
let plot = null;

async function drawTimeline() {
  const box = $("#timeline");
  const width = Math.max(400, box.clientWidth || 900);
  // One point per pixel at most: the server sums `step` buckets a point, whatever the capture's length.
  const tl = await api("timeline", {points: width});
  const n = tl.buckets, step = tl.step;
  const m = tl.categories.length ? tl.counts[tl.categories[0]].length : 0;
  const t0s = Number(S.t0 / 1000000n) / 1000;
  const bs = Number(S.bucketNs) / 1e9, ps = bs * step;
  // Each bar is drawn centred on its x: the middle of the buckets it sums, so it covers their span.
  const xs = Array.from({length: m}, (_, i) => t0s + Math.min(n, i * step + step / 2) * bs);
  const series = [{}];
  const data = [xs];
  for (const c of tl.categories) {
    if (!tl.counts[c].some(v => v)) continue;
    series.push({label: c, stroke: COLORS[c] || "#555", fill: (COLORS[c] || "#555") + "33", width: 1,
      points: {show: false}, paths: uPlot.paths.bars({size: [0.9, 40]})});
    data.push(tl.counts[c]);
  }
  box.textContent = "";
  plot = new uPlot({
    width, height: 150, series,
    scales: {x: {time: true, range: () => [t0s, t0s + Math.max(1, n) * bs]}},
    axes: [{}, {size: 70}],
    cursor: {drag: {x: true, y: false, setScale: false}},
    legend: {show: true},
    hooks: {setSelect: [u => {
      if (u.select.width < 2) return;
      // A brushed range selects the points it covers, as buckets.
      const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
      const first = Math.min(n - 1, Math.max(0, Math.floor((a - t0s) / ps)) * step);
      const last = Math.min(n - 1, Math.max(first, Math.ceil((b - t0s) / ps) * step - 1));
      setSelection({first, last});
    }]},
  }, data, box);
  box.dataset.buckets = n;
  box.dataset.points = m;
}

function setSelection(sel) {
  S.sel = sel;
  const el = $("#selection");
  if (sel) {
    const w = windowParams();
    el.textContent = `${clock(sel.first)} – ${clock(sel.last + 1)} (${((sel.last - sel.first + 1) * Number(S.bucketNs) / 1e9).toFixed(1)} s)`;
    el.dataset.from = w.from; el.dataset.to = w.to;
    el.dataset.first = sel.first; el.dataset.last = sel.last;
  } else {
    el.textContent = "whole capture";
    el.dataset.from = el.dataset.to = el.dataset.first = el.dataset.last = "";
    if (plot) plot.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
  }
  S.viewOffset = S.evOffset = S.ioOffset = 0;
  refresh();
}

// --- overview ----------------------------------------------------------------------------------
const SPARK_W = 120;  // a sparkline's width in pixels: the server sends as many points at most
function sparkline(values) {
  const w = SPARK_W, h = 28, n = values.length;
  if (!n) return "";
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(n === 1 ? w / 2 : i * w / (n - 1)).toFixed(1)},${(h - 2 - v / max * (h - 4)).toFixed(1)}`);
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline points="${pts.join(" ")}"/></svg>`;
}

async function drawOverview() {
  const ov = await api("overview", {...windowParams(), points: SPARK_W});
  const byId = Object.fromEntries(ov.tiles.map(t => [t.id, t]));
  const groups = {};
  for (const t of S.info.tiles) (groups[t.category] = groups[t.category] || []).push(t);
  const box = $("#screen-overview");
  let html = "";
  for (const [cat, tiles] of Object.entries(groups)) {
    // Network apps and Logs tiles show only where the capture has some.
    const shown = tiles.filter(t => !(cat === "Network apps" || cat === "Logs") || hasAny(t));
    if (!shown.length) continue;
    html += `<div class="group"><h2>${esc(cat)}</h2><div class="tiles">`;
    for (const t of shown) {
      const v = byId[t.id] || {total: 0, spark: []};
      const shownVal = t.unit === "bytes" ? fmtBytes(v.total) : fmtNum(v.total);
      html += `<button class="tile" data-tile="${t.id}" data-view="${esc(t.view)}" title="${esc(t.filter)}${t.chisel ? "\nsame as: ktrace -r FILE " + esc(t.chisel) : ""}">
        <span class="title">${esc(t.title)}</span>
        <span class="total" data-value="${v.total}">${shownVal}</span>${sparkline(v.spark)}</button>`;
    }
    html += "</div></div>";
  }
  box.innerHTML = html;
  $$(".tile", box).forEach(el => el.addEventListener("click", () => {
    const t = S.info.tiles.find(x => x.id === el.dataset.tile);
    openView(t.view || "procs", [], t.title);
  }));
}
function hasAny(t) { return (S.wholeTotals || {})[t.id] > 0; }

// --- views (drill-down) ------------------------------------------------------------------------
function viewById(id) { return (S.info.views || []).find(v => v.id === id); }
function currentCrumb() { return S.crumbs[S.crumbs.length - 1]; }
function drillFilter() { return andFilters(...S.crumbs.map(c => c.filter)); }

function openView(id, extraCrumbs, label) {
  if (!viewById(id)) { status(`no view ${id}`); return; }
  S.crumbs = extraCrumbs.length ? extraCrumbs : [{view: id, filter: "", label: label || viewById(id).name}];
  S.viewOffset = 0; S.viewSort = ""; S.viewOrder = "desc";
  show("views");
}

function drawCrumbs() {
  const ol = $("#crumbs");
  ol.innerHTML = S.crumbs.map((c, i) => `<li><a href="#" data-i="${i}">${esc(c.label)}</a></li>`).join("");
  $$("a", ol).forEach(a => a.addEventListener("click", ev => {
    ev.preventDefault();
    S.crumbs = S.crumbs.slice(0, Number(a.dataset.i) + 1);
    S.viewOffset = 0; drawView();
  }));
  $("#back").disabled = S.crumbs.length <= 1;
}

async function drawView() {
  if (!S.crumbs.length) S.crumbs = [{view: "procs", filter: "", label: "Processes"}];
  const crumb = currentCrumb();
  const spec = viewById(crumb.view);
  $("#view-select").value = crumb.view;
  $("#view-desc").textContent = spec ? spec.description : "";
  drawCrumbs();
  const input = $("#view-filter");
  const seq = ++S.seq;
  let res;
  try {
    res = await api("view", {id: crumb.view, filter: andFilters(drillFilter(), input.value), sort: S.viewSort,
      order: S.viewOrder, offset: S.viewOffset, limit: S.pageSize, pc: $("#view-pc").checked ? "1" : "", ...windowParams()});
    showFilterError(input, null);
  } catch (e) { if (e.body && e.body.pos !== undefined) showFilterError(input, e); else status(e.message); return; }
  if (seq !== S.seq) return;
  S.viewTotal = res.total;
  const table = $("#view-table");
  table.dataset.view = res.id;
  const cols = res.columns;
  $("thead", table).innerHTML = "<tr>" + cols.map((c, i) =>
    `<th data-i="${i}" class="${res.sort === c.header ? "sorted " + res.order : ""}" title="${esc(c.desc || c.field || "")}">${esc(c.header)}</th>`).join("")
    + "<th></th></tr>";
  $$("th[data-i]", table).forEach(th => th.addEventListener("click", () => {
    const h = cols[Number(th.dataset.i)].header;
    if (S.viewSort === h || (!S.viewSort && res.sort === h)) S.viewOrder = (res.order === "desc" ? "asc" : "desc");
    else { S.viewSort = h; S.viewOrder = "desc"; }
    S.viewSort = h; S.viewOffset = 0; drawView();
  }));
  const body = $("tbody", table);
  body.innerHTML = res.rows.map((r, i) => `<tr tabindex="0" data-i="${i}" data-key="${esc(r.key)}">` +
    r.cells.map((v, j) => `<td class="${typeof v === "number" ? "num" : ""}" data-value="${esc(v)}">${esc(fmtValue(v, cols[j].units))}</td>`).join("") +
    `<td class="acts"><button data-act="io" type="button">I/O</button><button data-act="events" type="button">Syscalls</button></td></tr>`).join("");
  const drillTo = res.drilldown;
  $$("tr", body).forEach(tr => {
    const row = res.rows[Number(tr.dataset.i)];
    const rowFilter = row.drill;
    const label = `${row.key}`;
    const drill = () => {
      if (!drillTo || !rowFilter) { status(`${spec ? spec.name : crumb.view}: no drill-down`); return; }
      S.crumbs.push({view: drillTo, filter: rowFilter, label});
      S.viewOffset = 0; S.viewSort = ""; drawView();
    };
    tr.addEventListener("dblclick", drill);
    tr.addEventListener("keydown", ev => { if (ev.key === "Enter") drill(); });
    $("[data-act=io]", tr).addEventListener("click", () => {
      $("#io-filter").value = andFilters(drillFilter(), $("#view-filter").value, rowFilter); S.ioOffset = 0; show("io");
    });
    $("[data-act=events]", tr).addEventListener("click", () => {
      $("#events-filter").value = andFilters(drillFilter(), $("#view-filter").value, rowFilter); S.evOffset = 0; show("events");
    });
  });
  pager("#screen-views", S.viewOffset, res.rows.length, res.total);
}

function pager(screen, offset, n, total) {
  const box = $(`${screen} .pager`);
  $(".count", box).textContent = n ? `${fmtNum(offset + 1)}–${fmtNum(offset + n)}${total !== undefined ? " of " + fmtNum(total) : ""}` : "no rows";
  $(".count", box).dataset.total = total === undefined ? "" : total;
  $(".prev", box).disabled = offset <= 0;
  $(".next", box).disabled = total !== undefined ? offset + n >= total : !S.more;
}

// --- syscalls ------------------------------------------------------------------------------------
async function drawEvents() {
  const input = $("#events-filter");
  let res;
  try { res = await api("events", {filter: input.value, offset: S.evOffset, limit: S.pageSize, ...windowParams()}); showFilterError(input, null); }
  catch (e) { if (e.body && e.body.pos !== undefined) showFilterError(input, e); else status(e.message); return; }
  $("#events-lines").textContent = res.lines.join("\n");
  S.more = res.more;
  pager("#screen-events", S.evOffset, res.lines.length, undefined);
}

// --- I/O streams -------------------------------------------------------------------------------
function b64bytes(s) { const bin = atob(s); const a = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i); return a; }
function render(bytes, mode) {
  if (mode === "hex") {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const chunk = bytes.slice(i, i + 16);
      const hex = Array.from(chunk, b => b.toString(16).padStart(2, "0")).join(" ");
      const txt = Array.from(chunk, b => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
      lines.push(`0x${i.toString(16).padStart(4, "0")}  ${hex.padEnd(48)}  ${txt}`);
    }
    return lines.join("\n");
  }
  const keepNl = mode === "printable";
  return Array.from(bytes, b => (b >= 32 && b < 127) || (keepNl && (b === 10 || b === 9)) ? String.fromCharCode(b) : (keepNl && b === 13 ? "" : ".")).join("");
}

async function drawIO() {
  const input = $("#io-filter");
  let res;
  try { res = await api("io", {filter: input.value, offset: S.ioOffset, limit: S.pageSize, ...windowParams()}); showFilterError(input, null); }
  catch (e) { if (e.body && e.body.pos !== undefined) showFilterError(input, e); else status(e.message); return; }
  const mode = $("#io-mode").value;
  $("#io-chunks").innerHTML = res.chunks.map(c => {
    const dir = c.read ? `Read ${fmtBytes(c.bytes)} from` : `Write ${fmtBytes(c.bytes)} to`;
    return `<div class="chunk ${c.read ? "read" : "write"}"><div class="head">------ ${dir} ${esc(c.fd)} (${esc(c.proc)} ${c.pid}${c.container !== "host" ? ", " + esc(c.container) : ""})</div>` +
      `<pre class="data" data-b64="${c.data}">${esc(render(b64bytes(c.data), mode))}</pre></div>`;
  }).join("") || "<p class=hint>no I/O in this selection</p>";
  S.more = res.more;
  pager("#screen-io", S.ioOffset, res.chunks.length, undefined);
}

// --- spy users ----------------------------------------------------------------------------------
async function drawSpy() {
  const input = $("#spy-filter");
  try {
    const res = await api("spy_users", {filter: input.value, ...windowParams()});
    showFilterError(input, null);
    $("#spy-lines").textContent = res.lines.length ? res.lines.join("\n") : "no interactive commands in this selection";
  } catch (e) { if (e.body && e.body.pos !== undefined) showFilterError(input, e); else status(e.message); }
}

// --- connection graph ---------------------------------------------------------------------------
async function drawGraph() {
  const input = $("#graph-filter");
  let g;
  try { g = await api("graph", {by: $("#graph-by").value, filter: input.value, ...windowParams()}); showFilterError(input, null); }
  catch (e) { if (e.body && e.body.pos !== undefined) showFilterError(input, e); else status(e.message); return; }
  const svg = d3.select("#graph");
  svg.selectAll("*").remove();
  const el = $("#graph");
  const W = el.clientWidth || 900, H = 520;
  svg.attr("viewBox", `0 0 ${W} ${H}`);
  if (!g.nodes.length) { svg.append("text").attr("x", 20).attr("y", 30).text("no network I/O in this selection"); return; }
  svg.append("defs").append("marker").attr("id", "arrow").attr("viewBox", "0 -5 10 10").attr("refX", 24).attr("markerUnits", "userSpaceOnUse").attr("markerWidth", 12)
    .attr("markerHeight", 12).attr("orient", "auto").append("path").attr("d", "M0,-5L10,0L0,5").attr("fill", "#888");
  const nodes = g.nodes.map(d => ({...d})), links = g.edges.map(d => ({...d}));
  const maxB = Math.max(1, ...links.map(l => l.bytes));
  const sim = d3.forceSimulation(nodes).force("link", d3.forceLink(links).id(d => d.id).distance(160))
    .force("charge", d3.forceManyBody().strength(-500)).force("center", d3.forceCenter(W / 2, H / 2)).stop();
  for (let i = 0; i < 300; i++) sim.tick();
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  nodes.forEach(n => { n.x = clamp(n.x, 60, W - 60); n.y = clamp(n.y, 30, H - 30); });
  const link = svg.append("g").selectAll("g").data(links).join("g").attr("class", "edge");
  link.append("line").attr("x1", d => d.source.x).attr("y1", d => d.source.y).attr("x2", d => d.target.x).attr("y2", d => d.target.y)
    .attr("stroke-width", d => 1 + 5 * d.bytes / maxB).attr("marker-end", "url(#arrow)");
  link.append("text").attr("x", d => (d.source.x + d.target.x) / 2).attr("y", d => (d.source.y + d.target.y) / 2 - 4)
    .attr("data-bytes", d => d.bytes).text(d => fmtBytes(d.bytes));
  const node = svg.append("g").selectAll("g").data(nodes).join("g").attr("class", d => "node " + d.kind)
    .attr("data-id", d => d.id).attr("transform", d => `translate(${d.x},${d.y})`);
  node.append("circle").attr("r", d => d.kind === "endpoint" ? 9 : 14);
  node.append("text").attr("dy", 28).attr("text-anchor", "middle").text(d => d.label);
}

// --- screens -----------------------------------------------------------------------------------
const DRAW = {overview: drawOverview, views: drawView, events: drawEvents, io: drawIO, spy: drawSpy, graph: drawGraph};

function show(screen) {
  S.screen = screen;
  $$("#tabs button").forEach(b => b.classList.toggle("on", b.dataset.screen === screen));
  $$(".screen").forEach(s => { s.hidden = s.id !== `screen-${screen}`; });
  refresh();
}

async function refresh() {
  const screen = S.screen;
  const box = $(`#screen-${screen}`);
  box.classList.add("loading"); status("loading…");
  try { await DRAW[screen](); status(""); }
  catch (e) { status(e.message); }
  finally { box.classList.remove("loading"); box.dataset.ready = String(++S.ready || (S.ready = 1)); }
}

function wire() {
  $$("#tabs button").forEach(b => b.addEventListener("click", () => show(b.dataset.screen)));
  $("#reset").addEventListener("click", () => setSelection(null));
  $("#back").addEventListener("click", () => { if (S.crumbs.length > 1) { S.crumbs.pop(); S.viewOffset = 0; drawView(); } });
  document.addEventListener("keydown", ev => {
    if (ev.key === "Backspace" && S.screen === "views" && !(ev.target instanceof HTMLInputElement)) { ev.preventDefault(); $("#back").click(); }
  });
  $("#view-select").addEventListener("change", ev => {
    const c = currentCrumb();
    S.crumbs[S.crumbs.length - 1] = {...c, view: ev.target.value, label: S.crumbs.length > 1 ? c.label : viewById(ev.target.value).name};
    S.viewOffset = 0; S.viewSort = ""; drawView();
  });
  $("#view-pc").addEventListener("change", () => drawView());
  const enter = (sel, fn) => $(sel).addEventListener("keydown", ev => { if (ev.key === "Enter") fn(); });
  enter("#view-filter", () => { S.viewOffset = 0; drawView(); });
  enter("#events-filter", () => { S.evOffset = 0; drawEvents(); });
  enter("#io-filter", () => { S.ioOffset = 0; drawIO(); });
  enter("#spy-filter", drawSpy);
  enter("#graph-filter", drawGraph);
  $("#io-mode").addEventListener("change", () => {
    const mode = $("#io-mode").value;
    $$("#io-chunks pre.data").forEach(p => { p.textContent = render(b64bytes(p.dataset.b64), mode); });
  });
  $("#graph-by").addEventListener("change", drawGraph);
  const pg = (screen, key, dir, draw) => $(`${screen} .${dir}`).addEventListener("click", () => {
    S[key] = Math.max(0, S[key] + (dir === "next" ? S.pageSize : -S.pageSize)); draw();
  });
  pg("#screen-views", "viewOffset", "next", drawView); pg("#screen-views", "viewOffset", "prev", drawView);
  pg("#screen-events", "evOffset", "next", drawEvents); pg("#screen-events", "evOffset", "prev", drawEvents);
  pg("#screen-io", "ioOffset", "next", drawIO); pg("#screen-io", "ioOffset", "prev", drawIO);
}

async function main() {
  wire();
  S.info = await api("info");
  S.t0 = BigInt(S.info.t0);
  S.bucketNs = BigInt(S.info.bucket_ns);
  $("#files").textContent = S.info.files.join(", ");
  $("#span").textContent = `${fmtNum(S.info.events)} events`;
  if (S.info.notes.length) { const n = $("#notes"); n.hidden = false; n.textContent = S.info.notes.join("\n"); }
  $("#view-select").innerHTML = (S.info.views || []).map(v => `<option value="${esc(v.id)}">${esc(v.name)}</option>`).join("");
  const whole = await api("overview", {points: 1});
  S.wholeTotals = Object.fromEntries(whole.tiles.map(t => [t.id, t.total]));
  await drawTimeline();
  await refresh();
  document.body.dataset.ready = "1";
}

main().catch(e => { status(e.message); document.body.dataset.error = e.message; });
