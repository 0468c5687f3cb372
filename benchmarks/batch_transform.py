"""Batch transform of a user's MLflow model: ``modelloop transform`` vs ``mlflow models predict``.

The user's path, timed end to end as fresh processes (imports and start-up included, as a user
runs them). A logistic regression on 20 numeric columns is logged with
``mlflow.sklearn.log_model`` into a local MLflow tracking store (SQLite) and registered there as
``bench-lr`` version 1, in MLflow's default format (skops in MLflow 3; ``--serialization
cloudpickle`` logs a pickle, which modelloop imports only with ``--trust-pickle --reason``, as its
trust rules require). The user registers that model in modelloop by its URI (``modelloop models
import lr models:/bench-lr/1``), approves it, and scores one CSV of N rows (default 1,000,000;
``run(quick=True)``: 200,000) with each tool:

- mlflow: ``mlflow models predict -m models:/bench-lr/1 -i in.csv -t csv -o out.json
  --env-manager local``: one process;
- modelloop, 1 process (the headline, the anchor's number of processes): ``modelloop transform
  -m lr@1 -i in.csv -o out.csv -j 1`` (a tracked, resumable job scoring chunks of the file). Its
  job runs in a worker forked from the workspace's warm job server, which the warm-up run
  started, as a user's first command does; the cold figure (``[jobs] runner = "process"``: a new
  worker interpreter per job) is printed too;
- modelloop, 2 processes (``-j 2``), for information: mlflow predict has no such mode;
- floor: ``pandas.read_csv`` + the same fitted model's ``predict`` + ``to_csv``, one process.

Equal work, checked: the same input file and the same fitted model; each tool reads every row,
predicts every row and writes every prediction to a file. Threads are each tool's own (pandas'
and Arrow's CSV readers may parse on several threads; CPU seconds of each process tree are
printed beside the wall time). Every command runs once untimed first (warm-up: page cache,
bytecode, MLflow's and skops' first-run caches), then ``repeat`` timed runs give a median. All N
predictions of modelloop (both runs) and of the floor are compared with MLflow's, label for
label; any difference fails the benchmark.

Peak memory is the highest sum of PSS (shared pages counted once) over a command's process tree,
sampled every 50 ms with psutil (left out when psutil is missing); for a warm run, the warm job
server's tree (the server and the worker running the job) is counted too. CPU seconds of a warm
run are the command's own processes' only (what the server's worker used is not seen). Goals: modelloop's throughput
>= 5x mlflow's (issue 15), its time within 1.5x of the floor's, its peak memory <= 25% of
mlflow's.

Usage: ``python benchmarks/batch_transform.py [--rows N] [--repeat N] [--serialization F]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

NAME = "batch_transform"
COLUMNS = [f"x{i}" for i in range(20)]
MLFLOW_MODEL = "bench-lr"

#: The floor: the same fitted model, read_csv + predict + to_csv in one process.
FLOOR = r"""
import sys, pandas as pd
from modelloop.registry.package import load_package
model = load_package(sys.argv[1])
frame = pd.read_csv(sys.argv[2])
pd.DataFrame({"prediction": model.predict(frame)}).to_csv(sys.argv[3], index=False)
"""


# -- measuring -----------------------------------------------------------------------------------
def measure(cmd: list[str], env: dict, server: str | None = None) -> dict:
    """Wall seconds, CPU seconds (user + sys of the process and the children it reaped) and peak
    PSS (bytes, None without psutil) of ``cmd`` run as a fresh process.

    ``server``: the workspace of a warm job server, whose worker runs the command's job outside
    the command's process tree: the server's tree is sampled too (the server's own memory is
    modelloop's as well)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    servers = _servers(psutil, server) if psutil and server else []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid) if psutil else None
    peak = 0
    with proc.stderr:
        import threading

        err: list[bytes] = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        reader.start()
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if root is not None:
                total = 0
                with contextlib.suppress(psutil.Error):
                    tree = [root, *root.children(recursive=True)]
                    for s in servers:
                        tree += [s, *s.children(recursive=True)]
                    for p in tree:
                        with contextlib.suppress(psutil.Error):
                            total += p.memory_full_info().pss
                peak = max(peak, total)
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        text = b"".join(err).decode(errors="replace")
        raise RuntimeError(f"{' '.join(cmd[:8])} … failed ({proc.returncode}):\n{text[-3000:]}")
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
            "pss": peak if root is not None else None}


