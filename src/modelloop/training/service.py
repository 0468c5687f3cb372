"""Training as tracked work: ``train``, ``tune`` and ``evaluate`` jobs on dataset versions.

:class:`Training` is what the SDK and the CLI call: it checks the request in the caller's process
(so a typo fails at once, not inside a worker), creates the job with its lineage inputs, and runs
it. The ``run_*_job`` functions are what the job runs (registered as the kinds ``train``, ``tune``
and ``evaluate``, see :mod:`modelloop.training.job_kinds`): they read the dataset version, call the
plain training functions with the job's recorder as tracker, and store the outputs:

* a train or tune job stores its model package under the job artifacts ``model/…`` (what
  ``modelloop models register NAME --job JOB`` registers), and its evaluation report under
  ``report/…``, with the code that made it (:mod:`modelloop.training.recording`);
* an evaluate job scores a registered model (and optionally a baseline, such as the champion)
  on the same rows, and records the gate's verdict with every failed condition.

No model is scored on rows it trained on (see :mod:`modelloop.training.rows`): a train or tune
job records the parts it read and its validation rows; a holdout sharing rows with the training
data is refused, and an evaluation that would score either model on its training rows is refused
(``overlap="refuse"``), done on the rows neither trained on (``"exclude"``), or done anyway with
the overlap recorded and a warning (``"allow"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelloop.common.status import JobStatus
from modelloop.errors import InvalidInput
from modelloop.training.job_kinds import register_job_kind
from modelloop.training.tuning import UNSET, trial_count

#: What an evaluation does with rows a model trained on.
OVERLAP_POLICIES = ("refuse", "exclude", "allow")


class Training:
    """Train, tune and evaluate models on dataset versions, each as a tracked job."""

    def __init__(self, jobs, datasets, models):
        self.jobs = jobs
        self.datasets = datasets
        self.models = models

    # -- requests -------------------------------------------------------------------------------
    def train(
        self,
        dataset: str,
        target: str,
        algorithm: str = "hist_gradient_boosting",
        params: dict | None = None,
        *,
        task: str | None = None,
        split: dict | str | None = None,
        holdout: str | None = None,
        seed: int = 0,
        preprocessing: dict | None = None,
        time_budget: float = 60.0,
        since: str | None = None,
        name: str | None = None,
        timeout: float | None = None,
        on_start=None,
        report: bool = True,
        executor: str | None = None,
        features: dict | None = None,
    ) -> dict:
        """Train ``algorithm`` on dataset version ``dataset``; return the finished job.

        ``features``: the feature set the rows came from (``ws.features.training_data``), which
        the model's package records, so that serving looks the same features up by key.

        With ``report`` (the default) the job records what its evaluation report shows, and
        the report is drawn when first asked for (``jobs.report``); without, it has none.
        It runs where ``executor`` says: ``"local"`` or ``"ray"`` (default: ``[jobs] executor``)."""
        spec = self._data_spec(dataset, target, split, holdout, since)
        algorithm = self._check_algorithm(algorithm)
        spec.update(algorithm=algorithm, params=dict(params or {}), task=task, seed=int(seed),
                    preprocessing=preprocessing, time_budget=float(time_budget),
                    report=bool(report))
        if features is not None:
            spec["features"] = features
        return self._run("train", spec, name or f"train {algorithm} on {spec['dataset']}",
                         timeout, on_start, executor or self.jobs.executor)

    def tune(
        self,
        dataset: str,
        target: str,
        algorithm: str = "hist_gradient_boosting",
        space: Any = None,
        *,
        metric: str | None = None,
        direction: str | None = None,
        task: str | None = None,
        split: dict | str | None = None,
        holdout: str | None = None,
        cv: int = 3,
        n_trials: int | None = UNSET,
        time_budget: float | None = None,
        target_value: float | None = None,
        patience: int | None = None,
        sampler: str = "tpe",
        pruner: str | None = "median",
        n_jobs: int = 1,
        seed: int = 0,
        warm_start: int | str | None = None,
        preprocessing: dict | None = None,
        since: str | None = None,
        name: str | None = None,
        timeout: float | None = None,
        on_start=None,
        report: bool = True,
        executor: str | None = None,
    ) -> dict:
        """Tune ``algorithm`` (or ``"auto"``: all built-ins) on ``dataset``; each trial is a job.
        ``report`` as for :meth:`train`.

        On ``executor="ray"`` (default: ``[jobs] executor``) the job runs on Ray and so do its
        trials, ``n_jobs`` at a time, each fold a Ray task; the study stays in the job."""
        from modelloop.training.space import load_space

        spec = self._data_spec(dataset, target, split, holdout, since)
        algorithm = self._check_algorithm(algorithm)
        if space is not None and not callable(space):
            load_space(space)  # fail fast on an invalid space, in the caller's process
            if isinstance(space, str | Path) and Path(space).is_file():
                space = Path(space).read_text()
        elif callable(space):
            raise InvalidInput("a search space given as a function cannot be sent to a job",
                               hint="write it as YAML or a dict, or call modelloop.training.tune "
                                    "directly in this process")
        warm = None
        if warm_start is not None:
            earlier = self.jobs.get(warm_start)
            if earlier["kind"] != "tune":
                raise InvalidInput(f"job {earlier['id']} is a {earlier['kind']} job, not a tune job",
                                   hint="warm-start from an earlier 'modelloop tune' job")
            warm = earlier["id"]
        spec.update(algorithm=algorithm, space=space, metric=metric, direction=direction, task=task,
                    cv=int(cv), n_trials=trial_count(n_trials, time_budget),
                    time_budget=time_budget,
                    target_value=target_value, patience=patience, sampler=sampler, pruner=pruner,
                    n_jobs=int(n_jobs), seed=int(seed), warm_start=warm,
                    preprocessing=preprocessing, report=bool(report))
        executor = executor or self.jobs.executor
        if executor == "ray":
            spec["executor"] = "ray"  # where the trials run
        return self._run("tune", spec, name or f"tune {algorithm} on {spec['dataset']}", timeout,
                         on_start, executor)

    def evaluate(
        self,
        model: str,
        dataset: str,
        *,
        target: str | None = None,
        baseline: str | None = None,
        gate: list | dict | None = None,
        report: bool = True,
        since: str | None = None,
        name: str | None = None,
        timeout: float | None = None,
        overlap: str = "refuse",
    ) -> dict:
        """Score registered ``model`` on ``dataset`` (and ``baseline`` on the same rows); gate it.

        Rows either model trained on are never scored silently: ``overlap="refuse"`` (the
        default) raises :class:`InvalidInput` saying how many rows overlap and which range to use
        instead, ``"exclude"`` scores both on the rows neither trained on, ``"allow"`` scores
        every row and records the overlap (``job["info"]["overlap"]``) with a warning.
        The job succeeds whatever the gate says; its verdict is ``job["outputs"]["gate"]``.
        """
        from modelloop.training.gate import check_conditions

        if overlap not in OVERLAP_POLICIES:
            raise InvalidInput(f"unknown overlap policy {overlap!r}",
                               hint=f"use one of {', '.join(OVERLAP_POLICIES)}")
        record = self.models.get(model)
        target = target or (record["manifest"].get("lineage") or {}).get("target")
        if not target:
            raise InvalidInput(f"{record['ref']} does not record its target column",
                               hint="pass --target COLUMN")
        version = self.datasets.get(dataset)
        spec = {"model": record["ref"], "dataset": version.ref, "target": target,
                "since": since, "report": bool(report), "gate": check_conditions(gate)}
        inputs = [_dataset_input(version), {"kind": "model", "ref": record["ref"],
                                            "content_hash": record["package_hash"]}]
        base = None
        if baseline:
            base = self.models.get(baseline)
            spec["baseline"] = base["ref"]
            inputs.append({"kind": "model", "ref": base["ref"], "content_hash": base["package_hash"],
                           "role": "baseline"})
        self._check_columns(version, [target])
        from modelloop.training.rows import check_overlap

        models = [self.training_rows(record)] + ([self.training_rows(base)] if base else [])
        parts = self.datasets.parts(version.ref, since=since)
        spec["overlap"] = check_overlap(models, parts, version, since, overlap)
        return self.jobs.run("evaluate", spec, name=name or f"evaluate {record['ref']} on "
                             f"{version.ref}", inputs=inputs, timeout=timeout)

    def training_rows(self, model: str | dict):
        """The rows a registered model trained on (:class:`modelloop.training.rows.TrainingRows`)."""
        from modelloop.training.rows import training_rows

        record = self.models.get(model) if not isinstance(model, dict) else model
        return training_rows(self.jobs.store, self.jobs.artifacts, self.datasets, record)

    # -- helpers --------------------------------------------------------------------------------
    def _data_spec(self, dataset, target, split, holdout, since) -> dict:
        version = self.datasets.get(dataset)
        self._check_columns(version, [target])
        self._check_target(version, target, since)
        spec = {"dataset": version.ref, "target": target, "since": since,
                "split": _split_dict(split), "holdout": None}
        parts = self.datasets.parts(version.ref, since=since)
        read = version
        if since and parts:  # name exactly the versions the window read, for lineage
            first = min(p["version"] for p in parts)
            read = self.datasets.get(f"{version.name}@{first - 1}..{version.version}"
                                     if first > 1 else version.ref)
        inputs = [_dataset_input(read, parts)]
        if holdout:
            from modelloop.training.rows import check_holdout

            hv = self.datasets.get(holdout)
            self._check_columns(hv, [target])
            held = self.datasets.parts(hv.ref)
            check_holdout(read, parts, hv, held)
            inputs.append({**_dataset_input(hv, held), "role": "holdout"})
            spec["holdout"] = hv.ref
            spec["split"] = {**spec["split"], "method": "holdout"}
        if spec["split"].get("method") == "time" and not spec["split"].get("time_column"):
            column = (self.datasets.store.get_dataset(version.name) or {}).get("event_time_column")
            if not column:
                raise InvalidInput(f"dataset {version.name!r} has no event-time column for a "
                                   "time split", hint="pass the column: --split time:COLUMN")
            spec["split"]["time_column"] = column
        spec["_inputs"] = inputs
        return spec

    @staticmethod
    def _check_columns(version, columns) -> None:
        import difflib

        names = version.schema.names
        for column in columns:
            if column not in names:
                close = difflib.get_close_matches(column, names, n=1)
                raise InvalidInput(
                    f"dataset {version.ref} has no column {column!r}",
                    hint=f"did you mean {close[0]!r}?" if close else
                    f"its columns: {', '.join(names)}")

    def _check_target(self, version, target: str, since) -> None:
        """A target with fewer than two values cannot be learned: say so before starting a job."""
        import pyarrow.compute as pc

        column = self.datasets.to_arrow(version.ref, columns=[target], since=since).column(0)
        distinct = len(pc.unique(column.drop_null()))
        if distinct < 2:
            raise InvalidInput(
                f"target {target!r} of {version.ref} has {distinct} distinct value(s) "
                f"(one class); nothing to learn",
                hint="train on data where the target takes at least two values")

    @staticmethod
    def _check_algorithm(algorithm: str) -> str:
        """Fail fast on a bad name; a custom trainer's file path is made absolute for the worker."""
        from modelloop.common.loading import is_file_spec
        from modelloop.training.algorithms import (
            is_custom_trainer,
            resolve_algorithm,
            resolve_trainer,
        )

        if algorithm == "auto":
            return algorithm
        if not is_custom_trainer(algorithm):
            resolve_algorithm(algorithm)
            return algorithm
        resolve_trainer(algorithm)
        target, _, func = algorithm.rpartition(":")
        if is_file_spec(target):
            return f"{Path(target).resolve()}:{func}"
        return algorithm

    def _run(self, kind, spec, name, timeout, on_start, executor=None) -> dict:
        inputs = spec.pop("_inputs")
        return self.jobs.run(kind, spec, name=name, inputs=inputs, timeout=timeout,
                             on_start=on_start, executor=executor)


