// The control-plane API from the browser: the signed-in token (this tab's sessionStorage) as a
// Bearer header, errors as ApiError carrying the API's JSON error, pages with their total.
const KEY = "modelloop.token";
const BASE = new URL("../api/v1", document.baseURI).pathname;
const RANK = { viewer: 0, operator: 1, admin: 2 };

export const session = { name: null, role: null, anonymous: false };

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.type = err.type || "HTTPError";
    this.hint = err.hint || null;
  }
}

export function token() { return sessionStorage.getItem(KEY); }

export function signOut() {
  sessionStorage.removeItem(KEY);
  session.name = session.role = null;
}

/** Who the token (or, without one, this tab's stored token) is; false when not signed in. */
export async function signIn(candidate) {
  const tok = candidate ?? token();
  const headers = tok ? { Authorization: `Bearer ${tok}` } : {};
  const response = await fetch(new URL("../ui/session", document.baseURI), { headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (candidate == null) { signOut(); return false; }
    throw new ApiError(response.status, body);
  }
  if (!body.role) return false;
  if (candidate) sessionStorage.setItem(KEY, candidate);
  Object.assign(session, { name: body.name, role: body.role, anonymous: body.anonymous });
  return true;
}

/** Whether the signed-in role is at least ``role`` (what to show; the API decides). */
export function can(role) {
  return session.role != null && RANK[session.role] >= RANK[role];
}

/** ``/api/v1`` + path segments, each encoded (``["models", "credit@2", "approve"]``). */
export function path(...segments) {
  return segments.map((s) => "/" + encodeURIComponent(String(s))).join("");
}

function url(p, query) {
  const u = new URL(BASE + p, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v) && v.every((x) => typeof x !== "object")) v.forEach((x) => u.searchParams.append(k, String(x)));
    else u.searchParams.set(k, typeof v === "object" ? JSON.stringify(v) : String(v));
  }
  return u;
}

/** One call: {data, total, response}; ``raw`` returns the Response (files). */
export async function call(method, p, { query, body, raw } = {}) {
  const headers = { Accept: "application/json" };
  const tok = token();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(p, query), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const payload = await response.json().catch(() => ({}));
    throw new ApiError(response.status, payload);
  }
  if (raw) return { response };
  const text = await response.text();
  const total = response.headers.get("X-Total-Count");
  return { data: text ? JSON.parse(text) : null, total: total == null ? null : Number(total), response };
}

export const get = async (p, query) => (await call("GET", p, { query })).data;
export const post = async (p, body) => (await call("POST", p, { body })).data;
export const put = async (p, body) => (await call("PUT", p, { body })).data;
export const del = async (p, query) => (await call("DELETE", p, { query })).data;

/** One page of a ``page`` operation: {items, total (null when unknown), more}. */
export async function page(p, query, limit, offset) {
  const { data, total } = await call("GET", p, { query: { ...query, limit, offset } });
  const more = total != null ? offset + data.length < total : data.length === limit;
  return { items: data, total, more };
}

/** Save what a ``download`` operation answers (a tar) under ``filename``. */
export async function download(p, query, filename) {
  const { response } = await call("GET", p, { query, raw: true });
  const blob = await response.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
