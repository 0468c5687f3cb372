// The registry: models, a model's versions and aliases (with their history), one version's
// record and lineage. Approve and reject are shown to admins, alias moves and rollbacks to
// operators; every change is confirmed with a reason, and the API checks the role again.
import { can, del, get, page, path, post, put } from "../api.js";
import { add, badge, confirmAction, h, kv, link, pager, section, table, when } from "../dom.js";
import { flowGraph } from "../graph.js";
import { showError, showInfo } from "../main.js";

export async function render(root, [name, version]) {
  if (!name) return models(root);
  if (version) return versionPage(root, name, version);
  return model(root, name);
}

function models(root) {
  add(root, h("h1", {}, "Models"));
  add(root, pager((limit, offset) => page("/models", {}, limit, offset), (rows) => table([
    ["Model", (m) => link(`#/registry/${encodeURIComponent(m.name)}`, m.name)],
    ["Latest version", (m) => m.latest_version, { num: true }],
    ["Aliases", (m) => h("span", {}, Object.entries(m.aliases || {}).map(([a, v]) => h("span", { class: "chip" }, `${a} → v${v}`)))],
    ["Description", (m) => m.description],
    ["Created", (m) => when(m.created_at)],
  ], rows, { id: "models", empty: "No models registered yet." })));
}

const KEY_METRICS = ["accuracy", "roc_auc", "f1", "r2", "rmse", "mae"];

function headline(metrics) {
  const shown = KEY_METRICS.filter((k) => metrics && metrics[k] != null).slice(0, 2);
  return h("span", {}, shown.map((k) => h("span", { class: "chip" }, `${k} ${(+metrics[k]).toFixed(3)}`)));
}

/** Run a confirmed change, then redraw; errors go to the banner. */
async function change(text, act, redraw) {
  const reason = await confirmAction(text);
  if (reason === null) return;
  try {
    await act(reason || null);
    showInfo(`Done: ${text}`);
    await redraw();
  } catch (err) {
    showError(err);
  }
}

async function model(root, name) {
  const body = h("div", {});
  add(root, h("h1", {}, "Model ", h("span", { id: "model-name" }, name)), body);
  async function draw() {
    const aliases = Object.entries(await get(path("models", name, "aliases")));  // this model's only
    const history = pager((limit, offset) => page(path("models", name, "history"), { newest_first: true }, limit, offset), (rows) => table([
      ["Time", (r) => when(r.time)],
      ["Action", (r) => h("span", { class: "action", dataset: { action: r.action } }, r.action)],
      ["Version", (r) => (r.version == null ? null : `v${r.version}`)],
      ["Alias", (r) => r.alias],
      ["From", (r) => (r.from_version == null ? null : `v${r.from_version}`)],
      ["Actor", (r) => r.actor],
      ["Reason", (r) => r.reason],
    ], rows, { id: "history" }), { limit: 50 });
    body.replaceChildren(
      section("Aliases", table([
        ["Alias", ([a]) => h("strong", {}, a)],
        ["Version", ([, v]) => link(`#/registry/${encodeURIComponent(name)}/${v}`, `v${v}`)],
        ["", ([a, v]) => h("div", { class: "actions" },
          can("operator") ? h("button", { class: "rollback", onclick: () => change(`Roll ${name}@${a} back to the version it pointed to before v${v}`,
            (reason) => post(path("models", name, "rollback"), { alias: a, reason }), draw) }, "Roll back") : null,
          can("operator") ? h("button", { class: "danger remove-alias", onclick: () => change(`Remove alias ${a} from ${name}`,
            (reason) => del(path("models", name, "aliases", a), { reason }), draw) }, "Remove") : null)],
      ], aliases, { id: "aliases", empty: "No aliases." })),
      section("Versions", pager((limit, offset) => page(path("models", name, "versions"), {}, limit, offset), (versions) => table([
        ["Version", (v) => link(`#/registry/${encodeURIComponent(name)}/${v.version}`, `v${v.version}`)],
        ["Status", (v) => badge(v.status)],
        ["Metrics", (v) => headline(v.manifest?.metrics)],
        ["Job", (v) => (v.job_id ? link(`#/jobs/${v.job_id}`, `#${v.job_id}`) : null)],
        ["Registered", (v) => when(v.created_at)],
        ["By", (v) => v.created_by],
        ["", (v) => versionActions(name, v, aliases, draw)],
      ], versions, { id: "versions" }), { limit: 25 })),
      section("History", history));
  }
  await draw();
}

function versionActions(name, v, aliases, redraw) {
  const ref = `${name}@${v.version}`;
  const buttons = [];
  if (can("admin") && v.status !== "approved") {
    buttons.push(h("button", { class: "primary approve", dataset: { ref }, onclick: () => change(`Approve ${ref}`,
      (reason) => post(path("models", ref, "approve"), { reason }), redraw) }, "Approve"));
  }
  if (can("admin") && v.status !== "rejected") {
    buttons.push(h("button", { class: "danger reject", dataset: { ref }, onclick: () => change(`Reject ${ref}`,
      (reason) => post(path("models", ref, "reject"), { reason }), redraw) }, "Reject"));
  }
  if (can("operator")) {
    buttons.push(h("button", { class: "set-alias", dataset: { ref }, onclick: async () => {
      const alias = window.prompt(`Point which alias of ${name} at v${v.version}?`, aliases[0]?.[0] || "champion");
      if (!alias) return;
      await change(`Move ${name}@${alias} to v${v.version}`,
        (reason) => put(path("models", name, "aliases", alias), { version_ref: ref, reason }), redraw);
    } }, "Set alias…"));
  }
  return h("div", { class: "actions" }, buttons);
}

