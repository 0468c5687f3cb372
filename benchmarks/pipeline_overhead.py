"""Per-step overhead of the pipeline engine against Prefect, on the same 100 chained steps.

The work: ``inc(x, i) = x + i`` chained 100 times (every step waits for the one before, the worst
case for overhead); the output is the last step's value, checked equal on every side.

* direct: the 100 functions called in a loop (the floor);
* modelloop: ``chain.run(ws)`` on the given executor and store (default: threads, SQLite); every
  step is recorded and its output stored, so a re-run with the same inputs is fully cached;
* Prefect 3: a ``@flow`` calling a ``@task`` 100 times, with ``cache_policy=INPUTS`` and
  ``persist_result=True`` (it records each task run and stores its result, so its re-run is
  cached too: the same work), on its ephemeral local server (``PREFECT_API_URL`` unset, a
  fresh ``PREFECT_HOME``; no network). It runs in a child process of its own so its settings and
  server do not leak into modelloop's side.

Each side runs once as a warm-up (imports, pools, tables; Prefect starts its server) on other
inputs, then cold (inputs never seen: nothing cached) and then fully cached. Goals: modelloop at
most 5 ms per step cold and a fully cached re-run under 1 s; the ratios to Prefect are printed.

Prefect is in the ``bench`` extra (see the README's "Benchmarks" section); without it the
Prefect figures are reported as skipped. Run:
``python benchmarks/pipeline_overhead.py [--executor processes] [--store-url URL] [--no-prefect]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelloop import Workspace  # noqa: E402
from modelloop.common import executors  # noqa: E402
from modelloop.pipelines import pipeline, step  # noqa: E402

N = 100


@step
def inc(x: int, i: int) -> int:
    return x + i


@pipeline
def chain(seed: int = 0):
    value = seed
    for i in range(N):
        value = inc(value, i)


def direct(seed: int) -> int:
    value = seed
    for i in range(N):
        value = inc.fn(value, i)
    return value


#: Prefect's side, in its own process: warm-up, cold and cached runs; prints one JSON line.
PREFECT = r"""
import json, os, sys, time
n = int(sys.argv[1])
t0 = time.perf_counter()
from prefect import flow, task
from prefect.cache_policies import INPUTS
import_s = time.perf_counter() - t0

@task(cache_policy=INPUTS, persist_result=True)
def inc(x: int, i: int) -> int:
    return x + i

@flow
def chain(seed: int = 0) -> int:
    value = seed
    for i in range(n):
        value = inc(value, i)
    return value

def timed(seed):
    t = time.perf_counter()
    out = chain(seed)
    return time.perf_counter() - t, out

warm_s, warm = timed(-1)  # starts the ephemeral server, creates its tables
cold_s, cold = timed(1)
cached_s, cached = timed(1)
import prefect
print(json.dumps({"version": prefect.__version__, "import": import_s, "warmup": warm_s,
                  "cold": cold_s, "cached": cached_s, "outputs": [warm, cold, cached]}))
