"""Flavors: how each kind of model is written to a package folder and read back.

Each flavor writes its files with the safest format its library offers and returns the facts it
needs to read them back (file names, trusted types, classes), which go into the manifest:

- ``sklearn``  — scikit-learn estimators and pipelines, with skops (no pickle). The types a model
  needs beyond skops' defaults (a random forest's ``sklearn.tree._tree.Tree``) are listed at save
  time and exactly that list is trusted at load time.
- ``lightgbm`` / ``xgboost`` — a pipeline (or bare estimator) ending in a LightGBM or XGBoost
  model: preprocessing with skops, the booster in its library's own format (LightGBM text,
  XGBoost JSON), rebuilt on load so predictions are identical.
- ``river`` — online models have no safe format: cloudpickle.
- ``custom`` — any object with ``predict`` (cloudpickle), or a ``module:function`` reference to a
  predict function, stored as text.
- ``mlflow_pyfunc`` — an imported MLflow model folder, loaded with ``mlflow.pyfunc.load_model``.

Model files are code when loading them can run what their author wrote: the last three flavors
always, and a skops file whose manifest trusts types beyond :data:`SAFE_SKOPS_TYPES` (skops
builds a trusted type from the file's arguments, so the trusted list is only as safe as its
types). A hash check protects nothing here — whoever wrote the file wrote its hash too — so
:meth:`Flavor.code_in` names such code, and the registry loads it only when a person trusted it.

A flavor object also adapts ``predict`` / ``predict_proba`` of what it loaded, so callers need
not know how a River model predicts a batch.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from modelloop.common.jsonable import to_jsonable
from modelloop.common.loading import is_file_spec, load_callable
from modelloop.errors import InvalidInput
from modelloop.registry.skops_files import skops_dump, skops_load

CLASSIFICATION_TASKS = ("binary", "multiclass")


class Flavor:
    """Base flavor: a name, the libraries whose versions matter, save and load."""

    name = "base"
    #: Distributions whose installed versions are recorded in the manifest.
    libraries: tuple[str, ...] = ()
    #: Loading always runs code the package's author wrote (a pickle, an import, a loader).
    runs_code = False
    #: Keys of the flavor's manifest info that name a file (or folder) of the package.
    path_fields: tuple[str, ...] = ("file",)
    #: The model was fitted on named columns and wants a DataFrame, not a bare array.
    wants_frame = True

    def save(self, model: Any, folder: Path) -> dict:
        raise NotImplementedError

    def load(self, folder: Path, info: dict) -> Any:
        raise NotImplementedError

    def code_in(self, info: dict) -> str | None:
        """What code loading these files would run, in words; None when they hold none."""
        if self.runs_code:
            return f"{self.name} model: {info.get('file') or info.get('folder') or info.get('reference')}"
        untrusted = sorted(set(info.get("trusted_types") or ()) - SAFE_SKOPS_TYPES)
        if untrusted:
            return f"skops file trusting {', '.join(untrusted)}"
        return None

    def classes(self, model: Any) -> list | None:
        classes = getattr(model, "classes_", None)
        return None if classes is None else to_jsonable(list(classes), nonfinite="keep")

    def predict(self, model: Any, X):
        return model.predict(X)

    def predict_proba(self, model: Any, X):
        if not hasattr(model, "predict_proba"):
            raise InvalidInput(
                f"this {self.name} model has no predict_proba",
                hint="call predict, or package a classifier that gives probabilities",
            )
        return model.predict_proba(X)

    def has_proba(self, model: Any) -> bool:
        return hasattr(model, "predict_proba")


# -- scikit-learn via skops ----------------------------------------------------------------------
#: Types beyond skops' defaults that the built-in algorithms need and that are inert when skops
#: builds them from a file's arguments (data structures, no file or process access). Curated
#: by hand: skops trusts per file, and no library keeps such a list for scikit-learn's internals.
SAFE_SKOPS_TYPES = frozenset({
    "numpy.dtype",
    "modelloop.training.preprocessing.ColumnCaster",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    *(f"sklearn.metrics._dist_metrics.{k}{b}" for b in ("", "64", "32") for k in (
        "EuclideanDistance", "ManhattanDistance", "ChebyshevDistance", "MinkowskiDistance",
        "SEuclideanDistance")),
})


class SklearnFlavor(Flavor):
    name = "sklearn"
    libraries = ("scikit-learn", "skops", "numpy", "scipy", "pandas")

    def save(self, model, folder):
        trusted = skops_dump(model, folder / "model.skops")
        return {"file": "model.skops", "trusted_types": trusted}

    def load(self, folder, info):
        return skops_load(folder / info["file"], info["trusted_types"])


# -- boosters: preprocessing with skops + the booster in its native format ------------------------
def _split_pipeline(model):
    """(preprocessing pipeline or None, final step name, final estimator)."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        name, last = model.steps[-1]
        return (model[:-1] if len(model.steps) > 1 else None), name, last
    return None, "model", model