def _dataset_input(version, parts: list[dict] | None = None) -> dict:
    """A lineage input: the version (or range) and, when given, exactly the parts read."""
    out = {"kind": "dataset", "ref": version.ref, "content_hash": version.content_hash,
           "rows": version.row_count}
    if parts is not None:
        out.update(rows=sum(p["rows"] for p in parts), parts=parts)
    return out


def _split_dict(split) -> dict:
    """``"time:applied_at"``, ``"stratified"``, ``{"method": …}`` or None → a split dict."""
    if split is None:
        return {}
    if isinstance(split, dict):
        return dict(split)
    method, _, arg = str(split).partition(":")
    out: dict = {"method": method}
    if arg:
        if method == "time":
            out["time_column"] = arg
        else:
            try:
                out["fraction"] = float(arg)
            except ValueError:
                raise InvalidInput(f"cannot read the split {split!r}",
                                   hint="write e.g. random:0.2, stratified, time:COLUMN") from None
    return out


# -- inside the worker ----------------------------------------------------------------------------
def _load_frames(ctx, spec: dict):
    """The training frame and the split spec (with the holdout frame when there is one)."""
    from modelloop.training.splits import SplitSpec

    frame = ctx.datasets.to_pandas(spec["dataset"], since=spec.get("since"))
    ctx.recorder.log_text(f"read {len(frame):,} rows of {spec['dataset']}"
                          + (f" ingested since {spec['since']}" if spec.get("since") else ""))
    split = dict(spec.get("split") or {})
    if spec.get("holdout"):
        split.update(method="holdout", holdout=ctx.datasets.to_pandas(spec["holdout"]),
                     holdout_ref=spec["holdout"])
    return frame, SplitSpec.of(split or None)


