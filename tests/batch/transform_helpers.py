"""Helpers of the batch transform tests: a registered classifier and input frames for it."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = [f"f{i}" for i in range(5)]


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Rows with an id, five numeric features, a text column the model does not take."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    frame.insert(0, "id", np.arange(n, dtype="int64") + 1000)
    frame["note"] = rng.choice(["a", "b", "c, with a comma"], size=n)
    return frame


def register_classifier(ws, name: str = "clf", *, approve: bool = True):
    """Train a logistic regression on make_frame rows and register it (approved, as transforms
    require, unless ``approve=False``); returns the estimator."""
    from sklearn.linear_model import LogisticRegression

    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    train = make_frame(2000, seed=1)[FEATURES]
    target = np.where(train.f0 + 0.5 * train.f1 > 0, "yes", "no")
    model = LogisticRegression().fit(train, target)
    folder = ws.root / f"pkg-{name}"
    save_package(model, folder, signature=Signature.from_frame(train))
    ref = ws.models.register(name, folder)["ref"]
    if approve:
        ws.models.approve(ref, reason="test model")
    return model


def write(frame: pd.DataFrame, path, fmt: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False, row_group_size=700)
    else:
        frame.to_json(path, orient="records", lines=True, double_precision=15)
    return path


def read(path, fmt: str) -> pd.DataFrame:
    """Read a file back exactly."""
    if fmt == "csv":
        return pd.read_csv(path, engine="pyarrow")  # correctly rounded floats
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, precise_float=True)
