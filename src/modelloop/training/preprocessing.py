"""Preprocessing chosen from the columns' types, fitted with the model, served with the model.

The fitted model is one scikit-learn ``Pipeline``: a :class:`ColumnCaster` (select the feature
columns in their recorded order and give them plain dtypes), a ``ColumnTransformer`` (impute,
scale, one-hot or ordinal encode) and the estimator. Serving calls the same pipeline, so the
transform used in training is the one used when serving: there is no second copy to drift.

Column kinds, decided from the dtype and overridable per column:

- ``numeric`` — numbers and booleans: median imputation, then scaling when the algorithm needs it
- ``onehot`` — text/categories with at most ``max_onehot`` distinct values
- ``ordinal`` — text/categories with more distinct values (unknown values become -1)
- ``drop`` — datetimes (use them for a time split, or override them to ``numeric``: epoch seconds),
  and identifier-like text (every value distinct, e.g. an application id; the rule is
  :func:`modelloop.quality.roles.is_identifier`, which monitoring uses too): such a column only
  lets a model memorise rows, never generalise
"""

from __future__ import annotations

from typing import Any

from modelloop.errors import InvalidInput
from modelloop.quality.roles import is_identifier  # shared with monitoring

KINDS = ("numeric", "onehot", "ordinal", "drop")
OPTIONS = ("columns", "scale", "impute", "max_onehot")
DEFAULT_MAX_ONEHOT = 16


def _base():
    from sklearn.base import BaseEstimator, TransformerMixin

    return BaseEstimator, TransformerMixin


class ColumnCaster(*_base()):
    """Select the feature columns in order and turn pandas' nullable dtypes into plain ones.

    Hand-written because scikit-learn's imputers and encoders fail on ``pd.NA`` (pandas'
    nullable ``Int64``/``boolean``/``string`` dtypes, which Parquet reads give) and no
    scikit-learn transformer converts them. Numeric columns become float64 with NaN; categorical
    columns become Python strings with NaN for missing, so one encoder sees one type.
    """

    def __init__(self, numeric=(), categorical=()):
        self.numeric = numeric
        self.categorical = categorical

    def fit(self, X, y=None):
        wanted = {*self.numeric, *self.categorical}
        columns = list(getattr(X, "columns", [*self.numeric, *self.categorical]))
        self.feature_names_in_ = [c for c in columns if c in wanted]  # the data's order
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X):
        import numpy as np
        import pandas as pd

        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=self.feature_names_in_)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise InvalidInput(
                f"the input lacks feature column(s) {', '.join(map(repr, missing))}",
                hint=f"send every feature the model was trained on: {', '.join(self.feature_names_in_)}",
            )
        out = {}
        numeric = set(self.numeric)
        for name in (c for c in self.feature_names_in_ if c in numeric):
            col = X[name]
            if pd.api.types.is_datetime64_any_dtype(col):
                values = col.to_numpy(dtype="datetime64[ns]").astype("int64") / 1e9  # a new array
                values[col.isna().to_numpy()] = np.nan
                out[name] = values
            else:
                out[name] = pd.to_numeric(col, errors="raise").to_numpy(
                    dtype="float64", na_value=np.nan
                )
        for name in (c for c in self.feature_names_in_ if c not in numeric):
            col = X[name]
            values = col.astype("string").astype(object).to_numpy(copy=True)
            values[col.isna().to_numpy()] = np.nan
            out[name] = values
        return pd.DataFrame(out, index=X.index, columns=self.feature_names_in_)

    def get_feature_names_out(self, input_features=None):
        import numpy as np

        return np.asarray(self.feature_names_in_, dtype=object)


def column_kind(series, max_onehot: int = DEFAULT_MAX_ONEHOT) -> str:
    """The default kind of a column, from its dtype (and its cardinality for text)."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "drop"
    distinct = series.nunique(dropna=True)
    if is_identifier(distinct, int(series.notna().sum())):
        return "drop"  # an identifier (monitoring does not drift-check it either)
    return "onehot" if distinct <= max_onehot else "ordinal"


def plan_columns(frame, exclude=(), options: dict | None = None) -> dict[str, str]:
    """Column name -> kind, in frame order, for every column except ``exclude``."""
    options = check_options(options)
    overrides = options.get("columns", {})
    unknown = [c for c in overrides if c not in frame.columns]
    if unknown:
        raise InvalidInput(
            f"preprocessing names column {unknown[0]!r}, which is not in the data",
            hint=f"the columns are: {', '.join(map(str, frame.columns))}",
        )
    max_onehot = int(options.get("max_onehot", DEFAULT_MAX_ONEHOT))
    plan = {}
    for name in frame.columns:
        if name in exclude:
            continue
        plan[name] = overrides.get(name) or column_kind(frame[name], max_onehot)
    if not any(kind != "drop" for kind in plan.values()):
        raise InvalidInput(
            "no feature columns are left to train on",
            hint="give the data at least one numeric or categorical column besides the target",
        )
    return plan


def check_options(options: dict | None) -> dict:
    options = dict(options or {})
    for key in options:
        if key not in OPTIONS:
            raise InvalidInput(
                f"unknown preprocessing option {key!r}", hint=f"use one of {', '.join(OPTIONS)}"
            )
    for name, kind in options.get("columns", {}).items():
        if kind not in KINDS:
            raise InvalidInput(
                f"preprocessing of column {name!r} is {kind!r}",
                hint=f"use one of {', '.join(KINDS)}",
            )
    if options.get("impute", "median") not in ("median", "mean", "zero"):
        raise InvalidInput(
            f"unknown numeric imputation {options['impute']!r}", hint="use median, mean or zero"
        )
    return options


def build_preprocessor(plan: dict[str, str], *, scale: bool, options: dict | None = None):
    """The (unfitted) ``[("cast", ColumnCaster), ("encode", ColumnTransformer)]`` steps."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    options = check_options(options)
    scale = bool(options.get("scale", scale))
    impute = options.get("impute", "median")
    numeric = [c for c, k in plan.items() if k == "numeric"]
    onehot = [c for c, k in plan.items() if k == "onehot"]
    ordinal = [c for c, k in plan.items() if k == "ordinal"]

    transformers: list[tuple[str, Any, list]] = []
    if numeric:
        imputer = (
            SimpleImputer(strategy="constant", fill_value=0.0)
            if impute == "zero"
            else SimpleImputer(strategy=impute)
        )
        steps = [("impute", imputer)] + ([("scale", StandardScaler())] if scale else [])
        transformers.append(("numeric", Pipeline(steps), numeric))
    missing = SimpleImputer(strategy="constant", fill_value="__missing__")
    if onehot:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(
            ("onehot", Pipeline([("impute", missing), ("encode", encoder)]), onehot)
        )
    if ordinal:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        transformers.append(
            ("ordinal", Pipeline([("impute", missing), ("encode", encoder)]), ordinal)
        )
    return [
        ("cast", ColumnCaster(numeric=numeric, categorical=onehot + ordinal)),
        ("encode", ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)),
    ]
