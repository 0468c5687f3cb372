"""The fast path: a plan compiled from a fitted pipeline computes the same function as the
pipeline (property-tested on random rows with missing values and unseen categories), is data in
the package hash, and is left out, with the reason recorded, whenever it cannot be trusted."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelloop.errors import IntegrityError
from modelloop.registry.fastpath import RTOL, Plan, compile_into
from modelloop.registry.fastpath.probe import as_rows
from modelloop.registry.package import load_package, save_package, verify_package
from modelloop.registry.signature import Signature

PLANS = ["basic", "pro", "max"]
REGIONS = [f"r{i}" for i in range(24)]  # more than max_onehot: ordinal encoded


def training_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(5e4, 1e4, n),
        "plan": rng.choice(PLANS, n).astype(object),
        "region": rng.choice(REGIONS, n).astype(object),
        "member": rng.random(n) < 0.3,
        "empty": np.full(n, np.nan),  # all missing: the median imputer drops it
    })
    df.loc[rng.random(n) < 0.1, "income"] = np.nan
    df.loc[rng.random(n) < 0.1, "plan"] = None
    score = (df.age - 45) / 10 + (df.plan == "pro") * 1.2 - df.member + rng.normal(0, 1, n)
    df["y"] = (score > 0).astype(int)
    df["y3"] = np.digitize(score, [-1, 1])
    df["amount"] = score * 3.0 + 7.0
    return df


FEATURES = ["age", "income", "plan", "region", "member", "empty"]
CASES = [("logistic_regression", "y", "binary"), ("logistic_regression", "y3", "multiclass"),
         ("random_forest", "y", "binary"), ("hist_gradient_boosting", "y3", "multiclass"),
         ("ridge", "y", "binary"), ("linear_regression", "amount", "regression"),
         ("decision_tree", "amount", "regression"), ("knn", "y", "binary")]


def fit(algorithm: str, target: str, task: str, frame=None):
    from modelloop.training.trainers import fit_model

    frame = training_frame() if frame is None else frame
    data = frame[[*FEATURES, target]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = fit_model(data, target, algorithm, task=task)
    return model, Signature.from_frame(frame[FEATURES])


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """Each case fitted, packaged (with its plan) and loaded back."""
    out = {}
    frame = training_frame()
    for algorithm, target, task in CASES:
        model, sig = fit(algorithm, target, task, frame)
        path = tmp_path_factory.mktemp("fp") / f"{algorithm}-{target}"
        manifest = save_package(model, path, signature=sig, task=task, probe=frame[FEATURES])
        assert manifest.flavor_info["fast_path"]["path"] == "plan", manifest.flavor_info
        out[(algorithm, target)] = load_package(path)
    return out


def _assert_same(pm, frame: pd.DataFrame) -> None:
    frame = pm.signature.validate(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(pm.model.predict(frame))
        proba = np.asarray(pm.model.predict_proba(frame)) if pm.plan.has_proba else None
    for X in (frame, as_rows(frame, pm.signature)):
        for want in (False, True):
            labels, probs = pm.plan.predict(X, want)
            if pm.plan.classes is not None:
                assert np.asarray(labels).tolist() == expected.tolist()
            else:
                np.testing.assert_allclose(labels, expected, rtol=RTOL, atol=1e-9)
            if want and proba is not None:
                np.testing.assert_allclose(probs, proba, rtol=RTOL, atol=1e-12)


numbers = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False),
                    st.floats(allow_nan=True, allow_infinity=False, width=32))
texts = st.one_of(st.none(), st.sampled_from(PLANS + REGIONS + ["", "unseen", "PRO"]))
rows = st.lists(st.tuples(st.one_of(st.none(), st.integers(-100, 200)), numbers, texts, texts,
                          st.booleans(), numbers), min_size=1, max_size=40)


@pytest.mark.parametrize("case", [c[:2] for c in CASES], ids=lambda c: f"{c[0]}-{c[1]}")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows)
def test_the_plan_equals_the_pipeline_on_random_rows(packaged, case, data):
    pm = packaged[case]
    frame = pd.DataFrame(data, columns=FEATURES)
    frame["age"] = frame["age"].astype("float64")  # None -> NaN, as JSON rows arrive
    frame["income"] = frame["income"].astype("float64")
    frame["empty"] = frame["empty"].astype("float64")
    _assert_same(pm, frame)


def test_one_row_and_many_rows_and_nullable_dtypes(packaged):
    frame = training_frame(n=2000, seed=3)[FEATURES]
    for pm in packaged.values():
        _assert_same(pm, frame.iloc[:1])
        _assert_same(pm, frame)  # above the size where text is encoded with pandas
        nullable = frame.astype({"age": "Int64", "plan": "string", "member": "boolean"})
        _assert_same(pm, nullable)


def test_the_plan_is_data_inside_the_package_hash(packaged):
    pm = packaged[("logistic_regression", "y")]
    plan = json.loads((pm.path / "fastpath.json").read_text())
    assert plan["estimator"]["kind"] == "logistic" and plan["format"] == 1
    assert "fastpath.json" in pm.manifest.files
    kinds = [b["kind"] for b in plan["blocks"]]
    assert kinds == ["numeric", "onehot", "ordinal"]
    assert "empty" not in plan["blocks"][0]["columns"]  # dropped by the imputer, as sklearn does
    # the plan is a file of the package: changing it fails the hash check
    plan["blocks"][0]["steps"][0]["fill"][0] += 1.0
    (pm.path / "fastpath.json").write_text(json.dumps(plan))
    with pytest.raises(IntegrityError, match="fastpath.json"):
        verify_package(pm.path)


def _plain_reason(model, tmp_path, frame=None, name="m") -> str:
    frame = training_frame() if frame is None else frame
    sig = Signature.from_frame(frame[FEATURES])
    info = compile_into(model, tmp_path, sig, frame[FEATURES])
    assert info["path"] == "plain" and not (tmp_path / "fastpath.json").exists()
    return info["reason"]


def test_what_the_plan_does_not_know_keeps_the_plain_path_with_its_reason(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    frame = training_frame()
    X, y = frame[FEATURES], frame["y"]
    bare = LogisticRegression().fit(X[["age", "member"]].astype(float), y)
    assert "no preprocessing" in _plain_reason(bare, tmp_path)
    custom = make_pipeline(ColumnTransformer([("f", FunctionTransformer(np.log1p), ["age"])]),
                           LogisticRegression()).fit(X, y)
    assert "FunctionTransformer" in _plain_reason(custom, tmp_path)
    strict = make_pipeline(ColumnTransformer(
        [("p", OneHotEncoder(handle_unknown="error", sparse_output=False), ["region"])]),
        LogisticRegression()).fit(X, y)
    assert "is not a constant imputer then an encoder" in _plain_reason(strict, tmp_path)
    sparse = make_pipeline(ColumnTransformer([("p", OneHotEncoder(), ["region"])]),
                           LogisticRegression()).fit(X, y)
    assert "sparse" in _plain_reason(sparse, tmp_path)


def test_a_plan_that_differs_from_the_pipeline_is_refused(tmp_path, monkeypatch):
    import modelloop.registry.fastpath as fastpath

    model, sig = fit("logistic_regression", "y", "binary")
    real = fastpath.compile_plan

    def off_by_a_little(model, signature):
        data = real(model, signature)
        data["estimator"]["intercept"] = [data["estimator"]["intercept"][0] + 1e-6]
        return data

    monkeypatch.setattr(fastpath, "compile_plan", off_by_a_little)
    info = compile_into(model, tmp_path, sig, training_frame()[FEATURES])
    assert info["path"] == "plain" and "differ from the pipeline" in info["reason"]


def test_an_unreadable_plan_falls_back_to_the_plain_path(packaged, tmp_path):
    import shutil

    from modelloop.common.hashing import sha256_bytes
    from modelloop.registry.fastpath import load_plan
    from modelloop.registry.package import Manifest

    pm = packaged[("random_forest", "y")]
    assert isinstance(pm.plan, Plan) and pm.plan.kind == "estimator"
    copy = tmp_path / "copy"
    shutil.copytree(pm.path, copy)
    unknown = json.dumps({"format": 99}).encode()
    (copy / "fastpath.json").write_bytes(unknown)
    # a manifest that lists the unknown plan (as a newer modelloop would write it)
    manifest = Manifest.from_dict({**pm.manifest.to_dict(), "files": {
        **pm.manifest.files, "fastpath.json": sha256_bytes(unknown)}})
    assert load_plan(copy, manifest, pm.model) is None


def test_the_plan_is_read_when_first_used_and_checked_against_its_hash(packaged, tmp_path):
    import shutil

    from modelloop.registry import package

    pm = packaged[("ridge", "y")]
    copy = tmp_path / "copy"
    shutil.copytree(pm.path, copy)
    loaded = load_package(copy)
    assert loaded._plan is package._UNREAD  # a load that only predicts never reads it
    # changed after the load's hash check, before its first use: refused, not used
    with open(copy / "fastpath.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(IntegrityError, match="fastpath.json"):
        _ = loaded.plan
    assert isinstance(load_package(pm.path).plan, Plan)


def test_the_registry_and_models_show_say_which_path(local_workspace, tmp_path, cli):
    ws = local_workspace
    frame = training_frame()
    model, sig = fit("logistic_regression", "y", "binary", frame)
    save_package(model, tmp_path / "fast", signature=sig, task="binary", probe=frame[FEATURES])
    fast = ws.models.register("fast", tmp_path / "fast")
    assert fast["fast_path"]["path"] == "plan"
    from sklearn.linear_model import LogisticRegression

    bare = LogisticRegression().fit(frame[["age", "income"]].fillna(0), frame["y"])
    save_package(bare, tmp_path / "bare", signature=Signature.from_frame(frame[["age", "income"]]),
                 task="binary")
    plain = ws.models.register("bare", tmp_path / "bare")
    assert plain["fast_path"]["path"] == "plain" and plain["fast_path"]["reason"]
    shown = cli("-w", ws.root, "models", "show", "fast@1").out
    assert "serving path: fast plan" in shown
    shown = cli("-w", ws.root, "models", "show", "bare@1").out
    assert "serving path: plain pipeline (the model has no preprocessing" in shown


def test_a_package_can_be_written_without_its_plan(tmp_path):
    model, sig = fit("logistic_regression", "y", "binary")
    manifest = save_package(model, tmp_path / "m", signature=sig, task="binary", fast_path=False)
    assert manifest.flavor_info["fast_path"] == {"path": "plain",
                                                 "reason": "packaged with fast_path=False"}
    assert load_package(tmp_path / "m").plan is None


@pytest.mark.parametrize("algorithm,target,task", [("lightgbm", "y", "binary"),
                                                   ("lightgbm", "amount", "regression"),
                                                   ("xgboost", "y3", "multiclass")])
def test_boosters_get_a_plan_that_calls_the_loaded_booster(tmp_path, algorithm, target, task):
    pytest.importorskip(algorithm)
    frame = training_frame()
    model, sig = fit(algorithm, target, task, frame)
    manifest = save_package(model, tmp_path / "m", signature=sig, task=task,
                            probe=frame[FEATURES])
    assert manifest.flavor == algorithm
    assert manifest.flavor_info["fast_path"]["path"] == "plan", manifest.flavor_info
    pm = load_package(tmp_path / "m")
    assert pm.plan is not None and pm.plan.kind == "estimator"
    data = training_frame(n=300, seed=5)[FEATURES]
    data.loc[::9, "region"] = "unseen"
    _assert_same(pm, data)
