// Jobs: the list with filters and server-side pages; a job's page with its params, metrics,
// metric curves, evaluation plots, logs (followed while it runs), artifacts and lineage.
import { call, download, get, page, path, post, can } from "../api.js";
import { lineChart, parallel } from "../chart.js";
import { add, badge, confirmAction, fmt, h, kv, link, pager, seconds, section, table, when } from "../dom.js";
import { showError, showInfo } from "../main.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["", "train", "tune", "evaluate", "transform", "pipeline", "monitor"];

export async function render(root, [id, ids]) {
  if (id === "compare") return compare(root, (ids || "").split(",").filter(Boolean));
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
  const picked = new Set();
  const compareButton = h("button", { type: "button", id: "compare-selected", onclick: () => {
    location.hash = `#/jobs/compare/${[...picked].join(",")}`;
  } }, "Compare selected");
  const draw = () => {
    const filters = { kind: kind.value || null, status: status.value || null };
    const expression = search.value.trim();
    const load = (limit, offset) => (expression
      ? page("/jobs/search", { ...filters, status: undefined, expression }, limit, offset)
      : page("/jobs", filters, limit, offset));
    holder.replaceChildren(pager(load, (rows) => jobsTable(rows, picked), { limit: 25 }));
  };
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); draw(); } },
    h("label", {}, "Kind", kind), h("label", {}, "Status", status),
    h("label", {}, "Search", search), h("button", { type: "submit", id: "filter-apply" }, "Apply"), compareButton);
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

export function jobsTable(rows, picked = null) {
  return table([
    ...(picked ? [["", (j) => h("input", { type: "checkbox", class: "pick", value: j.id, checked: picked.has(j.id),
      onchange: (e) => (e.target.checked ? picked.add(j.id) : picked.delete(j.id)) })]] : []),
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
    await trials(j),
    reportFrame(j),
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

/** A tuning job's trials (its child jobs): a table and their params and score as parallel
 * coordinates. */
async function trials(j) {
  const children = await get("/jobs", { parent_id: j.id, limit: 200 });
  if (!children.length) return null;
  const { axes, rows } = coordinates(children);
  return section(`Trials (${children.length})`, h("div", { id: "job-trials" },
    axes.length ? parallel(axes, rows, { title: "Trials: params and metrics" }) : null,
    h("p", {}, link(`#/jobs/compare/${children.slice(0, 20).map((c) => c.id).join(",")}`, "Compare them side by side")),
    jobsTable(children)));
}

/** Numeric params and metrics of ``jobs`` as parallel-coordinate axes and rows. */
function coordinates(jobs) {
  const numeric = (field) => [...new Set(jobs.flatMap((x) => Object.entries(x[field] || {})
    .filter(([, v]) => typeof v === "number").map(([k]) => k)))];
  const params = numeric("params").filter((k) => k !== "seed");
  const metrics = numeric("metrics").filter((k) => !k.endsWith("_seconds")).slice(0, 4);
  const axes = [...params.map((k) => `param ${k}`), ...metrics];
  const rows = jobs.map((x) => ({ name: `#${x.id}`, values: Object.fromEntries([
    ...params.map((k) => [`param ${k}`, x.params?.[k]]), ...metrics.map((k) => [k, x.metrics?.[k]])]) }));
  return { axes: axes.length > 1 ? axes : [], rows };
}

async function compare(root, ids) {
  add(root, h("h1", {}, "Compare jobs"));
  if (ids.length < 2) {
    add(root, h("p", { class: "muted" }, "Pick two jobs or more in the list (", link("#/jobs", "jobs"), ")."));
    return;
  }
  const [side, jobs] = await Promise.all([get("/jobs/compare", { job_ids: ids }), Promise.all(ids.map((id) => get(path("jobs", id))))]);
  const head = ["", ...side.jobs.map((id) => link(`#/jobs/${id}`, `#${id}`))];
  const best = (values, key) => {
    const nums = values.filter((v) => typeof v === "number");
    if (!nums.length) return null;
    const lower = /loss|error|rmse|mae|brier|ece|seconds/.test(key);
    return lower ? Math.min(...nums) : Math.max(...nums);
  };
  const grid = (title, rows, mark) => section(title, h("table", { id: `compare-${title.toLowerCase()}` },
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, Object.entries(rows).map(([k, values]) => {
      const top = mark ? best(values, k) : null;
      return h("tr", {}, h("th", {}, k), values.map((v) => h("td", { class: "num", style: v === top && values.length > 1 ? "font-weight:700" : null }, fmt(v))));
    }))));
  const { axes, rows } = coordinates(jobs);
  add(root, axes.length ? parallel(axes, rows, { title: "Params and metrics" }) : null,
    grid("Params", side.params, false), grid("Metrics", side.metrics, true));
}

/** The job's HTML report (ROC, PR, calibration and confusion matrix plots) in place: a
 * sandboxed frame (no scripts, images inline), fetched with the token after the page shows
 * (the report is drawn on first request). */
function reportFrame(j) {
  if (!j.outputs?.artifacts?.["report/data.json"]) return null;
  const frame = h("iframe", { id: "job-report", sandbox: "", title: "evaluation report",
    style: "width:100%;height:640px;border:1px solid var(--line);border-radius:8px;background:#fff" });
  call("GET", path("jobs", j.id, "report"), { raw: true })
    .then(({ response }) => response.text())
    .then((html) => { frame.srcdoc = html; frame.dataset.loaded = "1"; })
    .catch(showError);
  return section("Evaluation report", frame);
}
