"""One monitor run: read the data (a dataset version, or an endpoint's captured traffic in a time
window), check it against the baseline, join late labels for model quality, and turn the results
into metric points and a report.

This is the body of the ``monitor`` job kind; it needs only the ground and domain objects a job
gets (store, artifacts, datasets), so it runs the same in a worker process or in-process.
A window without data is a run whose status is ``insufficient_data``, not an error; its only
metric point is ``rows = 0``, so alarms see the other series as missing. Data smaller than the
check's ``min_rows`` is checked for its columns only and writes no drift points either.

Captured traffic is compared on the served model's input signature (the columns the model reads),
not on the training table: traffic has no target and no identifier, and those are not missing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from modelloop.common.status import MonitorRunStatus
from modelloop.monitoring import captures
from modelloop.monitoring.baselines import Baselines

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.data.datasets import Datasets
    from modelloop.store import MetadataStore

HIST_BINS = 20
TOP_CATEGORIES = 15


def parse_window(text: str) -> timedelta:
    from modelloop.common.durations import parse_duration

    return parse_duration(text, what="window")


def exclude_columns(baseline, exclude):
    """The baseline with the ``exclude``d columns ignored; an unknown name is an error."""
    from modelloop.errors import InvalidInput

    exclude = list(exclude or ())
    known = [*baseline.columns, *baseline.skipped]
    unknown = [c for c in exclude if c not in known]
    if unknown:
        raise InvalidInput(
            f"--exclude names column(s) not in the baseline: {', '.join(unknown)}",
            hint=f"its columns are: {', '.join(known)}",
        )
    return baseline.with_roles(dict.fromkeys(exclude, "ignored")) if exclude else baseline


def served_columns(store: MetadataStore, models: list[str]) -> tuple[list[str] | None, str | None]:
    """The input columns of the served model versions (their signatures together) and their
    target, or (None, None) when no version's signature is known (e.g. a deleted model)."""
    columns: list[str] = []
    target = None
    found = False
    for ref in models:
        name, _, version = str(ref).rpartition("@")
        record = store.get_model_version(name, int(version)) if version.isdigit() else None
        manifest = (record or {}).get("manifest") or {}
        signature = manifest.get("signature") or {}
        cols = signature.get("columns") if isinstance(signature, dict) else signature
        if not cols:
            continue
        found = True
        columns += [c["name"] for c in cols if c["name"] not in columns]
        target = target or (manifest.get("lineage") or {}).get("target")
    return (columns, target) if found else (None, None)


def traffic(store: MetadataStore, baseline, frame):
    """(data, baseline) to check captured traffic: the served model's input columns (and the
    prediction, if the baseline has one); baseline columns the model does not read are ignored,
    so the target and identifiers of the training table are not reported missing."""
    names = [c for c in captures.model_columns(frame)]
    inputs, target = served_columns(store, frame.attrs.get("models", []))
    if inputs is None:  # no signature known: the baseline's features that traffic can carry
        inputs = [c for c in baseline.columns if baseline.role(c) == "feature"]
    keep = set(inputs) | ({"prediction"} & set(baseline.columns))
    roles = {c: "ignored" for c in [*baseline.columns, *baseline.skipped] if c not in keep}
    if target and target in baseline.columns and target not in keep:
        roles[target] = "ignored"  # a label is never in traffic
    cols = [c for c in names if c in keep]
    return (frame[cols] if len(frame) else frame), baseline.with_roles(roles)


