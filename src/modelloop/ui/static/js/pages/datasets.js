// Datasets: the list; a dataset's versions (rows, added, quarantined, schema changes), a
// version's per-column statistics, its quarantined rows (with their reasons and the raw rows), and
// two versions side by side: their statistics, and a drift table with each column's histograms.
import { get, page, path } from "../api.js";
import { histogram } from "../chart.js";
import { add, badge, fmt, h, link, pager, section, table, when } from "../dom.js";

export async function render(root, [name, version, against]) {
  return name ? dataset(root, name, version, against) : list(root);
}

function list(root) {
  add(root, h("h1", {}, "Datasets"), pager((limit, offset) => page("/datasets", {}, limit, offset), (rows) => table([
    ["Dataset", (d) => link(`#/datasets/${encodeURIComponent(d.name)}`, d.name)],
    ["Latest", (d) => d.latest_version, { num: true }], ["Rows", (d) => d.row_count, { num: true }],
    ["Quarantined", (d) => d.quarantined_rows, { num: true }], ["Columns", (d) => d.columns, { num: true }],
    ["Updated", (d) => when(d.updated_at)],
  ], rows, { id: "datasets", empty: "No datasets yet." })));
}

async function dataset(root, name, version, against) {
  const stats = h("div", {});
  add(root, h("h1", {}, "Dataset ", h("span", { id: "dataset-name" }, name)),
    section("Versions", pager((limit, offset) => page(path("datasets", name, "versions"), {}, limit, offset), (rows) => table([
      ["Version", (v) => link(`#/datasets/${encodeURIComponent(name)}/${v.version}`, `v${v.version}`)],
      ["Rows", (v) => v.row_count, { num: true }], ["Added", (v) => v.added_rows, { num: true }],
      ["Quarantined", (v) => v.quarantined_rows, { num: true }],
      ["Schema changes", (v) => (v.schema_changes || []).map(fmt).join("; ") || null],
      ["Created", (v) => when(v.created_at)],
    ], rows, { id: "dataset-versions" }))), stats);
  const latest = (await get(path("datasets", name)).catch(() => null))?.version;  // one record, not the list
  const chosen = Number(version || latest);
  if (!chosen) return;
  const sources = h("div", {});
  stats.append(section(`Files of v${chosen}`, sources));
  sources.append(pager((limit, offset) => page(path("datasets", `${name}@${chosen}`, "sources"), {}, limit, offset), (rows) => table([
    ["File", (f) => h("span", { title: f.path }, String(f.path).split("/").pop())], ["Version", (f) => `v${f.version}`],
    ["Format", (f) => f.format], ["Rows", (f) => f.rows, { num: true }],
    ["Quarantined", (f) => (f.quarantined_rows ? h("span", { class: "badge warn" }, fmt(f.quarantined_rows)) : 0), { num: true }],
    ["sha256", (f) => String(f.sha256 || "").slice(0, 12)],
  ], rows, { id: "dataset-sources", empty: "No files recorded." })));
  stats.append(section(`Quarantined rows of v${chosen}`, pager((limit, offset) => page(path("datasets", `${name}@${chosen}`, "quarantined", "rows"), {}, limit, offset), (rows) => table([
    ["File", (q) => h("span", { title: q.source }, String(q.source || "").split("/").pop())], ["Row", (q) => q.row, { num: true }],
    ["Reason", (q) => q.reason], ["Record", (q) => h("span", {}, String(q.record ?? "").slice(0, 300))],
  ], rows, { id: "dataset-quarantine", empty: "No rows quarantined." }), { limit: 20 })));
  const base = Number(against || chosen - 1);
  const current = await get(path("datasets", `${name}@${chosen}`, "stats"));
  const previous = base >= 1 && base !== chosen ? await get(path("datasets", `${name}@${base}`, "stats")) : null;
  const pick = (id, value) => h("select", { id }, Array.from({ length: latest }, (_, i) => latest - i)
    .map((v) => h("option", { value: v, selected: v === value }, `v${v}`)));
  const a = pick("compare-a", chosen), b = pick("compare-b", base);
  stats.append(h("form", { class: "filters", id: "compare-versions", onsubmit: (e) => {
    e.preventDefault();
    location.hash = `#/datasets/${encodeURIComponent(name)}/${a.value}/${b.value}`;
  } }, h("label", {}, "Version", a), h("label", {}, "Compared with", b), h("button", { type: "submit", id: "compare-go" }, "Compare")));
  const before = Object.fromEntries((previous || []).map((c) => [c.column, c]));
  const shift = (c) => {
    const b = before[c.column];
    if (!b || typeof c.mean !== "number" || typeof b.mean !== "number") return null;
    const span = (b.max - b.min) || 1;
    return Math.abs(c.mean - b.mean) / span;
  };
  if (previous) stats.append(await drift(name, chosen, base));
  stats.append(section(`Columns of v${chosen}${previous ? ` (compared with v${base})` : ""}`, table([
    ["Column", (c) => c.column], ["Type", (c) => c.type], ["Missing", (c) => c.missing, { num: true }],
    ["Min", (c) => c.min, { num: true }], ["Mean", (c) => c.mean, { num: true }], ["Max", (c) => c.max, { num: true }],
    ["Distinct", (c) => c.distinct, { num: true }],
    ...(previous ? [[`Mean in v${base}`, (c) => before[c.column]?.mean, { num: true }], ["Mean shift (of range)", (c) => shift(c), { num: true }]] : []),
  ], current, { id: "dataset-stats" })));
}

/** The drift of v``chosen`` from v``base``: each column's statistic, threshold and verdict, with
 * both versions' distributions on shared bins (the API's comparison: nothing is stored). */
async function drift(name, chosen, base) {
  let cmp;
  try {
    cmp = await get(path("datasets", `${name}@${chosen}`, "comparison"), { against: `${name}@${base}` });
  } catch (err) {
    return section(`Drift of v${chosen} from v${base}`, h("p", { class: "muted" }, `Could not compare: ${err.message}`));
  }
  const verdict = cmp.check?.verdict || {};
  const rows = cmp.check?.drift || [];
  const hist = (r) => {
    const x = cmp.histograms?.[r.column];
    return x ? h("div", { class: "hist-cell" }, histogram(x.edges, x.reference, x.current, { width: 180, height: 56, legend: false })) : null;
  };
  return section(`Drift of v${chosen} from v${base}`,
    h("p", {}, verdict.enough_data === false ? "Too few rows to compare distributions." :
      `${(verdict.drifted_columns || []).length} of ${verdict.n_columns ?? rows.length} columns drifted (share ${fmt(verdict.drift_share)}) `,
    rows.length ? h("span", { class: "legend" }, h("span", {}, h("i", { style: "background:#2f6fde" }), `v${base}`), h("span", {}, h("i", { style: "background:#e0782f" }), `v${chosen}`)) : null),
    table([
      ["Column", (r) => r.column], ["Method", (r) => r.method], ["Value", (r) => r.value, { num: true }],
      ["Threshold", (r) => r.threshold, { num: true }], ["p-value", (r) => r.p_adjusted ?? r.p_value, { num: true }],
      ["Drift", (r) => badge(r.drifted ? "drift" : "ok")], ["Distributions", hist],
    ], rows, { id: "dataset-drift", empty: "No column to compare." }));
}
