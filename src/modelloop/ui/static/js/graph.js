// A left-to-right flow graph in hand-written SVG (no library): nodes in columns, an arrow for
// each edge. The registry draws a version's lineage with it: data files → dataset versions →
// training job → model version → endpoints.
const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const clip = (s, n) => (String(s).length > n ? String(s).slice(0, n - 1) + "…" : String(s));

/**
 * ``columns``: [{title, nodes: [{id, label, sub?, href?, kind, title?}]}]; ``edges``: [[fromId,
 * toId], ...]. Empty columns keep their place (titled "none"), so a version never deployed
 * still shows where endpoints would be. Each node is a ``g.node`` with ``data-kind`` and
 * ``data-id``; the SVG says how many nodes and edges it draws.
 */
export function flowGraph(columns, edges, { id, width: W = 168, height: H = 44 } = {}) {
  const GX = 56, GY = 14, TOP = 26, LEFT = 12;
  const pos = {};
  columns.forEach((col, x) => col.nodes.forEach((n, y) => { pos[n.id] = [LEFT + x * (W + GX), TOP + y * (H + GY)]; }));
  const rows = Math.max(1, ...columns.map((c) => c.nodes.length));
  const width = LEFT * 2 + columns.length * (W + GX) - GX;
  const height = TOP + rows * (H + GY) + 4;
  const drawn = edges.filter(([a, b]) => pos[a] && pos[b]);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart flow", role: "img", id,
    "data-nodes": Object.keys(pos).length, "data-edges": drawn.length, style: `max-width:${width}px` });
  const defs = el("defs");
  const marker = el("marker", { id: `${id || "flow"}-arrow`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa3b5" }));
  defs.append(marker);
  svg.append(defs);
  columns.forEach((col, x) => {
    svg.append(el("text", { x: LEFT + x * (W + GX), y: 14, class: "flow-title" }, col.title));
    if (!col.nodes.length) svg.append(el("text", { x: LEFT + x * (W + GX), y: TOP + H / 2 }, "none"));
  });
  for (const [a, b] of drawn) {
    const [x1, y1] = pos[a], [x2, y2] = pos[b];
    const sx = x1 + W, sy = y1 + H / 2, ex = x2 - 2, ey = y2 + H / 2, mx = (sx + ex) / 2;
    svg.append(el("path", { d: `M${sx},${sy} C${mx},${sy} ${mx},${ey} ${ex},${ey}`, class: "flow-edge",
      fill: "none", stroke: "#9aa3b5", "stroke-width": 1.4, "marker-end": `url(#${id || "flow"}-arrow)` }));
  }
  for (const col of columns) {
    for (const n of col.nodes) {
      const [x, y] = pos[n.id];
      const g = el("g", { class: `node node-${n.kind}`, "data-kind": n.kind, "data-id": n.id });
      g.append(el("title", {}, n.title || n.label));
      g.append(el("rect", { x, y, width: W, height: H, rx: 6, class: "flow-box" }));
      g.append(el("text", { x: x + 8, y: y + 17, class: "flow-label" }, clip(n.label, 24)));
      if (n.sub) g.append(el("text", { x: x + 8, y: y + 33 }, clip(n.sub, 28)));
      if (n.href) {
        const a = el("a", { href: n.href });
        a.append(g);
        svg.append(a);
      } else {
        svg.append(g);
      }
    }
  }
  return svg;
}
