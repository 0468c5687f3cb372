"""Compiling a fitted scikit-learn pipeline into a plan, and checking the plan against it.

What the compiler knows (the steps ``modelloop train`` fits, see
``training/preprocessing.py``): modelloop's ``ColumnCaster``, a ``ColumnTransformer`` whose
parts are ``SimpleImputer`` / ``StandardScaler`` chains on numeric columns, a constant
``SimpleImputer`` followed by a ``OneHotEncoder`` (unknown values ignored) or an
``OrdinalEncoder`` (unknown values encoded) on text columns, ``passthrough`` and ``drop``; then
any final estimator. Linear models (logistic, linear and ridge regression, ridge classifier) are
compiled to their coefficients; any other estimator is called on the float matrix, as the
pipeline calls it. Anything else raises :class:`Unsupported` with the reason, which is recorded.
"""

from __future__ import annotations

import math
from typing import Any

#: scikit-learn classifiers whose ``predict`` is the class of highest probability.
ARGMAX_CLASSIFIERS = frozenset({
    "LogisticRegression", "RandomForestClassifier", "ExtraTreesClassifier",
    "DecisionTreeClassifier", "HistGradientBoostingClassifier", "GradientBoostingClassifier",
    "KNeighborsClassifier",
})
CASTER = "modelloop.training.preprocessing.ColumnCaster"
NUMERIC_TYPES = ("integer", "long", "float", "double", "boolean")


class Unsupported(Exception):
    """The model holds something the plan does not know; the message says what."""


