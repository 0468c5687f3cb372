"""SHAP feature attributions of a registered model, in terms of the user's original columns.

With the ``shap`` library (extra ``explain``), as SageMaker Clarify computes them:

- **TreeSHAP** (``shap.TreeExplainer``, exact) for tree models: scikit-learn forests, extra trees,
  gradient boosting and histogram boosting, XGBoost, LightGBM. modelloop's models are pipelines
  (column caster, encoders, estimator): the trees see encoded features, so the rows are encoded by
  the fitted pipeline, explained there, and each encoded feature's attribution is added to the
  column it came from (a one-hot column's categories sum to the column's share; SHAP values are
  additive, so the per-row sum and the expected value do not change).
- **Kernel SHAP** (``shap.KernelExplainer``) for any other model, on the original columns: the
  model is called on whole rows, so its preprocessing is part of what is explained. Its baseline
  is the k-means centroids of the background rows (Clarify's choice; categorical columns take
  the nearest category code), and its cost is bounded and reported: ``rows`` explained,
  ``nsamples`` model evaluations per row, ``background`` centroids.

Classifiers are explained on the positive class (the last of two classes): its probability,
or the trees' raw margin (log-odds) where the tree model's output is one (boosting); the result
says which (``output``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelloop.errors import InvalidInput

DEFAULT_ROWS = 1000
DEFAULT_NSAMPLES = 200
DEFAULT_BACKGROUND = 20


def _shap():
    try:
        import shap
    except ImportError:
        raise InvalidInput("SHAP explanations need the shap library",
                           hint="pip install 'modelloop[explain]'") from None  # fmt: skip
    return shap


@dataclass
class Explanation:
    """Per-row attributions (``values``: rows x columns) with the expected value they start
    from; ``global_importance`` is Clarify's global SHAP: the mean absolute value per column."""

    columns: list[str]
    values: np.ndarray
    expected_value: float
    data: pd.DataFrame
    method: str  # tree | kernel
    output: str  # probability | log-odds | prediction
    cost: dict = field(default_factory=dict)

    @property
    def global_importance(self) -> dict[str, float]:
        mean = np.abs(self.values).mean(axis=0) if len(self.values) else np.zeros(len(self.columns))
        order = np.argsort(-mean, kind="stable")
        return {self.columns[i]: float(mean[i]) for i in order}

    def local(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.columns, index=self.data.index)

    def to_clarify(self, label: str = "label0") -> dict:
        """Clarify's ``explanations`` section: ``{method: {label: {global_shap_values,
        expected_value}}}``, plus what it cost."""
        method = "kernel_shap" if self.method == "kernel" else "tree_shap"
        return {"explanations": {method: {label: {
            "global_shap_values": self.global_importance,
            "expected_value": float(self.expected_value)}}},
            "output": self.output, "cost": self.cost}  # fmt: skip


def split_pipeline(model):
    """(preprocessing steps or None, final estimator) of a scikit-learn Pipeline, else
    (None, model); a native booster package: (its preprocessing, the booster)."""
    if getattr(model, "booster", None) is not None and hasattr(model, "preprocess"):
        return model.preprocess, model.booster  # registry's native LightGBM/XGBoost packages
    steps = getattr(model, "steps", None)
    if not steps:
        return None, model
    from sklearn.pipeline import Pipeline

    return (Pipeline(steps[:-1]) if len(steps) > 1 else None), steps[-1][1]


def encoded_columns(prep, columns: list[str]) -> list[str]:
    """For each feature the preprocessing outputs, the input column it came from: a
    ColumnTransformer's outputs are ``<transformer>__<feature>``, and a feature is its column's
    name or starts with it and ``_`` (one-hot: ``sex_female``); the longest such name wins."""
    from sklearn.compose import ColumnTransformer

    steps = getattr(prep, "steps", [("", prep)])
    ct = next((s for _, s in reversed(steps) if isinstance(s, ColumnTransformer)), None)
    if ct is None:
        out = list(prep.get_feature_names_out())
        return [_owner(name, columns) for name in out]
    owners = []
    for name, trans, cols in ct.transformers_:
        if trans == "drop" or name == "remainder" and trans == "drop":
            continue
        cols = [columns[c] for c in cols] if len(cols) and isinstance(cols[0], int | np.integer) \
            else list(cols)  # fmt: skip
        names = trans.get_feature_names_out(cols) if trans != "passthrough" else cols
        owners += [_owner(str(n), cols) for n in names]
    return owners


def _owner(feature: str, columns: list[str]) -> str:
    feature = feature.split("__", 1)[1] if "__" in feature else feature
    matches = [c for c in columns if feature == c or feature.startswith(f"{c}_")]
    if not matches:
        raise InvalidInput(f"cannot tell which column the encoded feature {feature!r} comes from")
    return max(matches, key=len)


def _positive(values, expected, classes: int | None):
    """The positive class's slice of shap's output (binary: class 1)."""
    if isinstance(values, list):  # older shap: one array per class
        values = values[-1]
    values, expected = np.asarray(values), np.atleast_1d(np.asarray(expected, dtype=float))
    if isinstance(values, np.ndarray) and values.ndim == 3:
        return values[:, :, -1], float(expected[-1])
    return values, float(expected[-1] if expected.size else 0.0)


