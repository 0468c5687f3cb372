"""``modelloop bias`` and ``ws.explain.bias``, the way a user runs them: a dataset version, a
facet, a label, a registered model; Clarify's analysis JSON, the HTML report, and one clear error
naming the column or value for each kind of bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import BiasSpecError
from modelloop.explain.bias import analyse


def _loans(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.4, 0.6])
    income = rng.normal(50, 15, n).round(1)
    age = rng.integers(18, 80, n)
    grade = rng.choice(["A", "B", "C"], n)
    approved = ((income + 8 * (sex == "male") + rng.normal(0, 10, n)) > 58).astype(int)
    return pd.DataFrame({"sex": sex, "income": income, "age": age, "grade": grade,
                         "approved": approved})  # fmt: skip


@pytest.fixture
def loans(local_workspace, tmp_path):
    path = tmp_path / "loans.csv"
    _loans().to_csv(path, index=False)
    local_workspace.datasets.ingest("loans", [path])
    return local_workspace


def test_cli_prints_clarify_analysis_json_for_a_dataset(loans, cli, tmp_path):
    r = cli("-w", loans.root, "bias", "loans@1", "--facet", "sex=female", "--label", "approved=1",
            "--json")  # fmt: skip
    out = r.json()
    pre = out["pre_training_bias_metrics"]
    assert pre["label"] == "approved" and pre["label_value_or_threshold"] == "1"
    [group] = pre["facets"]["sex"]
    assert group["value_or_threshold"] == "female"
    metrics = {m["name"]: m for m in group["metrics"]}
    assert list(metrics) == ["CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD"]
    assert metrics["CDDL"]["value"] is None and "Group variable" in metrics["CDDL"]["error"]
    df = _loans()
    female = df.sex == "female"
    assert metrics["CI"]["value"] == pytest.approx(1 - 2 * female.mean())
    dpl = df.approved[~female].mean() - df.approved[female].mean()
    assert metrics["DPL"]["value"] == pytest.approx(dpl) and dpl > 0.1  # the data's built-in bias
    assert "post_training_bias_metrics" not in out

    html = tmp_path / "bias.html"
    r = cli("-w", loans.root, "bias", "loans@1", "--facet", "sex=female", "--label", "approved=1",
            "--group", "grade", "--html", html)  # fmt: skip
    assert "DPL" in r.out and "CDDL" in r.out
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "Class Imbalance (CI)" in page


def test_post_training_metrics_on_a_registered_models_predictions(loans, cli):
    job = loans.training.train("loans@1", "approved", "logistic_regression")
    ref = loans.models.register_from_job("loans-model", job["id"])["ref"]
    report = loans.explain.bias("loans@1", "sex=female", "approved=1", model=ref, group="grade")
    assert report.model == ref
    names = [g.values for g in report.post_training]
    assert set(names[0]) >= {"DPPL", "DI", "DCA", "DCR", "RD", "DAR", "DRR", "AD", "CDDPL", "TE",
                             "GE", "SD"}  # fmt: skip
    # FT needs numeric features: sex and grade are strings, so it says why it has no value
    assert "non-numeric" in report.post_training[0].errors["FT"]
    frame = loans.datasets.to_pandas("loans@1")
    preds = loans.models.load(ref).predict(frame[["sex", "income", "age", "grade"]])
    same = analyse(frame, "sex=female", "approved=1", predicted=np.asarray(preds))
    assert report.value("DI") == pytest.approx(same.value("DI"), abs=1e-12)

    r = cli("-w", loans.root, "bias", "loans@1", "--facet", "age>60", "--label", "approved",
            "--model", ref, "--metric", "DI", "--metric", "dppl", "--metric", "CI", "--json")  # fmt: skip
    out = r.json()
    [post] = out["post_training_bias_metrics"]["facets"]["age"]
    assert post["value_or_threshold"] == "(60, 79]"
    assert [m["name"] for m in post["metrics"]] == ["DI", "DPPL"]
    assert [m["name"] for m in out["pre_training_bias_metrics"]["facets"]["age"][0]["metrics"]] == ["CI"]


def test_one_vs_rest_facet_gives_a_group_per_value():
    df = _loans()
    report = analyse(df, "grade", "approved=1")
    assert [g.value_or_threshold for g in report.pre_training] == list(pd.unique(df.grade))
    for g in report.pre_training:
        mask = df.grade == g.value_or_threshold
        assert g.n_group == mask.sum() and g.n_rest == (~mask).sum()
        assert report.value("CI", g.value_or_threshold) == pytest.approx(1 - 2 * mask.mean())
    with pytest.raises(BiasSpecError, match="3 groups"):
        report.value("CI")
    several = analyse(df, "grade=A,B", "approved=1")
    assert several.pre_training[0].value_or_threshold == "A,B"
    assert several.value("CI") == pytest.approx(1 - 2 * df.grade.isin(["A", "B"]).mean())


@pytest.mark.parametrize(("facet", "label", "match"), [
    ("gender=female", "approved=1", "facet column 'gender' is not in the data"),
    ("sex=femal", "approved=1", "facet value 'femal' never occurs in column 'sex'"),
    ("age>200", "approved=1", "no row of facet column 'age' is above 200"),
    ("sex>3", "approved=1", "column 'sex' is not numeric"),
    ("sex=female", "grade", "label column 'grade' is not binary"),
    ("sex=female", "income", "label column 'income' is not binary"),
    ("sex=female", "approved=7", "label value '7' never occurs in column 'approved'"),
    ("sex=female", "outcome=1", "label column 'outcome' is not in the data"),
    ("sex=female,male", "approved=1", "selects every row"),
])  # fmt: skip
def test_bad_input_is_a_typed_error_naming_it(facet, label, match):
    with pytest.raises(BiasSpecError, match=match) as err:
        analyse(_loans(), facet, label)
    assert err.value.column in (facet + label)


def test_cli_bad_input_is_one_line_naming_it(loans, cli):
    r = cli("-w", loans.root, "bias", "loans@1", "--facet", "sex=femal", "--label", "approved=1",
            check=False)  # fmt: skip
    assert r.code != 0 and "Traceback" not in r.err
    assert "facet value 'femal' never occurs in column 'sex'" in r.err and "female" in r.err
    r = cli("-w", loans.root, "bias", "loans@1", "--facet", "sex=female", "--label", "grade",
            check=False)  # fmt: skip
    assert r.code != 0 and "label column 'grade' is not binary" in r.err
    r = cli("-w", loans.root, "bias", "loans@1", "--facet", "sex=female", "--label", "approved=1",
            "--metric", "XYZ", check=False)  # fmt: skip
    assert r.code != 0 and "unknown bias metric 'XYZ'" in r.err


def test_a_million_rows_take_counts_not_loops():
    """The metrics are counts over boolean arrays: on a million rows they agree with a plain
    per-group recount (speed is measured in benchmarks/explain.py, not asserted here)."""
    rng = np.random.default_rng(1)
    n = 1_000_000
    facet = rng.random(n) < 0.3
    label = rng.random(n) < np.where(facet, 0.3, 0.5)
    pred = rng.random(n) < np.where(facet, 0.25, 0.55)
    df = pd.DataFrame({"f": facet.astype(int), "y": label.astype(int), "p": pred.astype(int)})
    report = analyse(df, "f=1", "y=1", predicted="p", methods=["DI", "DPPL", "TE", "CI"])
    qa, qd = pred[~facet].mean(), pred[facet].mean()
    assert report.value("DI") == pytest.approx(qd / qa, rel=1e-12)
    assert report.value("DPPL") == pytest.approx(qa - qd, rel=1e-12)
    fn = lambda m: (label & ~pred & m).sum() / (~label & pred & m).sum()  # noqa: E731
    assert report.value("TE") == pytest.approx(fn(facet) - fn(~facet), rel=1e-12)
