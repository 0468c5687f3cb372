"""The steps of the standard retraining loop (what ``loop.yaml`` compiles to).

Each step takes the run's :class:`~modelloop.pipelines.context.StepContext` (``ctx``), the
services it calls, from the runner: the one open in the runner's process, or one the worker
opens from the workspace's factory when the step runs in another process (process pool, Ray).
Steps return plain JSON, so their outputs hash the same for the same content and unchanged
re-runs hit the cache.

Steps with side effects (ingest, champion lookup, register, promote, deploy) are never cached;
the expensive ones (quality check, training, evaluation) are, keyed on the data version's
content hash, the champion and the spec section they read.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from modelloop.common.jsonable import to_jsonable
from modelloop.common.status import ApprovalStatus
from modelloop.errors import InvalidInput, ModelloopError
from modelloop.pipelines.context import StepContext
from modelloop.pipelines.graph import step


class QualityFailed(ModelloopError):
    """The new data broke a constraint the loop stops on (``quality.fail_on``)."""

    status = 422


# -- data ------------------------------------------------------------------------------------------
@step(cache=False)
def ingest(ctx: StepContext, data: dict, base_dir: str) -> dict:
    """Ingest new files (if the spec lists any) and pin the dataset version this run uses."""
    import glob

    if data.get("ingest"):
        paths = []
        for pattern in data["ingest"]:
            path = Path(pattern) if Path(pattern).is_absolute() else Path(base_dir) / pattern
            matches = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else [str(path)]
            paths += matches
        if paths:
            ctx.datasets.ingest(
                data["dataset"], paths, event_time_column=data.get("event_time_column")
            )
    version = ctx.datasets.get(data["dataset"])
    recorded = None
    if data.get("features"):  # labels: train on their point-in-time join with the feature set
        joined = ctx.features.training_data(data["features"], version.ref)
        version, recorded = ctx.datasets.get(joined["dataset"]), joined["features"]
    since = None
    if data.get("window") and version.version > data["window"]:
        first = ctx.datasets.get(f"{version.name}@{version.version - data['window'] + 1}")
        since = first.created_at.isoformat()
    return {
        "features": recorded,
        "ref": version.ref,
        "dataset": version.name,
        "version": version.version,
        "content_hash": version.content_hash,
        "rows": version.row_count,
        "new_rows": version.added_rows,
        "since": since,
    }


@step(cache=False)
def champion(ctx: StepContext, model: str, alias: str) -> dict:
    """The model version the alias points at now (``{"ref": None}`` before the first one)."""
    version = ctx.models.alias_version(model, alias)
    if version is None:
        return {"ref": None}
    record = ctx.models.get(f"{model}@{version}")
    lineage = record["manifest"].get("lineage") or {}
    data = [i for i in lineage.get("inputs") or [] if i.get("kind") == "dataset"]
    return {
        "ref": record["ref"],
        "version": record["version"],
        "package_hash": record["package_hash"],
        "job": record.get("job_id") or lineage.get("job"),
        "trained_on": data[0]["ref"] if data else None,
    }


@step
def validate(ctx: StepContext, data: dict, champion: dict, quality: dict) -> dict:
    """Check the newest batch against a baseline of the champion's training data (before the
    first champion: of the dataset's previous version).

    Violations of the kinds in ``quality.fail_on`` stop the loop; drift is reported, not fatal
    (drift is a reason to retrain, not to stop).
    """
    from modelloop.quality import Baseline, check

    if not quality.get("enabled", True):
        return {"checked": False, "why": "quality checks are off (quality.enabled: false)"}
    # the reference: the champion's training data, else (first model) the data before this batch
    reference_ref = champion.get("trained_on")
    if not reference_ref and data["version"] > 1:
        reference_ref = f"{data['dataset']}@{data['version'] - 1}"
    if not reference_ref:
        return {"checked": False, "why": "the first batch: nothing to compare it with"}
    ignore = set(quality.get("ignore") or [])
    reference = ctx.datasets.to_arrow(reference_ref)
    reference = reference.drop_columns([c for c in reference.column_names if c in ignore])
    version = ctx.datasets.get(data["ref"])
    new = ctx.datasets.to_arrow(data["ref"], since=version.created_at)
    new = new.drop_columns([c for c in new.column_names if c in ignore])
    baseline = Baseline.from_batches(reference)
    report = check(new, baseline, quality.get("config") or None)
    stop = [v for v in report.violations if v.constraint_check_type in quality["fail_on"]]
    summary = {
        "checked": True,
        "baseline": reference_ref,
        "rows": report.n_rows,
        "violations": [
            {"column": v.feature_name, "check": v.constraint_check_type, "what": v.description}
            for v in report.violations
        ],
        "drift_share": report.verdict.drift_share,
        "drifted_columns": report.verdict.drifted_columns,
        "dataset_drift": report.verdict.dataset_drift,
    }
    if stop:
        first = stop[0]
        raise QualityFailed(
            f"the new data of {data['ref']} failed {len(stop)} quality check(s), first "
            f"{first.constraint_check_type} on {first.feature_name!r}: {first.description}",
            hint="fix the data (or list the check out of quality.fail_on) and run the loop again",
        )
    return summary


# -- training ------------------------------------------------------------------------------------
@step
def train(ctx: StepContext, data: dict, target: str, split: dict, train: dict) -> dict:
    """Train a candidate as a tracked job; returns the job id and its validation metrics."""
    job = ctx.training.train(
        data["ref"],
        target,
        train["algorithm"],
        train.get("params") or {},
        task=train.get("task"),
        split=_split(split),
        seed=split.get("seed", 0),
        time_budget=train.get("time_budget", 60.0),
        since=data.get("since"),
        name=f"loop train {train['algorithm']} on {data['ref']}",
        report=train.get("report", True),
        **({"features": data["features"]} if data.get("features") else {}),
    )
    return _candidate(job)


@step
def tune(ctx: StepContext, data: dict, target: str, split: dict, tune: dict) -> dict:
    """Tune a candidate as a tracked job (each trial a child job); returns the best model's job."""
    job = ctx.training.tune(
        data["ref"],
        target,
        tune["algorithm"],
        tune.get("space"),
        metric=tune.get("metric"),
        task=tune.get("task"),
        split=_split(split),
        cv=tune.get("cv", 3),
        time_budget=tune.get("time_budget"),
        # no count given: the service's default (20), or none when a time budget bounds it
        **({"n_trials": tune["n_trials"]} if tune.get("n_trials") is not None else {}),
        seed=split.get("seed", 0),
        since=data.get("since"),
        name=f"loop tune {tune['algorithm']} on {data['ref']}",
        report=tune.get("report", True),
    )
    return _candidate(job)


