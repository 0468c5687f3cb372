"""Evaluation metrics, the gate against a baseline, and the HTML/PNG report."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from sklearn import metrics as skm

from modelloop.errors import InvalidInput
from modelloop.training.evaluation import evaluate
from modelloop.training.gate import GateFailed, compare, gate
from modelloop.training.report import report
from modelloop.training.trainers import train


def test_binary_metrics_agree_with_scikit_learn(binary):
    result = train(binary, "y", "logistic_regression")
    valid = binary.loc[_valid_index(binary, result)]
    ev = evaluate(result.model, valid, "y")
    proba = result.model.predict_proba(valid.drop(columns=["y"]))[:, 1]
    assert ev.metrics == result.metrics
    assert ev.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(valid["y"], proba))
    assert ev.metrics["log_loss"] == pytest.approx(skm.log_loss(valid["y"], proba))
    assert ev.metrics["pr_auc"] == pytest.approx(skm.average_precision_score(valid["y"], proba))
    assert sum(ev.calibration["count"]) == len(valid)
    assert 0 <= ev.metrics["ece"] < 0.2


def _valid_index(frame, result):
    from modelloop.training.splits import split

    _, valid, record = split(frame, "y", None, task="binary", seed=result.seed)
    assert record == result.split
    return valid.index


def test_regression_metrics(regression):
    result = train(regression, "sales", "ridge")
    ev = result.evaluation
    assert ev.metrics["mae"] == pytest.approx(skm.mean_absolute_error(ev.y_true, ev.y_pred))
    assert ev.metrics["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(ev.y_true, ev.y_pred)
    )
    assert ev.metrics["mae"] <= ev.metrics["rmse"]


# -- gate -------------------------------------------------------------------------------------------
CONDITIONS = [
    {"metric": "roc_auc", "threshold": 0.8, "min_absolute_change": 0.01},
    {"metric": "log_loss", "min_relative_change": 0.05},  # lower is better: must drop by 5 %
]


def test_gate_passes_a_better_candidate():
    result = gate(
        {"roc_auc": 0.90, "log_loss": 0.30},
        {"roc_auc": 0.85, "log_loss": 0.40},
        CONDITIONS,
    )
    assert result.passed
    assert result.reasons == []
    assert [c["passed"] for c in result.checks] == [True, True]
    assert result.raise_if_failed() is result


def test_gate_fails_listing_every_reason():
    result = gate(
        {"roc_auc": 0.79, "log_loss": 0.39},
        {"roc_auc": 0.85, "log_loss": 0.40},
        CONDITIONS,
    )
    assert not result.passed
    assert len(result.reasons) == 3
    assert "roc_auc 0.79 is below the threshold 0.8" in result.reasons[0]
    assert "roc_auc improved by -0.06" in result.reasons[1]
    assert "log_loss improved by +2.50%" in result.reasons[2]
    with pytest.raises(GateFailed) as e:
        result.raise_if_failed()
    message = str(e.value)
    assert all(reason in message for reason in result.reasons)
    assert e.value.result.to_dict()["passed"] is False


def test_gate_direction_can_be_given_and_thresholds_apply_without_baseline():
    conditions = [{"metric": "drift", "threshold": 0.1, "direction": "lower"}]
    assert gate({"drift": 0.05}, None, conditions).passed
    failed = gate({"drift": 0.2}, None, conditions)
    assert failed.reasons == ["drift 0.2 is above the threshold 0.1"]
    # change conditions need a baseline; with none (no champion yet) they do not apply
    assert gate({"roc_auc": 0.9}, None, [{"metric": "roc_auc", "min_absolute_change": 0.1}]).passed


def test_gate_rejects_malformed_conditions():
    with pytest.raises(InvalidInput, match="sets no bound"):
        gate({}, {}, [{"metric": "roc_auc"}])
    with pytest.raises(InvalidInput, match="unknown key 'minimum'"):
        gate({}, {}, [{"metric": "roc_auc", "minimum": 1}])
    with pytest.raises(InvalidInput, match="direction 'up'"):
        gate({}, {}, {"roc_auc": {"threshold": 0.5, "direction": "up"}})


def test_compare_scores_both_models_on_the_same_rows(nonlinear):
    weak = train(nonlinear, "y", "logistic_regression").model
    strong = train(nonlinear, "y", "random_forest").model
    condition = [{"metric": "roc_auc", "min_absolute_change": 0.02}]
    assert compare(strong, weak, nonlinear, "y", condition).passed
    backwards = compare(weak, strong, nonlinear, "y", condition)
    assert not backwards.passed
    assert backwards.checks[0]["candidate"] < backwards.checks[0]["baseline"]


# -- report -----------------------------------------------------------------------------------------
def test_report_for_classification_is_self_contained(multiclass, tmp_path):
    result = train(multiclass, "kind", "random_forest")
    page = report(result.evaluation, tmp_path, title="kinds", extra={"algorithm": "random_forest"})
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["calibration.png", "confusion.png", "pr.png", "roc.png"]
    html = page.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in html  # nothing fetched from elsewhere
    assert "random_forest" in html and "log_loss" in html


def test_report_for_regression_has_residuals(regression, tmp_path):
    result = train(regression, "sales", "ridge")
    report(result.evaluation, tmp_path)
    assert (tmp_path / "residuals.png").read_bytes()[:4] == b"\x89PNG"
    assert np.isfinite(result.evaluation.metrics["r2"])


@pytest.mark.parametrize("data, target, algorithm", [
    ("binary", "y", "logistic_regression"), ("multiclass", "kind", "random_forest"),
    ("regression", "sales", "ridge"),
])  # fmt: skip
def test_a_report_drawn_later_from_its_json_data_is_the_same(data, target, algorithm, request,
                                                             tmp_path):
    """What a job records (report_data, through JSON) draws the same files as the evaluation."""
    import json

    from modelloop.training.report import render, report_data

    result = train(request.getfixturevalue(data), target, algorithm)
    facts = {"job": 7, "dataset": "d@1"}
    report(result.evaluation, tmp_path / "now", title="t", extra=facts)
    recorded = json.dumps(report_data(result.evaluation, title="t", extra=facts))
    assert "matplotlib" not in recorded
    render(json.loads(recorded), tmp_path / "later")
    now = {p.name: p.read_bytes() for p in (tmp_path / "now").iterdir()}
    assert now == {p.name: p.read_bytes() for p in (tmp_path / "later").iterdir()}
    assert "report.html" in now and len(now) >= 3
    with pytest.raises(InvalidInput, match="another version"):
        render({**json.loads(recorded), "format": 99}, tmp_path / "never")


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc", "log_loss", "f1", "ece"])
def test_score_of_one_metric_equals_the_full_evaluation(binary, metric):
    from modelloop.training.evaluation import score

    result = train(binary, "y", "logistic_regression")
    valid = binary.loc[_valid_index(binary, result)]
    assert score(result.model, valid, "y", "binary", metric) == pytest.approx(
        result.metrics[metric], rel=1e-12
    )
