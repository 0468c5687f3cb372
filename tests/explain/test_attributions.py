"""SHAP attributions of registered models, per original column: TreeSHAP adds up to the model's
output minus the expected value on every row; Kernel SHAP on a linear model gives the exact
linear attributions; ``modelloop explain`` prints Clarify's explanations JSON and writes the
report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("shap")
pytestmark = pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")

from modelloop.errors import InvalidInput  # noqa: E402


def _loans(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                          "income": rng.normal(50, 15, n).round(1),
                          "age": rng.integers(18, 80, n), "grade": rng.choice(["A", "B", "C"], n)})  # fmt: skip
    noise = rng.normal(0, 10, n)
    frame["approved"] = ((frame.income + 8 * (frame.sex == "male") + noise) > 58).astype(int)
    frame["amount"] = 3.0 * frame.income - 0.5 * frame.age + 4 * (frame.grade == "A") + noise / 5
    return frame


@pytest.fixture
def ws(local_workspace, tmp_path):
    path = tmp_path / "loans.csv"
    _loans().to_csv(path, index=False)
    local_workspace.datasets.ingest("loans", [path])
    return local_workspace


def _register(ws, algorithm, target="approved", params=None, name=None):
    job = ws.training.train("loans@1", target, algorithm, params)
    return ws.models.register_from_job(name or algorithm.replace("_", "-"), job["id"])["ref"]


@pytest.mark.parametrize("algorithm", ["random_forest", "hist_gradient_boosting", "lightgbm"])
def test_treeshap_rows_add_up_to_the_model_output(ws, algorithm):
    params = {"random_forest": {"n_estimators": 20}, "hist_gradient_boosting": {"max_iter": 20},
              "lightgbm": {"n_estimators": 20}}[algorithm]  # fmt: skip
    ref = _register(ws, algorithm, params=params)
    result = ws.explain.attributions(ref, "loans@1", rows=100)
    assert result.method == "tree" and result.values.shape == (100, 5)
    assert set(result.columns) == {"sex", "income", "age", "grade", "amount"}  # not one-hot
    model = ws.models.load(ref)
    X = ws.datasets.to_pandas("loans@1")[model.signature.names].iloc[:100]
    if result.output == "probability":
        out = model.predict_proba(X)[:, 1]
    else:
        assert result.output == "log-odds"
        if hasattr(model.model, "decision_function"):
            out = model.model.decision_function(X)
        else:  # LightGBM: the margin behind its probability
            p = model.predict_proba(X)[:, 1]
            out = np.log(p / (1 - p))
    tolerance = 1e-6 if algorithm == "lightgbm" else 1e-9  # LightGBM's margin: via its probability
    np.testing.assert_allclose(result.values.sum(axis=1) + result.expected_value, out, atol=tolerance)
    assert next(iter(result.global_importance)) in ("income", "amount")  # the label's drivers


def test_kernel_shap_on_a_linear_model_gives_the_linear_attributions(ws):
    ref = _register(ws, "linear_regression", target="amount", name="amount")
    model = ws.models.load(ref)
    frame = ws.datasets.to_pandas("loans@1")
    numeric = [c for c in model.signature.names if frame[c].dtype.kind in "if"]
    result = ws.explain.attributions(ref, "loans@1", rows=20, method="kernel", nsamples=500,
                                     centroids=10)  # fmt: skip
    assert result.method == "kernel" and result.output == "prediction"
    assert result.cost["nsamples"] == 500 and result.cost["background"] == 10
    X = frame[model.signature.names].iloc[:20]
    np.testing.assert_allclose(result.values.sum(axis=1) + result.expected_value,
                               model.predict(X), atol=1e-6)  # fmt: skip
    # a numeric column's exact linear attribution: coefficient x (value - baseline mean), the
    # baseline being the k-means centroids weighted by their cluster sizes
    import shap

    est = model.model.steps[-1][1]
    prep = model.model[:-1]
    names = list(prep.get_feature_names_out())
    background = frame[model.signature.names]
    summary = shap.kmeans(np.column_stack([
        background[c].to_numpy(dtype=float) if background[c].dtype.kind in "iufb"
        else pd.factorize(pd.concat([background[c], X[c]], ignore_index=True))[0][:len(background)]
        for c in model.signature.names]), 10)  # fmt: skip
    weights = summary.weights / summary.weights.sum()
    for col in numeric:
        j = model.signature.names.index(col)
        coef = est.coef_[names.index(next(n for n in names if n.endswith("__" + col)))]
        scale = prep.named_steps["encode"].named_transformers_["numeric"]
        k = list(scale.feature_names_in_).index(col)
        std = scale.named_steps["scale"].scale_[k] if "scale" in scale.named_steps else 1.0
        base = float(weights @ summary.data[:, j])
        exact = coef / std * (X[col].to_numpy(dtype=float) - base)
        np.testing.assert_allclose(result.values[:, result.columns.index(col)], exact, atol=1e-6)


def test_cli_explain_prints_clarify_json_writes_rows_and_report(ws, cli, tmp_path):
    ref = _register(ws, "logistic_regression")
    r = cli("-w", ws.root, "explain", ref, "loans@1", "--rows", "10", "--nsamples", "50",
            "--centroids", "5", "--json", "--local-out", tmp_path / "rows.csv",
            "--html", tmp_path / "shap.html")  # fmt: skip
    out = r.json()
    kernel = out["explanations"]["kernel_shap"]["label0"]
    assert set(kernel["global_shap_values"]) == {"sex", "income", "age", "grade", "amount"}
    assert isinstance(kernel["expected_value"], float) and out["output"] == "probability"
    assert out["cost"]["rows"] == 10 and out["cost"]["model_calls"] == 10 * 50 * 5
    rows = pd.read_csv(tmp_path / "rows.csv", index_col=0)
    assert rows.shape == (10, 5)
    page = (tmp_path / "shap.html").read_text()
    assert page.count("data:image/png;base64") >= 3 and "waterfall" in page

    r = cli("-w", ws.root, "explain", ref, "loans@1", "--method", "tree", check=False)
    assert r.code != 0 and "not a tree model" in r.err


def test_unknown_method_and_missing_columns_are_refused(ws):
    from modelloop.explain.attributions import explain

    ref = _register(ws, "logistic_regression")
    model = ws.models.load(ref)
    with pytest.raises(InvalidInput, match="unknown explanation method"):
        explain(model, _loans(), method="deep")
    with pytest.raises(InvalidInput, match="lacks the model's columns: income"):
        explain(model, _loans().drop(columns=["income"]))
