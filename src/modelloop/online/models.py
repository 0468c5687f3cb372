"""Online models from a short spec: River estimators and pipelines, or scikit-learn's
``partial_fit`` estimators.

A spec names classes only from a fixed set of River modules and scikit-learn's incremental
estimators, with literal keyword arguments (parsed by :func:`ast.literal_eval`, never run): a spec
comes from a user over HTTP or a loop file, and an import path would run their string as code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from modelloop.errors import InvalidInput

#: River's modules a spec may name classes from (imported when a spec is built).
RIVER_MODULES = (
    "compose", "drift", "ensemble", "feature_extraction", "forest", "imblearn", "linear_model",
    "multiclass", "naive_bayes", "neighbors", "optim", "preprocessing", "rules",
    "tree",
)  # fmt: skip
#: scikit-learn estimators with ``partial_fit`` a spec may name (``sklearn.linear_model.X``).
SKLEARN_ESTIMATORS = {
    "sklearn.linear_model.SGDClassifier", "sklearn.linear_model.SGDRegressor",
    "sklearn.linear_model.Perceptron", "sklearn.linear_model.PassiveAggressiveClassifier",
    "sklearn.linear_model.PassiveAggressiveRegressor", "sklearn.naive_bayes.GaussianNB",
    "sklearn.naive_bayes.MultinomialNB", "sklearn.naive_bayes.BernoulliNB",
    "sklearn.neural_network.MLPClassifier", "sklearn.neural_network.MLPRegressor",
}  # fmt: skip
_STEP = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(\((.*)\))?\s*$", re.S)
MAX_SPEC_CHARS = 2000


def _river_modules() -> dict:
    from river import (
        compose,
        drift,
        ensemble,
        feature_extraction,
        forest,
        imblearn,
        linear_model,
        multiclass,
        naive_bayes,
        neighbors,
        optim,
        preprocessing,
        rules,
        tree,
    )  # fmt: skip

    return dict(zip(RIVER_MODULES, (
        compose, drift, ensemble, feature_extraction, forest, imblearn, linear_model, multiclass,
        naive_bayes, neighbors, optim, preprocessing, rules, tree,
    ), strict=True))  # fmt: skip


def _sklearn_class(path: str):
    from sklearn import linear_model, naive_bayes, neural_network

    module, name = path.rsplit(".", 1)
    return getattr({"sklearn.linear_model": linear_model, "sklearn.naive_bayes": naive_bayes,
                    "sklearn.neural_network": neural_network}[module], name)  # fmt: skip


def _kwargs(text: str | None, step: str) -> dict:
    if not text or not text.strip():
        return {}
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        if call.args:
            raise ValueError("positional arguments")
        return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"the arguments of {step!r} in an online model spec are not literal keywords ({exc})",
            hint="e.g. forest.ARFClassifier(n_models=10, seed=1)",
        ) from None


def _step(text: str, modules: dict):
    match = _STEP.match(text)
    if not match:
        raise InvalidInput(
            f"{text.strip()!r} is not a model step (module.Class or module.Class(k=v))"
        )
    path, args = match.group(1), match.group(3)
    kwargs = _kwargs(args, path)
    if path.startswith("sklearn."):
        if path not in SKLEARN_ESTIMATORS:
            raise InvalidInput(f"{path!r} is not a scikit-learn estimator with partial_fit "
                               "modelloop can learn online",
                               hint="one of " + ", ".join(sorted(SKLEARN_ESTIMATORS)))  # fmt: skip
        try:
            return SklearnOnline(_sklearn_class(path)(**kwargs))
        except TypeError as exc:
            raise InvalidInput(f"{path}: {exc}") from None
    module, _, name = path.removeprefix("river.").partition(".")
    cls = getattr(modules.get(module), name, None) if name and "." not in name else None
    if not isinstance(cls, type):
        raise InvalidInput(
            f"{path!r} does not name a River class in an online model spec",
            hint="module.Class from River's "
            + ", ".join(RIVER_MODULES)
            + ", e.g. preprocessing.StandardScaler|linear_model.LogisticRegression",
        )
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidInput(f"{path}: {exc}") from None


def build_model(spec: str, *, categorical: Iterable[str] = ()):
    """A fresh model from ``spec``: River steps joined by ``|`` (a pipeline), e.g.
    ``preprocessing.StandardScaler|linear_model.LogisticRegression``, ``forest.ARFClassifier(n_models=10)``,
    or one scikit-learn incremental estimator (``sklearn.linear_model.SGDClassifier``), learned
    in mini-batches. ``categorical`` features are one-hot encoded first (as batch models do)."""
    if not isinstance(spec, str) or not spec.strip() or len(spec) > MAX_SPEC_CHARS:
        raise InvalidInput(f"an online model spec is a non-empty string of at most "
                           f"{MAX_SPEC_CHARS} characters, not {str(spec)[:80]!r}")  # fmt: skip
    modules = _river_modules()
    steps = [_step(part, modules) for part in _split(spec)]
    if any(isinstance(s, SklearnOnline) for s in steps) and len(steps) > 1:
        raise InvalidInput("a scikit-learn online model is one estimator, not a pipeline step")
    cats = sorted(set(categorical))
    if cats:
        steps.insert(0, OneHot(cats))
    if len(steps) == 1:
        return steps[0]
    from river import compose

    return compose.Pipeline(*steps)


def _split(spec: str) -> list[str]:
    """Split on ``|`` outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(spec):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(spec[start:i])
            start = i + 1
    parts.append(spec[start:])
    if any(not p.strip() for p in parts):
        raise InvalidInput(f"an online model spec has an empty step: {spec!r}")
    return parts


