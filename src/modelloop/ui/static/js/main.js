// The frame: sign-in, navigation, the hash router and the error banner. Each page module
// exports ``render(main, params)`` returning an optional ``stop()`` (its timers).
import { ApiError, session, signIn, signOut } from "./api.js";
import { h } from "./dom.js";

const PAGES = [
  ["overview", "Overview", () => import("./pages/overview.js")],
  ["registry", "Registry", () => import("./pages/registry.js")],
  ["jobs", "Jobs", () => import("./pages/jobs.js")],
  ["runs", "Runs", () => import("./pages/runs.js")],
  ["endpoints", "Endpoints", () => import("./pages/endpoints.js")],
  ["datasets", "Datasets", () => import("./pages/datasets.js")],
  ["monitoring", "Monitoring", () => import("./pages/monitoring.js")],
];

const main = document.getElementById("main");
const banner = document.getElementById("banner");
let stopPage = null;
let generation = 0;

export function showError(error) {
  banner.className = "";
  banner.hidden = false;
  const hint = error.hint ? ` (${error.hint})` : "";
  banner.textContent = `${error.type ? error.type + ": " : ""}${error.message}${hint}`;
}

export function showInfo(text) {
  banner.className = "info";
  banner.hidden = false;
  banner.textContent = text;
}

function clearBanner() { banner.hidden = true; banner.textContent = ""; }

function frame() {
  const nav = document.getElementById("nav");
  const current = (location.hash.slice(2).split("/")[0]) || "overview";
  nav.replaceChildren(...PAGES.map(([key, label]) =>
    h("a", { href: `#/${key}`, class: key === current ? "active" : null, id: `nav-${key}` }, label)));
  const who = document.getElementById("who");
  who.replaceChildren(
    h("span", { id: "who-name" }, session.name),
    h("span", { class: "badge", id: "who-role", dataset: { role: session.role } }, session.role),
    session.anonymous ? null : h("button", { id: "sign-out", onclick: () => { signOut(); route(); } }, "Sign out"));
}

function signInPage(message) {
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").replaceChildren();
  const input = h("input", { id: "token", type: "password", placeholder: "ml_…", autocomplete: "off" });
  const note = h("p", { class: "muted", id: "signin-error" }, message || "");
  const form = h("form", { class: "panel signin", id: "signin", onsubmit: async (e) => {
    e.preventDefault();
    try {
      if (await signIn(input.value.trim())) { route(); return; }
      note.textContent = "That token is not valid here.";
    } catch (err) {
      note.textContent = err.message;
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "Paste an API token (", h("code", {}, "modelloop token create --role viewer"), "). ",
    "It is kept in this tab only."),
  input, h("button", { class: "primary", type: "submit", id: "signin-submit" }, "Sign in"), note);
  main.replaceChildren(form);
  input.focus();
}

async function route() {
  const mine = ++generation;
  if (stopPage) { stopPage(); stopPage = null; }
  clearBanner();
  if (!session.role && !(await signIn().catch(() => false))) {
    signInPage();
    return;
  }
  frame();
  const [key, ...params] = location.hash.slice(2).split("/").map(decodeURIComponent);
  const page = PAGES.find(([k]) => k === key) || PAGES[0];
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await page[2]();
    if (mine !== generation) return;
    const view = h("div", { id: `page-${page[0]}`, class: "page" });
    main.replaceChildren(view);
    stopPage = (await module.render(view, params.filter((p) => p !== ""))) || null;
    if (mine === generation) view.dataset.ready = "1";
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut();
      signInPage("Your token is no longer valid: sign in again.");
      return;
    }
    showError(err);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (e) => showError(e.reason || new Error("failed")));
route();
