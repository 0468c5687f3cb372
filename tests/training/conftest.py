"""Small generated tasks: fast to train, with a known signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_binary(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Mixed dtypes (float, nullable int, string with missing, bool, datetime) and a target."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    logit = 1.5 * x1 - x2 + (colour == "red") * 1.0 + 0.5 * rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "count": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
            "colour": pd.array(colour, dtype="string"),
            "flag": rng.random(n) > 0.5,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "y": (logit > 0.3).astype(int),
        }
    )
    frame.loc[frame.index[::17], "x2"] = np.nan
    frame.loc[frame.index[::23], "count"] = pd.NA
    frame.loc[frame.index[::29], "colour"] = pd.NA
    return frame


def make_multiclass(n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    label = np.array(["ant", "bee", "cat"])[np.argmax(X + 0.5 * rng.normal(size=(n, 3)), axis=1)]
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "kind": label})


def make_regression(n: int = 600, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    shop = rng.choice(["north", "south"], size=n)
    y = 3 * x[:, 0] - 2 * x[:, 1] + (shop == "north") * 4 + 10 + rng.normal(size=n)
    return pd.DataFrame({"u": x[:, 0], "v": x[:, 1], "w": x[:, 2], "shop": shop, "sales": y})


def make_nonlinear(n: int = 800, seed: int = 3) -> pd.DataFrame:
    """A noisy interaction a default (unpruned) decision tree overfits and a tuned one does not."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.8 * rng.normal(size=n)) > 0
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    frame["y"] = y.astype(int)
    return frame


@pytest.fixture
def binary():
    return make_binary()


@pytest.fixture
def multiclass():
    return make_multiclass()


@pytest.fixture
def regression():
    return make_regression()


@pytest.fixture
def nonlinear():
    return make_nonlinear()


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_fit():
    """OpenMP (HistGradientBoosting, LightGBM) spins when other jobs share the 2 cores; one
    thread per fit keeps these small tests fast and their timing steady."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