def tree_explain(loaded, X: pd.DataFrame) -> Explanation | None:
    """TreeSHAP on the encoded rows, summed back to the columns; None if not a tree model."""
    shap = _shap()
    prep, estimator = split_pipeline(loaded.model)
    started = time.perf_counter()
    try:
        explainer = shap.TreeExplainer(estimator)
    except Exception:  # noqa: BLE001 - shap's InvalidModelError and friends: not a tree model
        return None
    Xt = prep.transform(X) if prep is not None else X
    Xt = np.asarray(Xt, dtype=float)
    raw, expected = _positive(explainer.shap_values(Xt, check_additivity=False),
                              explainer.expected_value, None)  # fmt: skip
    columns = list(X.columns)
    owners = encoded_columns(prep, columns) if prep is not None else columns
    index = {c: i for i, c in enumerate(columns)}
    to_columns = np.zeros((raw.shape[1], len(columns)))
    to_columns[np.arange(raw.shape[1]), [index[o] for o in owners]] = 1.0
    values = raw @ to_columns
    output = "probability" if _outputs_probability(estimator, explainer) else "log-odds"
    if getattr(loaded, "task", None) == "regression":
        output = "prediction"
    return Explanation(columns, values, expected, X, "tree", output,
                       {"rows": len(X), "encoded_features": int(raw.shape[1]),
                        "seconds": round(time.perf_counter() - started, 4)})  # fmt: skip


def _outputs_probability(estimator, explainer) -> bool:
    """Forests average leaf probabilities; boosting sums margins (log-odds)."""
    name = type(estimator).__name__
    return "Forest" in name or "Trees" in name or "DecisionTree" in name


def _codes(X: pd.DataFrame):
    """X as floats: numeric columns as they are, other columns as category codes (with the
    categories to turn codes back into values)."""
    cats: dict[str, np.ndarray] = {}
    out = np.empty((len(X), X.shape[1]))
    for j, c in enumerate(X.columns):
        if X[c].dtype.kind in "iufb":
            out[:, j] = X[c].to_numpy(dtype=float, na_value=np.nan)
        else:
            codes, uniques = pd.factorize(X[c], use_na_sentinel=True)
            cats[c] = np.asarray(uniques, dtype=object)
            out[:, j] = codes
    return out, cats


def _decode(Z: np.ndarray, columns: list[str], cats: dict) -> pd.DataFrame:
    frame = pd.DataFrame(Z, columns=columns)
    for c, uniques in cats.items():
        codes = np.clip(np.rint(frame[c].to_numpy()), -1, len(uniques) - 1).astype(int)
        frame[c] = np.where(codes < 0, None, uniques[np.maximum(codes, 0)])
    return frame


def kernel_explain(loaded, X: pd.DataFrame, background: pd.DataFrame, *,
                   nsamples: int = DEFAULT_NSAMPLES, centroids: int = DEFAULT_BACKGROUND,
                   seed: int = 0) -> Explanation:  # fmt: skip
    """Kernel SHAP on the original columns with a k-means baseline of ``background``."""
    shap = _shap()
    started = time.perf_counter()
    columns = list(X.columns)
    both, cats = _codes(pd.concat([background[columns], X], ignore_index=True))
    bg, rows = both[: len(background)], both[len(background):]
    k = max(1, min(centroids, len(bg)))
    means = np.nanmean(np.where(np.isnan(bg), np.nan, bg), axis=0)
    summary = shap.kmeans(np.where(np.isnan(bg), means, bg), k)
    for c in cats:  # a centroid's category is a category (the nearest code), never a blend
        j = columns.index(c)
        summary.data[:, j] = np.rint(summary.data[:, j])
    classes = loaded.classes_ if getattr(loaded, "task", None) != "regression" else None
    if classes is not None and loaded.has_proba:
        def f(Z):
            return loaded.predict_proba(_decode(Z, columns, cats), validate=False)[:, -1]
        output = "probability"
    else:
        def f(Z):
            return np.asarray(loaded.predict(_decode(Z, columns, cats), validate=False), dtype=float)
        output = "prediction"
    explainer = shap.KernelExplainer(f, summary, seed=seed) if _takes_seed(shap) else \
        shap.KernelExplainer(f, summary)  # fmt: skip
    np.random.seed(seed)  # KernelExplainer samples coalitions with NumPy's global generator
    values = np.asarray(explainer.shap_values(rows, nsamples=nsamples, silent=True))
    values, expected = _positive(values, explainer.expected_value, None)
    return Explanation(columns, values, expected, X, "kernel", output,
                       {"rows": len(X), "nsamples": nsamples, "background": k,
                        "model_calls": len(X) * nsamples * k,
                        "seconds": round(time.perf_counter() - started, 4)})  # fmt: skip


def _takes_seed(shap) -> bool:
    import inspect

    return "seed" in inspect.signature(shap.KernelExplainer.__init__).parameters


def explain(loaded, frame: pd.DataFrame, *, background: pd.DataFrame | None = None,
            rows: int | None = DEFAULT_ROWS, method: str = "auto",
            nsamples: int = DEFAULT_NSAMPLES, centroids: int = DEFAULT_BACKGROUND,
            seed: int = 0) -> Explanation:  # fmt: skip
    """Attributions of ``loaded`` (a :class:`~modelloop.registry.package.PackagedModel`) for the
    first ``rows`` rows of ``frame`` (None: all); ``method`` tree, kernel or auto (tree when the
    model is one)."""
    if method not in ("auto", "tree", "kernel"):
        raise InvalidInput(f"unknown explanation method {method!r}", hint="use auto, tree or kernel")
    names = loaded.signature.names
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the data lacks the model's columns: {', '.join(missing)}")
    X = frame[names]
    if rows is not None:
        X = X.iloc[: max(1, int(rows))]
    if method in ("auto", "tree"):
        result = tree_explain(loaded, X)
        if result is not None:
            return result
        if method == "tree":
            raise InvalidInput("the model is not a tree model TreeSHAP can explain",
                               hint="use --method kernel")  # fmt: skip
    bg = (frame if background is None else background)[names]
    return kernel_explain(loaded, X, bg, nsamples=nsamples, centroids=centroids, seed=seed)