def _is_classifier(est) -> bool:
    from sklearn.base import is_classifier

    return is_classifier(est)


class _BoosterFlavor(Flavor):
    booster_file = "booster"
    path_fields = ("booster_file", "preprocess_file")

    def save(self, model, folder):
        preprocess, step, est = _split_pipeline(model)
        info = {
            "step": step,
            "estimator": f"{type(est).__module__}.{type(est).__qualname__}",
            "classifier": _is_classifier(est),
            "booster_file": self.booster_file,
        }
        if preprocess is not None:
            info["preprocess_file"] = "preprocess.skops"
            info["trusted_types"] = skops_dump(preprocess, folder / "preprocess.skops")
        self.save_booster(est, folder / self.booster_file)
        if info["classifier"]:
            info["classes"] = to_jsonable(list(est.classes_), nonfinite="keep")
        return info

    def load_preprocess(self, folder, info):
        if "preprocess_file" not in info:
            return None
        return skops_load(folder / info["preprocess_file"], info["trusted_types"])

    def has_proba(self, model):
        return getattr(model, "classes_", None) is not None


class XGBoostFlavor(_BoosterFlavor):
    """XGBoost's scikit-learn wrapper writes and reads its own JSON (with its sklearn attributes)."""

    name = "xgboost"
    libraries = ("xgboost", "scikit-learn", "skops", "numpy", "scipy", "pandas")
    booster_file = "booster.json"

    def save_booster(self, est, path):
        est.save_model(path)

    def load(self, folder, info):
        import xgboost
        from sklearn.pipeline import Pipeline

        est = (xgboost.XGBClassifier if info["classifier"] else xgboost.XGBRegressor)()
        est.load_model(folder / info["booster_file"])
        preprocess = self.load_preprocess(folder, info)
        if preprocess is None:
            return est
        return Pipeline([*preprocess.steps, (info["step"], est)])


class LightGBMFlavor(_BoosterFlavor):
    """LightGBM's booster in its text format; predictions rebuilt as its sklearn wrapper does.

    LightGBM's wrapper has no public way to adopt a loaded booster, so :class:`LightGBMModel`
    repeats its (short) prediction rule instead of setting its private attributes.
    """

    name = "lightgbm"
    libraries = ("lightgbm", "scikit-learn", "skops", "numpy", "scipy", "pandas")
    booster_file = "booster.txt"

    def save_booster(self, est, path):
        # num_iteration=None keeps the best iteration when early stopping found one, as predict does.
        est.booster_.save_model(str(path), num_iteration=None)

    def load(self, folder, info):
        import lightgbm

        booster = lightgbm.Booster(model_file=str(folder / info["booster_file"]))
        classes = info.get("classes")
        return LightGBMModel(self.load_preprocess(folder, info), booster, classes)


class LightGBMModel:
    """Preprocessing + a LightGBM booster, predicting like ``LGBMClassifier``/``LGBMRegressor``."""

    def __init__(self, preprocess, booster, classes=None):
        import numpy as np

        self.preprocess = preprocess
        self.booster = booster
        self.classes_ = None if classes is None else np.asarray(classes)

    def _transform(self, X):
        return X if self.preprocess is None else self.preprocess.transform(X)

    def predict_proba(self, X):
        import numpy as np

        if self.classes_ is None:
            raise InvalidInput(
                "this LightGBM model is a regressor and has no predict_proba", hint="call predict"
            )
        raw = self.booster.predict(self._transform(X))
        return raw if raw.ndim == 2 else np.vstack((1.0 - raw, raw)).transpose()

    def predict(self, X):
        import numpy as np

        if self.classes_ is None:
            return self.booster.predict(self._transform(X))
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# -- pickled flavors -----------------------------------------------------------------------------
def _pickle_dump(model, path: Path) -> None:
    import cloudpickle

    with open(path, "wb") as f:
        cloudpickle.dump(model, f)


def _pickle_load(path: Path):
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)  # noqa: S301 - only for packages a person trusted (load_package)


