// Hand-written SVG charts (no library, nothing fetched): lines over time or steps, and bars.
const NS = "http://www.w3.org/2000/svg";
export const COLORS = ["#2f6fde", "#e0782f", "#1f8a4c", "#b83280", "#6b46c1", "#c53030", "#2c7a7b"];

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A chart's <figure> with its caption; ``data-points`` says how many points it draws. */
function figure(title, points) {
  const fig = document.createElement("figure");
  fig.className = "panel chart-box";
  fig.style.margin = "0";
  fig.dataset.points = String(points);
  if (title) {
    const cap = document.createElement("figcaption");
    cap.textContent = title;
    cap.style.fontWeight = "600";
    fig.append(cap);
  }
  return fig;
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
  const all = series.flatMap((s) => s.points);
  const fig = figure(unit ? `${title} (${unit})` : title, all.length);
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
  const fig = figure(title, bars.length);
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

/**
 * Parallel coordinates: one vertical axis per name in ``axes`` (each scaled to its own range),
 * one polyline per row of ``rows`` ([{name, values: {axis: number}}]); tuning trials, compared jobs.
 */
export function parallel(axes, rows, { title = "", width = 760, height = 240 } = {}) {
  const fig = figure(title, rows.length);
  const m = { l: 30, r: 30, t: 22, b: 26 };
  const x = (i) => m.l + (axes.length === 1 ? 0 : (i / (axes.length - 1)) * (width - m.l - m.r));
  const range = axes.map((a) => {
    const vs = rows.map((r) => r.values[a]).filter((v) => typeof v === "number");
    return [Math.min(...vs), Math.max(...vs)];
  });
  const y = (i, v) => {
    const [lo, hi] = range[i];
    return height - m.b - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (height - m.t - m.b);
  };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  axes.forEach((a, i) => {
    svg.append(el("line", { x1: x(i), x2: x(i), y1: m.t, y2: height - m.b, class: "axis", stroke: "#b9c0cf" }));
    svg.append(el("text", { x: x(i), y: height - 8, "text-anchor": "middle" }, a.slice(0, 18)));
    const [lo, hi] = range[i];
    if (Number.isFinite(hi)) svg.append(el("text", { x: x(i), y: m.t - 6, "text-anchor": "middle" }, short(hi)));
    if (Number.isFinite(lo) && lo !== hi) svg.append(el("text", { x: x(i) + 3, y: height - m.b + 10 }, short(lo)));
  });
  rows.forEach((r, j) => {
    const pts = axes.map((a, i) => (typeof r.values[a] === "number" ? [x(i), y(i, r.values[a])] : null)).filter(Boolean);
    if (pts.length < 1) return;
    const line = el("polyline", { points: pts.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" "), class: "line", stroke: COLORS[j % COLORS.length], "stroke-opacity": 0.8 });
    line.append(el("title", {}, r.name));
    svg.append(line);
  });
  fig.append(svg);
  return fig;
}

/** A histogram of two distributions over the same ``edges`` (reference and current shares). */
export function histogram(edges, reference, current, { title = "", width = 360, height = 140, legend: withLegend = true } = {}) {
  const fig = figure(title, current.length);
  const m = { l: 8, r: 8, t: 6, b: 18 };
  const n = Math.max(reference.length, current.length);
  const max = Math.max(1e-12, ...reference, ...current);
  const w = (width - m.l - m.r) / Math.max(1, n);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  [[reference, COLORS[0], 0], [current, COLORS[1], 0.5]].forEach(([values, color, shift]) => values.forEach((v, i) => {
    const bh = (v / max) * (height - m.t - m.b);
    svg.append(el("rect", { x: m.l + i * w + shift * w, y: height - m.b - bh, width: Math.max(0.5, w / 2 - 0.5), height: bh, fill: color, "fill-opacity": 0.85 }));
  }));
  if (edges?.length) {
    svg.append(el("text", { x: m.l, y: height - 4 }, short(edges[0])));
    svg.append(el("text", { x: width - m.r, y: height - 4, "text-anchor": "end" }, short(edges[edges.length - 1])));
  }
  fig.append(svg);
  if (!withLegend) return fig;
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.innerHTML = `<span><i style="background:${COLORS[0]}"></i>baseline</span><span><i style="background:${COLORS[1]}"></i>current</span>`;
  fig.append(legend);
  return fig;
}
