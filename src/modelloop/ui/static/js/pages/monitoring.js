// Monitoring: monitors with their last runs' verdicts, alarms with their states and history,
// and the metric series the workspace records (drawn on demand).
import { get, page, path } from "../api.js";
import { lineChart } from "../chart.js";
import { add, badge, fmt, h, pager, section, table, when } from "../dom.js";

export async function render(root) {
  const chart = h("div", { id: "series-chart" });
  add(root, h("h1", {}, "Monitoring"),
    section("Monitors", pager((limit, offset) => page("/monitors", {}, limit, offset), (rows) => table([
      ["Monitor", (m) => m.name], ["Kind", (m) => m.kind], ["Baseline", (m) => m.baseline],
      ["Watches", (m) => m.endpoint || m.dataset], ["Schedule", (m) => m.schedule],
    ], rows, { id: "monitors", empty: "No monitors." }))),
    section("Recent monitor runs", pager((limit, offset) => page("/monitor-runs", {}, limit, offset), (rows) => table([
      ["Run", (r) => r.id], ["Monitor", (r) => r.monitor], ["Status", (r) => badge(r.status)],
      ["Violations", (r) => r.violations ?? r.n_violations, { num: true }], ["At", (r) => when(r.created_at ?? r.time)],
    ], rows, { id: "monitor-runs", empty: "No runs yet." }), { limit: 15 })),
    section("Alarms", pager((limit, offset) => page("/alarms", {}, limit, offset), (rows) => table([
      ["Alarm", (a) => a.name], ["State", (a) => badge(a.state)], ["Metric", (a) => a.metric],
      ["Since", (a) => when(a.state_since ?? a.updated_at)],
      ["History", (a) => h("button", { class: "alarm-history", onclick: () => history(a.name, chart) }, "Show")],
    ], rows, { id: "alarms", empty: "No alarms." }))),
    section("Metric series", pager((limit, offset) => page("/metrics", {}, limit, offset), (rows) => table([
      ["Metric", (s) => s.name], ["Dimensions", (s) => fmt(s.dimensions ?? s.dims)], ["Points", (s) => s.points ?? s.count, { num: true }],
      ["", (s) => h("button", { class: "draw-series", onclick: () => drawSeries(s, chart) }, "Draw")],
    ], rows, { id: "series", empty: "No metric series yet." }))),
    chart);
}

async function drawSeries(s, holder) {
  const dims = s.dimensions ?? s.dims ?? null;
  const pts = await get(path("metrics", s.name), { dimensions: dims, since: "7d" });
  holder.replaceChildren(lineChart([{ name: s.name, points: pts.map((p) => [new Date(String(p.time).replace(" ", "T")), p.value]) }],
    { title: `${s.name} ${dims ? fmt(dims) : ""}`, time: true }));
}

async function history(name, holder) {
  const rows = await get(path("alarms", name, "history"), { limit: 50 });
  holder.replaceChildren(section(`Alarm ${name}: history`, table([
    ["At", (r) => when(r.time ?? r.at)], ["From", (r) => r.from_state ?? r.old_state], ["To", (r) => badge(r.to_state ?? r.state)],
    ["Reason", (r) => r.reason],
  ], rows, { id: "alarm-history" })));
}
