"""An evaluation report: PNG plots and one self-contained HTML page (images inlined).

Classification: ROC and precision-recall curves, calibration (reliability) and the confusion
matrix; regression: predicted vs actual and residuals. Plots use matplotlib's Agg backend, so
no display is needed.

A report is built in two steps so that a job does not pay for it: :func:`report_data` takes from
an evaluation what the plots draw (curve points, the scatter's values, the confusion matrix…) as
JSON, which is cheap and is what a job records (``report/data.json``); :func:`render` draws the
plots and writes the page from that JSON alone, when the report is first asked for
(``modelloop jobs report``, :meth:`modelloop.training.jobs.Jobs.report`). Importing matplotlib
and drawing take seconds, and a retraining loop asks for few reports. Rendering the same data
gives the same report, whenever it is done.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from modelloop.errors import InvalidInput

#: Version of the report data's layout (``report_data``), recorded in it.
DATA_FORMAT = 1
#: The job artifact holding a report's data; the report's files go beside it (``report/…``).
REPORT_DATA = "report/data.json"


def report(
    evaluation, folder, *, title: str = "Evaluation report", extra: dict | None = None
) -> Path:
    """Write ``<name>.png`` files and ``report.html`` into ``folder``; return the HTML's path.

    ``extra`` is shown as a table of facts (model, dataset, job…) above the metrics.
    """
    return render(report_data(evaluation, title=title, extra=extra), folder)


def report_data(evaluation, *, title: str = "Evaluation report", extra: dict | None = None) -> dict:
    """What the report of ``evaluation`` shows, as JSON-able values (no plotting library)."""
    import numpy as np

    from modelloop.common.jsonable import to_jsonable

    if evaluation.y_true is None:
        raise InvalidInput(
            "this evaluation has no predictions to plot",
            hint="pass the Evaluation returned by evaluate() in this process",
        )
    ev = evaluation
    data: dict = {
        "format": DATA_FORMAT, "title": title,
        "extra": {str(k): str(v) for k, v in (extra or {}).items()},
        **ev.to_dict(),
    }  # fmt: skip
    if ev.task == "regression":
        y = np.asarray(ev.y_true, dtype="float64")
        p = np.asarray(ev.y_pred, dtype="float64")
        data["points"] = {"actual": y.tolist(), "predicted": p.tolist()}
    else:
        data["curves"] = _curves(ev) if ev.proba is not None else None
    return to_jsonable(data, nonfinite="keep")


def _curves(ev) -> dict:
    """ROC and precision-recall points of each class shown (the positive one when binary).

    ``drop_intermediate`` (scikit-learn's option for lighter curves) drops the precision-recall
    thresholds that do not change the plotted curve, so large validation sets record fewer
    points."""
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    labels = ev.labels
    y = np.asarray(ev.y_true)
    shown = [1] if len(labels) == 2 else range(len(labels))
    roc, pr = [], []
    for k in shown:
        hit = y == labels[k]
        if not hit.any():
            continue
        precision, recall, _ = precision_recall_curve(hit, ev.proba[:, k], drop_intermediate=True)
        ap = average_precision_score(hit, ev.proba[:, k])
        pr.append({"label": f"{labels[k]}", "recall": recall.tolist(),
                   "precision": precision.tolist(), "ap": float(ap)})  # fmt: skip
        if hit.all():
            continue
        fpr, tpr, _ = roc_curve(hit, ev.proba[:, k])
        roc.append({"label": f"{labels[k]}", "fpr": fpr.tolist(), "tpr": tpr.tolist()})
    return {"roc": roc, "pr": pr}


def render(data: dict, folder) -> Path:
    """Draw the plots of :func:`report_data`'s ``data`` and write the page into ``folder``."""
    if not isinstance(data, dict) or data.get("format") != DATA_FORMAT:
        raise InvalidInput(
            "the report data was written by another version of modelloop",
            hint="evaluate the model again to get its report",
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = (
        _regression_plots(data) if data["task"] == "regression" else _classification_plots(data)
    )
    images = {}
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        _close(fig)
        png = buffer.getvalue()
        (folder / f"{name}.png").write_bytes(png)
        images[name] = base64.b64encode(png).decode("ascii")
    page = _html(data["title"], data, images, data.get("extra") or {})
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


def _classification_plots(data: dict) -> dict:
    import numpy as np

    plt = _pyplot()
    out = {}
    labels = data["labels"]
    curves = data.get("curves")
    if curves is not None:
        fig, ax = plt.subplots(figsize=(5, 4))
        for curve in curves["roc"]:
            ax.plot(curve["fpr"], curve["tpr"], label=curve["label"])
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        ax.legend(title="class", fontsize="small")
        out["roc"] = fig

        fig, ax = plt.subplots(figsize=(5, 4))
        for curve in curves["pr"]:
            ax.plot(curve["recall"], curve["precision"],
                    label=f"{curve['label']} (AP {curve['ap']:.3f})")  # fmt: skip
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        ax.legend(title="class", fontsize="small")
        out["pr"] = fig

    if data.get("calibration"):
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
        ax.plot(data["calibration"]["confidence"], data["calibration"]["observed"], "o-")
        what = "positive class" if len(labels) == 2 else "top-label"
        ax.set(
            xlabel=f"predicted probability ({what})",
            ylabel="observed frequency",
            title="Calibration",
        )
        out["calibration"] = fig

    fig, ax = plt.subplots(figsize=(4.5, 4))
    cm = np.asarray(data["confusion_matrix"])
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(v) for v in labels], rotation=45)
    ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix")
    out["confusion"] = fig
    return out


def _regression_plots(data: dict) -> dict:
    import numpy as np

    plt = _pyplot()
    y = np.asarray(data["points"]["actual"], dtype="float64")
    p = np.asarray(data["points"]["predicted"], dtype="float64")
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


def _html(title: str, data: dict, images: dict, extra: dict) -> str:
    esc = html.escape

    def table(rows) -> str:
        body = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"

    facts = table([*extra.items(), ("task", data["task"]), ("rows", data["n_rows"])])
    metrics = table((k, f"{float(v):.6g}") for k, v in data["metrics"].items())
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
