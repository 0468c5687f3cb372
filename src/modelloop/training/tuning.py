"""Hyperparameter tuning with Optuna: samplers, pruning, stopping rules, warm start, ``auto``.

:func:`tune` splits the data once (the split is recorded, as in :func:`~modelloop.training.
trainers.train`), then each Optuna trial cross-validates one set of params on the training part,
reporting the running mean after each fold so a pruner (median or Hyperband) can stop a bad
trial early. The best params are retrained on the whole training part and evaluated on the
validation part: that model is the result. ``algorithm="auto"`` searches across the built-in
algorithms (the algorithm is itself a searched parameter) and ranks them on a leaderboard.

Each trial reports through its own tracker, started and ended by a ``trials`` object
(:class:`~modelloop.training.tracking.TrialTrackers`): a tracked job makes each trial a child job.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from modelloop.common.jsonable import to_jsonable
from modelloop.errors import InvalidInput, ModelloopError
from modelloop.training.algorithms import CLASSIFICATION
from modelloop.training.study import (
    PRUNERS,
    SAMPLERS,
    check_direction,
    make_pruner,
    make_sampler,
    params_of,
    spaces_for,
    suggest,
    warm_start_study,
)
from modelloop.training.tracking import Tracker, TrialTrackers, as_tracker

#: Trials run when no trial count is given, unless a time budget is: then the budget is the limit.
DEFAULT_TRIALS = 20
#: The default of ``n_trials``: "not given" (``None`` means "no trial count").
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()


def trial_count(n_trials, timeout: float | None) -> int | None:
    """The trial count to stop at: as given, else none under a time budget, else the default.

    A time budget with no trial count means "use the budget": stopping at a default count
    would end the search long before the time the user gave it.
    """
    if n_trials is not UNSET:
        return n_trials
    return None if timeout is not None else DEFAULT_TRIALS


@dataclass
class TuneResult:
    metric: str
    direction: str  # "maximize" or "minimize"
    best_value: float
    best_params: dict
    best_algorithm: str
    trials: list[dict]  # every trial: number, algorithm, params, state, value, fold values, seconds
    leaderboard: list[dict]  # complete trials best first (auto: the best trial of each algorithm)
    final: Any  # TrainResult: the best params retrained on the whole training part
    stopped_because: str
    study: Any = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "best_value": self.best_value,
            "best_params": self.best_params,
            "best_algorithm": self.best_algorithm,
            "stopped_because": self.stopped_because,
            "leaderboard": self.leaderboard,
            "trials": self.trials,
            "final": self.final.to_dict(),
        }


def tune(
    frame,
    target: str,
    algorithm: str = "hist_gradient_boosting",
    space=None,
    *,
    metric: str | None = None,
    direction: str | None = None,
    task: str | None = None,
    split=None,
    cv: int = 3,
    n_trials: int | None = UNSET,
    timeout: float | None = None,
    target_value: float | None = None,
    patience: int | None = None,
    sampler: str = "tpe",
    pruner: str | None = "median",
    n_jobs: int = 1,
    seed: int = 0,
    warm_start=None,
    preprocessing: dict | None = None,
    tracker: Tracker | None = None,
    trials: TrialTrackers | None = None,
    executor=None,
) -> TuneResult:
    """Search ``space`` (default: the algorithm's) for the params that best ``metric``.

    Stops at ``n_trials`` new trials (default: 20, or no count when a ``timeout`` is given),
    when the next trial and the final retraining would overrun ``timeout`` seconds, when the best
    value reaches ``target_value``, or when ``patience`` trials in a row brought no improvement,
    whichever comes first. Each finished trial is reported as one line of text to the tracker
    (number, state, value, best so far): the job log, which the CLI shows live. ``warm_start``
    is a list of ``{"params": ..., "value": ...}`` (e.g. an earlier result's ``trials``), or an
    earlier :class:`TuneResult`.

    ``executor`` (a name from :mod:`modelloop.common.executors`, e.g. ``"ray"``) scores each
    fold of each trial there instead of in this process: Optuna's ``n_jobs`` threads still ask
    and tell (the study, its sampler, pruner and stopping rules stay here), each waiting on its
    trial's current fold, so ``n_jobs`` trials run at once on the executor's workers.
    """
    import optuna

    from modelloop.training.evaluation import DEFAULT_METRIC, check_metric
    from modelloop.training.evaluation import direction as metric_direction
    from modelloop.training.splits import SplitSpec
    from modelloop.training.splits import split as make_split
    from modelloop.training.trainers import check_frame, check_task

    tracker = as_tracker(tracker)
    n_trials = trial_count(n_trials, timeout)
    check_frame(frame, target)
    task = check_task(frame[target], task)
    metric = check_metric(metric or DEFAULT_METRIC[task], task)
    direction = check_direction(direction, metric_direction(metric))
    if sampler not in SAMPLERS:
        raise InvalidInput(f"unknown sampler {sampler!r}", hint=f"use one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise InvalidInput(f"unknown pruner {pruner!r}", hint="use median, hyperband or none")
    if not isinstance(cv, int) or cv < 1:
        raise InvalidInput(
            f"cv is {cv!r}", hint="give a number of folds >= 2, or 1 for one holdout"
        )
    rules = (n_trials, timeout, target_value, patience)
    if sampler != "grid" and all(rule is None for rule in rules):
        raise InvalidInput(
            "tuning has no stopping rule", hint="give n_trials, timeout, target_value or patience"
        )

    spec = SplitSpec.of(split)
    exclude = (spec.time_column,) if spec.time_column else ()
    spaces = spaces_for(algorithm, space, task, frame, target)
    if sampler == "grid" and len(spaces) > 1:
        raise InvalidInput(
            "grid search cannot search across algorithms", hint="use sampler 'tpe' or 'random'"
        )
    train_part, valid_part, record = make_split(frame, target, spec, task=task, seed=seed)
    folds = _folds(train_part, target, task, cv, spec, seed)

    tracker.log_params(
        {
            "algorithm": algorithm, "metric": metric, "direction": direction, "task": task,
            "sampler": sampler, "pruner": str(pruner), "cv": cv, "n_trials": n_trials,
            "timeout": timeout, "seed": seed, "n_jobs": n_jobs,
        }
    )  # fmt: skip
    tracker.set_info("split", record.to_dict())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction,
        sampler=make_sampler(sampler, spaces, seed),
        pruner=make_pruner(pruner, len(folds)),
    )
    warmed = warm_start_study(study, _trials_of(warm_start), spaces, tracker)
    if sampler == "grid" and n_trials is None:
        n_trials = math.prod(len(v) for v in next(iter(spaces.values())).grid().values())

    records: dict[int, dict] = {}
    stop = {"reason": None}
    errors: list[BaseException] = []

    def objective(trial):
        started = time.perf_counter()
        algo, params = suggest(trial, spaces)
        entry = {"number": trial.number, "algorithm": algo, "params": params, "state": "running"}
        records[trial.number] = entry
        child = trials.start(trial.number, {"algorithm": algo, **params}) if trials else None
        values: list[float] = []
        try:
            for step, (fit_part, score_part) in enumerate(folds):
                values.append(score(fit_part, score_part, target, algo, params, task, seed,
                                    preprocessing, exclude, metric))  # fmt: skip
                running = sum(values) / len(values)
                if child is not None:
                    child.log_metric(metric, values[-1], step=step)
                trial.report(running, step)
                if step < len(folds) - 1 and trial.should_prune():
                    entry.update(state="pruned", value=running, folds=values)
                    raise optuna.TrialPruned()
        except optuna.TrialPruned:
            if child is not None:
                child.set_info("state", "pruned")
                trials.end(child, "pruned")
            entry["seconds"] = time.perf_counter() - started
            raise
        except ModelloopError:
            if child is not None:
                trials.end(child, "failed", "invalid input")
            raise  # a user mistake (bad param name or value): stop the whole search
        except Exception as e:  # one bad corner of the space fails its trial, not the search
            errors.append(e)
            entry.update(state="failed", error=f"{type(e).__name__}: {e}")
            if child is not None:
                child.log_text(f"trial failed: {type(e).__name__}: {e}")
                trials.end(child, "failed", f"{type(e).__name__}: {e}")
            entry["seconds"] = time.perf_counter() - started
            return float("nan")
        value = sum(values) / len(values)
        entry.update(
            state="complete", value=value, folds=values, seconds=time.perf_counter() - started
        )
        if child is not None:
            child.log_metric(metric, value)
            child.log_metric("seconds", entry["seconds"])
            trials.end(child, "complete")
        return value

    def watch(study, frozen):
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        best = study.best_trial if complete else None
        entry = records.get(frozen.number, {})
        tracker.log_text(_progress_line(entry, metric, best, len(folds)))
        if best is None:
            return
        tracker.log_metric(f"best_{metric}", best.value, step=frozen.number)
        if target_value is not None and _reached(best.value, target_value, direction):
            stop["reason"] = f"reached the target value {target_value:g}"
            study.stop()
        if patience is not None:
            since = sum(1 for t in complete if t.number > best.number)
            if since >= patience:
                stop["reason"] = f"no improvement in {patience} trials"
                study.stop()
        if timeout is not None and not stop["reason"]:
            spent = [r["seconds"] for r in records.values() if "seconds" in r]
            best_seconds = records.get(best.number, {}).get("seconds")
            if _no_time_left(time.perf_counter() - search_started, timeout, spent, best_seconds,
                             len(folds)):  # fmt: skip
                stop["reason"] = f"time budget of {timeout:g} s used"
                study.stop()

    if len(spaces) > 1:  # auto: every algorithm gets a first trial before the sampler chooses
        for name in spaces:
            study.enqueue_trial({"algorithm": name})
    pool = None
    if executor not in (None, "local"):
        from modelloop.common import executors

        pool = executors.create(executor, n_jobs)

    def score(*args):
        return _score(*args) if pool is None else pool.submit(_score, *args).result()

    search_started = time.perf_counter()
    try:
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            n_jobs=n_jobs,
            callbacks=[watch],
            gc_after_trial=False,
        )
    finally:
        if pool is not None:
            pool.close()
    elapsed = time.perf_counter() - search_started
    reason = stop["reason"] or _default_reason(study, n_trials, timeout, elapsed, warmed)

    complete = [t for t in study.trials if t.state.name == "COMPLETE" and t.number >= warmed]
    if not complete and not any(t.state.name == "COMPLETE" for t in study.trials):
        first = errors[0] if errors else None
        raise InvalidInput(
            "no tuning trial completed"
            + (f"; the first failed with {type(first).__name__}: {first}" if first else ""),
            hint="check the search space and data, or give more time",
        ) from first
    best = study.best_trial
    best_algo, best_params = params_of(best.params, spaces)
    rows = [records[n] for n in sorted(records)]
    leaderboard = _leaderboard(rows, direction, by_algorithm=len(spaces) > 1)

    final = _final(train_part, valid_part, record, target, best_algo, best_params, task, seed,
                   preprocessing, exclude)  # fmt: skip
    final.extra["leaderboard"] = leaderboard
    tracker.log_metrics(final.metrics)
    tracker.log_metric(f"best_cv_{metric}", best.value)
    tracker.set_info("best_params", {"algorithm": best_algo, **best_params})
    tracker.set_info("leaderboard", leaderboard)
    tracker.set_info("stopped_because", reason)
    tracker.log_text(
        f"tuning stopped ({reason}) after {len(rows)} trials; best {metric} {best.value:.6g} "
        f"with {best_algo} {best_params}"
    )
    return TuneResult(
        metric=metric,
        direction=direction,
        best_value=float(best.value),
        best_params=best_params,
        best_algorithm=best_algo,
        trials=rows,
        leaderboard=leaderboard,
        final=final,
        stopped_because=reason,
        study=study,
    )


# -- scoring ----------------------------------------------------------------------------------------
def _folds(train_part, target: str, task: str, cv: int, spec, seed: int) -> list[tuple]:
    """The (fit, score) frame pairs every trial is scored on: the same for all trials."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split

    if cv == 1:
        stratify = train_part[target] if task in CLASSIFICATION else None
        fit, score = train_test_split(
            train_part, test_size=0.2, random_state=seed, stratify=stratify
        )
        return [(fit, score)]
    if spec.time_column:
        ordered = train_part.sort_values(spec.time_column, kind="stable")
        splitter = TimeSeriesSplit(n_splits=cv)
        return [(ordered.iloc[a], ordered.iloc[b]) for a, b in splitter.split(ordered)]
    if task in CLASSIFICATION:
        if train_part[target].value_counts().min() < cv:
            raise InvalidInput(
                f"some class of {target!r} has fewer than {cv} rows, too few for {cv}-fold cross-validation",
                hint="use fewer folds (cv), or gather more rows of the rare class",
            )
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        pairs = splitter.split(train_part, train_part[target])
    else:
        pairs = KFold(n_splits=cv, shuffle=True, random_state=seed).split(train_part)
    return [(train_part.iloc[a], train_part.iloc[b]) for a, b in pairs]


def _score(fit_part, score_part, target, algo, params, task, seed, preprocessing, exclude, metric):
    from modelloop.training.evaluation import score
    from modelloop.training.trainers import fit_model, model_inputs

    model, columns = fit_model(fit_part, target, algo, params, task=task, seed=seed,
                               preprocessing=preprocessing, exclude=exclude)  # fmt: skip
    value = score(model, score_part[[*model_inputs(model, columns), target]], target, task, metric)
    if value is None:
        raise InvalidInput(
            f"{algo} gives no {metric} (it has no predict_proba)",
            hint="choose a metric from its predictions, e.g. accuracy or f1",
        )
    return value


def _final(
    train_part, valid_part, record, target, algo, params, task, seed, preprocessing, exclude
):
    """Retrain the best params on the whole training part; evaluate on the validation part."""
    from modelloop.training.evaluation import evaluate
    from modelloop.training.trainers import TrainResult, fit_model, model_inputs

    started = time.perf_counter()
    model, columns = fit_model(train_part, target, algo, params, task=task, seed=seed,
                               preprocessing=preprocessing, exclude=exclude)  # fmt: skip
    fit_seconds = time.perf_counter() - started
    names = model_inputs(model, columns)
    classes = getattr(model, "classes_", None)
    return TrainResult(
        model=model,
        task=task,
        target=target,
        algorithm=algo,
        params=params,
        features=[{"name": str(c), "dtype": str(train_part[c].dtype)} for c in names],
        columns=columns,
        classes=None if classes is None else to_jsonable(list(classes), nonfinite="keep"),
        split=record,
        evaluation=evaluate(model, valid_part[[*names, target]], target, task),
        seed=seed,
        fit_seconds=fit_seconds,
    )


# -- progress and stopping -------------------------------------------------------------------------
def _progress_line(entry: dict, metric: str, best, n_folds: int) -> str:
    """One line per finished trial: its number, state and value, the best so far, its cost."""
    state = entry.get("state", "failed")
    head = f"trial {entry.get('number', '?')} {state}"
    if state == "failed":
        head += f" ({entry.get('error', 'no error recorded')})"
    elif entry.get("value") is not None:
        head += f": {metric} {entry['value']:.6g}"
        if state == "pruned":
            head += f" after {len(entry.get('folds', []))} of {n_folds} folds"
    tail = f"best {best.value:.6g} (trial {best.number})" if best is not None else "no best yet"
    return f"{head}; {tail}; {entry.get('algorithm', '?')} in {entry.get('seconds', 0):.1f}s"


def _no_time_left(elapsed, timeout, spent: list[float], best_seconds, n_folds: int) -> bool:
    """Whether another trial plus retraining the best would overrun the time budget.

    The next trial is guessed to cost the median trial; retraining fits once on the whole
    training part, about a fold's fit scaled up (counted twice, for margin).
    """
    if not spent:
        return False
    spent = sorted(spent)
    next_trial = spent[len(spent) // 2]
    retrain = 2 * (best_seconds if best_seconds is not None else next_trial) / max(n_folds, 1)
    return elapsed + next_trial + retrain > timeout


# -- results ----------------------------------------------------------------------------------------
def _reached(value: float, target: float, direction: str) -> bool:
    return value >= target if direction == "maximize" else value <= target


def _default_reason(study, n_trials, timeout, elapsed, warmed) -> str:
    new = len(study.trials) - warmed
    if n_trials is not None and new >= n_trials:
        return f"ran {n_trials} trials"
    if timeout is not None and elapsed >= timeout:
        return f"time budget of {timeout:g} s used"
    return "search space exhausted"


def _leaderboard(rows: list[dict], direction: str, *, by_algorithm: bool) -> list[dict]:
    done = [r for r in rows if r["state"] == "complete"]
    done.sort(key=lambda r: r["value"], reverse=direction == "maximize")
    if not by_algorithm:
        return done
    best: dict[str, dict] = {}
    for r in done:
        if r["algorithm"] not in best:
            best[r["algorithm"]] = {
                **r,
                "trials": sum(x["algorithm"] == r["algorithm"] for x in rows),
            }
    return list(best.values())


def _trials_of(warm_start) -> list[dict] | None:
    """An earlier run's trials: a :class:`TuneResult`'s, or the list itself."""
    return warm_start.trials if isinstance(warm_start, TuneResult) else warm_start
