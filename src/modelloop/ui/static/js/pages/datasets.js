// Datasets: the list; a dataset's versions (rows, added, quarantined, schema changes), a
// version's per-column statistics, and two versions' statistics side by side.
import { get, page, path } from "../api.js";
import { barChart } from "../chart.js";
import { add, fmt, h, link, pager, section, table, when } from "../dom.js";

export async function render(root, [name, version]) {
  return name ? dataset(root, name, version) : list(root);
}

function list(root) {
  add(root, h("h1", {}, "Datasets"), pager((limit, offset) => page("/datasets", {}, limit, offset), (rows) => table([
    ["Dataset", (d) => link(`#/datasets/${encodeURIComponent(d.name)}`, d.name)],
    ["Latest", (d) => d.latest_version, { num: true }], ["Rows", (d) => d.row_count, { num: true }],
    ["Quarantined", (d) => d.quarantined_rows, { num: true }], ["Columns", (d) => d.columns, { num: true }],
    ["Updated", (d) => when(d.updated_at)],
  ], rows, { id: "datasets", empty: "No datasets yet." })));
}

async function dataset(root, name, version) {
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
  const current = await get(path("datasets", `${name}@${chosen}`, "stats"));
  const previous = chosen > 1 ? await get(path("datasets", `${name}@${chosen - 1}`, "stats")).catch(() => null) : null;
  const before = Object.fromEntries((previous || []).map((c) => [c.column, c]));
  const shift = (c) => {
    const b = before[c.column];
    if (!b || typeof c.mean !== "number" || typeof b.mean !== "number") return null;
    const span = (b.max - b.min) || 1;
    return Math.abs(c.mean - b.mean) / span;
  };
  stats.append(section(`Columns of v${chosen}${previous ? ` (compared with v${chosen - 1})` : ""}`, table([
    ["Column", (c) => c.column], ["Type", (c) => c.type], ["Missing", (c) => c.missing, { num: true }],
    ["Min", (c) => c.min, { num: true }], ["Mean", (c) => c.mean, { num: true }], ["Max", (c) => c.max, { num: true }],
    ["Distinct", (c) => c.distinct, { num: true }],
    ...(previous ? [["Mean before", (c) => before[c.column]?.mean, { num: true }], ["Mean shift (of range)", (c) => shift(c), { num: true }]] : []),
  ], current, { id: "dataset-stats" })),
  previous ? barChart(current.filter((c) => shift(c) != null).map((c) => [c.column, shift(c)]), { title: "Mean shift per column (share of the previous range)" }) : null);
}