def _split(split: dict) -> dict:
    return {k: v for k, v in split.items() if k != "seed" and v is not None}


def _candidate(job: dict) -> dict:
    return {"job": job["id"], "kind": job["kind"], "metrics": job.get("metrics") or {}}


# -- evaluation ------------------------------------------------------------------------------------
@step
def evaluate(
    ctx: StepContext,
    data: dict,
    candidate: dict,
    champion: dict,
    target: str,
    metric: str | None,
    gate: list,
    bias: dict | None = None,
) -> dict:
    """Score candidate and champion on the same holdout rows and apply the gate (and its bias
    conditions, :mod:`modelloop.training.bias_gate`, on both models' predictions).

    The holdout is the candidate's own validation split, made again from the same rows with the
    same spec and seed; its index hash is checked against the one the training job recorded, so
    both models are provably scored on the rows the candidate never saw. Versions are cumulative,
    so that split also holds rows the champion trained on: those are left out (and counted in
    ``excluded_rows``), so neither model is scored on rows it learnt from.
    """
    from modelloop.registry.package import load_package
    from modelloop.training.evaluation import DEFAULT_METRIC
    from modelloop.training.evaluation import evaluate as score
    from modelloop.training.gate import gate as apply_gate
    from modelloop.training.splits import SplitSpec
    from modelloop.training.splits import split as make_split

    job = ctx.jobs.get(candidate["job"])
    folder = Path(tempfile.mkdtemp(prefix="modelloop-candidate-"))
    try:
        ctx.jobs.download(job["id"], folder, "model")
        # the loop's own training job wrote this package (a custom trainer's pickle included)
        model = load_package(folder / "model", verify=True, trust_pickle=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lineage = model.manifest.lineage or {}
    recorded = lineage.get("split") or {}
    frame = ctx.datasets.to_pandas(data["ref"], since=data.get("since"))
    spec = dict(job["spec"].get("split") or {})
    spec["method"] = recorded.get("method", spec.get("method", "auto"))
    _, holdout, record = make_split(
        frame, target, SplitSpec.of(spec), task=model.task, seed=recorded.get("seed", 0)
    )
    if recorded.get("valid_index_sha256") not in (None, record.valid_index_sha256):
        raise InvalidInput(
            f"cannot rebuild the holdout of job {job['id']}: its rows differ from the ones it "
            "was validated on",
            hint="the dataset version changed under the job; run the loop again",
        )
    metric = metric or DEFAULT_METRIC.get(model.task, "roc_auc")
    fair, excluded, notes = _unseen_by_champion(ctx, data, champion, holdout)
    if len(fair) == 0:  # the candidate alone can still be scored on its own validation rows
        cand = score(model, _columns(holdout, model, target), target, model.task).metrics
        return {"metric": metric, "candidate": cand.get(metric), "champion": None,
                "candidate_metrics": cand, "champion_metrics": None, "holdout_rows": 0,
                "excluded_rows": excluded, "holdout_sha256": record.valid_index_sha256,
                "passed": False, "promote": False, "reasons": notes, "notes": notes,
                "checks": [], "job": job["id"]}
    holdout = fair
    cand = score(model, _columns(holdout, model, target), target, model.task).metrics
    base = None
    if champion.get("ref"):
        current = ctx.models.load(champion["ref"])
        base = score(current, _columns(holdout, current, target), target, model.task).metrics
    conditions = [{**c, "metric": c.get("metric") or metric} for c in gate]
    verdict = apply_gate(cand, base, conditions)
    if bias:
        from modelloop.training.bias_gate import bias_gate

        new_pred = model.predict(_columns(holdout, model, target).drop(columns=[target]))
        old_pred = None if base is None else current.predict(
            _columns(holdout, current, target).drop(columns=[target]))
        unfair, bias_checks = bias_gate(holdout, bias, new_pred, old_pred)
        verdict.reasons += unfair
        verdict.checks += bias_checks
        verdict.passed = verdict.passed and not unfair
    same = bool(champion.get("ref")) and champion.get("job") == job["id"]
    reasons = list(verdict.reasons)
    if same:
        reasons = [f"the candidate (job {job['id']}) is already {champion['ref']}"]
    return {
        "metric": metric,
        "candidate": cand.get(metric),
        "champion": None if base is None else base.get(metric),
        "candidate_metrics": cand,
        "champion_metrics": base,
        "holdout_rows": len(holdout),
        "excluded_rows": excluded,
        "notes": notes,
        "holdout_sha256": record.valid_index_sha256,
        "passed": verdict.passed,
        "promote": verdict.passed and not same,
        "reasons": reasons,
        "checks": verdict.checks,
        "job": job["id"],
    }


def _unseen_by_champion(ctx: StepContext, data: dict, champion: dict, holdout):
    """The holdout rows the champion did not train on, how many were left out, and notes."""
    from modelloop.training.rows import unseen_mask

    if not champion.get("ref"):
        return holdout, 0, []
    seen = ctx.training.training_rows(champion["ref"])
    if not seen.known:
        return holdout, 0, [f"{champion['ref']} records no training data: its overlap with the "
                            "holdout could not be checked"]
    parts = ctx.datasets.parts(data["ref"], since=data.get("since"))
    keep = unseen_mask(parts, [seen])[holdout.index.to_numpy()]
    excluded = int((~keep).sum())
    if not keep.any():
        return holdout[keep], excluded, [
            f"the champion {champion['ref']} trained on all {excluded:,} holdout rows of "
            f"{data['ref']}: no fair comparison until new data arrives"]
    notes = [f"left out {excluded:,} holdout rows the champion {champion['ref']} trained on"
             ] if excluded else []
    return holdout[keep], excluded, notes


def _columns(frame, model, target: str):
    names = model.manifest.input_signature.names
    return frame[[c for c in names if c in frame.columns] + [target]]


# -- registry and deployment ---------------------------------------------------------------------
@step(cache=False)
def register(ctx: StepContext, model: str, candidate: dict, data: dict, run: str) -> dict:
    """Register the candidate's package as the next version of the model (status pending)."""
    record = ctx.models.register_from_job(
        model, candidate["job"], description=f"trained by the loop on {data['ref']} ({run})"
    )
    return {"ref": record["ref"], "version": record["version"], "job": candidate["job"]}


@step(cache=False)
def promote(ctx: StepContext, version: dict, alias: str, evaluation: dict) -> dict:
    """Approve the version and point the alias (``champion``) at it."""
    name = version["ref"].partition("@")[0]
    why = (
        f"{evaluation['metric']} {evaluation['candidate']:.4f}"
        + (f" vs {evaluation['champion']:.4f}" if evaluation.get("champion") is not None else "")
        + " on the same holdout"
    )
    record = ctx.models.get(version["ref"])
    if record["status"] == ApprovalStatus.PENDING:
        ctx.models.approve(version["ref"], reason=f"passed the loop's gate: {why}")
    previous = ctx.models.alias_version(name, alias)
    ctx.models.set_alias(name, alias, version["version"], reason=f"promoted by the loop: {why}")
    return {"ref": version["ref"], "alias": alias, "previous": previous}


@step(cache=False)
def deploy(ctx: StepContext, promoted: dict, deploy: dict) -> dict:
    """Roll the new champion out to the endpoint, if endpoints exist in this installation."""
    if ctx.endpoints is None:
        return {"deployed": False, "why": "deployment skipped: endpoints not available"}
    if deploy.get("mode") == "online":  # the champion is the online endpoint's frozen shadow
        return {"deployed": False, "why": "online endpoint: loop apply (after this run) makes "
                                          "the new champion its shadow"}
    result = ctx.endpoints.deploy(
        deploy["endpoint"],
        promoted["ref"],
        strategy=deploy.get("strategy", "all-at-once"),
        **{k: v for k, v in (deploy.get("options") or {}).items() if v is not None},
    )
    return {"deployed": True, "endpoint": deploy["endpoint"], "result": to_jsonable(result, nonfinite="keep")}
