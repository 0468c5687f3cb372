"""The same pipeline, unchanged, on the in-process, process-pool and Ray executors."""

from __future__ import annotations

import importlib.util
import os

import pytest
from pipeline_steps import add, square

from modelloop.pipelines import otherwise, pipeline, when

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HAVE_RAY = importlib.util.find_spec("ray") is not None


@pipeline
def diamond(x: int = 3):
    a = square(x)
    b = square.with_options(name="square_again")(add(x, 1))
    total = add.with_options(name="total")(a, b)
    with when(total > 20):
        add.with_options(name="big")(total, 1000)
    with otherwise():
        add.with_options(name="small")(total, -1000)


EXPECTED = {"square": 9, "add": 4, "square_again": 16, "total": 25, "big": 1025}


def _check(ws, executor):
    result = diamond.run(ws, executor=executor)
    assert result.status == "succeeded", result
    assert result.steps["small"] == "skipped"
    assert {k: result.output(k) for k in EXPECTED} == EXPECTED
    return result


def test_local_and_process_executors_agree(local_workspace):
    _check(local_workspace, "local")
    # different parameters so the second run cannot come from the cache
    result = diamond.run(local_workspace, {"x": 1}, executor="process")
    assert result.status == "succeeded" and result.output("small") == 5 - 1000


@pytest.mark.skipif(not HAVE_RAY and not IN_CI, reason="ray is not installed (extra 'ray')")
def test_the_same_pipeline_runs_on_ray(local_workspace):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = _check(local_workspace, "ray")
        from modelloop.pipelines.runs import Runs

        assert Runs.for_workspace(local_workspace).get(result.run_id)["executor"] == "ray"
    finally:
        ray.shutdown()