def _transformer_base():
    from river import base

    return base.Transformer


class OneHot(_transformer_base()):
    """One-hot encoding of the named categorical features (``name=value`` -> 1); the others
    pass through. River's ``OneHotEncoder`` encodes every feature it is given, numbers too."""

    def __init__(self, features: list[str]):
        self.features = list(features)

    def transform_one(self, x):
        out = {}
        cats = self.features
        for key, value in x.items():
            if key in cats:
                if value is not None:
                    out[f"{key}={value}"] = 1
            else:
                out[key] = value
        return out


#: Most events a scikit-learn classifier holds before its first fit while it waits for a second
#: class.
MAX_FIRST_BATCH = 10_000


class SklearnOnline:
    """A scikit-learn ``partial_fit`` estimator behind River's ``learn_one`` / ``predict_one``:
    events are gathered into mini-batches of ``batch_size`` and learned together. Feature order
    is fixed by the first event; a classifier's classes are those seen in its first batch
    unless given."""

    def __init__(self, estimator, batch_size: int = 32, classes: list | None = None):
        self.estimator = estimator
        self.batch_size = batch_size
        self.classes = classes
        self.features: list[str] | None = None
        self._xs: list[list[float]] = []
        self._ys: list = []
        self.fitted = False

    def _row(self, x: dict) -> list[float]:
        if self.features is None:
            self.features = sorted(x)
        return [float(x.get(name, 0.0) or 0.0) for name in self.features]

    def learn_one(self, x: dict, y) -> None:
        from sklearn.base import is_classifier

        row = self._row(x)  # raises for a value that is not a number: counted by the learner
        classifier = is_classifier(self.estimator)
        if classifier and self.fitted and y not in set(self.estimator.classes_.tolist()):
            raise InvalidInput(f"label {y!r} is not one of the classes this model learned "
                               f"({self.estimator.classes_.tolist()})")  # fmt: skip
        self._xs.append(row)
        self._ys.append(y)
        if len(self._xs) < self.batch_size:
            return
        if classifier and not self.fitted and not self.classes and len(set(self._ys)) < 2:
            # The classes are fixed by the first fit: wait for a second one (bounded).
            if len(self._xs) < MAX_FIRST_BATCH:
                return
            self._xs, self._ys = [], []
            raise InvalidInput(f"{MAX_FIRST_BATCH} events of one class: a scikit-learn "
                               "classifier needs two to start (or give its classes)")  # fmt: skip
        self.flush()

    def flush(self) -> None:
        if not self._xs:
            return
        import numpy as np
        from sklearn.base import is_classifier

        kwargs = {}
        if not self.fitted and is_classifier(self.estimator):
            kwargs["classes"] = np.array(self.classes or sorted(set(self._ys), key=str))
        xs, ys, self._xs, self._ys = self._xs, self._ys, [], []
        self.estimator.partial_fit(np.array(xs), np.array(ys), **kwargs)
        self.fitted = True

    def predict_one(self, x: dict):
        if not self.fitted:
            return None
        import numpy as np

        return self.estimator.predict(np.array([self._row(x)]))[0].item()

    def predict_proba_one(self, x: dict) -> dict:
        if not self.fitted or not hasattr(self.estimator, "predict_proba"):
            return {}
        import numpy as np

        probs = self.estimator.predict_proba(np.array([self._row(x)]))[0]
        return {c.item() if hasattr(c, "item") else c: float(p)
                for c, p in zip(self.estimator.classes_, probs, strict=True)}  # fmt: skip
