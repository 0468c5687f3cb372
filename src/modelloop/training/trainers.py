"""Train a tabular model: infer the task, split, preprocess, fit, evaluate on the held-out part.

:func:`train` takes a DataFrame and plain values and returns a :class:`TrainResult` whose
``model`` is one scikit-learn ``Pipeline`` (column casting + encoding + estimator), so whatever
serves it runs the transform it was trained with. A custom trainer (``module:function`` or
``path/to/file.py:function``) is called as ``function(frame, target, params)`` and returns any
fitted object with ``predict`` (and ``predict_proba`` when it has one). Its frame holds the
target and the same feature columns the built-ins get (identifier-like and datetime columns
left out, as :func:`~modelloop.training.preprocessing.plan_columns` decides); the model's input
signature is the columns it declares (a ``features`` list, else scikit-learn's
``feature_names_in_``), else every column it was given.

Nothing here writes to the store: params, metrics and text are reported to a ``tracker``
(:mod:`modelloop.training.tracking`), which a tracked job supplies.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any

from modelloop.common.jsonable import to_jsonable
from modelloop.common.threads import one_thread_for_small_fits, small_work_threads
from modelloop.errors import InvalidInput, ModelloopError
from modelloop.training.algorithms import (
    CLASSIFICATION,
    TASKS,
    is_custom_trainer,
    resolve_algorithm,
    resolve_trainer,
)
from modelloop.training.tracking import Tracker, as_tracker

#: Integer targets with at most this many distinct values are taken as classes.
MAX_CLASSES_INFERRED = 20


class TrainerFailed(ModelloopError):
    """A custom trainer raised, or returned something that is not a fitted model."""

    status = 422


@dataclass
class TrainResult:
    model: Any  # the fitted Pipeline (or the custom trainer's model)
    task: str
    target: str
    algorithm: str
    params: dict  # the params given (defaults of the algorithm not repeated)
    features: list[dict]  # [{"name", "dtype"}] in the order the model reads them
    columns: dict  # feature -> preprocessing kind (numeric / onehot / ordinal / drop)
    classes: list | None
    split: Any  # SplitRecord
    evaluation: Any  # Evaluation on the validation part
    seed: int
    fit_seconds: float
    extra: dict = field(default_factory=dict)  # e.g. the tuning leaderboard

    @property
    def metrics(self) -> dict[str, float]:
        return self.evaluation.metrics

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def to_dict(self) -> dict:
        """A JSON-safe summary to record on the job (everything but the model)."""
        return {
            "task": self.task,
            "target": self.target,
            "algorithm": self.algorithm,
            "params": self.params,
            "features": self.features,
            "columns": self.columns,
            "classes": self.classes,
            "split": self.split.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "seed": self.seed,
            "fit_seconds": self.fit_seconds,
        }


# -- the task ---------------------------------------------------------------------------------------
def infer_task(y) -> str:
    """``binary``, ``multiclass`` or ``regression`` from the target's dtype and distinct values."""
    import pandas as pd

    n = y.nunique(dropna=True)
    name = y.name if y.name is not None else "target"
    if n < 2:
        raise InvalidInput(
            f"target {name!r} has {n} distinct value(s); nothing to learn",
            hint="train on data where the target takes at least two values",
        )
    dtype = y.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "binary" if n == 2 else "multiclass"
    if pd.api.types.is_integer_dtype(dtype):
        return "binary" if n == 2 else "multiclass" if n <= MAX_CLASSES_INFERRED else "regression"
    values = set(y.dropna().unique().tolist())
    return "binary" if values <= {0.0, 1.0} else "regression"


def check_task(y, task: str | None) -> str:
    if task is None:
        return infer_task(y)
    if task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}", hint=f"use one of {', '.join(TASKS)}")
    n = y.nunique(dropna=True)
    if task in CLASSIFICATION and n < 2:
        raise InvalidInput(
            f"target {y.name!r} has a single class ({y.dropna().iloc[0]!r})",
            hint="a classifier needs rows of at least two classes",
        )
    if task == "binary" and n > 2:
        raise InvalidInput(
            f"task is binary but target {y.name!r} has {n} classes", hint="use task='multiclass'"
        )
    if task == "regression":
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype):
            raise InvalidInput(
                f"task is regression but target {y.name!r} is not numeric ({y.dtype})",
                hint="use task='binary' or 'multiclass', or a numeric target",
            )
    return task


