"""One loaded variant: its model, its validation plan, its batcher, and what its answers look like
(classes, the v2 datatype of its labels). A version with a fast-path plan
(:mod:`modelloop.registry.fastpath`) is predicted by the plan on arrays, never through pandas."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

from modelloop.registry.arrays import accepts_arrays
from modelloop.serving.dataplane.batching import Batcher
from modelloop.serving.dataplane.validation import Validator


class VariantRuntime:
    """A variant's model, its validation plan and its batcher."""

    def __init__(self, spec: dict, packaged, options: dict, executor: ThreadPoolExecutor,
                 features=None):
        self.name = spec["name"]
        self.model_ref = spec["model"]
        self.role = spec["role"]
        self.weight = spec["weight"]
        self.sample = spec["sample"]
        self.explain = bool(spec.get("explain", False))  # SHAP at the endpoint allowed
        self.packaged = packaged
        self.plan = getattr(packaged, "plan", None)
        self.validator = Validator(packaged.signature, options, arrays=self.plan is not None)
        self.prepare = self.validator.prepare
        self.columns = self.validator.columns
        recorded = (getattr(packaged, "manifest", None) and packaged.manifest.lineage or {}).get(
            "features")
        if recorded:  # trained from a feature set: its values are looked up by entity key
            from modelloop.serving.dataplane.features import FeatureJoin

            if features is None:
                raise RuntimeError(f"{self.model_ref} reads feature set {recorded['name']!r}, "
                                   "and this server has no feature store")
            self.prepare = FeatureJoin(recorded, features, self.prepare, self.columns).prepare
        self.has_proba = bool(packaged.task in ("binary", "multiclass") and packaged.has_proba)
        classes = packaged.classes_ if self.has_proba else None
        self.classes = None if classes is None else classes.tolist()
        self.direct = self.plan is None and self.validator.numeric and accepts_arrays(packaged)
        self._labels = classes if self.direct and _labels_are_argmax(packaged) else None
        self.label_type = _label_type(packaged, classes)
        self.outputs = [{"name": "predict", "datatype": self.label_type, "shape": [-1]}]
        if self.has_proba:
            self.outputs.append({"name": "predict_proba", "datatype": "FP64",
                                 "shape": [-1, len(self.classes or ()) or -1]})
        self.batcher = Batcher(self, options, executor)

    # prediction on an already validated batch
    def predict_batch(self, X, want_proba: bool):
        import numpy as np

        if self.plan is not None:
            return self.plan.predict(X, want_proba)
        if self.direct and want_proba and self._labels is not None:
            proba = self.packaged.model.predict_proba(X)  # one model call gives both
            preds = self._labels[np.argmax(proba, axis=1)]
        elif self.direct:
            preds = self.packaged.model.predict(X)
            proba = self.packaged.model.predict_proba(X) if want_proba else None
        else:
            preds = self.packaged.predict(X, validate=False)
            proba = self.packaged.predict_proba(X, validate=False) if want_proba else None
        preds = np.asarray(preds)
        if proba is not None:
            proba = np.asarray(proba, dtype=float)
        return preds, proba



#: OIP datatypes of a variant's labels, by numpy kind of its classes.
_LABEL_TYPES = {"i": "INT64", "u": "INT64", "b": "BOOL", "f": "FP64"}
_SIGNATURE_TYPES = {"boolean": "BOOL", "integer": "INT64", "long": "INT64", "float": "FP64",
                    "double": "FP64"}


def _label_type(packaged, classes) -> str:
    """The v2 datatype of what ``predict`` answers: the model metadata announces it and every
    response is encoded in it, so the two cannot disagree."""
    import numpy as np

    if packaged.task == "regression":
        return "FP64"
    if classes is None:
        classes = packaged.classes_
    if classes is not None:
        return _LABEL_TYPES.get(np.asarray(classes).dtype.kind, "BYTES")
    out = packaged.output_signature
    if out is not None and len(out.columns) == 1:
        return _SIGNATURE_TYPES.get(out.columns[0].type, "BYTES")
    return "BYTES"


#: Classifiers whose ``predict`` is by definition the class of highest probability, so that one
#: ``predict_proba`` call answers both (capture and probability requests then cost one call).
ARGMAX_CLASSIFIERS = frozenset({
    "LogisticRegression", "RandomForestClassifier", "ExtraTreesClassifier",
    "DecisionTreeClassifier", "HistGradientBoostingClassifier", "GradientBoostingClassifier",
    "KNeighborsClassifier",
})


def _labels_are_argmax(packaged) -> bool:
    """A known argmax classifier whose labels from probabilities match ``predict`` on a probe."""
    import numpy as np

    model = packaged.model
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if type(final).__name__ not in ARGMAX_CLASSIFIERS or packaged.classes_ is None:
        return False
    n = len(packaged.signature.names)
    X = np.random.default_rng(0).normal(size=(64, n))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            derived = np.asarray(packaged.classes_)[np.argmax(model.predict_proba(X), axis=1)]
            return bool(np.array_equal(derived, np.asarray(model.predict(X))))
    except Exception:
        return False
