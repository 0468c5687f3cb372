"""MLflow interop: an exported package loads in MLflow and predicts the same; imports round-trip."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from modelloop.errors import IntegrityError, UntrustedCode
from modelloop.registry.mlflow_interop import export_mlflow, import_mlflow
from modelloop.registry.package import load_package, save_package
from modelloop.registry.signature import Signature

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

if importlib.util.find_spec("mlflow") is None and not IN_CI:  # in CI mlflow must be installed
    pytest.skip(
        "mlflow is not installed (pip install 'modelloop[mlflow]')", allow_module_level=True
    )


def make_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "visits": rng.integers(0, 20, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
        }
    )


def churn(df: pd.DataFrame):
    return np.where((df["age"] - 40) / 12 + (df["city"] == "lyon") > 0.5, "churn", "stay")


def pipeline(final):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "visits"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    return Pipeline([("prep", prep), ("model", final)])


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """A scikit-learn and a LightGBM package of the same churn model."""
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("packages")
    df = make_frame()
    finals = {"sklearn": LogisticRegression(max_iter=500)}
    if importlib.util.find_spec("lightgbm") is not None or IN_CI:
        import lightgbm

        finals["lightgbm"] = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1)
    out = {}
    for name, final in finals.items():
        model = pipeline(final).fit(df, churn(df))
        save_package(model, root / name, signature=Signature.from_frame(df), metrics={"auc": 0.8})
        out[name] = root / name
    return out


@pytest.mark.parametrize("flavor", ["sklearn", "lightgbm"])
def test_exported_model_loads_in_mlflow_and_predicts_the_same(packages, tmp_path, flavor):
    import mlflow.pyfunc

    if flavor not in packages:
        pytest.skip("lightgbm is not installed")
    export_mlflow(packages[flavor], tmp_path / "mlflow")
    conf = yaml.safe_load((tmp_path / "mlflow" / "MLmodel").read_text())
    assert (
        conf["flavors"]["python_function"]["loader_module"] == "modelloop.registry.mlflow_interop"
    )
    inputs = json.loads(conf["signature"]["inputs"])
    assert [(c["name"], c["type"]) for c in inputs] == [
        ("age", "any"),  # numbers: checked by the model itself (see the CSV test below)
        ("visits", "any"),
        ("city", "string"),
    ]
    assert conf["metadata"]["modelloop_signature"]["columns"][1]["type"] == "long"
    requirements = (tmp_path / "mlflow" / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "modelloop" in requirements

    ours = load_package(packages[flavor])
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "mlflow"))
    fresh = make_frame(50, seed=3)
    np.testing.assert_array_equal(np.asarray(theirs.predict(fresh)), ours.predict(fresh))
    np.testing.assert_array_equal(
        np.asarray(theirs.predict(fresh, params={"method": "predict_proba"})),
        ours.predict_proba(fresh),
    )


def test_mlflow_refuses_a_tampered_export(packages, tmp_path):
    import mlflow.pyfunc

    export_mlflow(packages["sklearn"], tmp_path / "mlflow")
    skops_file = tmp_path / "mlflow" / "data" / "modelloop_package" / "model.skops"
    skops_file.write_bytes(skops_file.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="'model.skops'"):
        mlflow.pyfunc.load_model(str(tmp_path / "mlflow"))


def test_importing_our_own_export_gives_back_the_same_package(packages, tmp_path):
    export_mlflow(packages["sklearn"], tmp_path / "mlflow")
    manifest = import_mlflow(tmp_path / "mlflow", tmp_path / "back")
    assert manifest.package_hash == load_package(packages["sklearn"]).manifest.package_hash
    assert manifest.metrics == {"auc": 0.8}


def test_mlflow_sklearn_model_is_imported_as_a_safe_sklearn_package(tmp_path):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    df = make_frame()
    model = pipeline(RandomForestClassifier(n_estimators=5, random_state=0)).fit(df, churn(df))
    extra = {}
    if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
        extra["skops_trusted_types"] = ["sklearn.tree._tree.Tree"]  # MLflow 3 writes skops too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's hint about integer columns
        signature = infer_signature(df, model.predict(df))
    mlflow.sklearn.save_model(
        model,
        str(tmp_path / "mlflow"),
        signature=signature,
        pip_requirements=["scikit-learn"],
        **extra,
    )
    manifest = import_mlflow(tmp_path / "mlflow", tmp_path / "pkg", lineage={"job": 3})
    assert manifest.flavor == "sklearn" and manifest.task == "binary"
    assert manifest.lineage["job"] == 3 and "imported_from" in manifest.lineage
    assert "sklearn.tree._tree.Tree" in manifest.flavor_info["trusted_types"]
    assert list(manifest.files) == ["model.skops"]  # the pickle was not carried over
    np.testing.assert_array_equal(load_package(tmp_path / "pkg").predict(df), model.predict(df))


def test_other_mlflow_models_are_kept_whole_and_loaded_by_mlflow(tmp_path):
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    with warnings.catch_warnings():  # MLflow's hints about type hints and input examples
        warnings.simplefilter("ignore")

        class Doubler(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input["age"].to_numpy() * 2

        df = make_frame(20)
        mlflow.pyfunc.save_model(
            str(tmp_path / "mlflow"),
            python_model=Doubler(),
            signature=infer_signature(df, df["age"].to_numpy()),
            pip_requirements=["pandas"],
        )
    with pytest.raises(UntrustedCode, match="--trust-pickle"):  # its loader is code
        import_mlflow(tmp_path / "mlflow", tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()
    manifest = import_mlflow(tmp_path / "mlflow", tmp_path / "pkg", trust_pickle=True)
    assert manifest.flavor == "mlflow_pyfunc"
    assert "mlflow_model/MLmodel" in manifest.files
    loaded = load_package(tmp_path / "pkg", trust_pickle=True)
    np.testing.assert_array_equal(loaded.predict(df), df["age"].to_numpy() * 2)
    with open(tmp_path / "pkg" / "mlflow_model" / "MLmodel", "a") as f:
        f.write("\n# edited\n")
    with pytest.raises(IntegrityError, match="mlflow_model/MLmodel"):
        load_package(tmp_path / "pkg", verify=False, trust_pickle=True)


def test_exported_model_predicts_the_same_in_a_fresh_mlflow_process(packages, tmp_path):
    export_mlflow(packages["sklearn"], tmp_path / "mlflow")
    fresh = make_frame(30, seed=5)
    fresh.to_parquet(tmp_path / "frame.parquet")
    script = (
        "import sys, json, mlflow.pyfunc, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(json.dumps(list(model.predict(pd.read_parquet(sys.argv[2])))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "mlflow"), str(tmp_path / "frame.parquet")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got == load_package(packages["sklearn"]).predict(fresh).tolist()


def test_exported_model_takes_the_numbers_a_csv_gives_in_a_fresh_mlflow_process(tmp_path):
    """An integer column with gaps in training (float64, as a dataset read gives it) and a real
    column: MLflow must take them as pd.read_csv gives them, whole numbers or gaps."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = make_frame(300)
    df["visits"] = df["visits"].astype("float64")
    df.loc[df.index[::7], "visits"] = np.nan  # gaps: the signature says double
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "visits"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    model = Pipeline([("prep", prep), ("model", LogisticRegression())]).fit(df, churn(df))
    save_package(model, tmp_path / "pkg", signature=Signature.from_frame(df))
    export_mlflow(tmp_path / "pkg", tmp_path / "mlflow")

    rows = make_frame(20, seed=9)
    files = {
        "whole": rows.assign(age=rows["age"].round().astype(int)),  # both read back as int64
        "gaps": rows.assign(visits=rows["visits"].where(rows.index % 3 > 0)),  # float64, NaN
    }
    for name, frame in files.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "bad.csv").write_text("age,visits,city\n41,many,lyon\n")
    assert pd.read_csv(tmp_path / "whole.csv")["visits"].dtype == "int64"
    assert pd.read_csv(tmp_path / "whole.csv")["age"].dtype == "int64"
    assert pd.read_csv(tmp_path / "gaps.csv")["visits"].dtype == "float64"

    script = (
        "import sys, json, mlflow.pyfunc, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(json.dumps({f: list(model.predict(pd.read_csv(f))) for f in sys.argv[2:]}))\n"
    )
    csvs = [str(tmp_path / f"{name}.csv") for name in files]
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "mlflow"), *csvs],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    ours = load_package(tmp_path / "pkg")
    for csv in csvs:
        assert theirs[csv] == list(ours.predict(pd.read_csv(csv))), csv
    # a value that is no number is still refused, naming its column
    bad = subprocess.run([sys.executable, "-c", script, str(tmp_path / "mlflow"),
                          str(tmp_path / "bad.csv")], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "column 'visits' must be double" in bad.stderr
