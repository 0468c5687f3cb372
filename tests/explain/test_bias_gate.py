"""The gate's bias conditions: a retrained model that became unfair is not promoted, and the
reason is recorded like any gate failure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelloop.data.agrawal import START, daily_applications, write_days
from modelloop.errors import InvalidInput
from modelloop.training.bias_gate import bias_gate, check_bias_spec

SPEC = """\
name: loans
data:
  dataset: loans
  ingest: [incoming/]
  event_time_column: applied_at
  window: 1
target: approved
split: {method: time, fraction: 0.25}
quality:
  ignore: [application_id, applied_at]
train:
  algorithm: hist_gradient_boosting
  params: {max_iter: 30}
evaluate:
  metric: roc_auc
  gate:
    - threshold: 0.5
  bias:
    facet: elevel=4
    label: approved=1
    conditions:
      - {metric: DI, within: [0.5, 2.0]}
      - {metric: DPPL, max_worsening: 0.05}
register:
  approval: auto
"""


def _frame(rate_d: float, rate_a: float, n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = rng.random(n) < 0.3
    y = rng.random(n) < 0.5
    return pd.DataFrame({"sex": np.where(d, "female", "male"), "approved": y.astype(int)}), \
        (rng.random(n) < np.where(d, rate_d, rate_a)).astype(int)  # fmt: skip


def test_within_and_max_worsening_conditions():
    spec = {"facet": "sex=female", "label": "approved=1",
            "conditions": [{"metric": "DI", "within": [0.8, 1.25]},
                           {"metric": "dppl", "max_worsening": 0.05}]}  # fmt: skip
    frame, fair = _frame(0.5, 0.5)
    _, unfair = _frame(0.2, 0.6)
    reasons, checks = bias_gate(frame, spec, fair)
    assert reasons == [] and [c["passed"] for c in checks] == [True, True]
    reasons, checks = bias_gate(frame, spec, unfair, champion=fair)
    assert len(reasons) == 2, reasons
    assert reasons[0].startswith("DI for sex=female is 0.3") and "outside [0.8, 1.25]" in reasons[0]
    assert "farther from 0 than the champion's" in reasons[1]
    assert checks[1]["metric"] == "bias:DPPL" and checks[1]["baseline"] is not None
    # without a champion, max_worsening does not apply
    reasons, _ = bias_gate(frame, {**spec, "conditions": spec["conditions"][1:]}, unfair)
    assert reasons == []


@pytest.mark.parametrize(("change", "match"), [
    ({"conditions": [{"metric": "CI", "within": [0, 1]}]}, "pre-training metric"),
    ({"conditions": [{"metric": "XX", "within": [0, 1]}]}, "unknown bias metric"),
    ({"conditions": [{"metric": "DI"}]}, "sets no bound"),
    ({"conditions": [{"metric": "DI", "within": [2, 1]}]}, "within must be"),
    ({"conditions": []}, "no conditions"),
    ({"facet": ""}, "needs a facet"),
])  # fmt: skip
def test_bad_bias_gate_specs_are_refused(change, match):
    spec = {"facet": "sex=female", "label": "approved=1",
            "conditions": [{"metric": "DI", "within": [0.8, 1.25]}], **change}  # fmt: skip
    with pytest.raises(InvalidInput, match=match):
        check_bias_spec(spec)


def _biased_days(folder, first_day: int, days: int, rows: int) -> None:
    """Days whose label rule changed for one group: every elevel=4 application is refused."""
    for day in range(first_day, first_day + days):
        frame = daily_applications(day, rows)
        frame.loc[frame["elevel"] == 4, "approved"] = 0
        frame.to_csv(folder / f"loans-{START + pd.Timedelta(days=day):%Y-%m-%d}.csv", index=False)


@pytest.mark.slow
def test_a_retrain_that_became_unfair_is_refused_by_the_bias_gate(local_workspace, cli):
    ws = local_workspace
    folder = ws.root
    (folder / "loop.yaml").write_text(SPEC)
    write_days(folder / "incoming", 2, 500)
    first = cli("-w", ws.root, "loop", "run", folder / "loop.yaml", "--json").json()
    assert first["status"] == "succeeded" and first["evaluation"]["passed"] is True, first
    assert first["champion"] == "loans@1"
    checks = [c for c in first["evaluation"]["checks"] if c["metric"].startswith("bias:")]
    assert [c["metric"] for c in checks] == ["bias:DI", "bias:DPPL"]
    assert 0.5 <= checks[0]["candidate"] <= 2.0

    _biased_days(folder / "incoming", 2, 2, 500)
    second = cli("-w", ws.root, "loop", "run", folder / "loop.yaml", "--json").json()
    ev = second["evaluation"]
    assert ev["passed"] is False and ev["candidate"] > 0.5, ev  # it still ranks well…
    assert any(r.startswith("DI for elevel=4 is") and "outside [0.5, 2]" in r
               for r in ev["reasons"]), ev["reasons"]  # …but it refuses elevel=4
    assert any("DPPL for elevel=4" in r and "than the champion's" in r for r in ev["reasons"])
    assert second["steps"]["register"] == "skipped" and second["champion"] == "loans@1"
    assert [v["version"] for v in ws.models.versions("loans")] == [1]
