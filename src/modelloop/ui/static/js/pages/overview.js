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
  const [model, version] = String(st.champion ?? "").split("@");
  return h("section", { class: "panel loop", dataset: { loop: st.name } },
    h("h2", {}, `Loop ${st.name}`),
    h("div", { class: "grid" },
      kv([["Model", st.model ? link(`#/registry/${encodeURIComponent(st.model)}`, st.model) : null],
        ["Champion", st.champion ? link(`#/registry/${encodeURIComponent(model)}/${version}`, st.champion) : "none yet"],
        ["Trained on", st.trained_on ? link(`#/datasets/${encodeURIComponent(String(st.trained_on).split("@")[0])}`, st.trained_on) : null],
        ["Applied", when(st.applied_at)]]),
      ep ? h("div", { class: "loop-endpoint" }, h("strong", {}, "Endpoint "), link(`#/endpoints/${encodeURIComponent(ep.name)}`, ep.name), " ",
        ep.status ? badge(ep.status) : h("span", { class: "muted" }, ep.waiting),
        table([["Variant", (v) => v.name], ["Model", (v) => v.model], ["Traffic", (v) => h("span", {}, bar(v.traffic / 100), `${v.traffic}%`)]], ep.variants || []),
        ep.last_rollout ? h("p", {}, "Last rollout: ", ep.last_rollout.model, " ", badge(ep.last_rollout.status)) : null) : null),
    h("h3", {}, "Monitors"),
    table([["Monitor", (m) => m.name], ["Kind", (m) => m.kind],
      ["Last verdict", (m) => (m.last_run ? badge(m.last_run.drift || m.last_run.violations ? "violations" : "ok") : h("span", { class: "muted" }, m.waiting ?? "not run yet"))],
      ["Drifted columns", (m) => (m.last_run?.drifted_columns || []).join(", ") || null],
      ["Last run", (m) => when(m.last_run?.at)]], st.monitors || [], { empty: "No monitors." }),
    h("h3", {}, "Alarms"),
    table([["Alarm", (a) => a.name], ["State", (a) => badge(a.state ?? "—")], ["Why", (a) => a.reason], ["Since", (a) => when(a.since)]],
      st.alarms || [], { empty: "No alarms." }),
    h("h3", {}, "Triggers"),
    table([["Trigger", (t) => t.name], ["Cause", (t) => fmt(t.cause)], ["Action", (t) => fmt(t.action)],
      ["Next firing", (t) => (t.paused ? "paused" : when(t.next_firing))], ["Last firing", (t) => (t.last_firing ? badge(t.last_firing.status) : null)]],
    st.triggers || [], { empty: "No triggers." }),
    h("h3", {}, "Runs"),
    table([["Run", (r) => link(`#/runs/${r.id}`, `run-${r.id}`)], ["Started by", (r) => fmt(r.started_by)], ["Status", (r) => badge(r.status)],
      ["Started", (r) => when(r.created_at)], ["Ended", (r) => when(r.ended_at)]], st.runs || [], { empty: "No runs yet." }));
}
