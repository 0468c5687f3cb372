"""Algorithms by short name: estimator per task, default params, default search space.

``resolve_algorithm("random_forest")`` gives the built-in entry; any import path of an
estimator class (``sklearn.ensemble.HistGradientBoostingClassifier``) works too. Custom trainers
(``module:function`` or ``path/to/file.py:function``) are resolved by :func:`resolve_trainer`.
LightGBM and XGBoost are the ``boost`` extra and are imported only when asked for.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelloop.common import loading
from modelloop.common.loading import is_file_spec, load_callable, module_name_for
from modelloop.errors import InvalidInput

CLASSIFICATION = ("binary", "multiclass")
TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: which class to build for a task, its defaults and its search space."""

    name: str
    classifier: str | None  # import path of the class used for binary/multiclass
    regressor: str | None  # import path of the class used for regression
    defaults: dict = field(default_factory=dict)
    space: dict = field(default_factory=dict)
    scale: bool = True  # scale numeric features (distance/linear models need it; trees do not)
    extra: str | None = None  # the pip extra that provides it

    def supports(self, task: str) -> bool:
        return (self.classifier if task in CLASSIFICATION else self.regressor) is not None

    def estimator(self, task: str, params: dict | None = None, seed: int | None = None):
        """A fresh, unfitted estimator for ``task`` with defaults, ``params`` and the seed set."""
        path = self.classifier if task in CLASSIFICATION else self.regressor
        if path is None:
            kind = "classification" if task in CLASSIFICATION else "regression"
            raise InvalidInput(
                f"algorithm {self.name!r} does not do {kind}",
                hint=f"pick one that does: {', '.join(names_for(task))}",
            )
        cls = _import_class(path, extra=self.extra)
        est = cls()
        return configure(est, {**self.defaults, **(params or {})}, seed, what=self.name)


def _space(**params) -> dict:
    return params


def _int(low, high, log=False):
    return {"type": "int", "low": low, "high": high, "log": log}


def _float(low, high, log=False):
    return {"type": "float", "low": low, "high": high, "log": log}


def _cat(*choices):
    return {"type": "categorical", "choices": list(choices)}


_TREES = dict(
    n_estimators=_int(50, 300),
    max_depth=_int(2, 20),
    min_samples_leaf=_int(1, 20),
    max_features=_cat("sqrt", "log2", 1.0),
)

#: The built-in algorithms. ``auto`` searches across those that are installed.
ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm(
            "logistic_regression",
            "sklearn.linear_model.LogisticRegression",
            None,
            defaults={"max_iter": 1000},
            space=_space(C=_float(1e-3, 1e2, log=True)),
        ),
        Algorithm(
            "linear_regression", None, "sklearn.linear_model.LinearRegression", space=_space()
        ),
        Algorithm(
            "ridge",
            "sklearn.linear_model.RidgeClassifier",
            "sklearn.linear_model.Ridge",
            space=_space(alpha=_float(1e-3, 1e2, log=True)),
        ),
        Algorithm(
            "random_forest",
            "sklearn.ensemble.RandomForestClassifier",
            "sklearn.ensemble.RandomForestRegressor",
            space=dict(_TREES),
            scale=False,
        ),
        Algorithm(
            "extra_trees",
            "sklearn.ensemble.ExtraTreesClassifier",
            "sklearn.ensemble.ExtraTreesRegressor",
            space=dict(_TREES),
            scale=False,
        ),
        Algorithm(
            "decision_tree",
            "sklearn.tree.DecisionTreeClassifier",
            "sklearn.tree.DecisionTreeRegressor",
            space=_space(max_depth=_int(2, 20), min_samples_leaf=_int(1, 50)),
            scale=False,
        ),
        Algorithm(
            "hist_gradient_boosting",
            "sklearn.ensemble.HistGradientBoostingClassifier",
            "sklearn.ensemble.HistGradientBoostingRegressor",
            space=_space(
                learning_rate=_float(0.01, 0.3, log=True),
                max_iter=_int(50, 400),
                max_leaf_nodes=_int(8, 128, log=True),
                min_samples_leaf=_int(5, 100, log=True),
                l2_regularization=_float(1e-6, 10.0, log=True),
            ),
            scale=False,
        ),
        Algorithm(
            "knn",
            "sklearn.neighbors.KNeighborsClassifier",
            "sklearn.neighbors.KNeighborsRegressor",
            space=_space(n_neighbors=_int(1, 50), weights=_cat("uniform", "distance")),
        ),
        Algorithm(
            "lightgbm",
            "lightgbm.LGBMClassifier",
            "lightgbm.LGBMRegressor",
            defaults={"verbose": -1},
            space=_space(
                num_leaves=_int(8, 128, log=True),
                learning_rate=_float(0.01, 0.3, log=True),
                n_estimators=_int(50, 400),
                min_child_samples=_int(5, 100, log=True),
                subsample=_float(0.5, 1.0),
                subsample_freq=_cat(0, 1),
                colsample_bytree=_float(0.5, 1.0),
                reg_lambda=_float(1e-6, 10.0, log=True),
            ),
            scale=False,
            extra="boost",
        ),
        Algorithm(
            "xgboost",
            "xgboost.XGBClassifier",
            "xgboost.XGBRegressor",
            space=_space(
                max_depth=_int(2, 10),
                learning_rate=_float(0.01, 0.3, log=True),
                n_estimators=_int(50, 400),
                min_child_weight=_float(0.5, 20.0, log=True),
                subsample=_float(0.5, 1.0),
                colsample_bytree=_float(0.5, 1.0),
            ),
            scale=False,
            extra="boost",
        ),
    ]
}


