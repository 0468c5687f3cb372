// Monitoring: monitors, their runs (a run's report in place: verdict, drift per feature with
// histograms against the baseline, violations, the monitor's history), alarms with their states
// and history, and any metric series the workspace records (drawn on demand).
import { get, page, path } from "../api.js";
import { histogram, lineChart } from "../chart.js";
import { add, badge, fmt, h, kv, pager, section, table, when } from "../dom.js";
import { showError } from "../main.js";

const time = (t) => new Date(String(t).replace(" ", "T"));

export async function render(root) {
  const detail = h("div", { id: "monitoring-detail" });
  const show = (f) => (...a) => f(...a, detail).catch(showError);
  add(root, h("h1", {}, "Monitoring"),
    section("Monitors", pager((limit, offset) => page("/monitors", {}, limit, offset), (rows) => table([
      ["Monitor", (m) => m.name], ["Watches", (m) => m.dataset ?? `${m.endpoint}${m.variant ? "/" + m.variant : ""}`],
      ["Baseline", (m) => m.baseline], ["Schedule", (m) => m.schedule ?? (m.after_ingest ? "after each ingest" : null)],
      ["Enabled", (m) => m.enabled],
    ], rows, { id: "monitors", empty: "No monitors." }))),
    section("Recent monitor runs", pager((limit, offset) => page("/monitor-runs", {}, limit, offset), (rows) => table([
      ["Run", (r) => `#${r.id}`], ["Monitor", (r) => r.monitor], ["Data", (r) => r.data], ["Status", (r) => badge(r.status)],
      ["Verdict", (r) => badge(r.summary?.ok === false || r.n_violations ? "violations" : "ok")],
      ["Violations", (r) => r.n_violations, { num: true }], ["Rows", (r) => r.n_rows, { num: true }],
      ["At", (r) => when(r.window_end ?? r.created_at)],
      ["", (r) => h("button", { class: "show-report", onclick: () => show(report)(r.id) }, "Report")],
    ], rows, { id: "monitor-runs", empty: "No runs yet." }), { limit: 15 })),
    section("Alarms", pager((limit, offset) => page("/alarms", {}, limit, offset), (rows) => table([
      ["Alarm", (a) => a.name], ["State", (a) => badge(a.state)], ["Metric", (a) => a.metric],
      ["Rule", (a) => `${a.statistic} ${a.comparison} ${fmt(a.threshold)}`], ["Why", (a) => a.state_reason],
      ["", (a) => h("button", { class: "alarm-history", onclick: () => show(history)(a.name) }, "History")],
    ], rows, { id: "alarms", empty: "No alarms." }))),
    section("Metric series", pager((limit, offset) => page("/metrics", {}, limit, offset), (rows) => table([
      ["Metric", (s) => s.name], ["Dimensions", (s) => fmt(dimsOf(s))], ["Points", (s) => s.points ?? s.count, { num: true }],
      ["", (s) => h("button", { class: "draw-series", onclick: () => show(drawSeries)(s) }, "Draw")],
    ], rows, { id: "series", empty: "No metric series yet." }))),
    detail);
}

async function report(id, holder) {
  const r = await get(path("monitor-runs", id, "report"));
  const verdict = r.check?.verdict || r.summary || {};
  const drift = r.check?.drift || [];
  const hist = Object.entries(r.histograms || {}).filter(([, v]) => v.reference && v.current);
  const past = r.history || [];
  holder.replaceChildren(section(`Run #${id} of ${r.monitor}: ${r.data}`, h("div", { id: "monitor-report" },
    h("div", { class: "grid" }, h("div", { class: "panel" }, kv([
      ["Baseline", r.baseline], ["Rows", r.n_rows], ["Status", badge(r.status)],
      ["Dataset drift", verdict.dataset_drift], ["Drift share", verdict.drift_share],
      ["Drifted columns", (verdict.drifted_columns || []).join(", ") || "none"], ["Violations", verdict.n_violations],
    ])), past.length > 1 ? lineChart([{ name: "violations", points: past.map((p) => [time(p.time), p.n_violations]) }],
      { title: "Violations per run", time: true }) : null),
    section("Drift per feature", table([
      ["Column", (d) => d.column], ["Role", (d) => d.role], ["Method", (d) => d.method],
      ["Statistic", (d) => d.value, { num: true }], ["Threshold", (d) => d.threshold, { num: true }],
      ["p (adjusted)", (d) => d.p_adjusted, { num: true }], ["Drifted", (d) => badge(d.drifted ? "drift" : "ok")],
    ], drift, { id: "drift-table", empty: "No drift computed." })),
    hist.length ? h("div", { class: "grid", id: "histograms" }, hist.map(([col, v]) => histogram(v.edges, v.reference, v.current, { title: col }))) : null,
    section("Violations", table([
      ["Check", (v) => v.check ?? v.kind ?? v.name], ["Column", (v) => v.column], ["Detail", (v) => v.message ?? fmt(v)],
    ], r.check?.violations || [], { id: "violations", empty: "No violations." })))));
  holder.scrollIntoView();
}

function dimsOf(s) {
  const dims = s.dimensions ?? s.dims ?? null;
  if (typeof dims !== "string") return dims;
  try { return JSON.parse(dims); } catch { return null; }
}

async function drawSeries(s, holder) {
  const dims = dimsOf(s);
  const pts = await get(path("metrics", s.name), { dimensions: dims, since: "7d" });
  holder.replaceChildren(lineChart([{ name: s.name, points: pts.map((p) => [time(p.time), p.value]) }],
    { title: `${s.name} ${dims ? fmt(dims) : ""}`, time: true }));
  holder.firstChild.id = "series-chart";
}

async function history(name, holder) {
  const rows = await get(path("alarms", name, "history"), { limit: 50 });
  holder.replaceChildren(section(`Alarm ${name}: history`, table([
    ["At", (r) => when(r.time)], ["Kind", (r) => r.kind], ["From", (r) => r.old_state],
    ["To", (r) => (r.new_state ? badge(r.new_state) : null)], ["Reason", (r) => r.reason],
  ], rows, { id: "alarm-history", empty: "No history yet." })));
}
