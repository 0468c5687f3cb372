"""Tuning on Ray vs on this machine: the same 30-trial study through ``modelloop tune``.

Equal work, checked: one workspace, one ingested dataset (a binary task, 10 numeric and 2
categorical columns), and three runs of ``ws.training.tune`` with the same grid of 30 points
(HistGradientBoosting: learning rate x leaf nodes x leaf size), 3-fold CV, no pruner, 2 trials at
a time, the production trial tracking (every trial a child job in the metadata store):

* local: the job on this machine as ``[jobs] runner`` says (by default a warm worker, forked
  from the preloaded server the warm-up job started), its 2 trials as Optuna threads;
* Ray, cold: ``--executor ray`` with no Ray running: the job starts a local Ray (every core),
  runs as a Ray task, and scores each trial's folds as Ray tasks, 2 trials at a time;
* Ray, warm: the same again on the Ray the cold run left (its workers have imported everything).

Both sides get the same cores (Ray's local instance is given this machine's) and one OpenMP
thread per fit (``OMP_NUM_THREADS=1``, which Ray sets for its workers too), so 2 fits run at once
on either. The three runs must score every grid point identically (compared per point) and find
the same best params. A warm-up job computes the dataset's monitoring baseline first, so no run
pays for it (and, with the default runner, starts the warm server the local run then uses).

On one machine Ray pays its start-up (seconds) and its workers' first imports; it is the way to
more cores than one machine has, not a way to make one machine faster: the figures say how much
it costs here. (Once warm it may beat the local run: the local job's 2 trials are threads of one
process sharing its GIL for the Python parts of a fit, Ray's are 2 processes.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before scikit-learn loads; workers inherit it
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tuning import make_task  # noqa: E402 - the same task as the tuning benchmark

GRID = {
    "learning_rate": [0.05, 0.1, 0.2],
    "max_leaf_nodes": [8, 15, 31, 63, 127],
    "min_samples_leaf": [20, 60],
    "max_iter": 60,
    "early_stopping": False,
}


def _tune(ws, executor: str, n_jobs: int) -> tuple[float, dict]:
    started = time.perf_counter()
    job = ws.training.tune("bench", "y", "hist_gradient_boosting", GRID, sampler="grid",
                           pruner=None, n_trials=None, cv=3, n_jobs=n_jobs, executor=executor,
                           report=False)  # fmt: skip
    seconds = time.perf_counter() - started
    trials = ws.jobs.list(parent_id=job["id"], limit=None)
    scores = {_key(t["params"]): t["value"] for t in job["outputs"]["trials"]}
    print(f"  {executor:5s}: {seconds:6.1f} s, {len(trials)} trial jobs, best "
          f"{job['outputs']['best']['value']:.4f} {job['outputs']['best']['params']}", flush=True)
    return seconds, {"scores": scores, "best": job["outputs"]["best"], "trial_jobs": len(trials)}


def _key(params: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in params.items()))


def measure(rows: int = 5_000, n_jobs: int = 2) -> dict:
    import ray

    from modelloop import Workspace

    print(f"tuning on Ray vs locally: {rows:,} rows, 30-point grid, 3-fold CV, {n_jobs} trials "
          f"at a time, cores={os.cpu_count()}", flush=True)
    if ray.is_initialized():
        raise SystemExit("run this with no Ray in the process: the cold run starts one")
    out: dict = {"rows": rows}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        path = Path(tmp) / "bench.csv"
        make_task(rows).to_csv(path, index=False)
        ws.datasets.ingest("bench", [path])
        ws.training.train("bench", "y", "logistic_regression", report=False)  # warm-up
        try:
            out["local"], local = _tune(ws, "local", n_jobs)
            out["ray_cold"], cold = _tune(ws, "ray", n_jobs)
            out["ray_warm"], warm = _tune(ws, "ray", n_jobs)
        finally:
            if ray.is_initialized():
                ray.shutdown()
            ws.close()
    same = (local["scores"] == cold["scores"] == warm["scores"]
            and local["best"] == cold["best"] == warm["best"] and len(local["scores"]) == 30
            and local["trial_jobs"] == cold["trial_jobs"] == warm["trial_jobs"] == 30)
    out["same"] = same
    print(f"  every grid point scored the same and the same best: {same}")
    print(f"  Ray cold / local: {out['ray_cold'] / out['local']:6.2f} x  (includes starting Ray)")
    print(f"  Ray warm / local: {out['ray_warm'] / out['local']:6.2f} x  (Ray already running)")
    if not same:
        raise SystemExit("the runs disagree: not the same work")
    return out


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py: 3,000 rows (quick) or 20,000."""
    res = measure(3_000 if quick else 20_000)
    note = f"{res['rows']:,} rows, 30 trials, 2 at a time"
    return [
        {"benchmark": "ray_jobs", "figure": "tune 30 trials, local ([jobs] runner)",
         "value": res["local"], "unit": "s", "goal": None, "met": None, "note": note},
        {"benchmark": "ray_jobs", "figure": "tune 30 trials on Ray, cold (starts a local Ray)",
         "value": res["ray_cold"], "unit": "s", "goal": None, "met": None},
        {"benchmark": "ray_jobs", "figure": "tune 30 trials on Ray, warm",
         "value": res["ray_warm"], "unit": "s", "goal": None, "met": None},
        {"benchmark": "ray_jobs", "figure": "Ray cold / local", "value": res["ray_cold"] / res["local"],
         "unit": "x", "goal": None, "met": None},
        {"benchmark": "ray_jobs", "figure": "Ray warm / local", "value": res["ray_warm"] / res["local"],
         "unit": "x", "goal": None, "met": None},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=2, help="trials at a time")
    args = parser.parse_args(argv)
    measure(args.rows, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
