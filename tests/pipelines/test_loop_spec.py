"""loop.yaml mistakes: each reported with the field path (and the line), as one CLI line."""

from __future__ import annotations

import textwrap

import pytest

from modelloop.data.agrawal import write_days
from modelloop.errors import InvalidInput

GOOD = """\
name: loans
data:
  dataset: loans
  event_time_column: applied_at
target: approved
split: {method: time, fraction: 0.25}
quality:
  ignore: [application_id, applied_at]
train:
  algorithm: hist_gradient_boosting
  params: {max_iter: 20}
evaluate:
  metric: roc_auc
  gate:
    - min_absolute_change: 0.0
register:
  approval: auto
deploy:
  endpoint: loans
  strategy: canary
  options: {bake_seconds: 30}
monitors:
  - {name: drift, kind: data_drift, schedule: "0 * * * *"}
triggers:
  - {on: new_data, min_new_rows: 500}
"""


@pytest.fixture
def ws(local_workspace, tmp_path):
    files = write_days(tmp_path / "incoming", 1, 200)
    local_workspace.datasets.ingest("loans", files, event_time_column="applied_at")
    return local_workspace


def spec_file(tmp_path, text: str, name="loop.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(ws, path) -> str:
    with pytest.raises(InvalidInput) as info:
        ws.loops.validate(path)
    return info.value.message + " | " + str(info.value.hint)


def test_a_good_spec_validates_and_compiles_to_the_loop_steps(ws, tmp_path, cli):
    path = spec_file(tmp_path, GOOD)
    spec = ws.loops.validate(path)
    assert spec.model_name == "loans" and spec.train.params == {"max_iter": 20}
    out = cli("-w", ws.root, "loop", "validate", path, "--json").json()
    assert out["valid"] is True
    assert out["steps"] == [
        "ingest", "champion", "validate", "train", "evaluate", "register", "promote", "deploy",
    ]
    text = cli("-w", ws.root, "loop", "validate", path).out
    assert "valid loop" in text and "ingest → champion" in text


def test_manual_approval_adds_an_approval_step(ws, tmp_path):
    spec = GOOD.replace("approval: auto", "approval: manual")
    pipe = ws.loops.compile(spec_file(tmp_path, spec))
    assert pipe.nodes["approve"].kind == "approval"
    assert pipe.order().index("register") < pipe.order().index("approve")
    assert pipe.order().index("approve") < pipe.order().index("promote")


def test_unknown_key_names_its_path_and_line(ws, tmp_path, cli):
    path = spec_file(tmp_path, GOOD.replace("  params: {max_iter: 20}", "  parms: {max_iter: 20}"))
    message = error_of(ws, path)
    assert message.startswith("loop.yaml:11 train.parms: unknown key; did you mean 'params'?")
    result = cli("-w", ws.root, "loop", "validate", path, check=False)
    assert result.code != 0 and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "loop.yaml:11 train.parms: unknown key" in result.err


def test_wrong_type_names_its_path_and_line(ws, tmp_path):
    path = spec_file(tmp_path, GOOD.replace("fraction: 0.25", "fraction: lots"))
    message = error_of(ws, path)
    assert message.startswith("loop.yaml:6 split.fraction:"), message
    assert "number" in message and "'lots'" in message



@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_a_number_that_is_not_finite_names_its_path_and_line(ws, tmp_path, value):
    """`bake_seconds: .inf` used to pass validation and fail only at the deploy step."""
    path = spec_file(tmp_path, GOOD.replace("bake_seconds: 30", f"bake_seconds: {value}"))
    message = error_of(ws, path)
    assert message.startswith("loop.yaml:21 deploy.options.bake_seconds:"), message
    assert "finite" in message, message

def test_bad_choice_in_a_list_names_the_item(ws, tmp_path):
    path = spec_file(tmp_path, GOOD.replace("kind: data_drift", "kind: vibes"))
    message = error_of(ws, path)
    assert message.startswith("loop.yaml:23 monitors.0.kind:"), message
    assert "data_drift" in message


def test_unknown_dataset(ws, tmp_path, cli):
    path = spec_file(tmp_path, GOOD.replace("dataset: loans", "dataset: loan"))
    assert error_of(ws, path).startswith(
        "loop.yaml:3 data.dataset: unknown dataset 'loan'; did you mean 'loans'?"
    )
    result = cli("-w", ws.root, "loop", "run", path, check=False)
    assert result.code != 0 and "data.dataset: unknown dataset 'loan'" in result.err
    assert "Traceback" not in result.err
    assert ws.runs.list() == []  # nothing ran


def test_unknown_algorithm_suggests_the_close_one(ws, tmp_path, cli):
    path = spec_file(tmp_path, GOOD.replace("hist_gradient_boosting", "hist_gradient_bosting"))
    message = error_of(ws, path)
    assert message.startswith(
        "loop.yaml:10 train.algorithm: unknown algorithm 'hist_gradient_bosting'; "
        "did you mean 'hist_gradient_boosting'?"
    ), message


def test_unknown_target_column_and_metric(ws, tmp_path):
    message = error_of(ws, spec_file(tmp_path, GOOD.replace("target: approved", "target: aproved")))
    assert message.startswith("loop.yaml:5 target: dataset 'loans' has no column 'aproved'")
    assert "did you mean 'approved'" in message
    message = error_of(ws, spec_file(tmp_path, GOOD.replace("metric: roc_auc", "metric: auc")))
    assert message.startswith("loop.yaml:13 evaluate.metric: unknown metric 'auc'")


def test_missing_field_train_and_tune_together_and_bad_cron(ws, tmp_path):
    message = error_of(ws, spec_file(tmp_path, GOOD.replace("target: approved\n", "")))
    assert "target: is required" in message
    both = GOOD + "tune: {n_trials: 3}\n"
    assert "give either train or tune, not both" in error_of(ws, spec_file(tmp_path, both))
    cron = GOOD.replace('"0 * * * *"', '"every hour"')
    assert error_of(ws, spec_file(tmp_path, cron)).startswith(
        "loop.yaml:23 monitors.0.schedule: 'every hour' is not a cron schedule"
    )


def test_a_dict_spec_reports_paths_without_lines(ws):
    with pytest.raises(InvalidInput) as info:
        ws.loops.validate({"name": "x", "data": {"dataset": "loans"}, "target": "approved",
                           "register": {"approval": "sometimes"}})
    assert info.value.message.startswith("loop spec register.approval:")


def test_not_yaml_and_missing_file(ws, tmp_path, cli):
    path = spec_file(tmp_path, "name: [unclosed\n")
    assert "not valid YAML" in error_of(ws, path)
    result = cli("-w", ws.root, "loop", "validate", tmp_path / "nope.yaml", check=False)
    assert result.code != 0 and "no loop spec at" in result.err


def test_every_error_is_reported_at_once_with_its_line_and_path(ws, tmp_path, cli):
    shape = GOOD.replace("fraction: 0.25", "fraction: lots").replace("kind: data_drift",
                                                                     "kind: vibes")
    shape = shape.replace("  params: {max_iter: 20}", "  parms: {max_iter: 20}")
    with pytest.raises(InvalidInput) as info:
        ws.loops.validate(spec_file(tmp_path, shape))
    found = [info.value.message, *info.value.details]
    assert found[0].startswith("loop.yaml:6 split.fraction:"), found
    assert any(d.startswith("loop.yaml:11 train.parms: unknown key") for d in found), found
    assert any(d.startswith("loop.yaml:23 monitors.0.kind:") for d in found), found
    # checks against the workspace too: dataset column, algorithm, metric and cron, all at once
    names = GOOD.replace("target: approved", "target: aproved").replace(
        "hist_gradient_boosting", "hist_gradient_bosting").replace(
        "metric: roc_auc", "metric: auc").replace('"0 * * * *"', '"every hour"')
    result = cli("-w", ws.root, "loop", "validate", spec_file(tmp_path, names), check=False)
    lines = result.err.strip().splitlines()
    assert result.code == 1 and "Traceback" not in result.err, result
    assert len(lines) == 4, lines
    for where in ("loop.yaml:5 target:", "loop.yaml:10 train.algorithm:",
                  "loop.yaml:13 evaluate.metric:", "loop.yaml:23 monitors.0.schedule:"):
        assert sum(where in line for line in lines) == 1, (where, lines)
    assert all(line.startswith("modelloop: error: ") for line in lines)
