"""``POST /endpoints/NAME/explain``: predictions with their SHAP attributions, from variants
allowed to explain, with the time taken against the endpoint's budget."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from tests.serving.conftest import FEATURES, register_model, row

pytest.importorskip("shap")


def test_explain_answers_predictions_with_attributions_that_add_up(workspace, serve):
    ws = workspace
    forest = register_model(ws, "trees", kind="forest")
    logreg = register_model(ws, "lin", kind="logreg")
    ws.endpoints.create("trees", variants=[{"model": forest, "explain": True}],
                        options={"explain_budget_ms": 60_000, "explain_max_rows": 5})  # fmt: skip
    ws.endpoints.create("quiet", forest)  # explanations not allowed
    ws.endpoints.create("lin", variants=[{"model": logreg, "explain": True}])
    s = serve(ws)
    for name in ("trees", "quiet", "lin"):
        s.wait_for(name)
    rows = row(5, 3)
    with httpx.Client(timeout=60) as client:
        r = client.post(f"{s.url}/endpoints/trees/explain", json=rows)
        assert r.status_code == 200, r.text
        out = r.json()
        assert len(out["predictions"]) == 3 and out["model"] == forest
        ex = out["explanations"]
        assert ex["method"] == "tree_shap" and ex["columns"] == FEATURES
        values = np.asarray(ex["attributions"])
        assert values.shape == (3, len(FEATURES))
        model = ws.models.load(forest)
        import pandas as pd

        proba = model.predict_proba(pd.DataFrame(rows, columns=FEATURES))[:, 1]
        np.testing.assert_allclose(values.sum(axis=1) + ex["expected_value"], proba, atol=1e-9)
        assert out["latency_ms"]["budget"] == 60_000 and out["within_budget"] is True
        assert out["latency_ms"]["explain"] <= out["latency_ms"]["total"]

        refused = client.post(f"{s.url}/endpoints/quiet/explain", json=rows)
        assert refused.status_code == 403 and "does not explain" in refused.text
        too_many = client.post(f"{s.url}/endpoints/trees/explain", json=row(1, 6))
        assert too_many.status_code == 400 and "at most 5" in too_many.text
        # a model registered from a folder records no training data for Kernel SHAP's baseline
        lin = client.post(f"{s.url}/endpoints/lin/explain", json=rows)
        assert lin.status_code == 400 and "no training data" in lin.text
        # the ordinary route still answers
        assert client.post(f"{s.url}/endpoints/trees/invocations", json=rows).status_code == 200


def test_invoke_endpoint_with_enable_explanations(workspace, serve):
    ws = workspace
    forest = register_model(ws, "trees", kind="forest")
    ws.endpoints.create("trees", variants=[{"model": forest, "explain": True}])
    ws.endpoints.create("quiet", forest)
    s = serve(ws)
    s.wait_for("trees")
    s.wait_for("quiet")
    rows = row(7, 2)
    url = f"{s.url}/endpoints/trees/invocations"
    with httpx.Client(timeout=60) as client:
        r = client.post(url, json=rows, headers={"X-Amzn-SageMaker-Enable-Explanations": "`true`",
                                                 "Accept": "text/csv"})  # fmt: skip
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["version"] == "1.0" and out["predictions"]["content_type"] == "text/csv"
        plain = client.post(url, json=rows, headers={"Accept": "text/csv"}).text
        assert out["predictions"]["data"] == plain
        [first, _] = out["explanations"]["tree_shap"]
        assert [f["feature_header"] for f in first] == FEATURES
        assert all(len(f["attributions"][0]["attribution"]) == 1 for f in first)
        off = client.post(url, json=rows, headers={"X-Amzn-SageMaker-Enable-Explanations": "`false`"})
        assert off.status_code == 200 and "predictions" in off.json() and "explanations" not in off.json()
        bad = client.post(url, json=rows, headers={"X-Amzn-SageMaker-Enable-Explanations": "`x > 1`"})
        assert bad.status_code == 400 and bad.headers["x-amzn-ErrorType"] == "ValidationError"
        quiet = client.post(f"{s.url}/endpoints/quiet/invocations", json=rows,
                            headers={"X-Amzn-SageMaker-Enable-Explanations": "`true`"})  # fmt: skip
        assert quiet.status_code == 403 and "does not explain" in quiet.text