def _servers(psutil, workspace: str) -> list:
    """The warm job server of ``workspace`` (``modelloop.worker --serve WS …``; its forked
    workers carry the same command line, so only the processes whose parent is none of them)."""
    found = {}
    for p in psutil.process_iter(["cmdline", "ppid"]):
        cmd = p.info.get("cmdline") or []
        if "--serve" in cmd and workspace in cmd:
            found[p.pid] = p
    return [p for p in found.values() if p.info["ppid"] not in found]


def timed(cmd_for, env: dict, repeat: int, settle=None, server: str | None = None) -> dict:
    """One untimed warm-up run of ``cmd_for(run)`` (then ``settle()``), then ``repeat`` timed
    runs: the medians."""
    measure(cmd_for("warmup"), env)
    if settle is not None:
        settle()
    runs = [measure(cmd_for(f"run{i}"), env, server) for i in range(repeat)]
    pss = [r["pss"] for r in runs if r["pss"] is not None]
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "cpu": statistics.median(r["cpu"] for r in runs),
            "pss": max(pss) if pss else None}


# -- the user's setup (untimed) ------------------------------------------------------------------
def write_input(path: Path, rows: int) -> None:
    """``rows`` rows of 20 standard-normal columns as CSV (written by Arrow: fast, full
    precision; both tools read this same file)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    with pacsv.CSVWriter(path, pa.schema([(c, pa.float64()) for c in COLUMNS])) as writer:
        for lo in range(0, rows, 250_000):
            block = rng.normal(size=(min(250_000, rows - lo), len(COLUMNS)))
            writer.write_table(pa.table({c: block[:, i] for i, c in enumerate(COLUMNS)}))


def log_user_model(tmp: Path, tracking_uri: str, serialization: str | None) -> str:
    """Fit a logistic regression and log it as a user would; returns its ``models:/`` URI."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    sample = pd.DataFrame(rng.normal(size=(20_000, len(COLUMNS))), columns=COLUMNS)
    target = (sample.x0 + sample.x1 * sample.x2 > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(sample, target)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.MlflowClient().create_experiment(
        "bench", artifact_location=(tmp / "mlflow-artifacts").as_uri())
    extra = {"serialization_format": serialization} if serialization else {}
    with warnings.catch_warnings(), mlflow.start_run(experiment_id=experiment):
        warnings.simplefilter("ignore")  # MLflow's notes on input examples and pickles
        mlflow.sklearn.log_model(model, name="model",
                                 signature=infer_signature(sample, model.predict(sample)),
                                 registered_model_name=MLFLOW_MODEL, **extra)
    return f"models:/{MLFLOW_MODEL}/1"


def modelloop_cmd(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "modelloop", "-w", str(ws), *args]


def register_in_modelloop(tmp: Path, uri: str, env: dict) -> Path:
    """``models import`` by the URI (trusting the pickle when the user's MLflow wrote one),
    then ``models approve``; returns the workspace."""
    ws = tmp / "ws"
    subprocess.run([sys.executable, "-m", "modelloop", "init", str(ws)], env=env, check=True,
                   capture_output=True)
    ws_cmd = [sys.executable, "-m", "modelloop", "-w", str(ws)]
    record = json.loads(subprocess.run(
        [*ws_cmd, "models", "import", "lr", uri, "--json"], env=env, capture_output=True,
        text=True).stdout or "{}")
    if not record:  # a pickle: the user says they trust it, as the trust rules require
        record = json.loads(subprocess.run(
            [*ws_cmd, "models", "import", "lr", uri, "--trust-pickle", "--reason",
             "our own training run, logged with mlflow.sklearn.log_model", "--json"],
            env=env, capture_output=True, text=True, check=True).stdout)
    subprocess.run([*ws_cmd, "models", "approve", f"{record['ref']}", "--reason", "benchmark"],
                   env=env, check=True, capture_output=True)
    return ws


def package_dir(ws: Path) -> str:
    from modelloop import Workspace

    with contextlib.closing(Workspace(ws)) as w:
        return str(w.models.package_dir("lr@1"))


# -- outputs -------------------------------------------------------------------------------------
def predictions_csv(path: Path):
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path).column("prediction").to_numpy()


