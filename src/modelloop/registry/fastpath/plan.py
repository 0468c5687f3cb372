"""Running a compiled plan: the fitted preprocessing and the estimator's math on NumPy arrays.

A plan is data (see :mod:`modelloop.registry.fastpath`); this module turns it into a few array
operations per call. It takes the validated rows in signature order in any of the three shapes
the callers hold them: a float64 array (a numeric signature, from the serving data plane), a
2-D object array (a signature with text columns, from the data plane: numbers as floats, text as
``str``, missing as None) or a DataFrame (batch transform, after the signature's validation).

Each operation is the one the fitted scikit-learn object performs, in the same order (impute,
then ``x -= mean; x /= scale``, then ``X @ coef.T + intercept``), so results agree to the last
bits or nearly; the plan was checked against the pipeline when it was compiled.
"""

from __future__ import annotations

from typing import Any

#: Above this many rows a text column is encoded with pandas' hash table, below with a dict.
_HASHED_ABOVE = 64


class Plan:
    """A compiled plan bound to the signature's column order (and, for the ``estimator`` kind,
    to the loaded model's final estimator)."""

    def __init__(self, data: dict, columns: list[str], estimator: Any = None):
        import numpy as np

        index = {n: i for i, n in enumerate(columns)}
        self.width = int(data["width"])
        self.numeric: list[tuple] = []  # (first numeric input, first output, count, steps)
        self.categorical: list[tuple] = []
        num_cols: list[int] = []
        out = 0
        for block in data["blocks"]:
            cols = [index[c] for c in block["columns"]]
            if block["kind"] == "numeric":
                steps = [_numeric_step(s) for s in block["steps"]]
                self.numeric.append((len(num_cols), out, len(cols), steps))
                num_cols.extend(cols)
                out += len(cols)
            else:
                for col, cats in zip(cols, block["categories"], strict=True):
                    lookup = {c: i for i, c in enumerate(cats)}
                    missing = lookup.get(block["missing"], -1) if block["missing"] is not None \
                        else -1
                    onehot = block["kind"] == "onehot"
                    self.categorical.append((col, out, onehot, lookup, cats, missing,
                                             float(block.get("unknown", -1.0))))
                    out += len(cats) if onehot else 1
        if out != self.width:
            raise ValueError(f"the plan's blocks give {out} columns, not {self.width}")
        self.num_cols = np.asarray(num_cols, dtype=np.intp)
        self.all_numeric_input = not self.categorical
        self.kind = data["estimator"]["kind"]
        est = data["estimator"]
        self.classes = None if est.get("classes") is None else np.asarray(est["classes"])
        self.has_proba = bool(est.get("proba"))
        self.labels_from_proba = bool(est.get("labels_from_proba"))
        if self.kind in ("logistic", "linear", "linear_classifier"):
            self.coef_t = np.asarray(est["coef"], dtype=np.float64).T
            self.intercept = np.asarray(est["intercept"], dtype=np.float64)
            if self.intercept.ndim == 0:
                self.intercept = self.intercept.item()
        elif self.kind == "estimator":
            if estimator is None:
                raise ValueError("this plan calls the model's estimator; none was given")
            self.estimator = estimator
        else:
            raise ValueError(f"unknown estimator kind {self.kind!r}")

    # -- preprocessing -------------------------------------------------------------------------
    def transform(self, X):
        """The float64 matrix the pipeline's final estimator sees."""
        import numpy as np

        n = len(X)
        out = np.zeros((n, self.width)) if self.categorical else np.empty((n, self.width))
        if len(self.num_cols):
            A = self._numeric(X)
            for start, at, count, steps in self.numeric:
                block = A[:, start:start + count]
                for step in steps:
                    block = step(block)
                out[:, at:at + count] = block
        for col, at, onehot, lookup, cats, missing, unknown in self.categorical:
            codes = _codes(self._text(X, col), lookup, cats, missing)
            if onehot:
                known = codes >= 0
                if known.all():
                    out[np.arange(n), at + codes] = 1.0
                else:
                    out[np.flatnonzero(known), at + codes[known]] = 1.0
            else:
                out[:, at] = np.where(codes >= 0, codes, unknown)
        return out

    def _numeric(self, X):
        import numpy as np

        if isinstance(X, np.ndarray):
            return X[:, self.num_cols].astype(np.float64)  # a copy the steps may change
        import pandas as pd

        frame = X.iloc[:, self.num_cols]
        parts = []
        for name in frame.columns:  # what ColumnCaster does with a numeric column
            col = frame[name]
            if col.dtype.kind not in "biuf":
                col = pd.to_numeric(col, errors="raise")
            parts.append(col.to_numpy(dtype="float64", na_value=np.nan))
        return np.column_stack(parts) if parts else np.empty((len(X), 0))

    @staticmethod
    def _text(X, col: int):
        """The column's values as an object array of str / None (ColumnCaster's strings)."""
        import numpy as np

        if isinstance(X, np.ndarray):
            return X[:, col]
        series = X.iloc[:, col]
        values = series.astype("string").astype(object).to_numpy(copy=True)
        values[series.isna().to_numpy()] = None
        return values

    # -- the estimator -------------------------------------------------------------------------
    def predict(self, X, want_proba: bool = False):
        """``(labels or values, probabilities or None)`` for validated rows ``X``."""
        import numpy as np

        Z = self.transform(X)
        kind = self.kind
        if kind == "estimator":
            est = self.estimator
            if want_proba and self.has_proba:
                proba = np.asarray(est.predict_proba(Z), dtype=float)
                if self.labels_from_proba:
                    return self.classes[np.argmax(proba, axis=1)], proba
                return np.asarray(est.predict(Z)), proba
            return np.asarray(est.predict(Z)), None
        scores = Z @ self.coef_t + self.intercept  # LinearModel._decision_function
        if kind == "linear":
            return scores, None
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores.ravel()
        if scores.ndim == 1:
            labels = self.classes[(scores > 0).astype(np.intp)]
        else:
            labels = self.classes[np.argmax(scores, axis=1)]
        if not (want_proba and kind == "logistic"):
            return labels, None
        if scores.ndim == 1:  # LogisticRegression._predict_proba_lr, binary
            from scipy.special import expit

            p = expit(scores)
            return labels, np.stack([1 - p, p], axis=1)
        scores = scores - scores.max(axis=1).reshape((-1, 1))  # sklearn.utils.extmath.softmax
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1).reshape((-1, 1))
        return labels, scores


