"""Running pipelines: outputs, branches, fail steps, bad DAGs and unstorable outputs."""

from __future__ import annotations

import threading

import pytest
from pipeline_steps import add, count, load, square, train

from modelloop.errors import InvalidInput
from modelloop.pipelines import Pipeline, fail, otherwise, pipeline, step, when


@pipeline
def scored(n: int = 5, alpha: float = 0.1, threshold: float = 1.0, trace: str = ""):
    model = train(load(n, trace), alpha, trace)
    with when(model["score"] > threshold):
        square.with_options(name="ship")(model["n"])
    with otherwise():
        fail("the model scored too low")


@pytest.mark.all_backends
def test_run_records_steps_outputs_inputs_and_logs(workspace, tmp_path):
    trace = str(tmp_path / "trace")
    result = scored.run(workspace, {"trace": trace, "threshold": 0.5})
    assert result.status == "succeeded", result
    assert result.steps == {
        "load": "succeeded",
        "train": "succeeded",
        "ship": "succeeded",
        "fail": "skipped",
    }
    assert result.output("train") == {"score": pytest.approx(1.0), "n": 5}
    assert result.output("ship") == 25
    runs = workspace.runs
    run = runs.get(result.run_id)
    assert run["status"] == "succeeded" and run["params"]["alpha"] == 0.1
    steps = {s["name"]: s for s in runs.steps(result.run_id)}
    assert steps["load"]["log"].strip() == "loading 5 rows"
    assert steps["train"]["inputs"]["rows"]["step"] == "load"
    assert steps["train"]["inputs"]["alpha"] == 0.1
    assert steps["train"]["outputs"][0]["format"] == "json"
    assert steps["fail"]["info"]["why"].startswith("condition")
    assert runs.output(result.run_id, "load") == [0, 1, 2, 3, 4]


def test_else_branch_fails_the_run_with_its_message(local_workspace, tmp_path):
    result = scored.run(local_workspace, {"trace": str(tmp_path / "t"), "threshold": 100})
    assert result.status == "failed"
    assert result.steps["ship"] == "skipped" and result.steps["fail"] == "failed"
    assert "the model scored too low" in result.error
    with pytest.raises(Exception, match="too low"):
        result.raise_for_status()


def test_steps_are_plain_functions_outside_a_pipeline(tmp_path):
    assert square(4) == 16
    assert load(3, str(tmp_path / "t")) == [0, 1, 2]
    assert count(str(tmp_path / "t"), "load") == 1


def test_independent_steps_run_concurrently(local_workspace):
    gate = threading.Barrier(2, timeout=10)

    @step(cache=False)
    def meet(x: int) -> int:
        gate.wait()  # both must be running at once, or this times out
        return x

    @pipeline
    def fan(a: int = 1, b: int = 2):
        add(meet(a), meet.with_options(name="meet_b")(b))

    result = fan.run(local_workspace, concurrency=2)
    assert result.status == "succeeded", result
    assert result.output("add") == 3


def test_a_cycle_is_reported_with_its_path():
    pipe = Pipeline("loopy")
    pipe.add(square, name="a", args={"x": 1}, after=["c"])
    pipe.add(square, name="b", args={"x": 1}, after=["a"])
    pipe.add(square, name="c", args={"x": 1}, after=["b"])
    with pytest.raises(InvalidInput, match=r"cycle: (\w -> ){3}\w"):
        pipe.order()


def test_depending_on_an_unknown_step_is_reported():
    pipe = Pipeline("p")
    pipe.add(square, name="a", args={"x": 1}, after=["nope"])
    with pytest.raises(InvalidInput, match="'nope', which is not a step"):
        pipe.order()


def test_python_if_on_a_future_value_is_refused():
    with pytest.raises(InvalidInput, match="when"):

        @pipeline
        def bad():
            if square(2) > 3:
                square(1)


@step
def gives_lambda() -> object:
    return lambda x: x


@step
def wrong_type() -> int:
    return "seven"


def test_an_unstorable_output_names_the_step_and_type(local_workspace):
    @pipeline
    def p():
        gives_lambda()

    result = p.run(local_workspace)
    assert result.status == "failed"
    assert "step 'gives_lambda' returned a function, which cannot be stored" in result.error
    step_run = local_workspace.runs.step(result.run_id, "gives_lambda")
    assert step_run["attempts"] == 1  # not retried: it would fail the same way


def test_an_output_of_the_wrong_type_is_reported(local_workspace):
    @pipeline
    def p():
        wrong_type()

    result = p.run(local_workspace)
    assert result.status == "failed"
    assert "output of step 'wrong_type' is a str, but the step declares int" in result.error


def test_unknown_parameters_are_refused(local_workspace):
    with pytest.raises(InvalidInput, match="no parameter 'alhpa'"):
        scored.run(local_workspace, {"alhpa": 1})


def test_dataframes_and_arrays_round_trip(local_workspace):
    import numpy as np
    import pandas as pd

    @step
    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({"x": range(n), "y": [float(i) / 2 for i in range(n)]})

    @step
    def total(df: pd.DataFrame) -> np.ndarray:
        return df.to_numpy().sum(axis=0)

    @pipeline
    def p(n: int = 4):
        total(frame(n))

    result = p.run(local_workspace)
    assert result.status == "succeeded", result
    df = result.output("frame")
    assert list(df.columns) == ["x", "y"] and len(df) == 4
    assert result.output("total").tolist() == [6.0, 3.0]
    formats = {
        s["name"]: s["outputs"][0]["format"]
        for s in local_workspace.runs.steps(result.run_id)
    }
    assert formats == {"frame": "parquet", "total": "npy"}