def _baseline(ctx, spec: dict) -> None:
    """Every training dataset version gets a baseline (the reference for its monitors); a window
    or a range of versions is not a version, so it gets none."""
    from modelloop.data.refs import parse_ref

    ensure = ctx.services.get("ensure_baseline")
    if ensure is None or spec.get("since") or parse_ref(spec["dataset"]).after is not None:
        return
    record = ensure(spec["dataset"], target=spec.get("target"))  # the label's role is recorded
    ctx.recorder.set_output("baseline", record.get("name") or record.get("id"))
    ctx.recorder.log_text(f"baseline of {spec['dataset']}: {record.get('name') or record}")


@register_job_kind("train")
def run_train_job(ctx, spec: dict) -> None:
    from modelloop.training.recording import code_fingerprint, store_model
    from modelloop.training.trainers import train

    ctx.recorder.set_info("code", code_fingerprint(spec.get("algorithm")))
    _baseline(ctx, spec)
    frame, split = _load_frames(ctx, spec)
    result = train(frame, spec["target"], spec["algorithm"], spec.get("params") or {},
                   task=spec.get("task"), split=split, seed=spec.get("seed", 0),
                   preprocessing=spec.get("preprocessing"), tracker=ctx.recorder,
                   time_budget=spec.get("time_budget", 60.0))
    ctx.recorder.set_info("evaluation", result.evaluation.to_dict())
    if result.extra.get("leaderboard"):
        ctx.recorder.set_output("leaderboard", result.extra["leaderboard"])
    store_model(ctx, result, frame, spec, "train")


