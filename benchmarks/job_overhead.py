"""Job overhead: ``modelloop train`` / ``modelloop tune`` typed in a shell vs a plain script doing
the same work.

Equal work, checked: both sides are real subprocesses started from this one, on the same CSV
file (5,000 rows: six numeric columns with missing values, two categorical, a binary target).

* train. modelloop: ``modelloop train DATA -t y -a logistic_regression --json`` in a workspace
  where the CSV was ingested first (untimed): the command, its job's worker process, the
  metadata records, the model package, its metrics. The anchor: a Python script that reads the
  CSV with pandas, splits it 80/20 stratified (seed 0), fits the same scikit-learn pipeline
  (median imputation + scaling for numbers, "__missing__" + one-hot for text, then
  ``LogisticRegression(max_iter=1000)``), scores it (ROC AUC) and pickles it. Timed three ways:
  the job on a cold start (``[jobs] runner = "process"``: a fresh interpreter per job, which the
  command starts before its checks so that its imports overlap them; goal <= 1.5x the script;
  the CPU time of the command and its worker against the script's is printed next to it, no
  goal: what the overlap cannot hide on a machine without a free core), with a warm worker (the default runner, its workspace server already
  running; goal <= 1.0x) and the first warm job of a workspace (which starts the server; no
  goal). Both sides' validation ROC AUC must agree within 0.005.
* tune. modelloop: ``modelloop tune DATA -a logistic_regression --trials 30 --cv 3`` (TPE, seed
  0, median pruner): one tracked job whose 30 trials are child jobs recorded by the production
  trial tracking, then the best params refitted and evaluated. The anchor: a plain Optuna loop
  (same sampler, seed, pruner, space ``C`` log-uniform 1e-3..1e2, the same 3 stratified folds of
  the same 80 % part, the running mean ROC AUC reported per fold), then the best refitted,
  scored on the 20 % and pickled (goal: modelloop <= 1.1x). The best cross-validated ROC AUC
  must agree within 0.005.

Each side gets a warm-up run first (file cache, the warm server), then the median of the
repeats, the sides interleaved so that a load change hits them alike. Run:
``python benchmarks/job_overhead.py [--repeats N] [--trials N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

ROWS = 5000
AUC_TOLERANCE = 0.005

#: The anchor's common part: read, split, the pipeline (mirrors what modelloop builds).
_COMMON = """
import pickle, sys, time
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

frame = pd.read_csv(sys.argv[1])
numeric = [c for c in frame.columns if c.startswith("x")]
text = [c for c in frame.columns if c.startswith("c")]
train, valid = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["y"])

def pipeline(C=1.0):
    prep = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), numeric),
        ("onehot", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                             ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]), text),
    ], remainder="drop", sparse_threshold=0.0)
    return Pipeline([("encode", prep), ("model", LogisticRegression(C=C, max_iter=1000, random_state=0))])

def auc(model, part):
    return roc_auc_score(part["y"], model.predict_proba(part[numeric + text])[:, 1])
"""

PLAIN_TRAIN = _COMMON + """
model = pipeline().fit(train[numeric + text], train["y"])
value = auc(model, valid)
with open(sys.argv[2], "wb") as f:
    pickle.dump(model, f)
print(value)
"""

PLAIN_TUNE = _COMMON + """
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
folds = [(train.iloc[a], train.iloc[b]) for a, b in
         StratifiedKFold(n_splits=3, shuffle=True, random_state=0).split(train, train["y"])]

def objective(trial):
    C = trial.suggest_float("C", 1e-3, 1e2, log=True)
    scores = []
    for step, (fit, score) in enumerate(folds):
        scores.append(auc(pipeline(C).fit(fit[numeric + text], fit["y"]), score))
        trial.report(sum(scores) / len(scores), step)
        if step < len(folds) - 1 and trial.should_prune():
            raise optuna.TrialPruned()
    return sum(scores) / len(scores)

study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                            pruner=optuna.pruners.MedianPruner())
study.optimize(objective, n_trials=int(sys.argv[3]))
model = pipeline(**study.best_params).fit(train[numeric + text], train["y"])
auc(model, valid)
with open(sys.argv[2], "wb") as f:
    pickle.dump(model, f)
