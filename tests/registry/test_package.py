"""Model packages: round trips per flavor, in this process and a new one, and tamper refusal."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import AlreadyExists, IntegrityError, InvalidInput, UntrustedCode
from modelloop.registry.package import (
    MANIFEST,
    load_package,
    read_manifest,
    save_package,
    verify_package,
)
from modelloop.registry.signature import Signature

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str) -> None:
    """Skip when an optional library is absent locally; in CI it must be there."""
    if importlib.util.find_spec(module) is None:
        if IN_CI:
            pytest.fail(f"{module} is not installed in CI")
        pytest.skip(f"{module} is not installed")


def make_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "visits": rng.integers(0, 20, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "plan": pd.Series(rng.choice(["free", "pro"], n), dtype="category"),
        }
    )


def make_target(df: pd.DataFrame, task: str):
    score = (df["age"] - 40) / 12 + (df["city"] == "lyon") * 1.0 + df["visits"] / 10
    if task == "binary":
        return np.where(score > 0.8, "churn", "stay")  # string labels: the mapping must survive
    if task == "multiclass":
        return np.digitize(score, [0.3, 1.2])  # 0, 1, 2
    return score.to_numpy() * 3.0 + 1.0


def preprocessing():
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "visits"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ]
    )


def estimator(kind: str, task: str):
    classifier = task != "regression"
    if kind == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if classifier else lightgbm.LGBMRegressor
        return cls(n_estimators=15, num_leaves=7, min_child_samples=5, verbose=-1)
    if kind == "xgboost":
        import xgboost

        cls = xgboost.XGBClassifier if classifier else xgboost.XGBRegressor
        return cls(n_estimators=15, max_depth=3)
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        return (RandomForestClassifier if classifier else RandomForestRegressor)(
            n_estimators=8, max_depth=4, random_state=0
        )
    from sklearn.linear_model import LogisticRegression, Ridge

    return LogisticRegression(max_iter=500) if classifier else Ridge()


def fit_pipeline(kind: str, task: str, df: pd.DataFrame):
    from sklearn.pipeline import Pipeline

    y = make_target(df, task)
    if kind == "xgboost" and task == "binary":
        y = (y == "churn").astype(int)  # XGBoost's wrapper takes encoded labels only
    return Pipeline([("prep", preprocessing()), ("model", estimator(kind, task))]).fit(df, y)


CASES = [
    ("linear", "binary", "sklearn"),
    ("forest", "multiclass", "sklearn"),
    ("linear", "regression", "sklearn"),
    ("lightgbm", "binary", "lightgbm"),
    ("lightgbm", "multiclass", "lightgbm"),
    ("lightgbm", "regression", "lightgbm"),
    ("xgboost", "binary", "xgboost"),
    ("xgboost", "multiclass", "xgboost"),
    ("xgboost", "regression", "xgboost"),
]


@pytest.mark.parametrize(("kind", "task", "flavor"), CASES, ids=[f"{k}-{t}" for k, t, _ in CASES])
def test_pipeline_round_trip_predicts_identically(tmp_path, kind, task, flavor):
    if flavor in ("lightgbm", "xgboost"):
        need(flavor)
    df = make_frame()
    model = fit_pipeline(kind, task, df)
    manifest = save_package(
        model,
        tmp_path / "pkg",
        signature=Signature.from_frame(df),
        metrics={"auc": np.float64(0.9)},
        params={"n": 3},
        lineage={"job": 7, "inputs": [{"kind": "dataset", "ref": "churn@2"}]},
    )

    assert manifest.flavor == flavor
    assert manifest.task == task
    assert manifest.metrics == {"auc": 0.9} and manifest.lineage["job"] == 7
    assert manifest.python and manifest.libraries["scikit-learn"]
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in manifest.files)
    if flavor == "lightgbm":
        assert "booster.txt" in manifest.files and "lightgbm" in manifest.libraries
    if flavor == "xgboost":
        assert "booster.json" in manifest.files and "xgboost" in manifest.libraries

    loaded = load_package(tmp_path / "pkg")
    fresh = make_frame(60, seed=1)
    np.testing.assert_array_equal(loaded.predict(fresh), model.predict(fresh))
    if task != "regression":
        np.testing.assert_array_equal(loaded.predict_proba(fresh), model.predict_proba(fresh))
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
        assert loaded.has_proba
    else:
        assert loaded.classes_ is None


def test_forest_records_the_tree_type_it_needs_and_trusts_only_that(tmp_path):
    df = make_frame()
    model = fit_pipeline("forest", "multiclass", df)
    manifest = save_package(model, tmp_path / "pkg", signature=Signature.from_frame(df))
    assert "sklearn.tree._tree.Tree" in manifest.flavor_info["trusted_types"]

    # A bare estimator too (no pipeline around it).
    from sklearn.ensemble import RandomForestRegressor

    X = df[["age", "visits"]]
    rf = RandomForestRegressor(n_estimators=4, random_state=0).fit(X, df["age"] * 2)
    save_package(rf, tmp_path / "rf", signature=Signature.from_frame(X), task="regression")
    np.testing.assert_array_equal(load_package(tmp_path / "rf").predict(X), rf.predict(X))


def test_lightgbm_keeps_the_best_iteration_of_early_stopping(tmp_path):
    need("lightgbm")
    import lightgbm

    df = make_frame(400)
    X, y = df[["age", "visits"]], make_target(df, "binary")
    model = lightgbm.LGBMClassifier(n_estimators=200, learning_rate=0.3, verbose=-1)
    with warnings.catch_warnings():  # eval_set is deprecated in newer LightGBM, not in 4.0
        warnings.simplefilter("ignore")
        model.fit(
            X[:300],
            y[:300],
            eval_set=[(X[300:], y[300:])],
            callbacks=[lightgbm.early_stopping(3, verbose=False)],
        )
    assert model.best_iteration_ < 200
    save_package(model, tmp_path / "pkg", signature=Signature.from_frame(X))
    loaded = load_package(tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_predictions_are_identical_in_a_new_process(tmp_path):
    need("lightgbm")
    need("xgboost")
    df = make_frame()
    expected = {}
    for kind, task, _ in [
        ("forest", "multiclass", ""),
        ("lightgbm", "binary", ""),
        ("xgboost", "regression", ""),
        ("lightgbm", "regression", ""),
    ]:
        model = fit_pipeline(kind, task, df)
        folder = tmp_path / f"{kind}-{task}"
        save_package(model, folder, signature=Signature.from_frame(df))
        expected[str(folder)] = (model.predict(df), task)
    df.to_parquet(tmp_path / "frame.parquet")
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np, pandas as pd
        from modelloop.registry.package import load_package
        df = pd.read_parquet({str(tmp_path / "frame.parquet")!r})
        out = {{}}
        for folder in json.loads(sys.argv[1]):
            model = load_package(folder)
            out[folder] = {{"predict": model.predict(df).tolist(),
                           "proba": model.predict_proba(df).tolist() if model.has_proba else None}}
        print(json.dumps(out))
    """)
    run = subprocess.run(
        [sys.executable, "-c", script, json.dumps(list(expected))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    for folder, (predictions, task) in expected.items():
        if task == "regression":
            np.testing.assert_array_equal(np.asarray(got[folder]["predict"]), predictions)
        else:
            assert got[folder]["predict"] == predictions.tolist()
            assert got[folder]["proba"] is not None


# -- integrity -----------------------------------------------------------------------------------
@pytest.fixture
def package(tmp_path):
    df = make_frame()
    model = fit_pipeline("linear", "binary", df)
    folder = tmp_path / "pkg"
    manifest = save_package(
        model,
        folder,
        signature=Signature.from_frame(df),
        extra_files={"notes/readme.txt": b"trained on churn@2"},
    )
    return folder, manifest


def test_manifest_lists_every_file_and_the_package_hash_is_stable(package):
    folder, manifest = package
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted([*manifest.files, MANIFEST]) == on_disk
    assert "extra/notes/readme.txt" in manifest.files
    assert read_manifest(folder).package_hash == manifest.package_hash
    assert (
        verify_package(folder, expected_hash=manifest.package_hash).package_hash
        == manifest.package_hash
    )
    assert json.loads((folder / MANIFEST).read_text())["package_hash"] == manifest.package_hash
    with pytest.raises(IntegrityError, match="expected"):
        verify_package(folder, expected_hash="0" * 64)


def test_tampered_file_is_refused_naming_it(package):
    folder, _ = package
    data = bytearray((folder / "model.skops").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.skops").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="'model.skops'.*tampered"):
        load_package(folder)


def test_missing_file_is_refused_naming_it(package):
    folder, _ = package
    (folder / "extra" / "notes" / "readme.txt").unlink()
    with pytest.raises(IntegrityError, match="'extra/notes/readme.txt' is missing"):
        load_package(folder)


def test_unexpected_file_is_refused_naming_it(package):
    folder, _ = package
    (folder / "backdoor.py").write_text("print('hi')")
    with pytest.raises(IntegrityError, match="unexpected file 'backdoor.py'"):
        verify_package(folder)


def test_edited_manifest_is_refused(package):
    folder, _ = package
    data = json.loads((folder / MANIFEST).read_text())
    data["flavor_info"]["trusted_types"].append("builtins.eval")
    (folder / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="model.json.*changed after packaging"):
        load_package(folder)


def test_pickled_flavors_are_hash_checked_even_when_verify_is_off(tmp_path):
    df = make_frame(30)
    save_package(_MeanModel(2.5), tmp_path / "pkg", signature=Signature.from_frame(df))
    assert read_manifest(tmp_path / "pkg").flavor == "custom"
    with pytest.raises(UntrustedCode, match="trust_pickle"):  # a pickle is code
        load_package(tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg", trust_pickle=True)
    np.testing.assert_array_equal(loaded.predict(df), np.full(30, 2.5))
    with open(tmp_path / "pkg" / "model.pkl", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(IntegrityError, match="'model.pkl'"):
        load_package(tmp_path / "pkg", verify=False, trust_pickle=True)


class _MeanModel:
    def __init__(self, value):
        self.value = value

    def predict(self, X):
        return np.full(len(X), self.value)


def test_custom_reference_to_a_predict_function(tmp_path, monkeypatch):
    (tmp_path / "mypredict.py").write_text("def predict(X):\n    return X['age'].to_numpy() * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    df = make_frame(20)
    manifest = save_package(
        "mypredict:predict", tmp_path / "pkg", signature=Signature.from_frame(df)
    )
    assert manifest.flavor == "custom" and manifest.flavor_info == {
        "reference": "mypredict:predict"
    }
    with pytest.raises(UntrustedCode):  # a reference imports a module: code, too
        load_package(tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg", trust_pickle=True)
    np.testing.assert_array_equal(loaded.predict(df), df["age"] * 2)
    with pytest.raises(InvalidInput, match="has no function 'nope'"):
        save_package("mypredict:nope", tmp_path / "bad", signature=Signature.from_frame(df))
    assert not (tmp_path / "bad").exists()


def test_river_model_round_trip(tmp_path):
    if importlib.util.find_spec("river") is None:
        pytest.skip("river is not installed")
    from river import linear_model, preprocessing

    df = make_frame(200)[["age", "visits"]]
    y = make_target(make_frame(200), "binary") == "churn"
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, label in zip(df.to_dict("records"), y, strict=True):
        model.learn_one(x, bool(label))
    manifest = save_package(model, tmp_path / "pkg", signature=Signature.from_frame(df))
    assert manifest.flavor == "river" and "river" in manifest.libraries
    loaded = load_package(tmp_path / "pkg", trust_pickle=True)
    expected = [model.predict_one(x) for x in df.to_dict("records")]
    assert list(loaded.predict(df)) == expected
    proba = loaded.predict_proba(df)
    np.testing.assert_allclose(
        proba[True], [model.predict_proba_one(x)[True] for x in df.to_dict("records")]
    )


def test_packages_are_immutable_and_written_atomically(package, tmp_path):
    folder, _ = package
    df = make_frame(30)
    with pytest.raises(AlreadyExists):
        save_package(_MeanModel(1.0), folder, signature=Signature.from_frame(df))
    with pytest.raises(InvalidInput, match="no predict method"):
        save_package(
            object(), tmp_path / "broken", signature=Signature.from_frame(df), flavor="custom"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]  # no half-written folder left


def test_prediction_validates_input_against_the_signature(package):
    folder, _ = package
    loaded = load_package(folder)
    df = make_frame(10)
    with pytest.raises(InvalidInput, match="missing required column 'city'"):
        loaded.predict(df.drop(columns=["city"]))
    reordered = df[["plan", "city", "visits", "age"]]
    np.testing.assert_array_equal(loaded.predict(reordered), loaded.predict(df))


def test_numeric_arrays_in_signature_order_predict_like_frames(tmp_path):
    from sklearn.linear_model import LogisticRegression

    df = make_frame()[["age", "visits"]]
    model = LogisticRegression(max_iter=500).fit(df, make_target(make_frame(), "binary"))
    save_package(model, tmp_path / "pkg", signature=Signature.from_frame(df))
    loaded = load_package(tmp_path / "pkg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "X does not have valid feature names"
        from_array = loaded.predict(df.to_numpy())
    np.testing.assert_array_equal(from_array, model.predict(df))
    with pytest.raises(InvalidInput, match="the model takes 2 columns"):
        loaded.predict(df.to_numpy()[:, :1])
