"""Extending modelloop is writing one file and registering it (ARCHITECTURE.md, "To add a …").

This module plays the part of a user's plug-in: it defines a serving protocol, a drift statistic
and an executor, registers each through its registry alone (no edit to modelloop), and uses all
three end to end on one workspace: a dataset checked with the statistic, a pipeline run on the
executor, a registered model served through the protocol. The areas' own registry tests go into
the details; this one proves the table in ARCHITECTURE.md holds as a whole.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

with warnings.catch_warnings():  # starlette's test client warns about its httpx version
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tests.serving.conftest import FEATURES, register_model

from modelloop import Workspace
from modelloop.common import executors
from modelloop.common.executors import registry as executor_registry
from modelloop.pipelines import pipeline, step
from modelloop.quality import drift
from modelloop.quality.drift.base import NUMERIC
from modelloop.serving.dataplane.payload import Payload
from modelloop.serving.protocols import Protocol, register_protocol
from modelloop.serving.protocols.base import PROTOCOLS


# -- the plug-in -------------------------------------------------------------------------------
class MeanShift(drift.DriftStatistic):
    """How far the current mean moved, in reference standard deviations."""

    name = "plugin_mean_shift"
    kinds = frozenset({NUMERIC})
    threshold = 0.25

    def compute(self, cmp):
        ref, cur = cmp.ref, cmp.cur
        return drift.Measure(abs(cur.sum / cur.n - ref.mean) / max(ref.std, 1e-3))


class Tally(executors.EXECUTORS["local"]):
    """The local executor, counting what it ran."""

    name = "tally"
    summary = "runs here, one call at a time, and counts them"
    ran: list = []

    def submit(self, fn, /, *args):
        type(self).ran.append(getattr(fn, "__name__", repr(fn)))
        return super().submit(fn, *args)


class PlainText(Protocol):
    """``POST /plain/NAME`` with one row of comma-separated numbers a line; answers one
    prediction a line."""

    name = "plain-text"

    def routes(self, server):
        async def predict(request):
            rt = server.plane.runtime(request.path_params["name"])
            lines = (await request.body()).decode().split()
            rows = [[float(v) for v in line.split(",")] for line in lines]
            result = await server.plane.infer(rt, Payload(list(FEATURES), rows))
            return PlainTextResponse("\n".join(str(p) for p in result.predictions))

        return [Route("/plain/{name}", predict, methods=["POST"])]


@step
def double(x: int) -> int:
    return 2 * x


@step
def plus(a: int, b: int) -> int:
    return a + b


@pipeline
def arithmetic(x: int = 4):
    plus(double(x), x)


@pytest.fixture
def plugin(monkeypatch):
    drift.register(MeanShift)
    monkeypatch.setitem(executor_registry.EXECUTORS, Tally.name, Tally)
    register_protocol(PlainText())
    Tally.ran = []
    yield
    drift.STATISTICS.pop(MeanShift.name)
    PROTOCOLS.pop(PlainText.name)


def _frame(seed: int, shift: float = 0.0, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"moved": rng.normal(shift, 1.0, n), "still": rng.normal(0, 1.0, n)})


# -- the test ----------------------------------------------------------------------------------
def test_a_plugin_protocol_statistic_and_executor_work_end_to_end(plugin, tmp_path):
    ws = Workspace.init(tmp_path / "ws")

    # the drift statistic: the rows a new version added, checked against the first one's baseline
    for version, shift in ((1, 0.0), (2, 1.0)):
        path = tmp_path / f"day{version}.csv"
        _frame(version, shift).to_csv(path, index=False)
        ws.datasets.ingest("readings", [str(path)])
    ws.monitoring.baselines.create("readings@1", name="day1")
    report = ws.monitoring.check(
        "readings@1..2",
        "day1",  # the rows day 2 added
        {"numeric_method": "plugin_mean_shift", "significance": None},
    )
    rows = {r.column: r for r in report.drift}
    assert rows["moved"].method == "plugin_mean_shift" and rows["moved"].threshold == 0.25
    assert rows["moved"].drifted and rows["moved"].value == pytest.approx(1.0, abs=0.2)
    assert not rows["still"].drifted and rows["still"].value < 0.25

    # the executor: a pipeline runs on it by name, and its run record names it
    result = arithmetic.run(ws, {"x": 4}, executor="tally")
    assert result.status == "succeeded" and result.output("plus") == 12
    assert ws.runs.get(result.run_id)["executor"] == "tally"
    assert len(Tally.ran) == 2

    # the protocol: served by the one data plane next to the built-in ones, with the same answers
    ws.endpoints.create("scorer", register_model(ws))
    rows_sent = [[0.5, -0.2, 1.0, 0.0, 0.4], [-2.0, -1.0, 0.3, 0.1, -0.6]]
    with TestClient(ws.endpoints.server_app()) as client:
        plain = client.post(
            "/plain/scorer", content="\n".join(",".join(map(str, r)) for r in rows_sent)
        )
        assert plain.status_code == 200, plain.text
        builtin = client.post("/endpoints/scorer/invocations", json=rows_sent).json()
        assert builtin["predictions"] == [1, 0]  # the model's rule: f0 + f1 > 0
        assert [int(p) for p in plain.text.split()] == builtin["predictions"]
        assert 'endpoint="scorer"' in client.get("/metrics").text  # counted like the others
