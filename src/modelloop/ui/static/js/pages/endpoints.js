// Endpoints: the list; an endpoint's variants and weights, live requests/s, latency and error
// charts (from the endpoint.* metric series the servers write), rollouts with their progress,
// and rolling a rollout back (operators).
import { can, get, page, path, post } from "../api.js";
import { lineChart } from "../chart.js";
import { add, badge, bar, confirmAction, fmt, h, kv, link, pager, section, table, when } from "../dom.js";
import { showError, showInfo } from "../main.js";

// Seconds between redraws: 5, or ``?refresh=N`` in the console's URL (a wallboard, a test).
const REFRESH_MS = 1000 * (Number(new URLSearchParams(location.search).get("refresh")) || 5);

export async function render(root, [name]) {
  return name ? endpoint(root, name) : list(root);
}

function variantsText(spec) {
  return h("span", {}, (spec?.variants || []).map((v) => h("span", { class: "chip" }, `${v.name}: ${v.model} (${fmt(v.weight)}%)`)));
}

function list(root) {
  add(root, h("h1", {}, "Endpoints"), pager((limit, offset) => page("/endpoints", {}, limit, offset), (rows) => table([
    ["Endpoint", (e) => link(`#/endpoints/${encodeURIComponent(e.name)}`, e.name)],
    ["Status", (e) => badge(e.status)],
    ["Variants", (e) => variantsText(e.spec)],
    ["Follows", (e) => e.spec?.follow],
    ["Revision", (e) => e.revision, { num: true }],
    ["Updated", (e) => when(e.updated_at)],
  ], rows, { id: "endpoints", empty: "No endpoints yet." })));
}

/** The points of ``metric`` for one variant over the last hour, as [Date, value]. */
async function points(metric, endpoint, variant) {
  const rows = await get(path("metrics", metric), { dimensions: { endpoint, variant }, since: "1h" });
  return (rows || []).map((p) => [new Date(String(p.time).replace(" ", "T")), p.value]);
}

/** Requests per second from invocation counts per interval (the gap to the previous point). */
function perSecond(pts) {
  return pts.slice(1).map(([t, v], i) => [t, v / Math.max(1e-3, (t - pts[i][0]) / 1000)]);
}

async function endpoint(root, name) {
  const charts = h("div", { class: "grid", id: "endpoint-charts" });
  const body = h("div", {});
  add(root, h("h1", {}, "Endpoint ", h("span", { id: "endpoint-name" }, name)), body, section("Traffic (last hour)", charts));
  async function draw() {
    const [record, rollouts, stats] = await Promise.all([
      get(path("endpoints", name)), get(path("endpoints", name, "rollouts"), { limit: 20 }),
      get("/endpoint-stats", { name, limit: 100 }),
    ]);
    const variants = record.spec?.variants || [];
    const total = variants.filter((v) => v.role !== "shadow").reduce((s, v) => s + v.weight, 0) || 1;
    const active = rollouts.find((r) => !r.ended_at);
    body.replaceChildren(
      h("div", { class: "grid" }, h("div", { class: "panel" }, kv([
        ["Status", badge(record.status)], ["Revision", record.revision], ["Follows", record.spec?.follow],
        ["Updated", when(record.updated_at)], ["By", record.updated_by],
        ["Capture", record.spec?.capture?.enabled ? `on (${record.spec.capture.sampling}%)` : "off"],
      ]))),
      section("Variants", table([
        ["Variant", (v) => v.name], ["Model", (v) => modelLink(v.model)], ["Role", (v) => v.role],
        ["Traffic", (v) => h("span", {}, bar(v.role === "shadow" ? 0 : v.weight / total), `${fmt(v.role === "shadow" ? 0 : +(100 * v.weight / total).toFixed(1))}%`)],
      ], variants, { id: "variants" })),
      section("Totals", table([
        ["Variant", (s) => s.variant], ["Requests", (s) => s.invocations, { num: true }],
        ["4xx", (s) => s.errors_4xx, { num: true }], ["5xx", (s) => s.errors_5xx, { num: true }],
        ["p50 ms", (s) => s.model_p50_ms, { num: true }], ["p99 ms", (s) => s.model_p99_ms, { num: true }],
      ], stats, { id: "endpoint-stats", empty: "No requests served yet." })),
      section("Rollouts", h("div", {}, active ? rolloutPanel(name, active, draw) : null,
        can("operator") && !active ? deployForm(name, draw) : null, table([
        ["Rollout", (r) => `#${r.id}`], ["Model", (r) => modelLink(r.model)], ["Strategy", (r) => r.strategy],
        ["Status", (r) => badge(r.status)], ["Step", (r) => progress(r)], ["Started", (r) => when(r.created_at ?? r.started_at)],
        ["Reason", (r) => r.reason],
      ], rollouts, { id: "rollouts", empty: "No rollouts yet." }))));
    await drawCharts(variants);
  }
  async function drawCharts(variants) {
    const names = variants.map((v) => v.name);
    const load = (metric) => Promise.all(names.map(async (v) => ({ name: v, points: await points(metric, name, v) })));
    const [calls, p50, p99, e5] = await Promise.all(["endpoint.invocations", "endpoint.model_latency_p50_ms",
      "endpoint.model_latency_p99_ms", "endpoint.5xx_rate"].map(load));
    charts.replaceChildren(
      withId(lineChart(calls.map((s) => ({ name: s.name, points: perSecond(s.points) })), { title: "Requests per second", time: true }), "chart-rps"),
      withId(lineChart([...p50.map((s) => ({ name: `${s.name} p50`, points: s.points })), ...p99.map((s) => ({ name: `${s.name} p99`, points: s.points }))],
        { title: "Model latency", unit: "ms", time: true }), "chart-latency"),
      withId(lineChart(e5.map((s) => ({ name: s.name, points: s.points.map(([t, v]) => [t, 100 * v]) })), { title: "Error rate (5xx)", unit: "%", time: true }), "chart-errors"));
  }
  await draw();
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try { await draw(); } catch (e) { showError(e); }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  timer = setTimeout(tick, REFRESH_MS);
  return () => { stopped = true; clearTimeout(timer); };
}

