"""The Optuna study of a tuning run: what is searched and how.

The spaces (one algorithm's, or one per built-in algorithm for ``auto``), the suggestion of an
algorithm and its params in each trial (``auto`` makes the algorithm itself a searched
parameter, prefixing the others with its name), the sampler, the pruner, and a warm start from
an earlier run's trials.
"""

from __future__ import annotations

import math

from modelloop.errors import InvalidInput
from modelloop.training.algorithms import (
    ALGORITHMS,
    CLASSIFICATION,
    installed,
    is_custom_trainer,
    resolve_algorithm,
)
from modelloop.training.space import Space, load_space

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", None)
#: Built-in algorithms ``auto`` searches, in this order (those installed and fit for the task).
AUTO_ALGORITHMS = (
    "logistic_regression", "ridge", "random_forest", "extra_trees",
    "hist_gradient_boosting", "lightgbm", "xgboost", "knn",
)  # fmt: skip
KNN_MAX_ROWS = 20_000  # k-nearest-neighbours predicts too slowly to be worth trying above this


def spaces_for(algorithm: str, space, task: str, frame, target: str) -> dict[str, Space]:
    """Algorithm name -> its Space (one entry, or several for ``auto``)."""
    if algorithm == "auto":
        if space is not None:
            raise InvalidInput(
                "algorithm 'auto' uses each algorithm's own search space",
                hint="leave the space out, or name one algorithm to search your space",
            )
        out = {}
        for name in AUTO_ALGORITHMS:
            a = ALGORITHMS[name]
            if not (a.supports(task) and a.space and installed(a)):
                continue
            if name == "knn" and len(frame) > KNN_MAX_ROWS:
                continue
            if task in CLASSIFICATION and not _has_proba(a):  # ranking metrics need probabilities
                continue
            if name == "xgboost" and task in CLASSIFICATION and not _zero_based(frame[target]):
                continue
            out[name] = load_space(a.space)
        return out
    if is_custom_trainer(algorithm):
        if space is None:
            raise InvalidInput(
                f"custom trainer {algorithm} has no default search space", hint="give a space"
            )
        return {algorithm: load_space(space)}
    spec = resolve_algorithm(algorithm)
    est = spec.estimator(task, {}, None)
    chosen = load_space(space if space is not None else spec.space)
    if not chosen.params and chosen.function is None:
        raise InvalidInput(
            f"there is nothing to search for {algorithm}",
            hint="give a search space, e.g. {max_depth: {type: int, low: 2, high: 10}}",
        )
    from modelloop.training.algorithms import configure

    if chosen.function is None:  # check every name now, not in the first trial
        configure(est, {k: _example(s) for k, s in chosen.params.items()} | chosen.fixed, None,
                  what=algorithm)  # fmt: skip
    return {algorithm: chosen}


def _example(spec: dict):
    return spec["choices"][0] if spec["type"] == "categorical" else spec["low"]


def _has_proba(algorithm) -> bool:
    from modelloop.training.algorithms import _import_class

    return hasattr(_import_class(algorithm.classifier, extra=algorithm.extra), "predict_proba")


def _zero_based(y) -> bool:
    import pandas as pd

    values = sorted(y.unique().tolist())
    return pd.api.types.is_integer_dtype(y.dtype) and values == list(range(len(values)))


def suggest(trial, spaces: dict[str, Space]) -> tuple[str, dict]:
    if len(spaces) == 1:
        name, space = next(iter(spaces.items()))
        return name, space.suggest(trial)
    name = trial.suggest_categorical("algorithm", list(spaces))
    return name, spaces[name].suggest(trial, prefix=f"{name}.")


def params_of(flat: dict, spaces: dict[str, Space]) -> tuple[str, dict]:
    """(algorithm, params) from an Optuna trial's flat params (``auto`` prefixes them)."""
    if len(spaces) == 1:
        name, space = next(iter(spaces.items()))
        return name, {**space.fixed, **flat}
    name = flat["algorithm"]
    prefix = f"{name}."
    params = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
    return name, {**spaces[name].fixed, **params}


def check_direction(given: str | None, default: str) -> str:
    words = {"maximize": "maximize", "greater": "maximize", "max": "maximize",
             "minimize": "minimize", "lower": "minimize", "min": "minimize"}  # fmt: skip
    if given is None:
        return default
    if given not in words:
        raise InvalidInput(f"unknown direction {given!r}", hint="use maximize or minimize")
    return words[given]


def make_sampler(name: str, spaces: dict[str, Space], seed: int):
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(next(iter(spaces.values())).grid(), seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str | None, steps: int):
    import optuna

    if name is None or steps < 2:
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=steps, reduction_factor=3
        )
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def warm_start_study(study, warm_start, spaces: dict[str, Space], tracker) -> int:
    """Add earlier trials (dicts of params, value, state, algorithm) to the study; return how
    many were added."""
    import optuna

    if warm_start is None:
        return 0
    earlier = list(warm_start)
    added = 0
    for old in earlier:
        value = old.get("value")
        if old.get("state", "complete") != "complete" or value is None or math.isnan(value):
            continue
        name = old.get("algorithm") or next(iter(spaces))
        space = spaces.get(name)
        if space is None or space.function is not None:
            continue
        prefix = f"{name}." if len(spaces) > 1 else ""
        distributions = space.distributions(prefix)
        params = {prefix + k: v for k, v in old["params"].items() if k in space.params}
        if len(spaces) > 1:
            params["algorithm"] = name
            distributions["algorithm"] = optuna.distributions.CategoricalDistribution(list(spaces))
        try:
            study.add_trial(
                optuna.trial.create_trial(params=params, distributions=distributions, value=value)
            )
            added += 1
        except ValueError as e:  # outside the current space: it cannot inform this search
            tracker.log_text(f"warm start: skipped an earlier trial ({e})")
    tracker.log_param("warm_start_trials", added)
    return added
