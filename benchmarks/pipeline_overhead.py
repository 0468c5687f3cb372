"""Per-step overhead of the pipeline engine: 100 trivial steps, cold and fully cached.

Anchor: the same 100 functions called directly in a loop, measured in the same run. Goal: at most
5 ms per step cold on the threads executor and a fully cached re-run under 1 s (Prefect users see
about 0.1-0.4 s per task). Run: ``python benchmarks/pipeline_overhead.py [--executor processes]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from modelloop import Workspace
from modelloop.common import executors
from modelloop.pipelines import pipeline, step

N = 100


@step
def inc(x: int, i: int) -> int:
    return x + i


@pipeline
def chain(seed: int = 0):
    value = seed
    for i in range(N):  # a chain: every step waits for the one before (worst case for overhead)
        value = inc(value, i)


def direct(seed: int) -> int:
    value = seed
    for i in range(N):
        value = inc.fn(value, i)
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executor", default="threads", choices=executors.names())
    parser.add_argument("--store-url", help="e.g. a PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(tmp, store_url=args.store_url)
        chain.run(ws, {"seed": -1}, executor=args.executor)  # warm up: imports, pool, tables

        t = time.perf_counter()
        for _ in range(100):
            direct(1)
        direct_s = (time.perf_counter() - t) / 100

        t = time.perf_counter()
        cold = chain.run(ws, {"seed": 1}, executor=args.executor)
        cold_s = time.perf_counter() - t
        assert set(cold.steps.values()) == {"succeeded"}, cold

        t = time.perf_counter()
        cached = chain.run(ws, {"seed": 1}, executor=args.executor)
        cached_s = time.perf_counter() - t
        assert set(cached.steps.values()) == {"cached"}, cached

    print(
        f"pipeline of {N} trivial steps, executor={args.executor}, store={args.store_url or 'sqlite'}"
    )
    print(
        f"  direct calls:        {direct_s * 1000:10.3f} ms total  ({direct_s / N * 1e6:.2f} us per call)"
    )
    print(
        f"  cold run:            {cold_s * 1000:10.1f} ms total  ({cold_s / N * 1000:.2f} ms per step; goal <= 5)"
    )
    print(
        f"  fully cached re-run: {cached_s * 1000:10.1f} ms total  ({cached_s / N * 1000:.2f} ms per step; goal < 1 s total)"
    )
    print(f"  ratio cold / direct:   {cold_s / direct_s:,.0f}x")
    print(f"  ratio cached / direct: {cached_s / direct_s:,.0f}x")
    print(
        "  anchor: Prefect ~100-400 ms per task -> "
        f"{100 / (cold_s / N * 1000):,.0f}-{400 / (cold_s / N * 1000):,.0f}x less overhead per step cold"
    )


if __name__ == "__main__":
    main()
