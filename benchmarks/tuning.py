"""Tuning: modelloop's ``tune`` vs a plain Optuna loop running the same objective.

A 100k-row binary task (10 numeric + 2 categorical columns, a non-linear signal). Both sides run
in this one process, on the same data, split and folds, after a one-trial warm-up of each on a
small frame (imports, OpenMP's threads, the store's tables):

* the anchor: a plain Optuna study (TPE, seed 0, median pruner) whose objective fits the same
  scikit-learn pipeline (modelloop's preprocessing + HistGradientBoostingClassifier) on each of
  3 cross-validation folds, reports the running mean ROC AUC, and finally refits the best params
  on the training part — the work any tuning job has to do;
* modelloop: ``tune(..., n_trials=30)`` with the same space, seed, pruner and folds, every trial
  a tracked child job in a real SQLite metadata store (params, per-fold metric series, status).

Printed: both wall times, their ratio (goal: overhead <= 10 %), and the per-job bookkeeping
overhead in milliseconds (the start + end of one tracked trial job, measured alone). With
``--parallel`` it also runs modelloop with 2 parallel trials (Optuna threads) to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SPACE = {
    "learning_rate": {"type": "float", "low": 0.03, "high": 0.3, "log": True},
    "max_iter": {"type": "int", "low": 30, "high": 150},
    "max_leaf_nodes": {"type": "int", "low": 8, "high": 64, "log": True},
    "min_samples_leaf": {"type": "int", "low": 10, "high": 200, "log": True},
    "l2_regularization": {"type": "float", "low": 1e-6, "high": 1.0, "log": True},
    "early_stopping": False,
}


def make_task(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 10))
    region = rng.choice(["n", "s", "e", "w"], size=rows)
    plan = rng.choice(["basic", "plus", "pro"], size=rows, p=[0.6, 0.3, 0.1])
    logit = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2 + (region == "n") * 0.7
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    frame["region"], frame["plan"] = region, plan
    frame["y"] = (logit + rng.normal(size=rows) > 0).astype(int)
    return frame


def plain_optuna(frame, trials: int, seed: int) -> float:
    """The anchor: the same objective written directly against Optuna and scikit-learn."""
    import optuna
    from sklearn.metrics import roc_auc_score

    from modelloop.training.space import load_space
    from modelloop.training.splits import split
    from modelloop.training.trainers import fit_model
    from modelloop.training.tuning import _folds

    started = time.perf_counter()
    train_part, valid_part, _ = split(frame, "y", None, task="binary", seed=seed)
    folds = _folds(train_part, "y", "binary", 3, _Spec(), seed)
    space = load_space(SPACE)

    def objective(trial):
        params = space.suggest(trial)
        scores = []
        for step, (fit, score) in enumerate(folds):
            model, _ = fit_model(
                fit, "y", "hist_gradient_boosting", params, task="binary", seed=seed
            )
            proba = model.predict_proba(score.drop(columns=["y"]))[:, 1]
            scores.append(roc_auc_score(score["y"], proba))
            trial.report(sum(scores) / len(scores), step)
            if step < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return sum(scores) / len(scores)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    study.optimize(objective, n_trials=trials)
    best = {**space.fixed, **study.best_params}
    model, _ = fit_model(train_part, "y", "hist_gradient_boosting", best, task="binary", seed=seed)
    roc_auc_score(valid_part["y"], model.predict_proba(valid_part.drop(columns=["y"]))[:, 1])
    return time.perf_counter() - started


class _Spec:
    time_column = None


class JobTrials:
    """Each trial a child job in a real metadata store, as a tracked tuning job does it."""

    def __init__(self, root: Path):
        from modelloop.artifacts import ArtifactStore
        from modelloop.store import open_store
        from modelloop.training.job_context import JobContext, JobRecorder

        store = open_store(f"sqlite:///{root / 'meta.db'}")
        artifacts = ArtifactStore(str(root / "artifacts"))
        parent = store.create_job(kind="tune", name="bench", spec={}, params={}, status="running")
        self.ctx = JobContext(
            job_id=parent,
            store=store,
            artifacts=artifacts,
            datasets=None,
            recorder=JobRecorder(store, artifacts, parent),
            scratch=root,
        )

    def start(self, number, params):
        return self.ctx.child_job("trial", f"trial-{number}", {}, params)

    def end(self, tracker, state, error=None):
        status = {"complete": "succeeded", "pruned": "succeeded"}.get(state, "failed")
        tracker.set_info("state", state)
        self.ctx.end_child(tracker, status, error)


def with_modelloop(frame, trials: int, seed: int, root: Path, n_jobs: int = 1) -> float:
    from modelloop.training.tuning import tune

    started = time.perf_counter()
    result = tune(
        frame, "y", "hist_gradient_boosting", SPACE, n_trials=trials, seed=seed, cv=3,
        pruner="median", n_jobs=n_jobs, trials=JobTrials(root),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    states = [t["state"] for t in result.trials]
    print(
        f"  modelloop n_jobs={n_jobs}: best cv roc_auc {result.best_value:.4f}, "
        f"{states.count('complete')} complete / {states.count('pruned')} pruned, "
        f"holdout roc_auc {result.final.metrics['roc_auc']:.4f}"
    )
    return seconds


def bookkeeping_ms(root: Path, jobs: int = 200) -> float:
    """Start + report 3 fold points + end of one tracked trial job, in milliseconds."""
    trials = JobTrials(root)
    started = time.perf_counter()
    for i in range(jobs):
        t = trials.start(i, {"learning_rate": 0.1, "max_iter": 100})
        for step in range(3):
            t.log_metric("roc_auc", 0.8, step=step)
        t.log_metric("roc_auc", 0.8)
        trials.end(t, "complete")
    return (time.perf_counter() - started) / jobs * 1000


def measure(rows: int, trials: int, seed: int = 0, parallel: bool = False) -> dict:
    """Both sides on the same frame, split and folds; prints as it goes."""
    frame = make_task(rows)
    print(f"tuning: {rows} rows, {trials} trials, 3-fold CV, cores={os.cpu_count()}", flush=True)
    out: dict = {"rows": rows, "trials": trials}
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up of both sides (imports, OpenMP's threads, the store's tables): one trial each
        small = make_task(2_000, seed=1)
        plain_optuna(small, 1, seed)
        with_modelloop(small, 1, seed, Path(tmp, "warm"))
        out["plain"] = plain_optuna(frame, trials, seed)
        out["ours"] = with_modelloop(frame, trials, seed, Path(tmp, "a"))
        print(f"  plain Optuna loop (anchor): {out['plain']:8.1f} s")
        print(f"  modelloop tune:             {out['ours']:8.1f} s")
        print(f"  ratio modelloop / Optuna:   {out['ours'] / out['plain']:8.3f}  (goal <= 1.10)")
        out["bookkeeping_ms"] = bookkeeping_ms(Path(tmp, "b"))
        print(f"  per-job bookkeeping:        {out['bookkeeping_ms']:8.2f} ms per trial job")
        if parallel:
            out["both"] = with_modelloop(frame, trials, seed, Path(tmp, "c"), n_jobs=2)
            print(f"  modelloop, 2 parallel trials: {out['both']:6.1f} s "
                  f"({out['both'] / out['ours']:.2f} x the serial run)")
    return out


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py: 10,000 rows and 10 trials when quick (the issue: 100,000 and
    30)."""
    res = measure(10_000, 10) if quick else measure(100_000, 30)
    ratio = res["ours"] / res["plain"]
    note = f"{res['rows']:,} rows, {res['trials']} trials"
    return [
        {"benchmark": "tuning", "figure": "plain Optuna loop (anchor)", "value": res["plain"],
         "unit": "s", "goal": None, "met": None, "note": note},
        {"benchmark": "tuning", "figure": "modelloop tune", "value": res["ours"], "unit": "s",
         "goal": None, "met": None},
        {"benchmark": "tuning", "figure": "modelloop tune / plain Optuna", "value": ratio,
         "unit": "x", "goal": "<= 1.10x", "met": ratio <= 1.10},
        {"benchmark": "tuning", "figure": "bookkeeping per trial job",
         "value": res["bookkeeping_ms"], "unit": "ms", "goal": None, "met": None},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", action="store_true", help="also run 2 parallel trials")
    args = parser.parse_args(argv)
    measure(args.rows, args.trials, args.seed, args.parallel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