def execute(store: MetadataStore, artifacts: ArtifactStore, datasets: Datasets, monitor: dict,
            spec: dict, log=print, load_model=None) -> dict:
    """Run a monitor once; returns the report (summary, check, quality, histograms, points).
    ``load_model`` (a model ref -> loaded model, from the workspace) serves attribution drift."""
    from modelloop.quality.baseline import MIN_ROWS, Baseline
    from modelloop.quality.checks import CheckConfig, check

    cfg = monitor.get("config") or {}
    baselines = Baselines(store, artifacts, datasets)
    baseline = exclude_columns(baselines.load(monitor["baseline"]), cfg.get("exclude", []))
    end = _time(spec.get("window_end")) or datetime.now(UTC)
    start = _time(spec.get("window_start"))
    report: dict = {"monitor": monitor["name"], "baseline": monitor["baseline"],
                    "window_start": start.isoformat() if start else None,
                    "window_end": end.isoformat()}  # fmt: skip
    labelled = None
    if monitor.get("dataset"):
        v = datasets.get(spec.get("dataset_ref") or f"{monitor['dataset']}@latest")
        report["data"] = v.ref
        n_rows = v.row_count

        def data():
            return datasets.iter_batches(v.ref)
    else:
        start = start or end - parse_window(monitor.get("window") or "1h")
        report["window_start"] = start.isoformat()
        frame = captures.capture_frame(
            store, artifacts, monitor["endpoint"], variant=monitor.get("variant"),
            since=start, until=end,
        )  # fmt: skip
        report["data"] = f"{monitor['endpoint']}/{monitor.get('variant') or '*'}"
        n_rows = len(frame)
        model_frame, baseline = traffic(store, baseline, frame)

        def data():
            return model_frame

        labels = store.get_labels(monitor["endpoint"]) if n_rows else {}
        if labels and "prediction" in frame.columns:
            from modelloop.monitoring.model_quality import join_labels

            labelled = join_labels(frame, labels)
    report["n_rows"] = n_rows
    if n_rows == 0:
        log(f"no data in {report['data']} for this window: INSUFFICIENT_DATA")
        report["status"] = MonitorRunStatus.INSUFFICIENT_DATA
        report["summary"] = {"status": MonitorRunStatus.INSUFFICIENT_DATA, "n_rows": 0}
        report["points"] = [("rows", {"monitor": monitor["name"]}, end, 0.0)]
        return report

    config = CheckConfig.from_dict(cfg["check"]) if cfg.get("check") else None
    result = check(data(), baseline, config)
    current = Baseline.from_batches(data(), categorical=[
        k for k, p in baseline.columns.items() if p.kind == "categorical"
    ])  # fmt: skip
    report["status"] = MonitorRunStatus.COMPLETED
    report["check"] = result.to_dict()
    report["histograms"] = histograms(baseline, current) if result.verdict.enough_data else {}
    log(f"checked {n_rows} rows of {report['data']}: {len(result.violations)} violation(s), "
        f"drifted: {', '.join(result.verdict.drifted_columns) or 'none'}")  # fmt: skip

    if not result.verdict.enough_data:
        log(f"only {n_rows} rows (fewer than {result.config.get('min_rows', MIN_ROWS)}): "
            "not enough data for distributions; columns checked only")  # fmt: skip
    dims = {"monitor": monitor["name"]}
    points = [
        ("rows", dims, end, float(n_rows)),
        ("violations", dims, end, float(len(result.violations))),
    ]
    if result.verdict.enough_data:
        points.append(("drift_share", dims, end, float(result.verdict.drift_share)))
    for row in result.drift:
        points.append(("drift", {**dims, "feature": row.column}, end, float(row.value)))
    summary = {
        "status": MonitorRunStatus.COMPLETED,
        "n_rows": n_rows,
        "n_violations": len(result.violations),
        "dataset_drift": result.verdict.dataset_drift,
        "drifted_columns": result.verdict.drifted_columns,
        "ok": result.verdict.ok,
        "enough_data": result.verdict.enough_data,
    }
    if labelled is not None:
        from modelloop.monitoring.model_quality import quality_report

        model = _model_facts(store, monitor.get("model"))
        q = quality_report(
            labelled,
            task=model.get("task"),
            period=int(cfg.get("quality_period", 3600)),
            reference=model.get("metrics"),
            detectors=cfg.get("detectors", []),
        )
        report["quality"] = q
        summary["n_labelled"] = q["n_labelled"]
        # the accuracy of 3 labels says nothing: too few labels write no quality points, so a
        # quality alarm sees missing data, not a collapse (the same min_rows as the check)
        min_labels = int(result.config.get("min_rows", MIN_ROWS))
        q["enough_labels"] = q["n_labelled"] >= min_labels
        if q["enough_labels"]:
            for key, value in q["metrics"].items():
                points.append((f"quality.{key}", dims, end, float(value)))
        points.append(("labelled_rows", dims, end, float(q["n_labelled"])))
        log(f"model quality on {q['n_labelled']} labelled rows: "
            + ", ".join(f"{k}={v:.4g}" for k, v in q["metrics"].items())
            + ("" if q["enough_labels"] else f" (fewer than {min_labels}: not enough labels, "
               "no quality points)"))  # fmt: skip
    if labelled is not None and cfg.get("bias"):
        from modelloop.monitoring.bias_drift import bias_drift

        section, bias_points = bias_drift(labelled, cfg["bias"], monitor["name"], end,
                                          min_labels=int(result.config.get("min_rows", MIN_ROWS)))  # fmt: skip
        report["bias"], summary["bias_violations"] = section, len(section["violations"])
        points += bias_points
        log(f"bias drift on {section['n_labelled']} labelled rows: "
            + ("; ".join(v["description"] for v in section["violations"]) or "no violation"))
    if monitor.get("endpoint") and cfg.get("attribution") and load_model is not None:
        from modelloop.monitoring.attribution_drift import attribution_drift

        reference = datasets.to_pandas(baselines.get(monitor["baseline"])["ref"])
        section, more = attribution_drift(load_model(monitor["model"]), frame, reference,
                                          cfg["attribution"], monitor["name"], end)  # fmt: skip
        report["attribution"], points = section, points + more
        summary["attribution_violations"] = len(section["violations"])
        log(f"feature attribution drift: NDCG {section['ndcg']:.3f} "
            f"(threshold {section['threshold']:g})")  # fmt: skip
    report["summary"] = summary
    report["points"] = points
    return report