def names_for(task: str) -> list[str]:
    return [name for name, a in ALGORITHMS.items() if a.supports(task)]


def installed(algorithm: Algorithm) -> bool:
    path = algorithm.classifier or algorithm.regressor
    return loading.module_available(path.partition(".")[0])


def is_custom_trainer(name: str) -> bool:
    """``module:function`` or ``path/to/file.py:function`` names a custom trainer."""
    return ":" in name


def resolve_algorithm(name: str) -> Algorithm:
    """The built-in algorithm called ``name``, or one built from an estimator's import path."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("no algorithm given", hint=f"use one of {', '.join(ALGORITHMS)}")
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    if "." in name:
        cls = _import_class(name)
        if not (hasattr(cls, "fit") and hasattr(cls, "predict")):
            raise InvalidInput(
                f"{name} is not an estimator (it has no fit and predict)",
                hint="name an estimator class, e.g. sklearn.ensemble.RandomForestClassifier",
            )
        from sklearn.base import is_classifier, is_regressor

        try:
            probe = cls()
        except TypeError as e:
            raise InvalidInput(
                f"{name} cannot be built without arguments ({e})",
                hint="use a custom trainer 'module:function' that builds and fits it",
            ) from None
        classifier = name if is_classifier(probe) else None
        regressor = name if is_regressor(probe) or classifier is None else None
        return Algorithm(name, classifier, regressor, space={})
    close = difflib.get_close_matches(name, list(ALGORITHMS), n=1)
    raise InvalidInput(
        f"unknown algorithm {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
        hint=f"use one of {', '.join(ALGORITHMS)}, 'auto', an estimator import path such as "
        "sklearn.ensemble.HistGradientBoostingClassifier, or a custom trainer 'module:function'",
    )


def _import_class(path: str, extra: str | None = None):
    module_name, _, attr = path.rpartition(".")
    top = module_name.partition(".")[0]
    if extra and not loading.module_available(top):
        raise InvalidInput(
            f"{top} is not installed", hint=f"install it with: pip install 'modelloop[{extra}]'"
        )
    try:
        module = loading.import_module(module_name, what=f"algorithm {path!r}")
    except InvalidInput as e:
        raise InvalidInput(
            e.message, hint=f"check the spelling, or install the package that provides {top!r}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        close = difflib.get_close_matches(attr, dir(module), n=1)
        raise InvalidInput(
            f"{module_name} has no {attr!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint="name a class that exists in that module",
        ) from None


def configure(est, params: dict, seed: int | None, *, what: str):
    """Set ``params`` (each checked against the estimator's own) and the seed on ``est``."""
    known = est.get_params(deep=False)
    unknown = [k for k in params if k not in known]
    if unknown and not _takes_any_keyword(type(est)):  # LightGBM and XGBoost pass on **kwargs
        key = unknown[0]
        close = difflib.get_close_matches(key, list(known), n=1)
        raise InvalidInput(
            f"{what} has no parameter {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint=f"its parameters are: {', '.join(sorted(known))}",
        )
    if seed is not None and "random_state" in known and "random_state" not in params:
        params = {**params, "random_state": seed}
    try:
        return est.set_params(**params)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"bad parameters for {what}: {e}", hint="fix the value") from None


def _takes_any_keyword(cls) -> bool:
    import inspect

    params = inspect.signature(cls.__init__).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


# -- custom trainers --------------------------------------------------------------------------------
def resolve_trainer(ref: str) -> Callable[..., Any]:
    """The function named by ``module:function`` or ``path/to/file.py:function``.

    A file is read again on every call (an edited trainer is picked up by a long-lived process),
    under one module name in every process; its classes and functions are pickled with the model
    that uses them, so the package loads where the file is not (an endpoint server, another
    machine).
    """
    function = load_callable(ref, what="custom trainer", reload=True)
    target = ref.rpartition(":")[0]
    if is_file_spec(target):
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[module_name_for(target)])
    return function
