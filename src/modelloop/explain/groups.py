"""Facets and labels: which rows form the sensitive group, which outcomes are positive.

A facet is a column and either the values that make the sensitive group (``sex=female``,
``race=black,hispanic``), a numeric threshold (``age>40``: the rows above it, as Clarify's
``facet_values_or_threshold`` defines a numeric facet's group), or only the column (``race``):
then every value is compared with the rest, one vs rest, as Clarify does when no value is given.
A label is the same with its positive values or threshold; a label given by its column alone must
be binary. Everything below turns a column into boolean arrays once, so the metrics are counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelloop.errors import BiasSpecError

#: How many distinct values a one-vs-rest facet may have (each makes a report entry).
MAX_ONE_VS_REST = 50


@dataclass(frozen=True)
class Selector:
    """A column with the values (``values``) or the threshold (``threshold``: rows above it) that
    select a group; neither: one vs rest over its values (facets) or binary (labels)."""

    column: str
    values: tuple = ()
    threshold: float | None = None

    @classmethod
    def parse(cls, text: str, *, field: str) -> Selector:
        """``col=v1,v2``, ``col>t`` or ``col``."""
        if not isinstance(text, str) or not text.strip():
            raise BiasSpecError(f"{field} is empty", field=field,
                                hint=f"e.g. --{field} sex=female, --{field} age>40")  # fmt: skip
        if ">" in text:
            column, _, t = text.partition(">")
            try:
                threshold = float(t)
            except ValueError:
                raise BiasSpecError(f"{field} {text!r}: {t!r} is not a number", field=field,
                                    column=column.strip(), hint=f"e.g. --{field} age>40") from None  # fmt: skip
            if not math.isfinite(threshold):
                raise BiasSpecError(f"{field} {text!r}: the threshold must be finite",
                                    field=field, column=column.strip())  # fmt: skip
            return cls(column.strip(), threshold=threshold)
        column, sep, values = text.partition("=")
        vals = tuple(v.strip() for v in values.split(",")) if sep else ()
        if sep and (not values.strip() or "" in vals):
            raise BiasSpecError(f"{field} {text!r} names an empty value", field=field,
                                column=column.strip(), hint=f"e.g. --{field} {column.strip()}=A,B")  # fmt: skip
        return cls(column.strip(), values=vals)

    @property
    def text(self) -> str:
        if self.threshold is not None:
            return f"{self.column}>{_num(self.threshold)}"
        return f"{self.column}={','.join(map(str, self.values))}" if self.values else self.column


def _num(x: float):
    return int(x) if float(x).is_integer() else x


def interval(threshold: float, top, series: pd.Series) -> str:
    """Clarify's name of the group above ``threshold``: the interval ``(threshold, top]``, typed
    as smclarify's ``IntervalIndex.from_breaks`` types it (``(40, 90]`` on integers)."""
    t = _num(threshold) if series.dtype.kind in "iub" else float(threshold)
    top = top.item() if hasattr(top, "item") else top
    top = _num(top) if series.dtype.kind in "iub" and math.isfinite(top) else top
    return str(pd.IntervalIndex.from_breaks([t, top])[0])


def column_of(frame: pd.DataFrame, column: str, *, field: str) -> pd.Series:
    if column not in frame.columns:
        cols = ", ".join(map(str, list(frame.columns)[:20]))
        raise BiasSpecError(f"{field} column {column!r} is not in the data", field=field,
                            column=column, hint=f"its columns: {cols}")  # fmt: skip
    return frame[column]


def _coerce(series: pd.Series, values: tuple, *, field: str) -> list:
    """The given values (strings from a command line, or any from the SDK) in the column's type,
    so ``approved=1`` selects the integer 1 and ``smoker=true`` the boolean True."""
    kind = series.dtype.kind
    out = []
    for v in values:
        if not isinstance(v, str):
            out.append(v)
        elif kind == "b":
            low = v.lower()
            if low not in ("true", "false", "1", "0"):
                raise BiasSpecError(f"{field} value {v!r} is not a boolean for column "
                                    f"{series.name!r}", field=field, column=str(series.name),
                                    hint="use true or false")  # fmt: skip
            out.append(low in ("true", "1"))
        elif kind in "iuf":
            try:
                out.append(float(v))
            except ValueError:
                raise BiasSpecError(f"{field} value {v!r} is not a number, and column "
                                    f"{series.name!r} is numeric", field=field,
                                    column=str(series.name)) from None  # fmt: skip
        else:
            out.append(v)
    return out


