"""What a train or tune job records besides its metrics: the code that made the model, the model
package, what its report shows, and the validation rows (the rows the model never trained on)."""

from __future__ import annotations

import platform
import subprocess

from modelloop.common.hashing import sha256_bytes
from modelloop.errors import InvalidInput

#: Libraries whose versions every job records (those installed).
RECORDED_LIBRARIES = ("modelloop", "numpy", "pandas", "pyarrow", "scikit-learn", "scipy",
                      "optuna", "lightgbm", "xgboost", "river", "skops")


def code_fingerprint(algorithm: str | None) -> dict:
    """What code made the model: git commit of the working folder, trainer source hash, versions."""
    from modelloop.registry.versions import installed_version

    out: dict = {"python": platform.python_version(), "packages": {}}
    for lib in RECORDED_LIBRARIES:
        if (found := installed_version(lib)) is not None:
            out["packages"][lib] = found
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True,
                                   text=True, timeout=5)
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    source = _trainer_source(algorithm)
    if source is not None:
        out["trainer_sha256"] = sha256_bytes(source)
    return out


def _trainer_source(algorithm: str | None) -> str | None:
    """The source of a custom trainer (``module:function`` or ``file.py:function``), if any."""
    import inspect

    from modelloop.training.algorithms import is_custom_trainer, resolve_trainer

    if not algorithm or not is_custom_trainer(algorithm):
        return None
    try:
        return inspect.getsource(resolve_trainer(algorithm))
    except (OSError, TypeError):
        return None


def store_model(ctx, result, frame, spec: dict, kind: str) -> None:
    """Write the package and attach it to the job as artifacts, with the data of its report."""
    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    features = [f["name"] for f in result.features]
    signature = Signature.from_frame(frame[features])
    lineage = {
        "job": ctx.job_id,
        "kind": kind,
        "target": result.target,
        "inputs": ctx.store.get_job(ctx.job_id)["inputs"],
        "split": result.split.to_dict(),
        "algorithm": result.algorithm,
        "code": ctx.recorder.info.get("code"),
    }
    if spec.get("features"):  # the feature set the rows came from: serving looks it up by key
        lineage["features"] = spec["features"]
    package = ctx.scratch / "model"
    save_package(result.model, package, signature=signature, task=result.task,
                 metrics=result.metrics, params={"algorithm": result.algorithm, **result.params},
                 lineage=lineage, probe=frame[features])
    for path in sorted(p for p in package.rglob("*") if p.is_file()):
        ctx.recorder.log_artifact(f"model/{path.relative_to(package).as_posix()}", path)
    _store_validation_rows(ctx, result.split)
    if spec.get("report", True):
        store_report_data(ctx, result.evaluation, f"{result.algorithm} on {spec['dataset']}",
                          {"job": ctx.job_id, "dataset": spec["dataset"],
                           "target": result.target, "split": result.split.method})
    ctx.recorder.set_output("model", {"package": "model/", "signature": signature.to_dict(),
                                      "task": result.task, "classes": result.classes})
    ctx.recorder.log_text(f"stored the model package ({len(list(package.rglob('*')))} files)")


def store_report_data(ctx, evaluation, title: str, extra: dict) -> bool:
    """Record what the job's report shows (``report/data.json``); the report itself is drawn
    when first asked for (:meth:`modelloop.training.jobs.Jobs.report`). False when the
    evaluation kept no predictions to plot."""
    import json

    from modelloop.training.report import REPORT_DATA, report_data

    try:
        data = report_data(evaluation, title=title, extra=extra)
    except InvalidInput:
        return False
    path = ctx.scratch / "report-data.json"
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    ctx.recorder.log_artifact(REPORT_DATA, path)
    return True


def _store_validation_rows(ctx, split) -> None:
    """Which rows of the parts read were the validation split: the rows the model never trained
    on, so later evaluations may use them (:mod:`modelloop.training.rows`)."""
    import json

    from modelloop.training.rows import VALIDATION_ARTIFACT, validation_record

    inputs = ctx.store.get_job(ctx.job_id)["inputs"]
    read = [i for i in inputs if i.get("kind") == "dataset" and i.get("role") != "holdout"]
    if len(read) != 1 or read[0].get("parts") is None:
        return
    path = ctx.scratch / "validation.json"
    path.write_text(json.dumps(validation_record(read[0]["parts"], split.valid_index)))
    ctx.recorder.log_artifact(VALIDATION_ARTIFACT, path)
