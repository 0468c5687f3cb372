"""The same pipeline, unchanged, on every executor; one executor vocabulary for pipelines and
batch, offered by the CLI from the registry."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pipeline_steps import add, champion_of, square

from modelloop.common import executors
from modelloop.pipelines import otherwise, pipeline, when


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


def _check(ws, executor, x=3):
    result = diamond.run(ws, {"x": x}, executor=executor)
    assert result.status == "succeeded", result
    assert ws.runs.get(result.run_id)["executor"] == executors.canonical(executor)
    return result


def test_in_process_executors_agree(local_workspace):
    local = _check(local_workspace, "local")
    assert local.steps["small"] == "skipped"
    assert {k: local.output(k) for k in EXPECTED} == EXPECTED
    # different parameters so the next run cannot come from the cache
    assert _check(local_workspace, "threads", x=1).output("small") == 5 - 1000


def test_process_executor_and_its_earlier_name(local_workspace):
    assert _check(local_workspace, "processes", x=2).output("total") == 4 + 9
    # "process" was the pipelines' name before the vocabulary was shared; scripts may use it
    assert _check(local_workspace, "process", x=4).output("total") == 16 + 25


@pytest.mark.ray
def test_the_same_pipeline_runs_on_ray(local_workspace, local_ray):
    result = _check(local_workspace, "ray")
    assert {k: result.output(k) for k in EXPECTED} == EXPECTED


@pipeline
def asks_the_registry(model: str = "loans"):
    champion_of(model=model)


@pytest.mark.parametrize("executor", ["local", "threads", "processes"])
def test_steps_get_a_step_context_wherever_they_run(local_workspace, executor):
    import os

    result = asks_the_registry.run(local_workspace, executor=executor)
    assert result.status == "succeeded", result
    out = result.output("champion_of")
    assert out["version"] is None  # no model yet: the registry answered through the context
    assert (out["pid"] == os.getpid()) == (executor != "processes")


def test_unknown_executor_names_the_choices(local_workspace):
    from modelloop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="local, .*threads"):
        diamond.run(local_workspace, executor="gpu")


@pytest.mark.parametrize("command", [["loop", "run"], ["runs", "resume"], ["transform"], ["transform", "resume"]])
def test_the_cli_offers_the_registered_executors(command):
    from modelloop.cli.main import cli

    out = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200).output
    assert all(name in out for name in executors.names()), out
    assert "process]" not in out.replace("processes", "")  # earlier names are not offered


def test_map_bounded_keeps_order_free_results_and_cancels_on_error():
    seen = []
    with executors.create("threads", 2) as pool:
        executors.map_bounded(pool, pow, [(n, 2) for n in range(10)], seen.append)
    assert sorted(seen) == [n * n for n in range(10)]
    with executors.create("local") as pool, pytest.raises(ZeroDivisionError):
        executors.map_bounded(pool, divmod, [(1, 1), (1, 0), (2, 1)], seen.append)


def test_an_executor_registered_from_outside_is_used_by_name(local_workspace, monkeypatch):
    """Adding an executor is one class and ``@register``: pipelines and the CLI find it by name."""
    from modelloop.cli.main import cli
    from modelloop.common.executors import registry

    class Counting(executors.EXECUTORS["threads"]):
        name = "counting"
        calls = 0

        def submit(self, fn, /, *args):
            type(self).calls += 1
            return super().submit(fn, *args)

    monkeypatch.setitem(registry.EXECUTORS, "counting", Counting)
    result = _check(local_workspace, "counting", x=5)
    assert result.output("total") == 25 + 36 and Counting.calls == 5  # 5 steps ran, 1 skipped
    out = CliRunner().invoke(cli, ["loop", "run", "--help"], terminal_width=200).output
    assert "counting" in out
