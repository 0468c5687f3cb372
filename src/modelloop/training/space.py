"""Search spaces for tuning, written in YAML (or a dict) or as a Python function.

YAML form, one entry per parameter::

    max_depth:     {type: int, low: 2, high: 10}
    learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
    criterion:     {type: categorical, choices: [gini, entropy]}
    n_estimators:  200            # a fixed value, not searched
    max_features:  [sqrt, log2]   # a list is shorthand for categorical

Python form: a function ``space(trial) -> dict`` using Optuna's ``trial.suggest_*``.
Mistakes raise :class:`~modelloop.errors.InvalidInput` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelloop.errors import InvalidInput

TYPES = ("int", "float", "categorical")
_KEYS = {
    "int": {"type", "low", "high", "log", "step"},
    "float": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}


@dataclass
class Space:
    """Searched parameters (name -> checked spec), fixed parameters, or a Python function."""

    params: dict[str, dict] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    function: Callable | None = None

    @property
    def names(self) -> list[str]:
        return [*self.params, *self.fixed]

    def suggest(self, trial, prefix: str = "") -> dict:
        """Draw one set of params for ``trial`` (names are prefixed in Optuna, not in the result)."""
        if self.function is not None:
            return dict(self.function(trial))
        out = dict(self.fixed)
        for name, spec in self.params.items():
            key = prefix + name
            if spec["type"] == "categorical":
                out[name] = trial.suggest_categorical(key, spec["choices"])
            elif spec["type"] == "int":
                out[name] = trial.suggest_int(
                    key,
                    spec["low"],
                    spec["high"],
                    step=spec.get("step", 1),
                    log=spec.get("log", False),
                )
            else:
                out[name] = trial.suggest_float(
                    key,
                    spec["low"],
                    spec["high"],
                    step=spec.get("step"),
                    log=spec.get("log", False),
                )
        return out

    def distributions(self, prefix: str = "") -> dict:
        """Optuna distributions of the searched params (to add earlier trials for a warm start)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        out = {}
        for name, s in self.params.items():
            if s["type"] == "categorical":
                out[prefix + name] = CategoricalDistribution(s["choices"])
            elif s["type"] == "int":
                out[prefix + name] = IntDistribution(
                    s["low"], s["high"], log=s.get("log", False), step=s.get("step", 1)
                )
            else:
                out[prefix + name] = FloatDistribution(
                    s["low"], s["high"], log=s.get("log", False), step=s.get("step")
                )
        return out

    def grid(self) -> dict[str, list]:
        """Every value of every searched param, for grid search (floats need a ``step``)."""
        if self.function is not None:
            raise InvalidInput(
                "grid search needs a YAML/dict search space, not a Python function",
                hint="write the space as a dict, or use sampler 'tpe' or 'random'",
            )
        out = {}
        for name, s in self.params.items():
            if s["type"] == "categorical":
                out[name] = list(s["choices"])
            elif "step" in s or s["type"] == "int":
                step = s.get("step", 1)
                n = int(round((s["high"] - s["low"]) / step)) + 1
                values = [s["low"] + i * step for i in range(n)]
                out[name] = [int(v) for v in values] if s["type"] == "int" else values
            else:
                raise InvalidInput(
                    f"search space parameter {name!r} is a continuous float",
                    hint="grid search needs a step for floats, e.g. {type: float, low: 0.1, high: 0.5, step: 0.1}",
                )
        return out


def load_space(value) -> Space:
    """A :class:`Space` from a dict, YAML text, a .yaml/.yml/.json path, or a Python function."""
    if isinstance(value, Space):
        return value
    if callable(value):
        return Space(function=value)
    if isinstance(value, str | Path):
        text = str(value)
        if text.endswith((".yaml", ".yml", ".json")) and "\n" not in text:
            path = Path(text)
            if not path.is_file():
                raise InvalidInput(
                    f"search space file {text} does not exist", hint="check the path"
                )
            text = path.read_text()
        import yaml

        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InvalidInput(
                f"the search space is not valid YAML: {e}", hint="fix the YAML syntax"
            ) from None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidInput(
            "a search space must be a mapping of parameter name to its range",
            hint="write e.g. {max_depth: {type: int, low: 2, high: 10}}",
        )
    params, fixed = {}, {}
    for name, spec in value.items():
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        if isinstance(spec, dict):
            params[str(name)] = _check(str(name), spec)
        else:
            fixed[str(name)] = spec
    return Space(params=params, fixed=fixed)


def _check(name: str, spec: dict) -> dict:
    where = f"search space parameter {name!r}"
    kind = spec.get("type")
    if kind not in TYPES:
        raise InvalidInput(f"{where} has type {kind!r}", hint=f"use one of {', '.join(TYPES)}")
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise InvalidInput(
            f"{where} has unknown key {unknown[0]!r}",
            hint=f"a {kind} parameter takes {', '.join(sorted(_KEYS[kind]))}",
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise InvalidInput(f"{where} has no choices", hint="give choices: [a, b, ...]")
        bad = [c for c in choices if not (c is None or isinstance(c, bool | int | float | str))]
        if bad:
            raise InvalidInput(
                f"{where} has choice {bad[0]!r}",
                hint="choices must be numbers, strings, booleans or null",
            )
        return {"type": kind, "choices": list(choices)}
    for key in ("low", "high"):
        if key not in spec:
            raise InvalidInput(f"{where} has no {key}", hint="give low and high")
        v = spec[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InvalidInput(f"{where}: {key} is {v!r}, not a number", hint="give a number")
        if kind == "int" and float(v) != int(v):
            raise InvalidInput(f"{where}: {key} {v} is not an integer", hint="use type float")
    low, high = spec["low"], spec["high"]
    if low > high:
        raise InvalidInput(f"{where} has low {low} above high {high}", hint="swap them")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise InvalidInput(f"{where} is log-scaled but low is {low}", hint="use a low above 0")
    if log and "step" in spec:
        raise InvalidInput(f"{where} has both log and step", hint="Optuna allows one or the other")
    out = {"type": kind, "low": low, "high": high, "log": log}
    if kind == "int":
        out["low"], out["high"] = int(low), int(high)
    else:
        out["low"], out["high"] = float(low), float(high)
    if "step" in spec:
        step = spec["step"]
        if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
            raise InvalidInput(f"{where} has step {step!r}", hint="give a positive step")
        out["step"] = int(step) if kind == "int" else float(step)
    return out
