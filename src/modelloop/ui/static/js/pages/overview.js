// The loop overview: per applied loop, the champion, the endpoint's live traffic split, the
// monitors' last verdicts, the alarms' states, the next firings and the last runs; below, the
// workspace's recent events (registrations, approvals, promotions, rollbacks, ingests).
import { get } from "../api.js";
import { add, badge, bar, fmt, h, kv, link, section, table, when } from "../dom.js";

export async function render(root) {
  const [loops, events, schedule] = await Promise.all([
    get("/loops", { limit: 50 }), get("/events", { limit: 40, newest_first: true }).catch(() => []),
    get("/trigger-schedule").catch(() => ({})),
  ]);
  const statuses = await Promise.all(loops.map((l) => get(`/loops/${encodeURIComponent(l.name)}/status`).catch((e) => ({ name: l.name, error: e.message }))));
  add(root, h("h1", {}, "Loops"));
  if (statuses.length === 0) {
    add(root, h("p", { class: "muted", id: "no-loops" }, "No loop applied yet (modelloop loop apply loop.yaml)."));
  }
  add(root, h("div", { id: "loops" }, statuses.map(loopCard)));
  const next = Object.entries(schedule || {}).filter(([, t]) => t);
  add(root, section("Next scheduled firings", table([["Trigger", ([n]) => n], ["At", ([, t]) => when(t)]], next, { id: "next-firings", empty: "Nothing scheduled." })));
  const recent = events || [];
  add(root, section("Recent events", h("ul", { class: "timeline", id: "events" }, recent.length ? recent.map((e) =>
    h("li", {}, when(e.time), " ", h("span", { class: "chip" }, e.kind), " ", subjectLink(e), " ", h("span", { class: "muted" }, reason(e))))
    : h("li", { class: "muted" }, "No events yet."))));
}

function reason(e) {
  const p = e.payload || {};
  return [p.reason, p.actor ? `by ${p.actor}` : null].filter(Boolean).join(" · ");
}

function subjectLink(e) {
  const s = String(e.subject || "");
  if (e.kind.startsWith("model.")) {
    const [m, v] = s.split("@");
    return link(`#/registry/${encodeURIComponent(m)}${/^\d+$/.test(v || "") ? "/" + v : ""}`, s);
  }
  if (e.kind.startsWith("dataset.")) return link(`#/datasets/${encodeURIComponent(s.split("@")[0])}`, s);
  if (e.kind.startsWith("endpoint.")) return link(`#/endpoints/${encodeURIComponent(s)}`, s);
  return s;
}

function loopCard(st) {
  if (st.error) return h("div", { class: "panel" }, h("strong", {}, st.name), " ", h("span", { class: "muted" }, st.error));
  const ep = st.endpoint;
  return h("section", { class: "panel loop", dataset: { loop: st.name } },
    h("h2", {}, `Loop ${st.name}`),
    h("div", { class: "grid" },
      kv([["Model", st.model ? link(`#/registry/${encodeURIComponent(st.model)}`, st.model) : null],
        ["Champion", fmt(st.champion)], ["Trained on", fmt(st.trained_on)], ["Applied", when(st.applied_at)]]),
      ep ? h("div", {}, h("strong", {}, "Endpoint "), link(`#/endpoints/${encodeURIComponent(ep.name)}`, ep.name), " ", ep.status ? badge(ep.status) : h("span", { class: "muted" }, ep.waiting),
        table([["Variant", (v) => v.name], ["Model", (v) => v.model], ["Traffic", (v) => h("span", {}, bar(v.traffic / 100), `${v.traffic}%`)]], ep.variants || []),
        ep.last_rollout ? h("p", {}, "Last rollout: ", ep.last_rollout.model, " ", badge(ep.last_rollout.status)) : null) : null),
    table([["Monitor", (m) => m.name], ["Kind", (m) => m.kind], ["Last verdict", (m) => badge(m.last_status ?? m.status ?? m.waiting ?? "—")], ["Last run", (m) => when(m.last_run_at ?? m.last_run)]], st.monitors || [], { empty: "No monitors." }),
    table([["Alarm", (a) => a.name], ["State", (a) => badge(a.state ?? a.waiting ?? "—")]], st.alarms || [], { empty: "No alarms." }),
    table([["Run", (r) => r.id ?? r.run_id], ["Trigger", (r) => r.trigger ?? r.triggered_by], ["Status", (r) => badge(r.status)], ["Started", (r) => when(r.started_at ?? r.created_at)], ["Verdict", (r) => fmt(r.gate ?? r.verdict ?? null)]], st.runs || [], { empty: "No runs yet." }));
}