def _values_mask(series: pd.Series, selector: Selector, *, field: str) -> np.ndarray:
    values = _coerce(series, selector.values, field=field)
    mask = series.isin(values).to_numpy(dtype=bool)
    present = set(pd.unique(series[mask])) if mask.any() else set()
    for given, v in zip(selector.values, values, strict=True):
        if v not in present:
            seen = ", ".join(map(str, pd.unique(series.dropna())[:10]))
            raise BiasSpecError(f"{field} value {given!r} never occurs in column "
                                f"{selector.column!r}", field=field, column=selector.column,
                                hint=f"its values include: {seen}")  # fmt: skip
    return mask


def _numeric(series: pd.Series, selector: Selector, *, field: str) -> np.ndarray:
    if series.dtype.kind not in "iufb":
        raise BiasSpecError(f"{field} {selector.text!r}: column {selector.column!r} is not "
                            "numeric, so it has no threshold", field=field,
                            column=selector.column, hint=f"name values: {selector.column}=A,B")  # fmt: skip
    return series.to_numpy(dtype=float, na_value=np.nan)


@dataclass(frozen=True)
class Group:
    """One sensitive group: its label in reports (Clarify's ``value_or_threshold``) and mask."""

    value_or_threshold: str
    mask: np.ndarray


def facet_groups(frame: pd.DataFrame, facet: Selector) -> list[Group]:
    """The sensitive groups ``facet`` makes on ``frame``: one, or one per value (one vs rest)."""
    series = column_of(frame, facet.column, field="facet")
    if facet.threshold is not None:
        x = _numeric(series, facet, field="facet")
        mask = x > facet.threshold
        top = np.nanmax(x) if len(x) else np.nan
        if not mask.any():
            raise BiasSpecError(f"no row of facet column {facet.column!r} is above "
                                f"{_num(facet.threshold)} (its largest value is {_num(top)})",
                                field="facet", column=facet.column)  # fmt: skip
        # Clarify writes a numeric facet's group as the interval (threshold, largest value]
        label = interval(facet.threshold, top, series)
        groups = [Group(label, mask)]
    elif facet.values:
        groups = [Group(",".join(map(str, facet.values)), _values_mask(series, facet, field="facet"))]
    else:
        values = pd.unique(series.dropna())
        if len(values) > MAX_ONE_VS_REST:
            raise BiasSpecError(f"facet column {facet.column!r} has {len(values)} values, too many "
                                f"to compare each with the rest (at most {MAX_ONE_VS_REST})",
                                field="facet", column=facet.column,
                                hint=f"name the group: {facet.column}=VALUE, or a threshold "
                                     f"{facet.column}>T")  # fmt: skip
        codes, uniques = pd.factorize(series)
        groups = [Group(str(v), codes == i) for i, v in enumerate(uniques)]
    for g in groups:
        if g.mask.all():
            raise BiasSpecError(f"facet {facet.text!r} selects every row: there is no rest to "
                                "compare it with", field="facet", column=facet.column)  # fmt: skip
    return groups


@dataclass(frozen=True)
class Outcome:
    """A label (or predicted label) turned into positive / not, and how Clarify writes the rule."""

    positive: np.ndarray
    value_or_threshold: str


def binary_label(series: pd.Series, label: Selector, *, field: str = "label",
                 top: float | None = None) -> Outcome:  # fmt: skip
    """Which rows of ``series`` are positive under ``label``'s rule. ``top`` is the interval's
    upper end to write for a threshold (Clarify writes ``(t, max]``)."""
    if label.threshold is not None:
        x = _numeric(series, label, field=field)
        hi = np.nanmax(x) if top is None and len(x) else top
        return Outcome(x > label.threshold, interval(label.threshold, hi, series))
    if label.values:
        if field == "predicted":  # predictions may lack a class: only the rule is checked
            values = _coerce(series, label.values, field=field)
            positive = series.isin(values).to_numpy(dtype=bool)
        else:
            positive = _values_mask(series, label, field=field)
        return Outcome(positive, ",".join(map(str, label.values)))
    values = pd.unique(series.dropna())
    if series.dtype.kind == "b" or (len(values) <= 2 and set(values) <= {0, 1}):
        return Outcome(series.to_numpy(dtype=float, na_value=0.0) == 1, "1")
    shown = ", ".join(map(str, values[:6])) + (", …" if len(values) > 6 else "")
    raise BiasSpecError(f"{field} column {label.column!r} is not binary ({len(values)} values: "
                        f"{shown}) and the bias metrics need a positive outcome", field=field,
                        column=label.column,
                        hint=f"name the positive values (--label {label.column}=VALUE) or a "
                             f"threshold (--label {label.column}>T)")  # fmt: skip