"""


def prefect_side(timeout: float = 400) -> dict:
    """Prefect's figures from a child process, or ``{"skipped": why}``."""
    try:
        import prefect  # noqa: F401 (only to know whether it is installed)
    except ImportError as exc:
        return {"skipped": f"Prefect is not installed ({exc}); it is in the bench extra"}
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({
            "PREFECT_HOME": home,  # its SQLite database, results and profiles: a fresh one
            "PREFECT_LOCAL_STORAGE_PATH": str(Path(home, "results")),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "ERROR",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            # on a loaded machine its server takes longer than the default 20 s to answer
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
        })
        proc = subprocess.run([sys.executable, "-c", PREFECT, str(N)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"skipped": f"Prefect failed (exit {proc.returncode}): "
                           f"{(proc.stderr.strip().splitlines() or ['?'])[-1][:200]}"}
    return json.loads(lines[-1])


def measure(executor: str = "threads", store_url: str | None = None,
            prefect: bool = True) -> dict:
    expected = direct(1)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(tmp, store_url=store_url)
        try:
            warm = chain.run(ws, {"seed": -1}, executor=executor)  # imports, pool, tables
            assert warm.output(f"inc_{N}") == direct(-1)

            t = time.perf_counter()
            for _ in range(100):
                direct(1)
            direct_s = (time.perf_counter() - t) / 100

            t = time.perf_counter()
            cold = chain.run(ws, {"seed": 1}, executor=executor)
            cold_s = time.perf_counter() - t
            assert set(cold.steps.values()) == {"succeeded"}, cold

            t = time.perf_counter()
            cached = chain.run(ws, {"seed": 1}, executor=executor)
            cached_s = time.perf_counter() - t
            assert set(cached.steps.values()) == {"cached"}, cached
            outputs = [cold.output(f"inc_{N}"), cached.output(f"inc_{N}")]
        finally:
            ws.close()
    if outputs != [expected, expected]:
        raise AssertionError(f"modelloop's outputs {outputs} differ from direct calls' {expected}")
    res = {"executor": executor, "store": store_url or "sqlite", "direct": direct_s,
           "cold": cold_s, "cached": cached_s}
    if prefect:
        print("running Prefect's side (its ephemeral server starts in the warm-up) ...",
              flush=True)
        res["prefect"] = prefect_side()
        p = res["prefect"]
        if "outputs" in p and p["outputs"][1:] != [expected, expected]:
            raise AssertionError(f"Prefect's outputs {p['outputs']} differ from {expected}")
    else:
        res["prefect"] = {"skipped": "--no-prefect"}
    return res


def report(res: dict) -> None:
    cold_s, cached_s, direct_s = res["cold"], res["cached"], res["direct"]
    print(f"pipeline of {N} chained trivial steps, executor={res['executor']}, "
          f"store={res['store']}; outputs checked equal")
    print(f"  direct calls:        {direct_s * 1000:10.3f} ms total  "
          f"({direct_s / N * 1e6:.2f} us per call)")
    print(f"  modelloop cold:      {cold_s * 1000:10.1f} ms total  "
          f"({cold_s / N * 1000:.2f} ms per step; goal <= 5)")
    print(f"  modelloop cached:    {cached_s * 1000:10.1f} ms total  "
          f"({cached_s / N * 1000:.2f} ms per step; goal < 1 s total)")
    p = res["prefect"]
    if "skipped" in p:
        print(f"  Prefect: skipped: {p['skipped']}")
        return
    print(f"  Prefect {p['version']} cold:   {p['cold'] * 1000:10.1f} ms total  "
          f"({p['cold'] / N * 1000:.2f} ms per task)  = {p['cold'] / cold_s:.1f}x modelloop")
    print(f"  Prefect {p['version']} cached: {p['cached'] * 1000:10.1f} ms total  "
          f"({p['cached'] / N * 1000:.2f} ms per task)  = {p['cached'] / cached_s:.1f}x modelloop")
    print(f"  Prefect import {p['import']:.1f} s, warm-up run (server start) {p['warmup']:.1f} s "
          "(not in the figures above)")


def rows_of(res: dict) -> list[dict]:
    cold_ms, cached_s = res["cold"] / N * 1000, res["cached"]
    p = res["prefect"]
    rows = [
        {"benchmark": "pipeline_overhead", "figure": "modelloop cold, per step",
         "value": cold_ms, "unit": "ms", "goal": "<= 5 ms", "met": cold_ms <= 5,
         "note": f"{N} chained steps, {res['executor']}, {res['store']}"},
        {"benchmark": "pipeline_overhead", "figure": "modelloop fully cached re-run",
         "value": cached_s, "unit": "s", "goal": "< 1 s", "met": cached_s < 1},
    ]
    for figure, key, ours in (("Prefect cold / modelloop cold", "cold", res["cold"]),
                              ("Prefect cached / modelloop cached", "cached", cached_s)):
        if "skipped" in p:
            rows.append({"benchmark": "pipeline_overhead", "figure": figure, "value": None,
                         "unit": "x", "goal": None, "met": None, "note": p["skipped"]})
        else:
            rows.append({"benchmark": "pipeline_overhead", "figure": figure,
                         "value": p[key] / ours, "unit": "x", "goal": None, "met": None,
                         "note": f"Prefect {p['version']}: {p[key] / N * 1000:.1f} ms per task"})
    return rows


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py (the same size either way: it is quick)."""
    res = measure()
    report(res)
    return rows_of(res)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", default="threads", choices=executors.names())
    parser.add_argument("--store-url", help="e.g. a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--no-prefect", action="store_true", help="leave Prefect out")
    args = parser.parse_args(argv)
    report(measure(args.executor, args.store_url, prefect=not args.no_prefect))
    return 0


if __name__ == "__main__":
    sys.exit(main())