def check_frame(frame, target: str) -> None:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput("training data must be a pandas DataFrame", hint="load it with pandas")
    if len(frame) == 0:
        raise InvalidInput("the training data has no rows", hint="ingest data before training")
    if target not in frame.columns:
        names = {str(c).lower(): str(c) for c in frame.columns}
        close = difflib.get_close_matches(str(target).lower(), list(names), n=1)
        close = [names[c] for c in close]
        raise InvalidInput(
            f"target column {target!r} is not in the data"
            + (f"; did you mean {close[0]!r}?" if close else ""),
            hint=f"the columns are: {', '.join(map(str, frame.columns))}",
        )
    missing = int(frame[target].isna().sum())
    if missing:
        raise InvalidInput(
            f"target column {target!r} has {missing} missing value(s)",
            hint="drop the unlabelled rows (or fill the target) before training",
        )


# -- fitting ----------------------------------------------------------------------------------------
def fit_model(
    frame,
    target: str,
    algorithm: str,
    params: dict | None = None,
    *,
    task: str,
    seed: int = 0,
    preprocessing: dict | None = None,
    exclude: tuple = (),
):
    """Fit ``algorithm`` on ``frame``; return ``(model, columns)`` (columns: feature -> kind)."""
    from modelloop.training.preprocessing import build_preprocessor, plan_columns

    params = dict(params or {})
    if is_custom_trainer(algorithm):
        # the same feature selection as the built-ins: a trainer never sees ids or timestamps
        plan = plan_columns(frame, exclude=(target, *exclude), options=preprocessing)
        given = [c for c, kind in plan.items() if kind != "drop"]
        model = fit_custom(resolve_trainer(algorithm), algorithm, frame[[*given, target]],
                           target, params)  # fmt: skip
        used = _declared_features(model, algorithm, given)
        return model, {c: "custom" if c in used else "drop" for c in plan}

    from sklearn.pipeline import Pipeline

    spec = resolve_algorithm(algorithm)
    estimator = spec.estimator(task, params, seed)
    one_thread_for_small_fits(estimator, len(frame), params)
    y = frame[target]
    if spec.name == "xgboost" and task in CLASSIFICATION:
        _check_xgboost_labels(y)
    plan = plan_columns(frame, exclude=(target, *exclude), options=preprocessing)
    model = Pipeline(
        [*build_preprocessor(plan, scale=spec.scale, options=preprocessing), ("model", estimator)]
    )
    with small_work_threads(len(frame)):
        model.fit(frame.drop(columns=[target]), y.to_numpy())
    return model, plan


def fit_custom(function, ref: str, frame, target: str, params: dict):
    try:
        model = function(frame, target, params)
    except ModelloopError:
        raise
    except Exception as e:
        raise TrainerFailed(
            f"custom trainer {ref} raised {type(e).__name__}: {e}",
            hint="fix the trainer (its traceback is in the job log); it is called as "
            "function(frame, target, params) and must return a fitted model",
        ) from e
    if not callable(getattr(model, "predict", None)):
        raise TrainerFailed(
            f"custom trainer {ref} returned {type(model).__name__}, which has no predict method",
            hint="return the fitted estimator (an object with predict, and predict_proba for classifiers)",
        )
    return model


def _declared_features(model, ref: str, given: list) -> list:
    """The columns a custom model reads: its ``features``, else ``feature_names_in_``, else all
    it was given; each must be one it was given."""
    declared = _model_features(model)
    if declared is None:
        return list(given)
    unknown = [c for c in declared if c not in given]
    if unknown:
        raise TrainerFailed(
            f"custom trainer {ref} returned a model that reads column {unknown[0]!r}, which is "
            "not among the features it was given",
            hint=f"its features are: {', '.join(map(str, given))} (keep a dropped column with "
            "the preprocessing option columns: {NAME: numeric})",
        )
    return declared


