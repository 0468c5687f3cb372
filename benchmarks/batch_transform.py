"""Batch transform speed and memory: modelloop vs ``mlflow models predict`` vs the in-memory floor.

Generates an N-row, 20-column numeric CSV (default 200,000 rows; ``--rows 1000000`` for the
issue's full size), registers a logistic regression and a 100-tree random forest trained on a
sample of it, and scores the whole file with each model three ways, each a fresh subprocess
(imports and start-up included, as a user would run them), side by side in one run:

- floor: ``pandas.read_csv`` + ``model.predict`` + ``DataFrame.to_csv`` in one process;
- mlflow: ``mlflow models predict --env-manager local`` of the model exported as an MLflow model;
- modelloop: ``modelloop transform`` (a tracked, resumable job; worker processes = the cores).

Peak memory is the highest sum over the command and all its child processes (job worker, fork
server, pool workers), sampled every 50 ms with psutil, as RSS and as PSS (shared pages counted
once). Prints rows/s, time ratios against mlflow and the floor (goals:
>= 5x mlflow's throughput, within 1.5x of the floor's time, peak memory <= 25% of mlflow's).

Usage: ``python benchmarks/batch_transform.py [--rows N] [--workers N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelloop.common import executors

FLOOR = r"""
import sys, pandas as pd
from modelloop.registry.package import load_package
model = load_package(sys.argv[1])
frame = pd.read_csv(sys.argv[2])
pd.DataFrame({"prediction": model.predict(frame)}).to_csv(sys.argv[3], index=False)
"""


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS and peak PSS (bytes) of the whole process tree of ``cmd``.

    RSS sums each process's resident pages, so pages that forked workers share with their
    parent count once per process; PSS divides each shared page among its sharers, so its sum
    is the memory the tree really holds. Both are printed.
    """
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss = pss = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    full = p.memory_full_info()
                    rss += full.rss
                    pss += full.pss
        except psutil.Error:
            pass
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} … failed:\n{err[-3000:]}")
    return seconds, peak_rss, peak_pss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the CSV (issue: 1000000)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--executor", default="processes", choices=executors.names())
    ap.add_argument("--chunk-mb", default="16")
    ap.add_argument("--skip-mlflow", action="store_true", help="leave mlflow out (it is slow)")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from modelloop import Workspace
    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    tmp = Path(tempfile.mkdtemp(prefix="bench-transform-"))
    rng = np.random.default_rng(0)
    cols = [f"x{i}" for i in range(20)]
    frame = pd.DataFrame(rng.normal(size=(args.rows, 20)), columns=cols)
    source = tmp / "input.csv"
    frame.to_csv(source, index=False)
    sample = frame.iloc[:20_000]
    target = (sample.x0 + sample.x1 * sample.x2 > 0).astype(int)
    ws = Workspace.init(tmp / "ws")
    models = {
        "logistic regression": LogisticRegression(max_iter=500).fit(sample, target),
        "random forest (100 trees)": RandomForestClassifier(
            n_estimators=100, max_depth=12, random_state=0).fit(sample, target),
    }
    size_mb = source.stat().st_size / 2**20
    print(f"input: {args.rows:,} rows x 20 columns, {size_mb:.0f} MB CSV; "
          f"modelloop workers: {args.workers}")
    for n, (label, model) in enumerate(models.items()):
        name = f"m{n}"
        save_package(model, tmp / f"pkg{n}", signature=Signature.from_frame(sample))
        ws.models.register(name, tmp / f"pkg{n}")
        ws.models.approve(f"{name}@1", reason="benchmark")  # transforms score approved versions
        pkg = ws.models.package_dir(f"{name}@1")
        results = {}
        results["floor"] = measure([sys.executable, "-c", FLOOR, str(pkg), str(source),
                                    str(tmp / f"floor{n}.csv")])
        results["modelloop"] = measure([sys.executable, "-m", "modelloop", "-w", str(ws.root),
                                        "transform", "--model", f"{name}@1", "--input",
                                        str(source), "--output", str(tmp / f"ml{n}.csv"),
                                        "--workers", str(args.workers),
                                        "--executor", args.executor, "--chunk-mb", args.chunk_mb])
        if not args.skip_mlflow:
            mlflow_dir = ws.models.export(f"{name}@1", tmp / f"mlflow{n}")
            results["mlflow"] = measure(
                [sys.executable, "-m", "mlflow", "models", "predict", "-m", str(mlflow_dir),
                 "-i", str(source), "-t", "csv", "-o", str(tmp / f"mlflow{n}.json"),
                 "--env-manager", "local"],
                env={"MLFLOW_TRACKING_URI": f"file://{tmp}/mlruns"})
        ours = pd.read_csv(tmp / f"ml{n}.csv")["prediction"].to_numpy()
        floor = pd.read_csv(tmp / f"floor{n}.csv")["prediction"].to_numpy()
        assert (ours == floor).all(), "modelloop's predictions differ from the floor's"
        print(f"\n{label}")
        print(f"  {'':10} {'seconds':>8} {'rows/s':>11} {'peak RSS':>10} {'peak PSS':>10}")
        for who, (secs, rss, pss) in results.items():
            print(f"  {who:10} {secs:8.2f} {args.rows / secs:11,.0f} {rss / 2**20:7.0f} MB "
                  f"{pss / 2**20:7.0f} MB")
        secs, rss, pss = results["modelloop"]
        print(f"  modelloop / floor  throughput: {results['floor'][0] / secs:.2f}x  "
              f"(time ratio {secs / results['floor'][0]:.2f}, goal <= 1.5)")
        if "mlflow" in results:
            m_secs, m_rss, m_pss = results["mlflow"]
            print(f"  modelloop / mlflow throughput: {m_secs / secs:.2f}x  (goal >= 5)")
            print(f"  modelloop / mlflow peak memory: RSS {rss / m_rss:.2f}, PSS {pss / m_pss:.2f}"
                  "  (goal <= 0.25)")
    ws.close()
    shutil.rmtree(tmp, ignore_errors=True)  # the CSV and outputs are hundreds of MB


if __name__ == "__main__":
    main()
