"""A user's MLflow model, logged with ``mlflow.sklearn.log_model`` into a local tracking store,
imported by the URI MLflow gave for it (``models:/m-ID``, ``runs:/RUN/model``,
``models:/NAME/V``) and batch-scored: modelloop's predictions are MLflow's."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import NotFound, UntrustedCode

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Two logged logistic regressions in a SQLite tracking store: MLflow's default format
    (skops) registered as ``churn`` version 1, and a cloudpickle one."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])
    model = LogisticRegression().fit(frame, (frame.a + frame.b * frame.c > 0).astype(int))
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("users", artifact_location=(root / "artifacts").as_uri())
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's notes on input examples and the file store
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        signature = infer_signature(frame, model.predict(frame))
        with mlflow.start_run(experiment_id=experiment) as run:
            default = mlflow.sklearn.log_model(model, name="model", signature=signature,
                                               registered_model_name="churn")
            pickled = mlflow.sklearn.log_model(model, name="pickled", signature=signature,
                                               serialization_format="cloudpickle")
    return {"uri": uri, "run_id": run.info.run_id, "model_uri": default.model_uri,
            "pickled_uri": pickled.model_uri, "frame": frame, "expected": model.predict(frame)}


def test_a_logged_model_imports_by_its_uri_and_transforms_to_mlflows_predictions(
        local_workspace, logged, tmp_path, monkeypatch):
    import mlflow.pyfunc

    ws = local_workspace
    record = ws.models.import_mlflow("churn", logged["model_uri"], tracking_uri=logged["uri"])
    assert record["ref"] == "churn@1" and record["flavor"] == "sklearn"
    origin = record["manifest"]["lineage"]["imported_from"]
    assert origin["mlflow_model"] == logged["model_uri"]
    assert origin["run_id"] == logged["run_id"]
    assert not list(ws.models.cache_dir.parent.glob("import-*"))  # the download is gone

    ws.models.approve("churn@1", reason="a user's MLflow model")
    source = tmp_path / "in.csv"
    logged["frame"].to_csv(source, index=False)
    result = ws.transforms.run("churn@1", str(source), str(tmp_path / "out.csv"), workers=1)
    ours = pd.read_csv(result.output)["prediction"].to_numpy()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged["uri"])
    theirs = mlflow.pyfunc.load_model(logged["model_uri"]).predict(pd.read_csv(source))
    np.testing.assert_array_equal(ours, np.asarray(theirs))
    np.testing.assert_array_equal(ours, logged["expected"])


def test_the_cli_imports_run_and_registered_model_uris(local_workspace, logged, cli):
    root = local_workspace.root
    by_run = cli("-w", root, "models", "import", "churn", f"runs:/{logged['run_id']}/model",
                 "--json", env={"MLFLOW_TRACKING_URI": logged["uri"]}).json()
    assert by_run["ref"] == "churn@1"
    by_name = cli("-w", root, "models", "import", "churn", "models:/churn/1", "--tracking-uri",
                  logged["uri"], "--json")
    assert "Downloading" not in by_name.err  # MLflow's progress bars are not ours to print
    by_name = by_name.json()
    assert by_name["ref"] == "churn@2" and by_name["flavor"] == "sklearn"
    origins = [r["manifest"]["lineage"]["imported_from"]["mlflow_model"] for r in (by_run, by_name)]
    assert origins == [f"runs:/{logged['run_id']}/model", "models:/churn/1"]


def test_a_pickled_logged_model_needs_trust(local_workspace, logged):
    ws = local_workspace
    with pytest.raises(UntrustedCode, match="--trust-pickle"):
        ws.models.import_mlflow("churn", logged["pickled_uri"], tracking_uri=logged["uri"])
    record = ws.models.import_mlflow("churn", logged["pickled_uri"], tracking_uri=logged["uri"],
                                     trust_pickle=True, reason="our team's training run")
    assert record["ref"] == "churn@1" and record["flavor"] == "sklearn"
    loaded = ws.models.load("churn@1")
    np.testing.assert_array_equal(loaded.predict(logged["frame"]), logged["expected"])


def test_an_unknown_uri_is_not_found_and_names_the_store(local_workspace, logged):
    ws = local_workspace
    with pytest.raises(NotFound, match="models:/nobody/1") as err:
        ws.models.import_mlflow("churn", "models:/nobody/1", tracking_uri=logged["uri"])
    assert "tracking store" in err.value.message and "--tracking-uri" in err.value.hint
    assert not list(ws.models.cache_dir.parent.glob("import-*"))