def _model_facts(store: MetadataStore, ref: str | None) -> dict:
    """Task and training metrics of the monitored model version (from its manifest)."""
    if not ref:
        return {}
    from modelloop.registry.registry import Registry

    reg = Registry(store, None, ".")  # resolving reads the store only
    name, version = reg.resolve(ref)
    manifest = store.get_model_version(name, version)["manifest"]
    metrics = {k: float(v) for k, v in (manifest.get("metrics") or {}).items()
               if isinstance(v, int | float)}  # fmt: skip
    return {"task": manifest.get("task"), "metrics": metrics, "ref": f"{name}@{version}"}


def _time(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def histograms(baseline, current) -> dict:
    """Per column, the baseline's and the current data's distributions on shared bins (for the
    report's overlaid histograms): numeric on equal-width bins, categories by share."""
    import numpy as np

    out = {}
    for name, ref in baseline.columns.items():
        if baseline.role(name) not in ("feature", "target"):
            continue
        cur = current.columns.get(name)
        if cur is None or ref.n == 0 or cur.n == 0 or cur.kind != ref.kind:
            continue
        if ref.kind == "numeric":
            lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
            if hi <= lo:
                hi = lo + 1.0
            edges = np.linspace(lo, hi, HIST_BINS + 1)
            out[name] = {"kind": "numeric", "edges": edges.tolist(),
                         "reference": _numeric_shares(ref, edges),
                         "current": _numeric_shares(cur, edges)}  # fmt: skip
        else:
            keys = sorted(ref.counts, key=lambda k: -ref.counts[k])[:TOP_CATEGORIES]
            keys += [k for k in sorted(cur.counts, key=lambda k: -cur.counts[k])
                     if k not in keys][: max(0, TOP_CATEGORIES - len(keys)) or 3]  # fmt: skip
            out[name] = {"kind": "categorical", "categories": keys,
                         "reference": [ref.counts.get(k, 0) / ref.n for k in keys],
                         "current": [cur.counts.get(k, 0) / cur.n for k in keys]}  # fmt: skip
    return out


def _numeric_shares(prof, edges) -> list[float]:
    import numpy as np

    if prof.values is not None:
        counts = np.histogram(prof.values, bins=edges)[0]
    else:
        mids = (prof.offset + np.arange(len(prof.counts)) + 0.5) * prof.width
        mids = np.clip(mids, edges[0], edges[-1])
        counts = np.histogram(mids, bins=edges, weights=prof.counts)[0]
    return (counts / max(counts.sum(), 1)).tolist()


def points_json(points) -> list[dict]:
    return [{"name": n, "dimensions": d, "time": t.isoformat(), "value": v}
            for n, d, t, v in points]  # fmt: skip


def dumps(report: dict) -> bytes:
    return json.dumps(report, default=str).encode()