def _check_xgboost_labels(y) -> None:
    import pandas as pd

    values = sorted(y.unique().tolist())
    if not pd.api.types.is_integer_dtype(y.dtype) or values != list(range(len(values))):
        raise InvalidInput(
            f"xgboost needs class labels 0..{len(values) - 1}, the target has {values[:5]}",
            hint="encode the target as 0..n-1, or use lightgbm or hist_gradient_boosting",
        )


def train(
    frame,
    target: str,
    algorithm: str = "hist_gradient_boosting",
    params: dict | None = None,
    *,
    task: str | None = None,
    split=None,
    seed: int = 0,
    preprocessing: dict | None = None,
    tracker: Tracker | None = None,
    time_budget: float = 60.0,
) -> TrainResult:
    """Split ``frame``, fit ``algorithm`` on the training part, evaluate on the validation part.

    ``algorithm="auto"`` searches the built-in algorithms within ``time_budget`` seconds
    (:func:`modelloop.training.tuning.tune`) and returns the winner with its leaderboard.
    """
    from modelloop.training.evaluation import evaluate
    from modelloop.training.splits import SplitSpec
    from modelloop.training.splits import split as make_split

    tracker = as_tracker(tracker)
    if algorithm == "auto":
        from modelloop.training.tuning import tune

        return tune(
            frame, target, "auto", task=task, split=split, seed=seed,
            preprocessing=preprocessing, tracker=tracker, timeout=time_budget,
        ).final  # fmt: skip
    check_frame(frame, target)
    task = check_task(frame[target], task)
    if not is_custom_trainer(algorithm):
        resolve_algorithm(algorithm).estimator(task, params, seed)  # fail fast on bad names
    spec = SplitSpec.of(split)
    exclude = (spec.time_column,) if spec.time_column else ()
    train_part, valid_part, record = make_split(frame, target, spec, task=task, seed=seed)
    tracker.log_params({"algorithm": algorithm, "task": task, "seed": seed, **(params or {})})
    tracker.set_info("split", record.to_dict())
    tracker.log_text(
        f"training {algorithm} ({task}) on {record.n_train} rows, "
        f"validating on {record.n_valid} ({record.method} split)"
    )

    started = time.perf_counter()
    model, columns = fit_model(
        train_part, target, algorithm, params, task=task, seed=seed,
        preprocessing=preprocessing, exclude=exclude,
    )  # fmt: skip
    fit_seconds = time.perf_counter() - started
    names = model_inputs(model, columns)
    evaluation = evaluate(model, valid_part[[*names, target]], target, task)
    features = [{"name": str(c), "dtype": str(frame[c].dtype)} for c in names]
    tracker.log_metrics(evaluation.metrics)
    tracker.log_metric("fit_seconds", fit_seconds)
    tracker.set_info("features", features)
    tracker.set_info("columns", columns)
    tracker.log_text(
        "validation: " + ", ".join(f"{k}={v:.4g}" for k, v in evaluation.metrics.items())
    )
    classes = getattr(model, "classes_", None)
    return TrainResult(
        model=model,
        task=task,
        target=target,
        algorithm=algorithm,
        params=dict(params or {}),
        features=features,
        columns=columns,
        classes=None if classes is None else to_jsonable(list(classes), nonfinite="keep"),
        split=record,
        evaluation=evaluation,
        seed=seed,
        fit_seconds=fit_seconds,
    )


def model_inputs(model, columns: dict) -> list:
    """The columns ``model`` reads, in order: what it records, else the planned features."""
    return _model_features(model) or [c for c, k in columns.items() if k != "drop"]


def _model_features(model) -> list | None:
    """The columns a fitted model reads, in order: the caster's, else the model's declared
    ``features``, else scikit-learn's ``feature_names_in_``."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and "cast" in model.named_steps:
        return list(model.named_steps["cast"].feature_names_in_)
    for attribute in ("features", "feature_names_in_"):
        names = getattr(model, attribute, None)
        if names is not None and not isinstance(names, str) and not callable(names):
            return [str(n) for n in names]
    return None