class _ChildTrials:
    """Each tuning trial as a child job of the tune job (TrialTrackers protocol)."""

    STATES = {"complete": JobStatus.SUCCEEDED, "pruned": JobStatus.PRUNED, "failed": JobStatus.FAILED}

    def __init__(self, ctx):
        self.ctx = ctx

    def start(self, number, params):
        recorder = self.ctx.child_job("trial", f"trial {number}", {"trial": number}, params)
        recorder.log_params(params)
        recorder.set_info("trial", number)
        return recorder

    def end(self, tracker, state, error=None):
        if state == "pruned":
            tracker.set_info("pruned", True)
        self.ctx.end_child(tracker, self.STATES.get(state, JobStatus.FAILED),
                           error if state == "failed" else ("pruned" if state == "pruned" else None))


@register_job_kind("tune")
def run_tune_job(ctx, spec: dict) -> None:
    from modelloop.training.recording import code_fingerprint, store_model
    from modelloop.training.tuning import tune

    ctx.recorder.set_info("code", code_fingerprint(spec.get("algorithm")))
    _baseline(ctx, spec)
    frame, split = _load_frames(ctx, spec)
    warm = None
    if spec.get("warm_start"):
        earlier = ctx.store.get_job(int(spec["warm_start"]))
        warm = (earlier.get("outputs") or {}).get("trials") or []
        ctx.recorder.log_text(f"warm start from job {earlier['id']} ({len(warm)} trials)")
    result = tune(
        frame, spec["target"], spec["algorithm"], spec.get("space"), metric=spec.get("metric"),
        direction=spec.get("direction"), task=spec.get("task"), split=split, cv=spec.get("cv", 3),
        n_trials=spec.get("n_trials"), timeout=spec.get("time_budget"),
        target_value=spec.get("target_value"), patience=spec.get("patience"),
        sampler=spec.get("sampler", "tpe"), pruner=spec.get("pruner"),
        n_jobs=spec.get("n_jobs", 1), seed=spec.get("seed", 0), warm_start=warm,
        preprocessing=spec.get("preprocessing"), tracker=ctx.recorder,
        trials=_ChildTrials(ctx), executor=spec.get("executor"),
    )
    ctx.recorder.log_metric("best_value", result.best_value)
    ctx.recorder.set_output("best", {"algorithm": result.best_algorithm, "params": result.best_params,
                                     "value": result.best_value, "metric": result.metric})
    ctx.recorder.set_output("leaderboard", result.leaderboard)
    ctx.recorder.set_output("trials", [{"params": t.get("params"), "value": t.get("value"),
                                        "algorithm": t.get("algorithm"), "state": t.get("state")}
                                       for t in result.trials])
    ctx.recorder.set_info("stopped_because", result.stopped_because)
    ctx.recorder.set_info("evaluation", result.final.evaluation.to_dict())
    ctx.recorder.log_metrics(result.final.metrics)
    ctx.recorder.log_text(f"best {result.metric} {result.best_value:.6g} "
                          f"({result.best_algorithm}); stopped because {result.stopped_because}")
    store_model(ctx, result.final, frame, spec, "tune")