def _numeric_step(step: dict):
    import numpy as np

    if step["op"] == "impute":
        fill = np.asarray(step["fill"], dtype=np.float64)

        def impute(A):
            mask = np.isnan(A)
            if mask.any():
                A = A.copy()
                np.copyto(A, fill, where=mask)  # SimpleImputer: statistics_ where missing
            return A
        return impute
    mean = None if step.get("mean") is None else np.asarray(step["mean"], dtype=np.float64)
    scale = None if step.get("scale") is None else np.asarray(step["scale"], dtype=np.float64)

    def standardise(A):  # StandardScaler.transform: X -= mean_; X /= scale_
        if mean is not None:
            A = A - mean
        if scale is not None:
            A = A / scale
        return A
    return standardise


def _codes(values, lookup: dict, cats: list, missing: int):
    """Index of each value in the categories; -1 for an unseen one, ``missing`` for None/NaN."""
    import numpy as np

    if len(values) <= _HASHED_ABOVE:
        out = []
        for v in values:
            if type(v) is str:
                out.append(lookup.get(v, -1))
            elif v is None or _is_nan(v):
                out.append(missing)
            else:
                out.append(lookup.get(str(v), -1))
        return np.asarray(out, dtype=np.intp)
    import pandas as pd

    values = np.asarray(values, dtype=object)  # str or missing: the callers' contract
    absent = pd.isna(values)
    codes = pd.Index(cats, dtype=object).get_indexer(np.where(absent, "", values))
    codes[absent] = missing
    return codes.astype(np.intp, copy=False)


def _is_nan(v) -> bool:
    try:
        return bool(v != v)
    except (TypeError, ValueError):  # pd.NA and friends: missing too
        return True
