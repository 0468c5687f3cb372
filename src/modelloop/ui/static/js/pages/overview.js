// The loop overview: per applied loop, the champion, the endpoint's live traffic split, the
// monitors' last verdicts, the alarms' states, the next firings and the last runs; below, the
// workspace's recent events (registrations, approvals, promotions, rollbacks, ingests). Each loop
// has a timeline: its runs with what started each and the gate's verdict, promotions, rollbacks,
// rollouts and alarms, newest first.
import { get, path } from "../api.js";
import { add, badge, bar, fmt, h, kv, link, section, startedBy, table, when } from "../dom.js";

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
  const timelines = await Promise.all(statuses.map((st) => (st.error ? [] : timeline(st, events || []))));
  add(root, h("div", { id: "loops" }, statuses.map((st, i) => loopCard(st, timelines[i]))));
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

/** A loop's story as [{time, kind, node}], newest first: runs (what started each) and their
 * gate verdicts (the evaluate step's output), promotions and rollbacks (the model's alias
 * history), rollouts (the endpoint's) and alarms that fired (the workspace's events). */
async function timeline(st, events) {
  const runs = st.runs || [];
  const ep = st.endpoint?.name;
  const [gates, history, rollouts] = await Promise.all([
    Promise.all(runs.map((r) => get(path("runs", r.id, "steps", "evaluate", "output")).catch(() => null))),
    st.model ? get(path("models", st.model, "history"), { newest_first: true, limit: 50 }).catch(() => []) : [],
    ep ? get(path("endpoints", ep, "rollouts"), { limit: 20 }).catch(() => []) : [],
  ]);
  const items = [];
  const item = (time, kind, ...children) => items.push({ time, kind, node: h("li", { dataset: { kind } }, when(time), " ", h("span", { class: "chip" }, kind), " ", ...children) });
  runs.forEach((r, i) => {
    const cause = startedBy(r.started_by);
    item(r.created_at, "run", link(`#/runs/${r.id}`, `run-${r.id}`), " ", badge(r.status), " ", h("span", { class: "muted" }, `started by ${cause}`));
    const g = gates[i];
    if (g && typeof g === "object" && "passed" in g) {
      const li = h("span", {}, badge(g.passed ? "passed" : "failed"), ` ${g.metric}: candidate ${fmt(g.candidate)} vs champion ${g.champion == null ? "none" : fmt(g.champion)}`,
        (g.reasons || []).length ? h("span", { class: "muted" }, ` (${g.reasons.join("; ")})`) : null);
      item(r.ended_at || r.created_at, "gate", link(`#/runs/${r.id}`, `run-${r.id}`), " ", li);
      items[items.length - 1].node.dataset.verdict = g.passed ? "passed" : "failed";
    }
  });
  for (const e of history) {
    const v = (n) => link(`#/registry/${encodeURIComponent(st.model)}/${n}`, `v${n}`);
    const why = e.reason ? h("span", { class: "muted" }, ` ${e.reason}`) : null;
    if (e.action === "alias_set") item(e.time, "promotion", `${st.model}@${e.alias} → `, v(e.version), e.from_version == null ? "" : ` (was v${e.from_version})`, why);
    else if (e.action === "rolled_back") item(e.time, "rollback", `${st.model}@${e.alias} back to `, v(e.version), e.from_version == null ? "" : ` (from v${e.from_version})`, why);
    else if (e.action === "approved" || e.action === "rejected") item(e.time, e.action, v(e.version), why);
  }
  for (const r of rollouts) {
    const kind = r.status === "rolled_back" ? "rollback" : "rollout";
    item(r.ended_at || r.created_at, kind, `${r.strategy} of ${r.model} on `, link(`#/endpoints/${encodeURIComponent(ep)}`, ep), " ", badge(r.status),
      r.reason ? h("span", { class: "muted" }, ` ${r.reason}`) : null);
  }
  const alarms = new Set((st.alarms || []).map((a) => a.name));
  for (const e of events) {
    if (e.kind === "alarm.triggered" && alarms.has(e.subject)) item(e.time, "alarm", e.subject, h("span", { class: "muted" }, ` ${e.payload?.reason || ""}`));
  }
  const t = (x) => new Date(String(x.time).replace(" ", "T")).getTime() || 0;
  items.sort((a, b) => t(b) - t(a));
  return items.slice(0, 40);
}

function loopCard(st, story = []) {
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
    h("h3", {}, "Timeline"),
    h("ol", { class: "timeline loop-timeline", id: `timeline-${st.name}` }, story.length ? story.map((i) => i.node) : h("li", { class: "muted" }, "Nothing yet.")),
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
    st.triggers || [], { empty: "No triggers.", id: `triggers-${st.name}` }),
    h("h3", {}, "Runs"),
    table([["Run", (r) => link(`#/runs/${r.id}`, `run-${r.id}`)], ["Started by", (r) => startedBy(r.started_by)], ["Status", (r) => badge(r.status)],
      ["Started", (r) => when(r.created_at)], ["Ended", (r) => when(r.ended_at)]], st.runs || [], { empty: "No runs yet.", id: `runs-${st.name}` }));
}
