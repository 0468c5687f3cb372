"""Loading a scikit-learn model: modelloop's package (hash check of every file + its skops file,
read by modelloop's reader of skops' format) against the same pipeline with ``pickle.load`` plus a
sha256 check of the file.

    python benchmarks/model_loading.py           # 7 fresh processes each
    python benchmarks/model_loading.py --quick   # 3 each

Equal work, checked: the model is what ``modelloop train`` produces for a logistic regression
(imputation, scaling and one-hot encoding in a ColumnTransformer pipeline, on the sample loan
data); each side loads it in a fresh Python process (what a job, a worker or ``serve`` pays),
checks its bytes against the sha256 recorded when it was written, and predicts the same 200
rows, and the predicted probabilities of both sides must be equal. A warm-up run of each side
comes first; the figures are medians of the timed runs, the two sides alternating.

Figures:
- cold load, modelloop vs pickle (the goal: at most 1.0x): ``load_package(dir)`` and
  ``predict_proba``, against ``sha256`` + ``pickle.load`` and ``predict_proba``;
- the CPU time (user + system) of the same processes, for information: on a loaded machine it
  varies far less than wall time;
- the same through the registry (``Workspace(...).models.load("loans@1")``: opens the
  workspace's store too), for information;
- the first load in a new environment, which computes skops' default trusted types (then kept,
  see ``modelloop.registry.skops_files``), for information;
- in one process with the libraries imported, the load alone, for information.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PROBE_ROWS = 200

_PREDICT = """
import json, sys
import pandas as pd
probe = pd.read_parquet(sys.argv[2])
print(json.dumps(model.predict_proba(probe).tolist()))
"""

MODELLOOP = """
import sys
from modelloop.registry.package import load_package
model = load_package(sys.argv[1])
""" + _PREDICT

REGISTRY = """
import sys
from modelloop.workspace import Workspace
model = Workspace(sys.argv[3]).models.load("loans@1")
""" + _PREDICT

PICKLE = """
import hashlib, pickle, sys
data = open(sys.argv[1], "rb").read()
if hashlib.sha256(data).hexdigest() != sys.argv[3]:
    raise SystemExit("the pickle does not match its sha256")
model = pickle.loads(data)
""" + _PREDICT


def _prepare(folder: Path) -> dict:
    """A trained pipeline as modelloop's package, as a pickle, and registered in a workspace."""
    from modelloop.data.samples import loan_applications
    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature
    from modelloop.training.trainers import train
    from modelloop.workspace import Workspace

    frame = loan_applications(5000, seed=0).drop(columns=["application_id", "applied_at"])
    result = train(frame, "approved", "logistic_regression")
    features = [f["name"] for f in result.features]
    save_package(result.model, folder / "package", signature=Signature.from_frame(frame[features]))
    data = pickle.dumps(result.model, protocol=pickle.HIGHEST_PROTOCOL)
    (folder / "model.pkl").write_bytes(data)
    import hashlib

    frame[features].head(PROBE_ROWS).to_parquet(folder / "probe.parquet")
    ws = Workspace.init(folder / "ws")
    ws.models.register("loans", folder / "package")
    ws.close()
    return {"sha256": hashlib.sha256(data).hexdigest(),
            "expected": result.model.predict_proba(frame[features].head(PROBE_ROWS)).tolist()}


def _cold(code: str, args: list[str], env: dict | None = None) -> tuple[float, list]:
    elapsed, _, got = _cold_cpu(code, args, env)
    return elapsed, got


