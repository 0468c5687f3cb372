"""Feature attribution drift: SHAP importances of the served model on captured traffic against
the baseline data's, compared by NDCG of the rankings as SageMaker does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("shap")

from tests.explain.test_bias_drift import _capture  # noqa: E402

from modelloop.errors import InvalidInput  # noqa: E402
from modelloop.monitoring.attribution_drift import ndcg  # noqa: E402


def test_ndcg_is_one_for_the_same_ranking_and_lower_when_it_turns():
    base = {"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.05}
    assert ndcg(base, {"a": 9, "b": 5, "c": 1, "d": 0}) == pytest.approx(1.0)
    turned = ndcg(base, {"a": 0.0, "b": 0.1, "c": 0.5, "d": 0.3})
    by_hand = (0.1 / 1 + 0.05 / np.log2(3) + 0.3 / 2 + 0.5 / np.log2(5)) / \
        (0.5 / 1 + 0.3 / np.log2(3) + 0.1 / 2 + 0.05 / np.log2(5))  # fmt: skip
    assert turned == pytest.approx(by_hand) and turned < 0.9


def _data(n: int, seed: int, income_sd: float = 15.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                          "income": rng.normal(50, income_sd, n).round(1),
                          "age": rng.integers(18, 80, n)})  # fmt: skip
    frame["approved"] = ((frame.income + 0.4 * (frame.age - 50)
                          + rng.normal(0, 5, n)) > 50).astype(int)  # fmt: skip
    return frame


@pytest.mark.slow
def test_attribution_drift_monitor_flags_a_turned_ranking(local_workspace, tmp_path):
    ws, mon = local_workspace, local_workspace.monitoring
    _data(600, 0).to_csv(tmp_path / "train.csv", index=False)
    ws.datasets.ingest("train", [tmp_path / "train.csv"])
    mon.ensure_baseline("train@1")
    job = ws.training.train("train@1", "approved", "random_forest", {"n_estimators": 30})
    ref = ws.models.register_from_job("loans", job["id"])["ref"]
    model = ws.models.load(ref)
    now = datetime.now(UTC).replace(microsecond=0)
    # traffic whose incomes all look alike: age, not income, now decides the predictions
    traffic = _data(300, 1, income_sd=0.5)[["sex", "income", "age"]]
    _capture(ws, "web", traffic, model.predict(traffic).tolist(), now - timedelta(minutes=20))
    mon.create_monitor("web-attr", endpoint="web", baseline="train@1", model=ref, window="1h",
                       config={"attribution": {"rows": 100, "threshold": 0.9}})  # fmt: skip
    run = mon.run("web-attr", window_end=(now + timedelta(seconds=1)).isoformat())
    assert run["status"] == "completed", run
    section = mon.run_report(run["id"])["attribution"]
    assert section["method"] == "tree"
    assert next(iter(section["baseline"])) == "income" and next(iter(section["current"])) == "age"
    assert section["ndcg"] < 0.9 and section["violations"][0]["metric"] == "ndcg"
    points = mon.metric("attribution.ndcg", {"monitor": "web-attr"})
    assert points[-1]["value"] == pytest.approx(section["ndcg"])


def test_attribution_monitor_needs_an_endpoint_and_a_model(local_workspace, tmp_path):
    _data(100, 0).to_csv(tmp_path / "train.csv", index=False)
    local_workspace.datasets.ingest("train", [tmp_path / "train.csv"])
    local_workspace.monitoring.ensure_baseline("train@1")
    with pytest.raises(InvalidInput, match="with its model"):
        local_workspace.monitoring.create_monitor("a", endpoint="web", baseline="train@1",
                                                  config={"attribution": {"rows": 10}})  # fmt: skip
