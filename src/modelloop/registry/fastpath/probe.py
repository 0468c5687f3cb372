"""Probe rows for checking a plan against its pipeline: a sample of the training rows, and
synthetic rows drawn around the fitted statistics with missing values and unseen categories in
every column the plan reads (the cases where a hand-made transform would most likely differ)."""

from __future__ import annotations

MISSING_SHARE = 0.15
UNSEEN = "__unseen_category__"


def given_rows(frame, rows: int):
    """Up to ``rows`` rows of ``frame``, the same ones every time."""
    if len(frame) <= rows:
        return frame
    return frame.sample(rows, random_state=0)


def synthetic_rows(data: dict, signature, rows: int, seed: int = 0):
    """A DataFrame in signature order that the signature accepts."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    numeric: dict[str, tuple[float, float]] = {}
    text: dict[str, list[str]] = {}
    for block in data["blocks"]:
        if block["kind"] == "numeric":
            for j, name in enumerate(block["columns"]):
                center, spread = 0.0, 10.0
                for step in block["steps"]:
                    if step["op"] == "impute":
                        center, spread = step["fill"][j], abs(step["fill"][j]) + 1.0
                    elif step.get("mean") is not None:
                        center = step["mean"][j]
                        spread = step["scale"][j] if step.get("scale") else spread
                numeric[name] = (center, spread)
        else:
            for name, cats in zip(block["columns"], block["categories"], strict=True):
                text[name] = [*cats, UNSEEN, "", block["missing"] or UNSEEN]
    out = {}
    for col in signature.columns:
        missing = rng.random(rows) < MISSING_SHARE
        if col.type == "boolean":
            out[col.name] = rng.random(rows) < 0.5
        elif col.type in ("integer", "long", "float", "double"):
            center, spread = numeric.get(col.name, (0.0, 10.0))
            values = center + spread * rng.normal(0.0, 1.5, rows)
            values[: rows // 16] = center  # exactly the fill value, and zero
            values[rows // 16: rows // 8] = 0.0
            if col.type in ("integer", "long"):
                values = np.round(values)
            values[missing] = np.nan
            out[col.name] = values
        elif col.type == "string":
            choices = text.get(col.name, [UNSEEN])
            picked = np.asarray(choices, dtype=object)[rng.integers(0, len(choices), rows)]
            picked[missing] = None
            out[col.name] = picked
        elif col.type == "datetime":
            out[col.name] = pd.Series(pd.NaT, index=range(rows), dtype="datetime64[ns]")
        else:
            out[col.name] = np.full(rows, None, dtype=object)
    return pd.DataFrame(out, columns=signature.names)


def as_rows(frame, signature):
    """The rows as the serving data plane hands them over: a float64 array for a numeric
    signature, else an object array of floats (numbers) and str / None (text)."""
    import numpy as np
    import pandas as pd

    numeric = {"integer", "long", "float", "double", "boolean"}
    if all(c.type in numeric for c in signature.columns):
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.empty((len(frame), len(signature.columns)), dtype=object)
    for j, col in enumerate(signature.columns):
        series = frame[col.name]
        if col.type in numeric:
            out[:, j] = pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
        elif col.type == "string":
            values = series.astype("string").astype(object).to_numpy(copy=True)
            values[series.isna().to_numpy()] = None
            out[:, j] = values
        else:
            out[:, j] = series.to_numpy(dtype=object)
    return out
