// Small DOM helpers: elements, tables, values, badges, the confirm dialog and a pager.

/** ``h("a", {href: "#/x"}, "text", child)``: an element; attributes starting "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Append ``children`` to ``el``, skipping null (Element.append would write "null"). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

export const link = (href, text) => h("a", { href }, text);

/** A number or value as a person reads it. */
export function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v.toLocaleString("en");
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(4));
  }
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** A time as local "YYYY-MM-DD HH:MM:SS" (the title holds the ISO text). */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(String(iso).replace(" ", "T"));
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, "0");
  const text = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return h("time", { datetime: String(iso), title: String(iso) }, text);
}

/** What started a run (``{trigger, cause, firing}`` from a trigger, or a name) as text. */
export function startedBy(by) {
  if (by && typeof by === "object") return [by.trigger ? `trigger ${by.trigger}` : null, by.cause].filter(Boolean).join(": ") || fmt(by);
  return by ?? null;
}

export function seconds(a, b) {
  if (!a) return "—";
  const end = b ? new Date(String(b).replace(" ", "T")) : new Date();
  const s = (end - new Date(String(a).replace(" ", "T"))) / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
}

const TONES = {
  ok: ["approved", "succeeded", "cached", "in_service", "ok", "completed", "done", "passed", "active", "fired"],
  warn: ["pending", "queued", "running", "baking", "in_progress", "insufficient_data", "paused", "updating"],
  bad: ["rejected", "failed", "alarm", "error", "cancelled", "rolled_back", "violations", "drift"],
};

export function badge(status) {
  const s = String(status ?? "—");
  const tone = Object.keys(TONES).find((t) => TONES[t].includes(s.toLowerCase())) || "";
  return h("span", { class: `badge ${tone}`, dataset: { status: s } }, s);
}

/** A table; ``columns``: [label, (row) => node or value, {num: true}?]. */
export function table(columns, rows, { empty = "Nothing yet.", id } = {}) {
  if (!rows || rows.length === 0) return h("p", { class: "muted", id }, empty);
  const head = h("tr", {}, columns.map(([label, , o]) => h("th", { class: o?.num ? "num" : null }, label)));
  const body = rows.map((row) => h("tr", {}, columns.map(([, get, o]) => {
    const v = get(row);
    return h("td", { class: o?.num ? "num" : null }, v instanceof Node ? v : fmt(v));
  })));
  return h("table", { id }, h("thead", {}, head), h("tbody", {}, body));
}

/** A definition list of ``[label, value]`` pairs (or an object's entries). */
export function kv(pairs) {
  const entries = Array.isArray(pairs) ? pairs : Object.entries(pairs || {});
  if (entries.length === 0) return h("p", { class: "muted" }, "None.");
  return h("dl", { class: "kv" }, entries.map(([k, v]) => [h("dt", {}, k),
    h("dd", {}, v instanceof Node ? v : fmt(v))]));
}

export const section = (title, ...children) => h("section", {}, h("h2", {}, title), ...children);

export function bar(fraction) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h("span", { class: "bar-track" }, h("span", { class: "bar", style: `width:${pct}%;display:block` }));
}

/** Ask before a change: resolves to the reason typed (maybe "") or null when cancelled. */
export function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const reason = document.getElementById("confirm-reason");
  reason.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" ? reason.value : null);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    reason.focus();
  });
}

/** A pager over a page operation: ``load(limit, offset)`` → {items, total, more}; ``draw(items)``. */
export function pager(load, draw, { limit = 25 } = {}) {
  const box = h("div", {});
  let offset = 0;
  async function go() {
    const { items, total, more } = await load(limit, offset);
    if (offset === 0 && items.length === 0) { box.replaceChildren(draw(items)); return; }  // nothing to page
    const last = offset + items.length;
    const info = total != null ? `${items.length ? offset + 1 : 0}–${last} of ${total}` : `${items.length ? offset + 1 : 0}–${last}`;
    box.replaceChildren(draw(items), h("div", { class: "pager" },
      h("button", { disabled: offset === 0, class: "prev", onclick: () => { offset = Math.max(0, offset - limit); go(); } }, "← Previous"),
      h("span", { class: "range" }, info),
      h("button", { disabled: !more, class: "next", onclick: () => { offset += limit; go(); } }, "Next →")));
  }
  box.reload = go;
  go().catch((e) => box.replaceChildren(h("p", { class: "muted" }, `Could not load: ${e.message}`)));
  return box;
}
