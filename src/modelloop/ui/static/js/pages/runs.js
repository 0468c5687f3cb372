// Pipeline runs: the list with filters and server-side pages; a run's page drawing its DAG
// (each step's state, cache hits and durations) with the steps' records and logs.
import { get, page, path } from "../api.js";
import { add, badge, fmt, h, kv, link, pager, seconds, section, startedBy, table, when } from "../dom.js";

const STATUSES = ["", "running", "succeeded", "failed", "cancelled", "waiting_approval"];

export async function render(root, [id]) {
  return id ? run(root, id) : list(root);
}

function list(root) {
  const status = h("select", { id: "runs-status" }, STATUSES.map((s) => h("option", { value: s }, s || "any")));
  const pipeline = h("input", { id: "runs-pipeline", placeholder: "pipeline name" });
  const holder = h("div", {});
  const draw = () => holder.replaceChildren(pager((limit, offset) => page("/runs",
    { status: status.value || null, pipeline: pipeline.value.trim() || null }, limit, offset), (rows) => table([
    ["Run", (r) => link(`#/runs/${r.id}`, `run-${r.id}`)], ["Pipeline", (r) => r.pipeline],
    ["Status", (r) => badge(r.status)], ["Started by", (r) => startedBy(r.started_by)],
    ["Created", (r) => when(r.created_at)], ["Duration", (r) => seconds(r.started_at, r.ended_at)],
  ], rows, { id: "runs", empty: "No pipeline runs yet." })));
  status.addEventListener("change", draw);
  add(root, h("h1", {}, "Pipeline runs"), h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); draw(); } },
    h("label", {}, "Status", status), h("label", {}, "Pipeline", pipeline), h("button", { type: "submit" }, "Apply")), holder);
  draw();
}

async function run(root, id) {
  const [r, steps] = await Promise.all([get(path("runs", id)), get(path("runs", id, "steps"))]);
  const byName = Object.fromEntries(steps.map((s) => [s.name, s]));
  add(root, h("h1", {}, `Run ${r.id} of ${r.pipeline} `, badge(r.status)),
    h("div", { class: "grid" }, h("div", { class: "panel" }, kv([
      ["Pipeline", r.pipeline], ["Status", badge(r.status)], ["Executor", r.executor], ["Attempt", r.attempt],
      ["Started by", startedBy(r.started_by)], ["Created", when(r.created_at)], ["Duration", seconds(r.started_at, r.ended_at)],
      ["Error", r.error],
    ])), h("div", { class: "panel" }, h("strong", {}, "Params"), kv(r.params || {}))),
    section("Steps", dag(r.spec?.nodes || [], byName)),
    table([
      ["Step", (s) => s.name], ["Status", (s) => badge(s.status)],
      ["Cache", (s) => (s.info?.cache === "hit" || s.cached_from ? h("span", { class: "chip cache-hit", title: `output of step record ${s.cached_from ?? "?"}` }, "hit") : "—")],
      ["Duration", (s) => (s.duration == null ? null : `${fmt(s.duration)} s`), { num: true }],
      ["Attempts", (s) => s.attempts, { num: true }], ["Error", (s) => s.error ?? s.info?.why],
      ["Log", (s) => (s.log ? h("details", {}, h("summary", {}, "show"), h("pre", {}, s.log)) : null)],
    ], steps, { id: "run-steps" }));
}

const FILL = { succeeded: "#e3f4e9", cached: "#e6eefc", failed: "#fde8e8", running: "#fdf3dc", skipped: "#eef1f6" };

/** The run's DAG as SVG: steps in columns by depth, arrows from each upstream step. */
function dag(nodes, steps) {
  if (!nodes.length) return h("p", { class: "muted" }, "No steps recorded.");
  const depth = {};
  const at = (n) => depth[n.name] ??= 1 + Math.max(-1, ...n.upstream.map((u) => at(nodes.find((m) => m.name === u) || { name: u, upstream: [] })));
  nodes.forEach(at);
  const columns = [];
  for (const n of nodes) (columns[depth[n.name]] ||= []).push(n);
  const W = 150, H = 46, GX = 60, GY = 18;
  const pos = {};
  columns.forEach((col, x) => col.forEach((n, y) => { pos[n.name] = [20 + x * (W + GX), 14 + y * (H + GY)]; }));
  const width = 40 + columns.length * (W + GX) - GX;
  const height = 28 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const NS = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart dag", id: "run-dag", style: `max-width:${width}px` });
  svg.append(el("defs", {}));
  svg.firstChild.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#8a93a6"/></marker>';
  for (const n of nodes) {
    for (const u of n.upstream) {
      if (!pos[u]) continue;
      const [x1, y1] = pos[u], [x2, y2] = pos[n.name];
      svg.append(el("path", { d: `M${x1 + W},${y1 + H / 2} C${x1 + W + GX / 2},${y1 + H / 2} ${x2 - GX / 2},${y2 + H / 2} ${x2},${y2 + H / 2}`,
        fill: "none", stroke: "#8a93a6", "marker-end": "url(#arrow)" }));
    }
  }
  for (const n of nodes) {
    const s = steps[n.name] || {};
    const [x, y] = pos[n.name];
    const g = el("g", { class: "dag-step", "data-step": n.name, "data-status": s.status || "pending" });
    g.append(el("rect", { x, y, width: W, height: H, rx: 7, fill: FILL[s.status] || "#f4f5f8", stroke: "#b9c0cf" }));
    g.append(el("text", { x: x + 10, y: y + 19, style: "font-size:12px;font-weight:600;fill:#1d2330" }, n.name));
    const note = [s.status || "pending", s.info?.cache === "hit" ? "cache hit" : null, s.duration != null ? `${fmt(s.duration)} s` : null].filter(Boolean).join(" · ");
    g.append(el("text", { x: x + 10, y: y + 36, style: "font-size:10px;fill:#4a5366" }, note));
    svg.append(g);
  }
  return h("div", { class: "panel", style: "overflow:auto" }, svg);
}