def _qualname(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def compile_plan(model: Any, signature) -> dict:
    """The plan of a fitted pipeline (JSON-able data); Unsupported names what it cannot do."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        raise Unsupported("the model has no preprocessing steps to compile (a bare estimator "
                          "is served on arrays as it is)")
    *steps, (_, final) = model.steps
    caster = None
    if _qualname(steps[0][1]) == CASTER:
        caster = steps[0][1]
        steps = steps[1:]
    if len(steps) != 1 or not isinstance(steps[0][1], ColumnTransformer):
        names = ", ".join(type(s).__name__ for _, s in steps) or "none"
        raise Unsupported(f"the preprocessing steps ({names}) are not one ColumnTransformer")
    ct = steps[0][1]
    if ct.transformer_weights:
        raise Unsupported("the ColumnTransformer weights its parts")
    if getattr(ct, "sparse_output_", False):
        raise Unsupported("the ColumnTransformer gives a sparse matrix")
    types = {c.name: c.type for c in signature.columns}
    inputs = list(caster.feature_names_in_ if caster is not None
                  else getattr(ct, "feature_names_in_", signature.names))
    text = set(caster.categorical) if caster is not None else set()
    blocks = []
    for name, trans, _cols in ct.transformers_:
        idx = ct._transformer_to_input_indices.get(name, [])
        columns = [str(inputs[i]) for i in idx]
        if trans == "drop" or not columns:
            continue
        for c in columns:
            if c not in types:
                raise Unsupported(f"column {c!r} of the preprocessing is not in the signature")
        block = _block(name, trans, columns)
        wanted = NUMERIC_TYPES if block["kind"] == "numeric" else ("string",)
        for c in columns:
            if types[c] not in wanted:
                raise Unsupported(f"column {c!r} is {types[c]} in the signature but the "
                                  f"preprocessing treats it as {block['kind']}")
            if block["kind"] != "numeric" and c not in text:
                raise Unsupported(f"text column {c!r} reaches the encoder without modelloop's "
                                  "ColumnCaster (its missing values would differ)")
        blocks.append(block)
    width = sum(len(b["columns"]) if b["kind"] in ("numeric", "ordinal")
                else sum(len(c) for c in b["categories"]) for b in blocks)
    return {"format": 1, "blocks": blocks, "width": width, "estimator": _estimator(final)}


def _block(name: str, trans, columns: list[str]) -> dict:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if trans == "passthrough":
        return {"kind": "numeric", "columns": columns, "steps": []}
    chain = [s for _, s in trans.steps] if isinstance(trans, Pipeline) else [trans]
    chain = [s for s in chain if s != "passthrough" and s is not None]
    if chain and isinstance(chain[-1], OneHotEncoder | OrdinalEncoder):
        return _text_block(name, chain, columns)
    live = list(range(len(columns)))  # the columns still there (an imputer drops empty ones)
    raw = []
    for step in chain:
        if type(step) is SimpleImputer:
            _check_imputer(name, step)
            stats = step.statistics_.astype(float)
            keep = [i for i in range(len(live)) if step.keep_empty_features
                    or step.strategy == "constant" or not math.isnan(stats[i])]
            raw.append(({"op": "impute", "fill": stats}, live))
            live = [live[i] for i in keep]
        elif type(step) is StandardScaler:
            raw.append(({"op": "scale", "mean": step.mean_ if step.with_mean else None,
                         "scale": step.scale_ if step.with_std else None}, live))
        else:
            raise Unsupported(f"part {name!r} holds {type(step).__name__}, which the plan "
                              "does not know")
    steps = []
    for params, at in raw:
        pos = {c: i for i, c in enumerate(at)}
        sel = [pos[c] for c in live]
        steps.append({k: (None if v is None else [float(x) for x in v[sel]])
                      if k != "op" else v for k, v in params.items()})
    return {"kind": "numeric", "columns": [columns[i] for i in live], "steps": steps}


def _check_imputer(name: str, step) -> None:
    mv = step.missing_values
    if not (isinstance(mv, float) and math.isnan(mv)) or step.add_indicator:
        raise Unsupported(f"the imputer of part {name!r} has missing_values={mv!r} or "
                          "add_indicator")


def _text_block(name: str, chain: list, columns: list[str]) -> dict:
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    *before, enc = chain
    if len(before) != 1 or type(before[0]) is not SimpleImputer \
            or before[0].strategy != "constant" or not isinstance(before[0].fill_value, str):
        raise Unsupported(f"text part {name!r} is not a constant imputer then an encoder")
    _check_imputer(name, before[0])
    if getattr(enc, "min_frequency", None) is not None or \
            getattr(enc, "max_categories", None) is not None:
        raise Unsupported(f"the encoder of part {name!r} groups infrequent categories")
    if np.dtype(enc.dtype) != np.float64:
        raise Unsupported(f"the encoder of part {name!r} gives {np.dtype(enc.dtype)}")
    cats = []
    for c in enc.categories_:
        values = list(c)
        if not all(isinstance(v, str) for v in values):
            raise Unsupported(f"part {name!r} has categories that are not text")
        cats.append(values)
    block = {"columns": columns, "missing": before[0].fill_value, "categories": cats}
    if isinstance(enc, OneHotEncoder):
        if enc.drop_idx_ is not None or enc.handle_unknown not in ("ignore",
                                                                    "infrequent_if_exist"):
            raise Unsupported(f"the one-hot encoder of part {name!r} drops a category or "
                              f"raises on unknown values (handle_unknown={enc.handle_unknown!r})")
        return {"kind": "onehot", **block}
    if enc.handle_unknown != "use_encoded_value":
        raise Unsupported(f"the ordinal encoder of part {name!r} raises on unknown values")
    return {"kind": "ordinal", "unknown": float(enc.unknown_value), **block}


def _estimator(est) -> dict:
    from sklearn.linear_model import (
        ElasticNet,
        Lasso,
        LinearRegression,
        LogisticRegression,
        LogisticRegressionCV,
        Ridge,
        RidgeClassifier,
        RidgeClassifierCV,
        RidgeCV,
    )

    from modelloop.common.jsonable import to_jsonable

    classes = getattr(est, "classes_", None)
    classes = None if classes is None else to_jsonable(list(classes), nonfinite="keep")
    kind = type(est)
    if kind in (LogisticRegression, LogisticRegressionCV):
        name = "logistic"
    elif kind in (RidgeClassifier, RidgeClassifierCV):
        name = "linear_classifier"
    elif kind in (LinearRegression, Ridge, RidgeCV, Lasso, ElasticNet):
        name = "linear"
    else:
        return {"kind": "estimator", "type": type(est).__name__, "classes": classes,
                "proba": hasattr(est, "predict_proba"),
                "labels_from_proba": type(est).__name__ in ARGMAX_CLASSIFIERS}
    coef = est.coef_.astype(float).tolist()
    intercept = est.intercept_
    intercept = float(intercept) if not hasattr(intercept, "__len__") else \
        [float(x) for x in intercept]
    return {"kind": name, "type": type(est).__name__, "classes": classes, "coef": coef,
            "intercept": intercept, "proba": name == "logistic"}
