"""The shape every drift statistic has, and the registry that names them.

A statistic is a class (River's one class per concern): its ``name`` (what checks, monitors and
loop specs say), the column ``kinds`` it applies to, its default ``threshold``, whether its value
is a p-value (``is_test``: drift when below the threshold) or a distance (drift when at or above),
and ``compute``, which reads a :class:`~modelloop.quality.drift.comparison.Comparison` of the
baseline's column with the current one. Registering the class (:func:`register`) is all it takes
for checks, monitors, the CLI and loop specs to accept its name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from modelloop.quality.drift.comparison import Comparison

NUMERIC = "numeric"
CATEGORICAL = "categorical"


class Measure(NamedTuple):
    """What a statistic finds: its value, and its p-value if it is a test."""

    value: float
    p_value: float | None = None


class DriftStatistic:
    """One way of measuring how far current data is from its baseline."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]] = frozenset({NUMERIC, CATEGORICAL})
    threshold: ClassVar[float]
    #: The value is a test's statistic and drift is decided by its p-value (below the threshold).
    is_test: ClassVar[bool] = False
    #: Cheap enough to report in every drift row's ``statistics``, whatever the chosen method.
    summary: ClassVar[bool] = False
    #: Compares proportions over bins: a numeric column with few distinct values (in both
    #: samples) is then binned by value instead of at the reference's deciles.
    by_value: ClassVar[bool] = False

    def compute(self, cmp: Comparison) -> Measure:
        raise NotImplementedError

    def drifts(self, value: float, p_adjusted: float | None, threshold: float) -> bool:
        """The verdict on one column (before any significance gate of a distance)."""
        if self.is_test:
            return p_adjusted is not None and p_adjusted < threshold
        return value >= threshold


#: Registered statistics by name, in registration order (the order in help and error messages).
STATISTICS: dict[str, DriftStatistic] = {}


def register(cls: type[DriftStatistic]) -> type[DriftStatistic]:
    """Make a statistic known by its name (usable as a class decorator)."""
    if not getattr(cls, "name", None) or not isinstance(getattr(cls, "threshold", None), float):
        raise TypeError(f"{cls.__name__} needs a name and a float default threshold")
    if not cls.kinds or not cls.kinds <= {NUMERIC, CATEGORICAL}:
        raise TypeError(f"{cls.__name__}.kinds must be a non-empty subset of numeric, categorical")
    STATISTICS[cls.name] = cls()
    return cls


def get(name: str) -> DriftStatistic:
    try:
        return STATISTICS[name]
    except KeyError:
        raise ValueError(f"unknown drift statistic {name!r}") from None


def names(kind: str | None = None) -> list[str]:
    """Names of the registered statistics (those applying to ``kind``, if given)."""
    return [n for n, s in STATISTICS.items() if kind is None or kind in s.kinds]
