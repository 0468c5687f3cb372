"""Train/validation splits: random, stratified, by event time, or an explicit holdout.

A split returns its :class:`SplitRecord` — method, seed, sizes, the time cutoff and a hash of
the validation rows' index — so the job can record it and the same split can be made again
(same data, same spec, same seed → same rows, which the hash lets anyone check).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from modelloop.common.hashing import sha256_bytes
from modelloop.errors import InvalidInput

METHODS = ("auto", "random", "stratified", "time", "holdout")


@dataclass(frozen=True)
class SplitSpec:
    """How to split. ``auto`` is stratified for classification and random for regression."""

    method: str = "auto"
    fraction: float = 0.2  # share of rows held out for validation (not for holdout)
    time_column: str | None = None  # for method="time": the event-time column
    holdout: Any = None  # for method="holdout": a DataFrame with the same columns
    holdout_ref: str | None = None  # how the holdout was named (e.g. "churn@4"), to record it

    @classmethod
    def of(cls, value) -> SplitSpec:
        """Accept a SplitSpec, a dict, a method name, or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(method=value)
        if isinstance(value, dict):
            unknown = set(value) - {"method", "fraction", "time_column", "holdout", "holdout_ref"}
            if unknown:
                raise InvalidInput(
                    f"unknown split option {sorted(unknown)[0]!r}",
                    hint="use method, fraction, time_column, holdout, holdout_ref",
                )
            return cls(**value)
        raise InvalidInput(
            f"cannot read the split {value!r}", hint=f"use one of {', '.join(METHODS)}"
        )


@dataclass(frozen=True)
class SplitRecord:
    """What a split did: enough to record on the job and to make the same split again."""

    method: str
    seed: int
    fraction: float | None
    n_train: int
    n_valid: int
    time_column: str | None = None
    cutoff: str | None = None  # first event time in the validation part (method="time")
    holdout_ref: str | None = None
    valid_index_sha256: str = ""
    #: the frame's index labels of the validation rows (None for a holdout: they came from
    #: another frame); what a job records as the rows its model never trained on. Not in to_dict.
    valid_index: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "valid_index"}


def split(frame, target: str, spec: SplitSpec | dict | str | None, *, task: str, seed: int = 0):
    """``(train, valid, record)`` for ``frame`` according to ``spec``."""
    spec = SplitSpec.of(spec)
    method = spec.method
    if method not in METHODS:
        raise InvalidInput(
            f"unknown split method {method!r}", hint=f"use one of {', '.join(METHODS)}"
        )
    if method == "auto":
        method = (
            "holdout"
            if spec.holdout is not None
            else ("stratified" if task != "regression" else "random")
        )
    if method != "holdout" and not 0.0 < float(spec.fraction) < 1.0:
        raise InvalidInput(
            f"split fraction is {spec.fraction}", hint="give the validation share, e.g. 0.2"
        )
    if method == "holdout":
        train, valid = frame, _holdout(frame, target, spec.holdout)
    elif method == "time":
        train, valid = _by_time(frame, spec)
    else:
        from sklearn.model_selection import train_test_split

        stratify = frame[target] if method == "stratified" else None
        if stratify is not None and stratify.value_counts().min() < 2:
            raise InvalidInput(
                f"cannot stratify on {target!r}: some class has a single row",
                hint="use split method 'random', or gather more rows of the rare class",
            )
        try:
            train, valid = train_test_split(
                frame, test_size=float(spec.fraction), random_state=seed, stratify=stratify
            )
        except ValueError as e:
            raise InvalidInput(
                f"cannot split {len(frame)} rows: {e}", hint="give more rows or a larger fraction"
            ) from None
    if len(train) == 0 or len(valid) == 0:
        raise InvalidInput(
            f"the {method} split left an empty part ({len(train)} train, {len(valid)} validation rows)",
            hint="give more rows or change the split fraction",
        )
    record = SplitRecord(
        method=method,
        seed=seed,
        fraction=None if method == "holdout" else float(spec.fraction),
        n_train=len(train),
        n_valid=len(valid),
        time_column=spec.time_column if method == "time" else None,
        cutoff=_cutoff(valid, spec) if method == "time" else None,
        holdout_ref=spec.holdout_ref,
        valid_index_sha256=sha256_bytes("\n".join(map(str, valid.index))),
        valid_index=None if method == "holdout" else valid.index,
    )
    return train, valid, record


def _holdout(frame, target, holdout):
    import pandas as pd

    if not isinstance(holdout, pd.DataFrame):
        raise InvalidInput(
            "split method 'holdout' needs a holdout dataset",
            hint="give split=SplitSpec('holdout', holdout=frame)",
        )
    missing = [c for c in frame.columns if c not in holdout.columns]
    if missing:
        raise InvalidInput(
            f"the holdout lacks column(s) {', '.join(map(repr, missing))}",
            hint="the holdout must have the training data's columns, target included",
        )
    return holdout[list(frame.columns)]


def _by_time(frame, spec: SplitSpec):
    column = spec.time_column
    if not column:
        raise InvalidInput(
            "split method 'time' needs a time column", hint="give time_column='event_time'"
        )
    if column not in frame.columns:
        raise InvalidInput(
            f"time column {column!r} is not in the data",
            hint=f"the columns are: {', '.join(map(str, frame.columns))}",
        )
    if frame[column].isna().any():
        raise InvalidInput(
            f"time column {column!r} has missing values", hint="fill or drop those rows"
        )
    ordered = frame.sort_values(column, kind="stable")
    n_valid = max(1, round(len(ordered) * float(spec.fraction)))
    return ordered.iloc[: len(ordered) - n_valid], ordered.iloc[len(ordered) - n_valid :]


def _cutoff(valid, spec: SplitSpec) -> str:
    return str(valid[spec.time_column].min())
