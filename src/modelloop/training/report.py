"""An evaluation report: PNG plots and one self-contained HTML page (images inlined).

Classification: ROC and precision-recall curves, calibration (reliability) and the confusion
matrix; regression: predicted vs actual and residuals. Plots use matplotlib's Agg backend, so
no display is needed.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from modelloop.errors import InvalidInput


def report(
    evaluation, folder, *, title: str = "Evaluation report", extra: dict | None = None
) -> Path:
    """Write ``<name>.png`` files and ``report.html`` into ``folder``; return the HTML's path.

    ``extra`` is shown as a table of facts (model, dataset, job…) above the metrics.
    """
    if evaluation.y_true is None:
        raise InvalidInput(
            "this evaluation has no predictions to plot",
            hint="pass the Evaluation returned by evaluate() in this process",
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = (
        _regression_plots(evaluation)
        if evaluation.task == "regression"
        else (_classification_plots(evaluation))
    )
    images = {}
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        _close(fig)
        data = buffer.getvalue()
        (folder / f"{name}.png").write_bytes(data)
        images[name] = base64.b64encode(data).decode("ascii")
    page = _html(title, evaluation, images, extra or {})
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _close(fig):
    _pyplot().close(fig)


def _classification_plots(ev) -> dict:
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    plt = _pyplot()
    out = {}
    labels = ev.labels
    if ev.proba is not None:
        y = np.asarray(ev.y_true)
        shown = [1] if len(labels) == 2 else range(len(labels))
        fig, ax = plt.subplots(figsize=(5, 4))
        for k in shown:
            hit = y == labels[k]
            if hit.all() or not hit.any():
                continue
            fpr, tpr, _ = roc_curve(hit, ev.proba[:, k])
            ax.plot(fpr, tpr, label=f"{labels[k]}")
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        ax.legend(title="class", fontsize="small")
        out["roc"] = fig

        fig, ax = plt.subplots(figsize=(5, 4))
        for k in shown:
            hit = y == labels[k]
            if not hit.any():
                continue
            precision, recall, _ = precision_recall_curve(hit, ev.proba[:, k])
            ap = average_precision_score(hit, ev.proba[:, k])
            ax.plot(recall, precision, label=f"{labels[k]} (AP {ap:.3f})")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        ax.legend(title="class", fontsize="small")
        out["pr"] = fig

    if ev.calibration:
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
        ax.plot(ev.calibration["confidence"], ev.calibration["observed"], "o-")
        what = "positive class" if len(labels) == 2 else "top-label"
        ax.set(
            xlabel=f"predicted probability ({what})",
            ylabel="observed frequency",
            title="Calibration",
        )
        out["calibration"] = fig

    fig, ax = plt.subplots(figsize=(4.5, 4))
    cm = np.asarray(ev.confusion_matrix)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(v) for v in labels], rotation=45)
    ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix")
    out["confusion"] = fig
    return out


def _regression_plots(ev) -> dict:
    import numpy as np

    plt = _pyplot()
    y, p = np.asarray(ev.y_true, dtype="float64"), np.asarray(ev.y_pred, dtype="float64")
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(y, p, s=6, alpha=0.5)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([low, high], [low, high], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    out = {"predicted": fig}
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(p, y - p, s=6, alpha=0.5)
    ax.axhline(0, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="Residuals")
    out["residuals"] = fig
    return out


def _html(title: str, ev, images: dict, extra: dict) -> str:
    esc = html.escape

    def table(rows) -> str:
        body = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"

    facts = table([*extra.items(), ("task", ev.task), ("rows", ev.n_rows)])
    metrics = table((k, f"{v:.6g}") for k, v in ev.metrics.items())
    plots = "".join(
        f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{data}"></figure>'
        for name, data in images.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.25rem 0.75rem; text-align: left; }}
th {{ background: #f5f5f5; font-weight: 600; }}
figure {{ display: inline-block; margin: 0 1rem 1rem 0; }}
</style></head>
<body><h1>{esc(title)}</h1>
{facts}
<h2>Metrics</h2>
{metrics}
<h2>Plots</h2>
{plots}
</body></html>
"""