def _cold_cpu(code: str, args: list[str], env: dict | None = None) -> tuple[float, float, list]:
    """Wall seconds, CPU seconds (user + system) of the child, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def _in_process(folder: Path, sha: str, repeat: int) -> tuple[float, float]:
    """Median seconds of one load, libraries already imported: modelloop, then pickle."""
    import hashlib

    from modelloop.registry.package import load_package

    def with_pickle():
        data = (folder / "model.pkl").read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha
        return pickle.loads(data)

    def with_modelloop():
        return load_package(folder / "package")

    times: dict = {"modelloop": [], "pickle": []}
    for fn in (with_modelloop, with_pickle):  # warm-up
        fn()
    for _ in range(repeat):
        for name, fn in (("modelloop", with_modelloop), ("pickle", with_pickle)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["modelloop"]), statistics.median(times["pickle"])


def measure(runs: int = 7) -> dict:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="modelloop-bench-load-") as tmp:
        folder = Path(tmp)
        facts = _prepare(folder)
        package, pkl, probe = str(folder / "package"), str(folder / "model.pkl"), str(
            folder / "probe.parquet")
        sides = {
            "modelloop": (MODELLOOP, [package, probe]),
            "registry": (REGISTRY, [package, probe, str(folder / "ws")]),
            "pickle": (PICKLE, [pkl, probe, facts["sha256"]]),
        }
        # the first load in an environment whose skops lists are not kept yet
        first, got = _cold(MODELLOOP, [package, probe],
                           env={"MODELLOOP_CACHE_DIR": str(folder / "empty-cache")})
        assert got == facts["expected"]
        times: dict = {name: [] for name in sides}
        cpu: dict = {name: [] for name in sides}
        for name, (code, args) in sides.items():  # warm-up: file cache, bytecode, skops lists
            _, got = _cold(code, args)
            if got != facts["expected"]:
                raise AssertionError(f"{name} predicted something else than the trained model")
        for _ in range(runs):
            for name, (code, args) in sides.items():
                elapsed, used, got = _cold_cpu(code, args)
                assert got == facts["expected"], name
                times[name].append(elapsed)
                cpu[name].append(used)
        warm_modelloop, warm_pickle = _in_process(folder, facts["sha256"], repeat=50)
    median = {name: statistics.median(v) for name, v in times.items()}
    return {"runs": runs, "median": median, "first": first,
            "cpu": {name: statistics.median(v) for name, v in cpu.items()},
            "warm": {"modelloop": warm_modelloop, "pickle": warm_pickle},
            "load": (load_before, os.getloadavg()[0])}


def _rows(result: dict) -> list[dict]:
    m = result["median"]
    ratio = m["modelloop"] / m["pickle"]
    return [
        {"benchmark": "model_loading", "figure": "cold load + predict, modelloop / pickle+sha256",
         "value": round(ratio, 3), "unit": "x", "goal": "<= 1.0x", "met": ratio <= 1.0,
         "note": f"{m['modelloop']:.3f} s vs {m['pickle']:.3f} s, median of {result['runs']}; "
                 f"machine load {result['load'][0]:.1f} -> {result['load'][1]:.1f}"},
        {"benchmark": "model_loading", "figure": "cold load + predict CPU time, modelloop / pickle",
         "value": round(result["cpu"]["modelloop"] / result["cpu"]["pickle"], 3), "unit": "x",
         "goal": None, "met": None,
         "note": f"{result['cpu']['modelloop']:.3f} s vs {result['cpu']['pickle']:.3f} s of CPU "
                 "(user + system) per process: less sensitive to a loaded machine than wall time"},
        {"benchmark": "model_loading", "figure": "cold load + predict via the registry / pickle",
         "value": round(m["registry"] / m["pickle"], 3), "unit": "x", "goal": None, "met": None,
         "note": f"{m['registry']:.3f} s (opens the workspace's store too)"},
        {"benchmark": "model_loading", "figure": "first load in a new environment / pickle",
         "value": round(result["first"] / m["pickle"], 3), "unit": "x", "goal": None,
         "met": None, "note": f"{result['first']:.3f} s: skops' trusted-type scan, then kept"},
        {"benchmark": "model_loading", "figure": "in-process load, modelloop / pickle+sha256",
         "value": round(result["warm"]["modelloop"] / result["warm"]["pickle"], 3), "unit": "x",
         "goal": None, "met": None,
         "note": f"{result['warm']['modelloop'] * 1e3:.2f} ms vs "
                 f"{result['warm']['pickle'] * 1e3:.2f} ms, libraries already imported"},
    ]


def run(quick: bool = True) -> list[dict]:
    return _rows(measure(runs=3 if quick else 7))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed processes per side, not 7")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    for row in rows:
        met = "" if row["met"] is None else ("  goal met" if row["met"] else "  goal NOT met")
        goal = f"  (goal {row['goal']})" if row["goal"] else ""
        print(f"{row['figure']:52s} {row['value']:>8}{row['unit']}{goal}{met}  {row['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
