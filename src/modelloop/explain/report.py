"""A bias report as one self-contained HTML page: the groups' sizes, then each stage's metrics
with their descriptions, values farther from fairness marked."""

from __future__ import annotations

import html

from modelloop.explain import metrics as m
from modelloop.explain.bias import BiasReport, jsonable

#: Where each metric is fair: 1 for the ratio DI, 0 for the differences and divergences.
_FAIR = {"DI": 1.0}


def _e(v) -> str:
    return html.escape(str(v))


def _cell(name: str, value) -> str:
    if value is None:
        return "<td>—</td>"
    if isinstance(value, str):
        return f"<td class='far'>{_e(value)}</td>"
    far = abs(value - _FAIR.get(name, 0.0)) > (0.2 if name == "DI" else 0.1)
    return f"<td class='{'far' if far else ''}'>{value:.6g}</td>"


def render_html(report: BiasReport) -> str:
    title = f"Bias report: {report.dataset or 'data'} · facet {report.facet}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:.3em .6em;text-align:left}td.far{background:#fde2e2}"
             ".muted{color:#666}</style></head><body>",
             f"<h1>{_e(title)}</h1>",
             f"<p>label <b>{_e(report.label)}</b> positive when "
             f"<b>{_e(report.label_value_or_threshold)}</b>"
             + (f"; model <b>{_e(report.model)}</b>" if report.model else "")
             + (f"; CDDL/CDDPL conditioned on <b>{_e(report.group)}</b>" if report.group else "")
             + f". {report.rows:,} rows, computed in {report.seconds:.3f} s.</p>",
             "<p class='muted'>Metrics as SageMaker Clarify defines them; the group is the "
             "sensitive facet (d), compared with the rest (a). Marked cells are more than 0.1 "
             "from fairness (DI: more than 0.2 from 1).</p>"]  # fmt: skip
    for stage, names in (("pre_training", m.PRE_TRAINING), ("post_training", m.POST_TRAINING)):
        results = getattr(report, stage)
        if not results:
            continue
        parts.append(f"<h2>{stage.replace('_', '-')} bias</h2><table><tr><th>metric</th>"
                     + "".join(f"<th>{_e(report.facet)} = {_e(g.value_or_threshold)}<br>"
                               f"<span class='muted'>{g.n_group:,} vs {g.n_rest:,}</span></th>"
                               for g in results) + "</tr>")  # fmt: skip
        for name, description in names.items():
            if not any(name in g.values or name in g.errors for g in results):
                continue
            row = f"<tr><td><b>{_e(name)}</b> <span class='muted'>{_e(description)}</span></td>"
            for g in results:
                if name in g.values:
                    row += _cell(name, jsonable(g.values[name]))
                else:
                    row += f"<td class='muted'>{_e(g.errors.get(name, ''))}</td>"
            parts.append(row + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def _png(fig) -> str:
    import base64
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "<img src='data:image/png;base64," + base64.b64encode(buf.getvalue()).decode() + "'>"


def render_attributions_html(expl, *, max_display: int = 15, waterfall_rows: int = 3) -> str:
    """The usual SHAP plots of an :class:`~modelloop.explain.attributions.Explanation`: a bar of
    the global importances, a beeswarm of every row's attributions, and a waterfall per row for
    the first ``waterfall_rows`` rows (shap's own plots, drawn with matplotlib)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    base = np.full(len(expl.values), expl.expected_value)
    shown = shap.Explanation(values=expl.values, base_values=base, data=expl.data.to_numpy(),
                             feature_names=expl.columns)  # fmt: skip
    title = f"SHAP attributions: {expl.cost.get('model', 'model')} on {expl.cost.get('dataset', 'data')}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
             ".muted{color:#666}</style></head><body>", f"<h1>{_e(title)}</h1>",
             f"<p>{_e(expl.method)} SHAP of the model's {_e(expl.output)}; expected value "
             f"{expl.expected_value:.6g}. Cost: "
             + ", ".join(f"{_e(k)} {_e(v)}" for k, v in expl.cost.items()
                         if k not in ("model", "dataset")) + ".</p>",
             "<h2>Global importance (mean |SHAP|)</h2><table><tr><th>column</th><th>mean "
             "|SHAP|</th></tr>"]  # fmt: skip
    parts += [f"<tr><td>{_e(c)}</td><td>{v:.6g}</td></tr>"
              for c, v in expl.global_importance.items()]  # fmt: skip
    parts.append("</table>")
    plt.figure()
    shap.plots.bar(shown, max_display=max_display, show=False)
    parts.append(_png(plt.gcf()))
    if len(expl.values) > 1:
        parts.append("<h2>Every row (beeswarm)</h2>")
        plt.figure()
        shap.plots.beeswarm(shown, max_display=max_display, show=False)
        parts.append(_png(plt.gcf()))
    for i in range(min(waterfall_rows, len(expl.values))):
        parts.append(f"<h2>Row {_e(expl.data.index[i])} (waterfall)</h2>")
        plt.figure()
        shap.plots.waterfall(shown[i], max_display=max_display, show=False)
        parts.append(_png(plt.gcf()))
    parts.append("</body></html>")
    return "".join(parts)