def _model_columns(frame, model, target: str):
    """The columns the model reads (its input signature) and the target; extra columns dropped."""
    names = model.manifest.input_signature.names
    return frame[[c for c in names if c in frame.columns] + [target]]


def _without_training_rows(ctx, registry, spec: dict, data):
    """Apply the overlap policy the caller checked: drop (``exclude``) or flag (``allow``) the
    rows either model trained on; record the counts on the job either way."""
    from modelloop.training.rows import training_rows, unseen_mask

    found = dict(spec.get("overlap") or {})
    if not found:
        return data
    if found.get("policy") == "exclude" and found.get("excluded"):
        models = [training_rows(ctx.store, ctx.artifacts, ctx.datasets, registry.get(ref))
                  for ref in (spec["model"], spec.get("baseline")) if ref]
        parts = ctx.datasets.parts(spec["dataset"], since=spec.get("since"))
        keep = unseen_mask(parts, models)
        data = data[keep]
        found["excluded"] = int((~keep).sum())
        ctx.recorder.log_text(f"excluded {found['excluded']:,} of {found['rows']:,} rows that "
                              f"{' or '.join(m.model for m in models)} trained on; evaluating "
                              f"on the {len(data):,} rows neither trained on")
    elif found.get("policy") == "allow" and (found.get("model") or found.get("baseline")):
        ctx.recorder.log_text(
            f"WARNING: scoring on rows the models trained on ({found.get('model', 0):,} rows of "
            f"{spec['model']}, {found.get('baseline', 0):,} of the baseline, of "
            f"{found['rows']:,}): these metrics overstate how well they generalise")
    for ref in found.get("unknown") or []:
        ctx.recorder.log_text(f"note: {ref} records no training data; its overlap with "
                              f"{spec['dataset']} could not be checked")
    found["evaluated_rows"] = len(data)
    ctx.recorder.set_info("overlap", found)
    return data


@register_job_kind("evaluate")
def run_evaluate_job(ctx, spec: dict) -> None:
    """Score the model (and the baseline) on the same rows; record metrics and the gate."""
    from modelloop.registry.registry import Registry
    from modelloop.training.evaluation import evaluate
    from modelloop.training.gate import gate
    from modelloop.training.recording import store_report_data

    registry = Registry(ctx.store, ctx.artifacts, ctx.scratch / "models", datasets=ctx.datasets)
    data = ctx.datasets.to_pandas(spec["dataset"], since=spec.get("since"))
    target = spec["target"]
    data = _without_training_rows(ctx, registry, spec, data)
    labelled = data[data[target].notna()]  # read once: the model and the baseline score these
    model = registry.load(spec["model"])
    frame = _model_columns(labelled, model, target)
    ctx.recorder.log_text(f"evaluating {spec['model']} on {len(frame):,} rows of {spec['dataset']}")
    ev = evaluate(model, frame, target, model.task)
    ctx.recorder.log_metrics(ev.metrics)
    ctx.recorder.set_info("evaluation", ev.to_dict())
    baseline_metrics = None
    if spec.get("baseline"):
        base = registry.load(spec["baseline"])
        bev = evaluate(base, _model_columns(labelled, base, target), target, ev.task)
        baseline_metrics = bev.metrics
        ctx.recorder.set_output("baseline", {"ref": spec["baseline"], "metrics": bev.metrics})
        ctx.recorder.log_text(f"baseline {spec['baseline']}: " + ", ".join(
            f"{k}={v:.4g}" for k, v in bev.metrics.items()))
    if spec.get("gate"):
        verdict = gate(ev.metrics, baseline_metrics, spec["gate"])
        ctx.recorder.set_output("gate", verdict.to_dict())
        ctx.recorder.log_text("gate: " + ("passed" if verdict.passed else
                                          "failed: " + "; ".join(verdict.reasons)))
    if spec.get("report", True):
        store_report_data(ctx, ev, f"{spec['model']} on {spec['dataset']}",
                          {"model": spec["model"], "dataset": spec["dataset"],
                           "baseline": spec.get("baseline") or "-"})