async function versionPage(root, name, version) {
  const ref = `${name}@${version}`;
  const [record, lineage, serving] = await Promise.all([
    get(path("models", ref)), get(path("models", ref, "lineage")).catch(() => null),
    get(path("models", ref, "endpoints")).catch(() => []),
  ]);
  add(root, h("h1", {}, link(`#/registry/${encodeURIComponent(name)}`, name), ` v${record.version} `, badge(record.status)),
    h("div", { class: "grid" },
      h("div", { class: "panel" }, kv([
        ["Status", badge(record.status)], ["Decided by", record.status_by], ["Reason", record.status_reason],
        ["Registered", when(record.created_at)], ["By", record.created_by], ["Flavor", record.flavor],
        ["Task", record.task], ["Job", record.job_id ? link(`#/jobs/${record.job_id}`, `#${record.job_id}`) : null],
        ["Package", record.package_hash?.slice(0, 16)],
        ["Deployed on", h("span", { id: "deployed-on" }, serving.map((e) => h("span", { class: "chip" }, link(`#/endpoints/${encodeURIComponent(String(e).split("/")[0])}`, e))))],
      ])),
      h("div", { class: "panel" }, h("strong", {}, "Metrics"), kv(record.manifest?.metrics || {}))),
    section("Lineage", lineageGraph(ref, record, lineage, serving), lineageView(lineage)),
    section("Signature", table([["Column", (c) => c.name], ["Type", (c) => c.type], ["Required", (c) => c.required]],
      record.manifest?.signature?.columns || [])));
}

/** The version's lineage drawn: its data files, the dataset versions they made, the training
 * job that read them, the version, and the endpoints serving it. */
function lineageGraph(ref, record, lineage, serving) {
  const inputs = (lineage?.datasets || lineage?.job?.inputs || []).filter((i) => i.kind === "dataset");
  const files = new Map(), edges = [];
  for (const i of inputs) {
    for (const f of i.sources || []) {
      const id = `file:${f.sha256 || f.path}`;
      files.set(id, { id, kind: "file", label: String(f.path).split("/").pop(), sub: `${f.rows ?? "?"} rows · ${f.format || ""}`, title: f.path });
      edges.push([id, `data:${i.ref}`]);
    }
  }
  const datasets = inputs.map((i) => ({ id: `data:${i.ref}`, kind: "dataset", label: i.ref, sub: `${i.rows ?? "?"} rows`,
    href: `#/datasets/${encodeURIComponent(String(i.ref).split("@")[0])}` }));
  const job = lineage?.job;
  const jobs = job ? [{ id: `job:${job.id}`, kind: "job", label: `job #${job.id}`, sub: job.name, href: `#/jobs/${job.id}` }] : [];
  const version = { id: `version:${ref}`, kind: "version", label: ref, sub: record.status };
  const endpoints = [...new Set(serving.map((e) => String(e).split("/")[0]))].map((name) => ({
    id: `endpoint:${name}`, kind: "endpoint", label: name,
    sub: serving.filter((e) => String(e).split("/")[0] === name).map((e) => String(e).split("/").slice(1).join("/")).join(", "),
    href: `#/endpoints/${encodeURIComponent(name)}` }));
  for (const d of datasets) edges.push([d.id, jobs.length ? jobs[0].id : version.id]);
  if (jobs.length) edges.push([jobs[0].id, version.id]);
  for (const e of endpoints) edges.push([version.id, e.id]);
  return h("div", { class: "panel", style: "overflow-x:auto;margin-bottom:.6rem" }, flowGraph([
    { title: "Data files", nodes: [...files.values()] }, { title: "Dataset versions", nodes: datasets },
    { title: "Training job", nodes: jobs }, { title: "Model version", nodes: [version] },
    { title: "Endpoints", nodes: endpoints },
  ], edges, { id: "lineage-graph" }));
}

function lineageView(lineage) {
  if (!lineage) return h("p", { class: "muted" }, "No lineage recorded.");
  const inputs = lineage.datasets || lineage.job?.inputs || [];
  return h("div", {}, table([
    ["Kind", (i) => i.kind],
    ["Input", (i) => (i.kind === "dataset" ? link(`#/datasets/${encodeURIComponent(String(i.ref).split("@")[0])}`, i.ref) : i.ref)],
    ["Rows", (i) => i.rows, { num: true }],
    ["Source files", (i) => h("span", {}, (i.sources || []).map((f) => h("span", { class: "chip", title: `${f.path} (sha256 ${String(f.sha256).slice(0, 12)}…)` },
      `${String(f.path).split("/").pop()} · ${f.rows ?? "?"} rows`)))],
  ], inputs, { id: "lineage", empty: "No inputs recorded." }),
  h("details", {}, h("summary", {}, "Full lineage record"), h("pre", {}, JSON.stringify(lineage, null, 2))));
}
