"""Training: algorithms by name, task inference, preprocessing, splits, custom trainers, errors."""

from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidInput
from modelloop.training.splits import SplitSpec
from modelloop.training.tracking import MemoryTracker
from modelloop.training.trainers import TrainerFailed, infer_task, train

BOOST = importlib.util.find_spec("lightgbm") and importlib.util.find_spec("xgboost")


@pytest.mark.parametrize(
    "algorithm",
    [
        "logistic_regression",
        "random_forest",
        "extra_trees",
        "hist_gradient_boosting",
        "knn",
        "decision_tree",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        pytest.param("lightgbm", marks=pytest.mark.skipif(not BOOST, reason="boost extra")),
        pytest.param("xgboost", marks=pytest.mark.skipif(not BOOST, reason="boost extra")),
    ],
)
def test_each_builtin_learns_a_binary_task(binary, algorithm):
    result = train(binary, "y", algorithm, seed=0)
    assert result.task == "binary"
    assert result.metrics["roc_auc"] > 0.8  # the signal is strong; chance is 0.5
    assert result.classes == [0, 1]
    # the datetime column is not a feature by default; every other column is, in frame order
    assert result.feature_names == ["x1", "x2", "count", "colour", "flag"]
    assert result.columns["when"] == "drop"


def test_multiclass_and_regression_are_inferred(multiclass, regression):
    m = train(multiclass, "kind", "logistic_regression")
    assert m.task == "multiclass"
    assert m.classes == ["ant", "bee", "cat"]
    assert m.metrics["accuracy"] > 0.6  # three classes; chance is 1/3
    assert np.asarray(m.evaluation.confusion_matrix).sum() == m.split.n_valid

    r = train(regression, "sales", "ridge")
    assert r.task == "regression"
    assert r.metrics["r2"] > 0.9
    assert r.metrics["rmse"] == pytest.approx(np.sqrt(r.metrics["mse"]))


def test_task_inference_rules():
    assert infer_task(pd.Series([True, False, True])) == "binary"
    assert infer_task(pd.Series(["a", "b", "c"])) == "multiclass"
    assert infer_task(pd.Series([0.0, 1.0, 1.0])) == "binary"
    assert infer_task(pd.Series([0.5, 1.5, 2.25])) == "regression"
    assert infer_task(pd.Series(range(100))) == "regression"  # too many integers to be classes
    assert infer_task(pd.Series([1, 2, 3, 1])) == "multiclass"


def test_same_seed_same_data_same_metrics(binary):
    a = train(binary, "y", "random_forest", seed=7)
    b = train(binary, "y", "random_forest", seed=7)
    c = train(binary, "y", "random_forest", seed=8)
    assert a.metrics == b.metrics
    assert a.split == b.split
    assert a.split.valid_index_sha256 != c.split.valid_index_sha256


def test_preprocessing_handles_unseen_categories_and_missing_values(binary):
    result = train(binary, "y", "logistic_regression")
    fresh = binary.drop(columns=["y"]).head(5).copy()
    fresh["colour"] = pd.array(["purple", None, "red", "blue", "green"], dtype="string")
    fresh.loc[fresh.index[0], "x1"] = np.nan
    proba = result.model.predict_proba(fresh)
    assert proba.shape == (5, 2)
    assert np.isfinite(proba).all()


def test_preprocessing_overrides(binary):
    result = train(
        binary,
        "y",
        "logistic_regression",
        preprocessing={"columns": {"count": "onehot", "when": "numeric", "flag": "drop"}},
    )
    assert result.columns["count"] == "onehot"
    assert "when" in result.feature_names
    assert "flag" not in result.feature_names
    encoder = result.model.named_steps["encode"]
    assert "count" in encoder.named_transformers_["onehot"].feature_names_in_
    with pytest.raises(InvalidInput, match="preprocessing of column 'count'"):
        train(binary, "y", "logistic_regression", preprocessing={"columns": {"count": "bogus"}})


def test_missing_feature_at_predict_time_is_named(binary):
    result = train(binary, "y", "decision_tree")
    with pytest.raises(InvalidInput, match="'colour'"):
        result.model.predict(binary.drop(columns=["y", "colour"]))