class RiverFlavor(Flavor):
    """River models have no serialisation of their own: cloudpickle, loaded only when trusted."""

    name = "river"
    libraries = ("river", "cloudpickle", "numpy", "pandas")
    runs_code = True

    def save(self, model, folder):
        _pickle_dump(model, folder / "model.pkl")
        return {"file": "model.pkl"}

    def load(self, folder, info):
        return _pickle_load(folder / info["file"])

    def classes(self, model):
        return None  # River classifiers learn their classes as they go

    def predict(self, model, X):
        import numpy as np

        if hasattr(model, "predict_many"):
            return np.asarray(model.predict_many(X))
        return np.asarray([model.predict_one(x) for x in X.to_dict("records")])

    def has_proba(self, model):
        return hasattr(model, "predict_proba_one")

    def predict_proba(self, model, X):
        """Probabilities as a DataFrame with one column per class (River's own shape)."""
        import pandas as pd

        if hasattr(model, "predict_proba_many"):
            return model.predict_proba_many(X)
        if not hasattr(model, "predict_proba_one"):
            return super().predict_proba(model, X)
        rows = [model.predict_proba_one(x) for x in X.to_dict("records")]
        return pd.DataFrame(rows, index=X.index).fillna(0.0)


class CustomFlavor(Flavor):
    """Any object with ``predict`` (cloudpickle), or a ``module:function`` predict function."""

    name = "custom"
    libraries = ("cloudpickle", "numpy", "pandas")
    runs_code = True  # a pickle, or a reference that imports a module and calls into it

    def save(self, model, folder):
        if isinstance(model, str):
            load_reference(model)  # fail now, not at serving time
            return {"reference": model}
        if not hasattr(model, "predict"):
            raise InvalidInput(
                f"cannot package a {type(model).__name__}: it has no predict method",
                hint="package an object with predict(X), or a 'module:function' "
                "reference to a predict function",
            )
        _pickle_dump(model, folder / "model.pkl")
        return {"file": "model.pkl"}

    def load(self, folder, info):
        if "reference" in info:
            return _FunctionModel(load_reference(info["reference"]))
        return _pickle_load(folder / info["file"])


class _FunctionModel:
    def __init__(self, fn):
        self.fn = fn

    def predict(self, X):
        return self.fn(X)


def load_reference(reference: str):
    """Import ``module:function`` (a module, not a file: the package must not depend on where it
    is loaded); InvalidInput naming what could not be found."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr or is_file_spec(module_name):
        raise InvalidInput(
            f"{reference!r} is not a 'module:function' reference",
            hint="write it as package.module:function",
        )
    return load_callable(reference, what="predict function")


# -- MLflow models imported as they are ---------------------------------------------------------
class MlflowPyfuncFlavor(Flavor):
    """An MLflow model folder kept whole and loaded by MLflow (which may unpickle it)."""

    name = "mlflow_pyfunc"
    libraries = ("mlflow", "numpy", "pandas")
    runs_code = True  # MLflow imports the folder's loader module, which may unpickle anything
    path_fields = ("folder",)

    def save(self, model, folder):
        shutil.copytree(Path(model), folder / "mlflow_model", symlinks=True)  # links: refused
        return {"folder": "mlflow_model"}

    def load(self, folder, info):
        try:
            import mlflow.pyfunc
        except ImportError:
            raise InvalidInput(
                "this model was imported from MLflow and needs mlflow to load",
                hint="pip install 'modelloop[mlflow]'",
            ) from None
        return mlflow.pyfunc.load_model(str(folder / info["folder"]))

    def classes(self, model):
        return None

    def has_proba(self, model):
        return False


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        SklearnFlavor(),
        LightGBMFlavor(),
        XGBoostFlavor(),
        RiverFlavor(),
        CustomFlavor(),
        MlflowPyfuncFlavor(),
    )
}


def get_flavor(name: str) -> Flavor:
    try:
        return FLAVORS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown model flavor {name!r}", hint=f"use one of {', '.join(FLAVORS)}"
        ) from None


def infer_flavor(model: Any) -> Flavor:
    """The flavor a model object belongs to, from the module of its (final) estimator."""
    if isinstance(model, str):
        return FLAVORS["custom"]
    if isinstance(model, Path):
        return FLAVORS["mlflow_pyfunc"]
    module = type(model).__module__
    if module.split(".")[0] == "river":
        return FLAVORS["river"]
    if (
        module.split(".")[0] == "sklearn"
        or hasattr(model, "_get_tags")
        or hasattr(model, "__sklearn_tags__")
    ):
        _, _, last = _split_pipeline(model)
        root = type(last).__module__.split(".")[0]
        if root in ("lightgbm", "xgboost"):
            return FLAVORS[root]
        return FLAVORS["sklearn"]
    return FLAVORS["custom"]


def infer_task(model: Any, classes: list | None) -> str | None:
    """binary / multiclass from the classes, regression for a scikit-learn-style regressor."""
    if classes is not None:
        return "binary" if len(classes) == 2 else "multiclass"
    if hasattr(model, "__sklearn_tags__") or hasattr(model, "_get_tags"):
        from sklearn.base import is_regressor

        _, _, last = _split_pipeline(model)
        if is_regressor(last):
            return "regression"
    return None