def predictions_mlflow(path: Path):
    import numpy as np

    with open(path, "rb") as fh:
        return np.asarray(json.load(fh)["predictions"])


def check_equal(name: str, got, want) -> None:
    import numpy as np

    if got.shape != want.shape:
        raise AssertionError(f"{name} wrote {got.shape[0]} predictions, mlflow {want.shape[0]}")
    differ = np.flatnonzero(got != want)
    if len(differ):
        raise AssertionError(f"{name}'s predictions differ from mlflow's on {len(differ)} rows, "
                             f"first row {int(differ[0])}: {got[differ[0]]!r} vs "
                             f"{want[differ[0]]!r}")


# -- the benchmark -------------------------------------------------------------------------------
def measure_all(rows: int, repeat: int, serialization: str | None = None) -> dict:
    from modelloop.training import warm_workers

    tmp = Path(tempfile.mkdtemp(prefix="bench-transform-"))
    try:
        tracking = f"sqlite:///{tmp}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking,
               "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        source = tmp / "in.csv"
        write_input(source, rows)
        uri = log_user_model(tmp, tracking, serialization)
        ws = register_in_modelloop(tmp, uri, env)
        pkg = package_dir(ws)
        out = tmp / "out"
        out.mkdir()

        def transform(workers: int, tag: str = ""):
            return lambda run: modelloop_cmd(
                ws, "transform", "-m", "lr@1", "-i", str(source),
                "-o", str(out / f"modelloop-{workers}{tag}-{run}.csv"), "-j", str(workers))

        def settle():  # the warm server idle again (it learns between jobs)
            warm_workers.wait_ready(ws / ".modelloop", ws)

        results = {
            "mlflow": timed(lambda run: [
                sys.executable, "-m", "mlflow", "models", "predict", "-m", uri, "-i",
                str(source), "-t", "csv", "-o", str(out / f"mlflow-{run}.json"),
                "--env-manager", "local"], env, repeat),
            "modelloop_1": timed(transform(1), env, repeat, settle, str(ws)),
            "modelloop_2": timed(transform(2), env, repeat, settle, str(ws)),
            "modelloop_cold": timed(transform(1, "cold"), {**env, "MODELLOOP_JOB_RUNNER":
                                                            "process"}, repeat),
            "floor": timed(lambda run: [sys.executable, "-c", FLOOR, pkg, str(source),
                                        str(out / f"floor-{run}.csv")], env, repeat),
        }
        want = predictions_mlflow(out / "mlflow-run0.json")
        for name in ("1", "2", "1cold"):
            check_equal(f"modelloop -j {name}",
                        predictions_csv(out / f"modelloop-{name}-run0.csv"), want)
        check_equal("the floor", predictions_csv(out / "floor-run0.csv"), want)
        return {"rows": rows, "repeat": repeat, "results": results,
                "format": serialization or "MLflow's default"}
    finally:
        warm_workers.shutdown(tmp / "ws" / ".modelloop")  # else it idles 10 minutes
        shutil.rmtree(tmp, ignore_errors=True)  # the CSV and outputs are hundreds of MB


