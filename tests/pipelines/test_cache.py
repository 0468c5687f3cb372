"""Caching by content: hits and misses for the right reasons, and ``runs explain`` saying why."""

from __future__ import annotations

import pandas as pd
import pytest
from pipeline_steps import count, load, train

from modelloop.pipelines import Step, dataset, pipeline, step


@pipeline
def fit(n: int = 4, alpha: float = 0.1, trace: str = ""):
    train(load(n, trace), alpha, trace)


def test_rerun_hits_and_changed_param_misses_only_downstream(workspace, tmp_path, runs_cli):
    trace = str(tmp_path / "trace")
    first = fit.run(workspace, {"trace": trace})
    again = fit.run(workspace, {"trace": trace})
    assert again.steps == {"load": "cached", "train": "cached"}
    assert (count(trace, "load"), count(trace, "train")) == (1, 1)
    assert again.output("train") == first.output("train")

    changed = fit.run(workspace, {"trace": trace, "alpha": 0.2})
    assert changed.steps == {"load": "cached", "train": "succeeded"}
    runs = workspace.runs
    why = runs.explain(changed.run_id, "train")
    assert why["decision"] == "miss"
    assert why["reasons"] == ["parameter 'alpha' changed 0.1 -> 0.2"]
    hit = runs.explain(changed.run_id, "load")
    assert hit["decision"] == "hit" and f"of run {first.run_id}" in hit["reasons"][0]

    out = runs_cli("runs", "explain", changed.run_id, "train", ws=workspace)
    assert "cache miss" in out.out and "parameter 'alpha' changed 0.1 -> 0.2" in out.out


def test_changed_upstream_output_misses_and_same_output_hits(local_workspace, tmp_path):
    trace = str(tmp_path / "trace")
    fit.run(local_workspace, {"trace": trace, "n": 4})
    bigger = fit.run(local_workspace, {"trace": trace, "n": 5})
    assert bigger.steps == {"load": "succeeded", "train": "succeeded"}
    why = local_workspace.runs.explain(bigger.run_id, "train")
    assert why["reasons"][0].startswith("input 'rows' (output of step 'load') changed (sha256 ")


def _trainer(body: str) -> Step:
    """A step named ``train`` whose code is ``body`` (two versions of the same step)."""
    scope: dict = {}
    exec(f"def train(x: int) -> int:\n    {body}\n", scope)
    return Step(scope["train"])


def test_changed_code_misses_and_says_so(local_workspace):
    for body, expected in (
        ("return x + 1", "succeeded"),
        ("return x + 1", "cached"),
        ("return x + 2", "succeeded"),
    ):
        trainer = _trainer(body)

        @pipeline(name="code")
        def p(x: int = 1):
            trainer(x)  # noqa: B023 - traced right here

        result = p.run(local_workspace)
        assert result.steps["train"] == expected
    why = local_workspace.runs.explain(result.run_id, "train")
    assert why["reasons"] == ["source of step 'train' changed"]
    assert result.output("train") == 3


@step
def rows_of(data) -> int:
    return int(data.version) * 0 + len(data.ref)  # the step sees a DatasetInput


def test_new_dataset_version_misses_and_names_the_versions(local_workspace, tmp_path):
    @pipeline
    def on_data():
        rows_of(dataset("loans"))

    csv = tmp_path / "day1.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(csv, index=False)
    local_workspace.datasets.ingest("loans", [str(csv)])
    assert on_data.run(local_workspace).steps["rows_of"] == "succeeded"
    assert on_data.run(local_workspace).steps["rows_of"] == "cached"
    csv2 = tmp_path / "day2.csv"
    pd.DataFrame({"a": [3]}).to_csv(csv2, index=False)
    local_workspace.datasets.ingest("loans", [str(csv2)])
    result = on_data.run(local_workspace)
    assert result.steps["rows_of"] == "succeeded"
    why = local_workspace.runs.explain(result.run_id, "rows_of")
    assert why["reasons"] == ["input dataset loans changed (loans@1 -> loans@2)"]


def test_missing_dataset_fails_the_run_clearly(local_workspace):
    @pipeline
    def on_data():
        rows_of(dataset("nope@3"))

    result = on_data.run(local_workspace)
    assert result.status == "failed" and "no dataset version 'nope@3'" in result.error


def test_expired_entries_and_missing_artifacts_miss(local_workspace):
    @step(cache_expires=0)
    def fresh(x: int) -> int:
        return x

    @step
    def plain(x: int) -> int:
        return x + 100

    @pipeline
    def p(x: int = 7):
        fresh(x)
        plain(x)

    first = p.run(local_workspace)
    runs = local_workspace.runs
    digest = runs.step(first.run_id, "plain")["outputs"][0]["digest"]
    local_workspace.artifacts.delete(digest)
    second = p.run(local_workspace)
    assert second.steps == {"fresh": "succeeded", "plain": "succeeded"}
    assert "older than cache_expires" in runs.explain(second.run_id, "fresh")["reasons"][0]
    assert "outputs are gone" in runs.explain(second.run_id, "plain")["reasons"][0]
    assert second.output("plain") == 107


def test_cache_off_always_runs(local_workspace, tmp_path):
    @step(cache=False)
    def always(x: int) -> int:
        return x

    @pipeline
    def p(x: int = 1):
        always(x)

    p.run(local_workspace)
    result = p.run(local_workspace)
    assert result.steps["always"] == "succeeded"
    assert (
        "caching is off"
        in local_workspace.runs.explain(result.run_id, "always")["reasons"][0]
    )


@pytest.mark.parametrize("executor", ["local", "threads", "processes"])
def test_fully_cached_rerun_writes_no_new_blobs(local_workspace, tmp_path, executor):
    trace = str(tmp_path / "t")
    fit.run(local_workspace, {"trace": trace}, executor=executor)
    before = set(local_workspace.artifacts.digests())
    again = fit.run(local_workspace, {"trace": trace}, executor=executor)
    assert set(again.steps.values()) == {"cached"}
    assert set(local_workspace.artifacts.digests()) == before