def test_split_methods(binary):
    strat = train(binary, "y", "decision_tree", split={"method": "stratified", "fraction": 0.25})
    assert strat.split.method == "stratified"
    assert strat.split.n_valid == 150
    assert strat.split.n_train + strat.split.n_valid == len(binary)

    timed = train(binary, "y", "decision_tree", split=SplitSpec("time", time_column="when"))
    assert timed.split.method == "time"
    assert timed.split.cutoff == str(binary["when"].iloc[-timed.split.n_valid])
    assert "when" not in timed.feature_names  # the event-time column is not a feature

    holdout = binary.sample(100, random_state=1)
    held = train(
        binary.drop(holdout.index),
        "y",
        "decision_tree",
        split=SplitSpec("holdout", holdout=holdout, holdout_ref="demo@2"),
    )
    assert held.split.method == "holdout"
    assert held.split.n_valid == 100
    assert held.split.holdout_ref == "demo@2"


def test_tracker_receives_params_metrics_and_split(binary):
    tracker = MemoryTracker()
    result = train(binary, "y", "decision_tree", {"max_depth": 3}, tracker=tracker)
    assert tracker.params["max_depth"] == 3
    assert tracker.params["algorithm"] == "decision_tree"
    assert tracker.metrics["roc_auc"] == result.metrics["roc_auc"]
    assert tracker.info["split"]["valid_index_sha256"] == result.split.valid_index_sha256
    assert any("validation" in t for t in tracker.texts)


# -- custom trainers --------------------------------------------------------------------------------
def test_custom_trainer_from_a_file(binary, tmp_path):
    path = tmp_path / "my_trainer.py"
    path.write_text(
        textwrap.dedent(
            """
            from sklearn.compose import make_column_transformer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline

            def fit(frame, target, params):
                model = make_pipeline(
                    make_column_transformer(("passthrough", ["x1"])),
                    LogisticRegression(C=params.get("C", 1.0)),
                )
                return model.fit(frame.drop(columns=[target]), frame[target])

            def broken(frame, target, params):
                raise ValueError("the data has no column 'price'")

            def lazy(frame, target, params):
                return "not a model"
            """
        )
    )
    result = train(binary, "y", f"{path}:fit", {"C": 0.5})
    assert result.metrics["roc_auc"] > 0.7
    # the datetime column is left out, as for the built-ins; the pipeline was fit on the rest
    assert result.columns == {c: "drop" if c == "when" else "custom" for c in binary.columns
                              if c != "y"}  # fmt: skip
    assert result.feature_names == ["x1", "x2", "count", "colour", "flag"]

    with pytest.raises(
        TrainerFailed, match="raised ValueError: the data has no column 'price'"
    ) as e:
        train(binary, "y", f"{path}:broken")
    assert "fix the trainer" in e.value.hint
    with pytest.raises(TrainerFailed, match="has no predict method"):
        train(binary, "y", f"{path}:lazy")
    with pytest.raises(InvalidInput, match="has no function 'nothing'"):
        train(binary, "y", f"{path}:nothing")


NUMERIC_TRAINER = """
from sklearn.linear_model import LogisticRegression


class Numeric:
    \"\"\"Reads the numeric columns of what it was given; records no column names itself.\"\"\"

    def fit(self, frame, target, columns):
        self.columns, self.seen = columns, list(frame.columns)
        self.model = LogisticRegression().fit(self._x(frame), frame[target])
        self.classes_ = self.model.classes_
        return self

    def _x(self, frame):
        return frame[self.columns].astype("float64").fillna(0).to_numpy()

    def predict(self, frame):
        return self.model.predict(self._x(frame))

    def predict_proba(self, frame):
        return self.model.predict_proba(self._x(frame))


def fit(frame, target, params):
    numeric = frame.drop(columns=[target]).select_dtypes("number").columns
    return Numeric().fit(frame, target, list(numeric))


def fit_declared(frame, target, params):
    model = Numeric().fit(frame, target, ["x1", "x2"])
    model.features = ["x1", "x2"]  # the columns it reads: its input signature
    return model


def fit_on_time(frame, target, params):
    model = Numeric().fit(frame, target, ["x1"])
    model.features = ["x1", "when"]
    return model
"""