def _rows(m: dict, quick: bool) -> list[dict]:
    r, n = m["results"], m["rows"]
    size = f"{n:,} rows" + (" (quick; the issue's size is 1,000,000)" if quick else "")
    mlf, one, two, floor = r["mlflow"], r["modelloop_1"], r["modelloop_2"], r["floor"]
    cold = r["modelloop_cold"]

    def row(figure, value, unit, goal=None, met=None, note=""):
        return {"benchmark": NAME, "figure": figure, "value": round(value, 3), "unit": unit,
                "goal": goal, "met": met, "note": note}

    def secs(x):
        return f"{x['seconds']:.2f} s wall, {x['cpu']:.2f} s CPU"

    ratio1 = mlf["seconds"] / one["seconds"]
    ratio2 = mlf["seconds"] / two["seconds"]
    floor_ratio = one["seconds"] / floor["seconds"]
    rows = [
        row(f"modelloop 1 process / mlflow models predict, throughput, {size}", ratio1, "x",
            ">= 5x", ratio1 >= 5,
            f"modelloop {secs(one)} (CPU: the command only; its job ran in a warm worker) vs "
            f"mlflow {secs(mlf)}; the same user MLflow model "
            f"({m['format']} format), all predictions equal"),
        row("modelloop 1 process, cold job worker / mlflow models predict, throughput",
            mlf["seconds"] / cold["seconds"], "x",
            note=f"[jobs] runner = process: {secs(cold)}"),
        row("modelloop 2 processes / mlflow models predict, throughput", ratio2, "x",
            note=f"modelloop -j 2 {secs(two)}; mlflow predict runs one process"),
        row("modelloop 1 process / floor (read_csv + predict + to_csv), time", floor_ratio, "x",
            "<= 1.5x", floor_ratio <= 1.5, f"floor {secs(floor)}"),
    ]
    for key, label in (("mlflow", "mlflow models predict"), ("modelloop_1", "modelloop -j 1"),
                       ("modelloop_cold", "modelloop -j 1, cold worker"),
                       ("modelloop_2", "modelloop -j 2"), ("floor", "floor")):
        rows.append(row(f"{label} rows/s", n / r[key]["seconds"], "rows/s",
                        note=f"median of {m['repeat']}, after a warm-up run"))
    if one["pss"] and mlf["pss"]:
        mem = one["pss"] / mlf["pss"]
        rows.append(row("modelloop 1 process / mlflow peak memory (PSS)", mem, "x", "<= 0.25x",
                        mem <= 0.25, f"{one['pss'] / 2**20:.0f} MB vs {mlf['pss'] / 2**20:.0f} MB"))
    return rows


def run(quick: bool = True) -> list[dict]:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return [{"benchmark": NAME, "figure": "modelloop / mlflow models predict", "value": None,
                 "unit": "x", "goal": ">= 5x", "met": None,
                 "note": "mlflow is not installed (pip install 'modelloop[bench]')"}]
    return _rows(measure_all(200_000 if quick else 1_000_000, 1 if quick else 3), quick)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the CSV")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each command")
    ap.add_argument("--serialization", choices=["skops", "cloudpickle", "pickle"],
                    help="how mlflow.sklearn.log_model saves the model (default: MLflow's)")
    args = ap.parse_args(argv)
    print(f"{args.rows:,} rows x {len(COLUMNS)} columns, {args.repeat} timed run(s) each")
    rows = _rows(measure_all(args.rows, args.repeat, args.serialization), quick=False)
    for r in rows:
        met = "" if r["met"] is None else ("  goal met" if r["met"] else "  goal NOT met")
        goal = f"  (goal {r['goal']})" if r["goal"] else ""
        print(f"{r['figure']:70s} {r['value']:>12,}{r['unit']}{goal}{met}\n    {r['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
