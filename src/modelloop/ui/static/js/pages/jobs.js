// Jobs: the list with filters and server-side pages; a job's page with its params, metrics,
// metric curves, evaluation plots, logs (followed while it runs), artifacts and lineage.
import { download, get, page, path, post, can } from "../api.js";
import { lineChart } from "../chart.js";
import { add, badge, confirmAction, fmt, h, kv, link, pager, seconds, section, table, when } from "../dom.js";
import { showError, showInfo } from "../main.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["", "train", "tune", "evaluate", "transform", "pipeline", "monitor"];

export async function render(root, [id]) {
  return id ? job(root, id) : list(root);
}

function select(id, values, current) {
  return h("select", { id }, values.map((v) => h("option", { value: v, selected: v === current }, v || "any")));
}

function list(root) {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const kind = select("filter-kind", KINDS, q.get("kind") || "");
  const status = select("filter-status", STATUSES, q.get("status") || "");
  const search = h("input", { id: "filter-search", placeholder: "metrics.accuracy > 0.9", value: q.get("q") || "" });
  const holder = h("div", {});
  const draw = () => {
    const filters = { kind: kind.value || null, status: status.value || null };
    const expression = search.value.trim();
    const load = (limit, offset) => (expression
      ? page("/jobs/search", { ...filters, status: undefined, expression }, limit, offset)
      : page("/jobs", filters, limit, offset));
    holder.replaceChildren(pager(load, jobsTable, { limit: 25 }));
  };
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); draw(); } },
    h("label", {}, "Kind", kind), h("label", {}, "Status", status),
    h("label", {}, "Search", search), h("button", { type: "submit", id: "filter-apply" }, "Apply"));
  kind.addEventListener("change", draw);
  status.addEventListener("change", draw);
  add(root, h("h1", {}, "Jobs"), form, holder);
  draw();
}

function keyMetric(m) {
  if (!m) return null;
  const k = ["accuracy", "roc_auc", "r2", "rmse", "score", "f1"].find((x) => m[x] != null);
  return k ? `${k} ${fmt(m[k])}` : null;
}

export function jobsTable(rows) {
  return table([
    ["Job", (j) => link(`#/jobs/${j.id}`, `#${j.id}`)],
    ["Name", (j) => j.name],
    ["Kind", (j) => j.kind],
    ["Status", (j) => badge(j.status)],
    ["Created", (j) => when(j.created_at)],
    ["Duration", (j) => seconds(j.started_at, j.ended_at)],
    ["Key metric", (j) => keyMetric(j.metrics)],
  ], rows, { id: "jobs", empty: "No jobs match." });
}

const ACTIVE = ["queued", "running"];

async function job(root, id) {
  const j = await get(path("jobs", id));
  const [series, artifacts] = await Promise.all([
    get(path("jobs", id, "metrics")), get(path("jobs", id, "artifacts"), { limit: 200 }),
  ]);
  const logBox = h("pre", { id: "job-logs" }, "…");
  const cancel = can("operator") && ACTIVE.includes(j.status)
    ? h("button", { class: "danger", id: "job-cancel", onclick: async () => {
      if ((await confirmAction(`Cancel job #${j.id}`)) === null) return;
      try { await post(path("jobs", id, "cancel"), {}); showInfo(`Job #${j.id} cancelled`); } catch (e) { showError(e); }
    } }, "Cancel") : null;
  add(root, 
    h("h1", {}, `Job #${j.id} `, badge(j.status), " ", cancel),
    h("div", { class: "grid" },
      h("div", { class: "panel" }, kv([
        ["Name", j.name], ["Kind", j.kind], ["Status", badge(j.status)],
        ["Parent", j.parent_id ? link(`#/jobs/${j.parent_id}`, `#${j.parent_id}`) : null],
        ["Created", when(j.created_at)], ["Started", when(j.started_at)], ["Ended", when(j.ended_at)],
        ["Duration", seconds(j.started_at, j.ended_at)], ["Host", j.host], ["Error", j.error],
      ])),
      h("div", { class: "panel", id: "job-params" }, h("strong", {}, "Params"), kv(j.params || {})),
      h("div", { class: "panel", id: "job-metrics" }, h("strong", {}, "Metrics"), kv(j.metrics || {}))),
    curves(series),
    evaluation(j.info?.evaluation),
    section("Inputs", table([
      ["Kind", (i) => i.kind],
      ["Input", (i) => (i.kind === "dataset" ? link(`#/datasets/${encodeURIComponent(String(i.ref).split("@")[0])}`, i.ref) : fmt(i.ref))],
      ["Rows", (i) => i.rows, { num: true }],
    ], j.inputs || [], { id: "job-inputs", empty: "No inputs recorded." })),
    section("Artifacts", table([
      ["Name", (a) => a.name],
      ["Size", (a) => a.size, { num: true }],
      ["", (a) => h("button", { class: "download", onclick: () => download(path("jobs", id, "artifacts", "download"), { name: a.name },
        `job-${id}-${a.name.replaceAll("/", "_")}.tar`).catch(showError) }, "Download")],
    ], artifacts, { id: "job-artifacts", empty: "No artifacts." })),
    section("Logs", logBox),
    section("Spec", h("pre", {}, JSON.stringify(j.spec, null, 2))));
  let timer = null;
  let stopped = false;
  async function follow() {
    try {
      const text = await get(path("jobs", id, "log-tail"), { lines: 400 });
      logBox.textContent = text || "(no log lines)";
      const now = await get(path("jobs", id));
      if (!stopped && ACTIVE.includes(now.status)) timer = setTimeout(follow, 2000);
    } catch (e) {
      logBox.textContent = `Could not read the logs: ${e.message}`;
    }
  }
  await follow();
  return () => { stopped = true; clearTimeout(timer); };
}

function curves(series) {
  if (!series || series.length === 0) return null;
  const byKey = {};
  for (const p of series) (byKey[p.key] ||= []).push([p.step ?? byKey[p.key]?.length ?? 0, p.value]);
  return section("Metric curves", h("div", { class: "grid", id: "job-curves" },
    Object.entries(byKey).map(([key, points]) => lineChart([{ name: key, points }], { title: key }))));
}

function evaluation(ev) {
  if (!ev) return null;
  const parts = [];
  if (ev.calibration?.confidence) {
    const c = ev.calibration;
    parts.push(lineChart([
      { name: "model", points: c.confidence.map((x, i) => [x, c.observed[i]]) },
      { name: "perfect", points: [[0, 0], [1, 1]] },
    ], { title: "Calibration (observed vs confidence)" }));
  }
  if (ev.confusion_matrix) {
    const labels = ev.labels || ev.confusion_matrix.map((_, i) => i);
    parts.push(h("div", { class: "panel" }, h("strong", {}, "Confusion matrix (rows: actual)"),
      h("table", { id: "confusion" }, h("tr", {}, h("th", {}, ""), labels.map((l) => h("th", {}, String(l)))),
        ev.confusion_matrix.map((row, i) => h("tr", {}, h("th", {}, String(labels[i])), row.map((n) => h("td", { class: "num" }, fmt(n))))))));
  }
  return parts.length ? section("Evaluation", h("div", { class: "grid", id: "job-evaluation" }, parts)) : null;
}
