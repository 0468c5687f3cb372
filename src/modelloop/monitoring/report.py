"""A monitor run's report as one self-contained HTML page: verdict, violations, drift table,
per-feature histograms (baseline vs current, overlaid), model quality over time.

Charts are small inline SVG written here: the data are a few dozen bars per feature, and inline
SVG keeps the page self-contained and light (no script, no image files, no plotting import).
"""

from __future__ import annotations

import html

from modelloop.common.status import MonitorRunStatus

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;
margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}
.bad{color:#b00020;font-weight:bold}.ok{color:#1b7a1b;font-weight:bold}.hist{display:inline-block;
margin:0 1.5em 1.5em 0;vertical-align:top}.legend span{display:inline-block;width:12px;height:12px;
margin:0 4px 0 12px}"""
REF, CUR = "#4c78a8", "#f58518"


def _e(v) -> str:
    return html.escape(str(v))


def _table(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _fmt(v) -> str:
    return "" if v is None else (f"{v:.4g}" if isinstance(v, float) else _e(v))


def _histogram_svg(name: str, h: dict, w: int = 320, ht: int = 140) -> str:
    ref, cur = h["reference"], h["current"]
    n = len(ref)
    top = max(max(ref, default=0), max(cur, default=0)) or 1.0
    bw = w / max(n, 1)
    bars = []
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        for value, color in ((r, REF), (c, CUR)):
            bh = value / top * (ht - 20)
            bars.append(f'<rect x="{i * bw:.1f}" y="{ht - bh:.1f}" width="{bw:.1f}" '
                        f'height="{bh:.1f}" fill="{color}" fill-opacity="0.55"/>')  # fmt: skip
    if h["kind"] == "numeric":
        lo, hi = h["edges"][0], h["edges"][-1]
        axis = f"{lo:.4g} … {hi:.4g}"
    else:
        axis = ", ".join(map(str, h["categories"][:6])) + ("…" if n > 6 else "")
    return (f'<div class="hist"><b>{_e(name)}</b><br><svg width="{w}" height="{ht}" '
            f'role="img" aria-label="histogram of {_e(name)}">{"".join(bars)}</svg>'
            f"<br><small>{_e(axis)}</small></div>")  # fmt: skip


def _line_svg(points: list[tuple[str, float]], w: int = 480, ht: int = 120) -> str:
    if not points:
        return ""
    vals = [v for _, v in points]
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    step = w / max(len(points) - 1, 1)
    xy = [(i * step, ht - 10 - (v - lo) / span * (ht - 20)) for i, v in enumerate(vals)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{REF}"/>' for x, y in xy)
    return (f'<svg width="{w}" height="{ht}"><polyline points="{path}" fill="none" '
            f'stroke="{REF}" stroke-width="2"/>{dots}</svg><br><small>{lo:.4g} … {hi:.4g}</small>')


def render_html(report: dict) -> str:
    run = report.get("run", {})
    title = f"Monitor {report['monitor']} — run {run.get('id', '')}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]  # fmt: skip
    check = report.get("check") or {}
    verdict = check.get("verdict", {})
    status = report.get("status")
    ok = verdict.get("ok", status != MonitorRunStatus.COMPLETED)
    label = ("INSUFFICIENT_DATA" if status == MonitorRunStatus.INSUFFICIENT_DATA else "OK" if ok else "ISSUES")
    if status == MonitorRunStatus.COMPLETED and not verdict.get("enough_data", True):
        label += " (not enough data: columns checked only)"
    parts.append(_table(["", ""], [
        ["verdict", f"<span class='{'ok' if ok else 'bad'}'>{label}</span>"],
        ["data", _e(report.get("data"))], ["baseline", _e(report.get("baseline"))],
        ["window", _e(f"{report.get('window_start') or '…'} → {report.get('window_end')}")],
        ["rows", _e(report.get("n_rows"))],
        ["drifted columns", _e(", ".join(verdict.get("drifted_columns", [])) or "none")],
        ["dataset drift", _e(verdict.get("dataset_drift"))],
        ["not enough data", _e(", ".join(verdict.get("not_enough_data", [])) or "-")],
    ]))  # fmt: skip
    violations = check.get("violations", [])
    parts.append(f"<h2>Violations ({len(violations)})</h2>")
    if violations:
        parts.append(_table(["feature", "check", "description"], [
            [_e(v["feature_name"]), _e(v["constraint_check_type"]), _e(v["description"])]
            for v in violations]))  # fmt: skip
    drift = check.get("drift", [])
    if drift:
        parts.append("<h2>Drift</h2>")
        parts.append(_table(
            ["column", "method", "value", "threshold", "p (adjusted)", "drift", "psi", "linf"],
            [[_e(r["column"]), _e(r["method"]), _fmt(r["value"]), _fmt(r["threshold"]),
              _fmt(r.get("p_adjusted")),
              f"<span class='{'bad' if r['drifted'] else 'ok'}'>{'yes' if r['drifted'] else 'no'}</span>",
              _fmt(r["statistics"].get("psi")), _fmt(r["statistics"].get("linf"))]
             for r in drift]))  # fmt: skip
    hists = report.get("histograms", {})
    if hists:
        parts.append(f"<h2>Distributions</h2><p class='legend'><span style='background:{REF}'>"
                     f"</span>baseline<span style='background:{CUR}'></span>current</p>")
        parts.extend(_histogram_svg(name, h) for name, h in hists.items())
    quality = report.get("quality")
    if quality and quality.get("n_labelled"):
        parts.append(f"<h2>Model quality ({quality['n_labelled']} labelled predictions)</h2>")
        ref = quality.get("reference", {})
        parts.append(_table(["metric", "now", "at training", "change"], [
            [_e(k), _fmt(v), _fmt(ref.get(k)), _fmt(quality.get("delta", {}).get(k))]
            for k, v in quality["metrics"].items()]))  # fmt: skip
        first = next(iter(quality["metrics"]), None)
        if first and len(quality["windows"]) > 1:
            parts.append(f"<h3>{_e(first)} per window</h3>")
            parts.append(_line_svg([(w["start"], w["metrics"].get(first, 0.0))
                                    for w in quality["windows"]]))  # fmt: skip
        for name, hits in (quality.get("detectors") or {}).items():
            where = ", ".join(h["time"] for h in hits[:5]) or "none"
            parts.append(f"<p>{_e(name)}: {len(hits)} drift point(s) ({_e(where)})</p>")
    history = report.get("history", [])
    if len(history) > 1:
        parts.append("<h2>Over time</h2>")
        parts.append(_table(["run", "time", "rows", "violations", "status"], [
            [_e(h["id"]), _e(h["time"]), _e(h["n_rows"]), _e(h["n_violations"]), _e(h["status"])]
            for h in history]))  # fmt: skip
        parts.append(_line_svg([(str(h["time"]), float(h["n_violations"])) for h in history]))
    parts.append("</body></html>")
    return "\n".join(parts)