function withId(el, id) { el.id = id; return el; }

function modelLink(ref) {
  const [model, version] = String(ref).split("@");
  return /^\d+$/.test(version || "") ? link(`#/registry/${encodeURIComponent(model)}/${version}`, ref) : link(`#/registry/${encodeURIComponent(model)}`, ref);
}

function progress(r) {
  const state = r.state || r;
  const steps = state.steps;
  const at = state.step;
  if (Array.isArray(steps) && at != null) return h("span", {}, bar((at + 1) / steps.length), `${at + 1}/${steps.length}`);
  return at == null ? null : fmt(at);
}

function rolloutPanel(name, r, redraw) {
  return h("div", { class: "panel", id: "active-rollout" }, h("strong", {}, `Rollout #${r.id} of ${r.model}: `), badge(r.status), " ", progress(r),
    h("details", {}, h("summary", {}, "Bake checks"), h("pre", {}, JSON.stringify((r.state || r).checks ?? r.state ?? r, null, 2))),
    can("operator") ? h("button", { class: "danger", id: "rollout-rollback", onclick: async () => {
      const reason = await confirmAction(`Roll back the rollout of ${r.model} on ${name}`);
      if (reason === null) return;
      try { await post(path("endpoints", name, "rollback"), { reason: reason || null }); showInfo("Rolled back"); await redraw(); } catch (e) { showError(e); }
    } }, "Roll back") : null);
}

const STRATEGIES = ["canary", "linear", "blue-green", "all-at-once"];

/** Operators roll a model version out here: the rollout runs on the servers (not waited for). */
function deployForm(name, redraw) {
  const model = h("input", { id: "deploy-model", placeholder: "model@version", required: true });
  const strategy = h("select", { id: "deploy-strategy" }, STRATEGIES.map((s) => h("option", { value: s }, s)));
  return h("form", { class: "filters", id: "deploy", onsubmit: async (e) => {
    e.preventDefault();
    const ref = model.value.trim();
    const reason = await confirmAction(`Deploy ${ref} on ${name} (${strategy.value})`);
    if (reason === null) return;
    try {
      await post(path("endpoints", name, "deploy"), { model: ref, strategy: strategy.value, wait: false, reason: reason || null });
      showInfo(`Rolling ${ref} out on ${name}`);
      await redraw();
    } catch (err) { showError(err); }
  } }, h("label", {}, "Model version", model), h("label", {}, "Strategy", strategy),
  h("button", { type: "submit", class: "primary", id: "deploy-submit" }, "Deploy"));
}
