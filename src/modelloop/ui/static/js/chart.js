// Hand-written SVG charts (no library, nothing fetched): lines over time or steps, and bars.
const NS = "http://www.w3.org/2000/svg";
export const COLORS = ["#2f6fde", "#e0782f", "#1f8a4c", "#b83280", "#6b46c1", "#c53030", "#2c7a7b"];

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function ticks(lo, hi, n = 4) {
  if (lo === hi) return [lo];
  const step = (hi - lo) / n;
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
}

const short = (v) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(1) : String(+v.toPrecision(3)));

/**
 * A line chart. ``series``: [{name, points: [[x, y], ...]}]; x numbers, or Dates (``time``).
 * Returns a <figure> with the SVG and a legend; ``data-points`` counts the points drawn.
 */
export function lineChart(series, { title = "", unit = "", time = false, width = 520, height = 180 } = {}) {
  const fig = document.createElement("figure");
  fig.className = "panel chart-box";
  fig.style.margin = "0";
  const all = series.flatMap((s) => s.points);
  fig.dataset.points = String(all.length);
  if (title) {
    const cap = document.createElement("figcaption");
    cap.textContent = unit ? `${title} (${unit})` : title;
    cap.style.fontWeight = "600";
    fig.append(cap);
  }
  if (all.length === 0) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "No data points yet.";
    fig.append(p);
    return fig;
  }
  const xs = all.map(([x]) => +x), ys = all.map(([, y]) => y);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(0, ...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) y1 = y0 + 1;
  const m = { l: 46, r: 28, t: 8, b: 22 };
  const sx = (x) => m.l + ((+x - x0) / (x1 - x0)) * (width - m.l - m.r);
  const sy = (y) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  for (const y of ticks(y0, y1)) {
    svg.append(el("line", { x1: m.l, x2: width - m.r, y1: sy(y), y2: sy(y), class: "axis" }));
    svg.append(el("text", { x: m.l - 4, y: sy(y) + 3, "text-anchor": "end" }, short(y)));
  }
  for (const x of ticks(x0, x1, 3)) {
    const label = time ? new Date(x).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : short(x);
    svg.append(el("text", { x: sx(x), y: height - 6, "text-anchor": "middle" }, label));
  }
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    const color = COLORS[i % COLORS.length];
    svg.append(el("path", { d, class: "line", stroke: color }));
    if (s.points.length < 40) {
      for (const [x, y] of s.points) svg.append(el("circle", { cx: sx(x), cy: sy(y), r: 2.2, fill: color }));
    }
  });
  fig.append(svg);
  if (series.length > 1 || series[0]?.name) {
    const legend = document.createElement("div");
    legend.className = "legend";
    series.forEach((s, i) => {
      const span = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = COLORS[i % COLORS.length];
      span.append(sw, s.name || "");
      legend.append(span);
    });
    fig.append(legend);
  }
  return fig;
}

/** A bar chart of ``[[label, value], ...]`` (histograms, per-feature drift). */
export function barChart(bars, { title = "", width = 520, height = 160 } = {}) {
  const fig = document.createElement("figure");
  fig.className = "panel chart-box";
  fig.style.margin = "0";
  fig.dataset.points = String(bars.length);
  if (title) {
    const cap = document.createElement("figcaption");
    cap.textContent = title;
    cap.style.fontWeight = "600";
    fig.append(cap);
  }
  const max = Math.max(1e-12, ...bars.map(([, v]) => v));
  const m = { l: 8, r: 8, t: 6, b: 22 };
  const w = (width - m.l - m.r) / Math.max(1, bars.length);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  bars.forEach(([label, v], i) => {
    const bh = (v / max) * (height - m.t - m.b);
    const rect = el("rect", { x: m.l + i * w + 1, y: height - m.b - bh, width: Math.max(1, w - 2), height: bh, fill: COLORS[0] });
    rect.append(el("title", {}, `${label}: ${v}`));
    svg.append(rect);
    if (bars.length <= 12) svg.append(el("text", { x: m.l + i * w + w / 2, y: height - 6, "text-anchor": "middle" }, String(label).slice(0, 10)));
  });
  fig.append(svg);
  return fig;
}