print(study.best_value)
"""


def make_data(path: Path, rows: int = ROWS, seed: int = 0) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 6))
    X[rng.random(size=X.shape) < 0.03] = np.nan  # some missing values to impute
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["c_region"] = rng.choice(["north", "south", "east", "west"], size=rows)
    frame["c_plan"] = rng.choice(["basic", "plus", "pro"], size=rows, p=[0.6, 0.3, 0.1])
    logit = (np.nan_to_num(X[:, 0]) - 0.7 * np.nan_to_num(X[:, 1]) + 0.4 * np.nan_to_num(X[:, 2])
             + (frame["c_region"] == "north") * 0.8)  # fmt: skip
    frame["y"] = (logit + rng.normal(size=rows) > 0).astype(int)
    frame.to_csv(path, index=False)
    return path


def _env(runner: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MODELLOOP_JOB_RUNNER"}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    if runner:
        env["MODELLOOP_JOB_RUNNER"] = runner
    return env


def _timed(cmd: list[str], *, cwd: Path, env: dict, cpu: list | None = None) -> tuple[float, str]:
    """Wall seconds and standard output of ``cmd``; its CPU seconds (with its children's: a
    job's worker) appended to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def _modelloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelloop", *args]


def _value(out: str, key: str) -> float:
    """The first ``key`` found in the command's JSON output (nested anywhere)."""
    def find(node):
        if isinstance(node, dict):
            if isinstance(node.get(key), int | float):
                return float(node[key])
            for value in node.values():
                if (found := find(value)) is not None:
                    return found
        if isinstance(node, list):
            for value in node:
                if (found := find(value)) is not None:
                    return found
        return None

    found = find(json.loads(out))
    if found is None:
        raise RuntimeError(f"no {key} in the output: {out[:500]}")
    return found


def measure(repeats: int = 3, trials: int = 30, tune_repeats: int = 1) -> dict:
    from modelloop import Workspace
    from modelloop.training import warm_workers

    with tempfile.TemporaryDirectory(prefix="ml-overhead-") as tmp:
        tmp = Path(tmp)
        csv = make_data(tmp / "data.csv")
        Workspace.init(tmp / "ws").close()
        ws = Workspace(tmp / "ws")
        ws.datasets.ingest("data", [csv])  # untimed, as the issue says
        state = ws.config.state_dir
        ws.close()
        root = tmp / "ws"
        plain = [sys.executable, "-c", PLAIN_TRAIN, str(csv), str(tmp / "plain.pkl")]
        train = _modelloop("train", "data", "-t", "y", "-a", "logistic_regression", "--json")
        res: dict = {"rows": ROWS, "trials": trials, "repeats": repeats}
        try:
            # the first warm job of the workspace starts its server: timed once, no goal
            res["first_warm"], _ = _timed(train, cwd=root, env=_env("warm"))
            # warm-ups: the file cache, the cold worker's imports, the server's learning
            _timed(plain, cwd=tmp, env=_env(None))
            _timed(train, cwd=root, env=_env("process"))
            _timed(train, cwd=root, env=_env("warm"))
            warm_workers.wait_ready(state, root)
            times: dict[str, list[float]] = {"plain": [], "cold": [], "warm": []}
            cpu: dict[str, list[float]] = {"plain": [], "cold": [], "warm": []}
            auc: dict[str, float] = {}
            for _ in range(repeats):
                seconds, out = _timed(plain, cwd=tmp, env=_env(None), cpu=cpu["plain"])
                times["plain"].append(seconds)
                auc["plain"] = float(out.split()[-1])
                for runner, key in (("process", "cold"), ("warm", "warm")):
                    seconds, out = _timed(train, cwd=root, env=_env(runner), cpu=cpu[key])
                    times[key].append(seconds)
                    auc[key] = _value(out, "roc_auc")
                warm_workers.wait_ready(state, root)  # the server idle again (it learns between jobs)
            res["train"] = {k: statistics.median(v) for k, v in times.items()}
            res["train_cpu"] = {k: statistics.median(v) for k, v in cpu.items()}
            res["train_auc"] = auc

            plain_tune = [sys.executable, "-c", PLAIN_TUNE, str(csv), str(tmp / "tuned.pkl"),
                          str(trials)]  # fmt: skip
            tune = _modelloop("tune", "data", "-t", "y", "-a", "logistic_regression", "--trials",
                              str(trials), "--cv", "3", "--seed", "0", "--sampler", "tpe",
                              "--pruner", "median", "--json")  # fmt: skip
            _timed(plain_tune, cwd=tmp, env=_env(None))  # warm-ups
            _timed(tune, cwd=root, env=_env("warm"))
            warm_workers.wait_ready(state, root)
            tune_times: dict[str, list[float]] = {"plain": [], "modelloop": []}
            for _ in range(tune_repeats):
                seconds, out = _timed(plain_tune, cwd=tmp, env=_env(None))
                tune_times["plain"].append(seconds)
                best_plain = float(out.split()[-1])
                seconds, out = _timed(tune, cwd=root, env=_env("warm"))
                tune_times["modelloop"].append(seconds)
                best_modelloop = _value(out, "best_value")
                warm_workers.wait_ready(state, root)
            res["tune"] = {k: statistics.median(v) for k, v in tune_times.items()}
            res["tune_best"] = {"plain": best_plain, "modelloop": best_modelloop}
        finally:
            warm_workers.shutdown(state)
    return res


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= AUC_TOLERANCE


def rows_of(res: dict) -> list[dict]:
    train, tune = res["train"], res["tune"]
    auc, best = res["train_auc"], res["tune_best"]
    train_ok = _agree(auc["plain"], auc["cold"]) and _agree(auc["plain"], auc["warm"])
    tune_ok = _agree(best["plain"], best["modelloop"])

    def row(figure, value, unit, goal=None, met=None, note=None):
        out = {"benchmark": "job_overhead", "figure": figure, "value": value, "unit": unit,
               "goal": goal, "met": met}  # fmt: skip
        return {**out, "note": note} if note else out

    cold, warm = train["cold"] / train["plain"], train["warm"] / train["plain"]
    tuned = tune["modelloop"] / tune["plain"]
    agreement = f"ROC AUC plain {auc['plain']:.4f}, cold {auc['cold']:.4f}, warm {auc['warm']:.4f}"
    return [
        row("plain script: train (pandas + scikit-learn, pickle)", train["plain"], "s"),
        row("modelloop train, cold start (process runner)", train["cold"], "s"),
        row("modelloop train, warm worker", train["warm"], "s"),
        row("modelloop train, first job of a workspace (starts the warm server)",
            res["first_warm"], "s"),  # fmt: skip
        row("train cold / plain", cold, "x", "<= 1.5x", cold <= 1.5 and train_ok, agreement),
        row("train cold / plain, CPU seconds (command and worker / script)",
            res["train_cpu"]["cold"] / res["train_cpu"]["plain"], "x"),
        row("train warm / plain", warm, "x", "<= 1.0x", warm <= 1.0 and train_ok, agreement),
        row(f"plain Optuna loop: {res['trials']} trials", tune["plain"], "s"),
        row(f"modelloop tune: {res['trials']} trials", tune["modelloop"], "s"),
        row("tune / plain Optuna", tuned, "x", "<= 1.1x", tuned <= 1.1 and tune_ok,
            f"best cv ROC AUC plain {best['plain']:.4f}, modelloop {best['modelloop']:.4f}"),
    ]  # fmt: skip


def print_table(rows: list[dict]) -> None:
    for r in rows:
        goal = f"  goal {r['goal']}: {'met' if r['met'] else 'NOT met'}" if r["goal"] else ""
        value = f"{r['value']:.2f} {r['unit']}"
        print(f"{r['figure']:<70} {value:>10}{goal}")
        if r.get("note") and r["goal"]:
            print(f"{'':<72}({r['note']})")


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py: 3 train repeats and one 30-trial tune per side when quick
    (about 1-2 minutes on 2 idle cores), else 5 and 3."""
    res = measure(repeats=3 if quick else 5, trials=30, tune_repeats=1 if quick else 3)
    rows = rows_of(res)
    print_table(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed train runs per side")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--tune-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    res = measure(args.repeats, args.trials, args.tune_repeats)
    print_table(rows_of(res))
    auc, best = res["train_auc"], res["tune_best"]
    agreed = all(_agree(auc["plain"], auc[k]) for k in ("cold", "warm")) and _agree(
        best["plain"], best["modelloop"])
    if not agreed:
        print("the outputs disagree (see the notes): the figures compare unequal work")
    return 0 if agreed else 1


if __name__ == "__main__":
    sys.exit(main())