def test_custom_trainer_gets_the_builtin_features_and_declares_what_it_reads(binary, tmp_path):
    path = tmp_path / "numeric_trainer.py"
    path.write_text(NUMERIC_TRAINER)
    frame = binary.assign(application=[f"app-{i:05d}" for i in range(len(binary))])

    given = train(frame, "y", f"{path}:fit")
    # no identifier and no timestamp reach the trainer; the signature is what it was given
    assert given.model.seen == ["x1", "x2", "count", "colour", "flag", "y"]
    assert given.feature_names == ["x1", "x2", "count", "colour", "flag"]
    assert given.columns["application"] == given.columns["when"] == "drop"
    assert given.metrics["roc_auc"] > 0.7

    declared = train(frame, "y", f"{path}:fit_declared")
    assert declared.feature_names == ["x1", "x2"]
    assert [c for c, kind in declared.columns.items() if kind == "custom"] == ["x1", "x2"]

    with pytest.raises(TrainerFailed, match="reads column 'when', which is not among"):
        train(frame, "y", f"{path}:fit_on_time")
    # a column the selection leaves out is kept by saying so
    kept = train(frame, "y", f"{path}:fit_on_time",
                 preprocessing={"columns": {"when": "numeric"}})  # fmt: skip
    assert kept.feature_names == ["x1", "when"]


def test_custom_trainer_job_signature_lists_only_its_features(
    binary, local_workspace, tmp_path, cli
):
    """The served signature demands neither the identifier nor the time column."""
    ws = local_workspace
    path = tmp_path / "numeric_trainer.py"
    path.write_text(NUMERIC_TRAINER)
    csv = tmp_path / "apps.csv"
    binary.assign(application=[f"app-{i:05d}" for i in range(len(binary))]).to_csv(csv, index=False)
    ws.datasets.ingest("apps", [csv], event_time_column="when")
    for trainer, features in (("fit", ["x1", "x2", "count", "colour", "flag"]),
                              ("fit_declared", ["x1", "x2"])):  # fmt: skip
        job = cli("-w", ws.root, "train", "apps", "-t", "y", "-a", f"{path}:{trainer}",
                  "--json").json()  # fmt: skip
        signature = job["outputs"]["model"]["signature"]["columns"]
        assert [c["name"] for c in signature] == features, signature


# -- bad input --------------------------------------------------------------------------------------
def test_unknown_algorithm_suggests_the_closest(binary):
    with pytest.raises(InvalidInput, match="did you mean 'random_forest'") as e:
        train(binary, "y", "random_forrest")
    assert "logistic_regression" in e.value.hint
    with pytest.raises(InvalidInput, match="has no 'RandomForest'"):
        train(binary, "y", "sklearn.ensemble.RandomForest")


def test_unknown_target_suggests_the_closest(binary):
    with pytest.raises(
        InvalidInput, match="target column 'Y' is not in the data; did you mean 'y'"
    ):
        train(binary, "Y")


def test_one_class_target_is_refused(binary):
    with pytest.raises(InvalidInput, match="1 distinct value"):
        train(binary.assign(y=1), "y")
    with pytest.raises(InvalidInput, match="single class"):
        train(binary.assign(y=1), "y", task="binary")


def test_bad_params_and_task_are_named(binary, regression):
    with pytest.raises(InvalidInput, match="no parameter 'max_dept'; did you mean 'max_depth'"):
        train(binary, "y", "random_forest", {"max_dept": 3})
    with pytest.raises(InvalidInput, match="does not do classification"):
        train(binary, "y", "linear_regression")
    with pytest.raises(InvalidInput, match="not numeric"):
        train(binary.assign(y=binary["y"].map({0: "no", 1: "yes"})), "y", task="regression")
    with pytest.raises(InvalidInput, match="missing value"):
        train(regression.assign(sales=np.nan), "sales")


@pytest.mark.skipif(not BOOST, reason="boost extra")
@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost"])
def test_a_small_boosting_fit_runs_on_one_thread_unless_the_user_chose(binary, algorithm):
    """LightGBM and XGBoost take every core by default, past OpenMP's limit: on 2 cores shared
    with three busy processes the README's 3-trial LightGBM tune took 351 s instead of 3 s."""
    from modelloop.training.trainers import fit_model

    model, _ = fit_model(binary, "y", algorithm, {}, task="binary")
    assert model[-1].get_params()["n_jobs"] == 1
    chosen, _ = fit_model(binary, "y", algorithm, {"n_jobs": 2}, task="binary")
    assert chosen[-1].get_params()["n_jobs"] == 2


def test_a_scikit_learn_model_keeps_its_n_jobs(binary, recwarn):
    """scikit-learn's n_jobs=None is one job already; setting it warns on some models (1.8+)."""
    from modelloop.training.trainers import fit_model

    model, _ = fit_model(binary, "y", "logistic_regression", {}, task="binary")
    assert model[-1].get_params()["n_jobs"] is None
    assert not [w for w in recwarn if "n_jobs" in str(w.message)]
