// Datasets: the list; a dataset's versions (rows, added, quarantined, schema changes), a
// version's per-column statistics, and two versions' statistics side by side.
import { get, page, path } from "../api.js";
import { barChart } from "../chart.js";
import { add, fmt, h, link, pager, section, table, when } from "../dom.js";

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
  const latest = (await get("/datasets", { limit: 1000 })).find((d) => d.name === name)?.latest_version;
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
  stats.append(section(`Columns of v${chosen}${previous ? ` (compared with v${base})` : ""}`, table([
    ["Column", (c) => c.column], ["Type", (c) => c.type], ["Missing", (c) => c.missing, { num: true }],
    ["Min", (c) => c.min, { num: true }], ["Mean", (c) => c.mean, { num: true }], ["Max", (c) => c.max, { num: true }],
    ["Distinct", (c) => c.distinct, { num: true }],
    ...(previous ? [[`Mean in v${base}`, (c) => before[c.column]?.mean, { num: true }], ["Mean shift (of range)", (c) => shift(c), { num: true }]] : []),
  ], current, { id: "dataset-stats" })),
  previous ? barChart(current.filter((c) => shift(c) != null).map((c) => [c.column, shift(c)]), { title: `Mean shift per column (share of v${base}'s range)` }) : null);
}
