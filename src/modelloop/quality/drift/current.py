"""Current values of a numeric column, counted on the baseline's grid in one pass."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from modelloop.quality.drift.defaults import FEW_VALUES

if TYPE_CHECKING:  # pragma: no cover
    from modelloop.quality.profiles import NumericProfile

#: Current columns with at most this many values are kept exactly for exact KS / Wasserstein.
CURRENT_EXACT_LIMIT = 100_000


@dataclass
class CurrentNumeric:
    """Current values of one numeric column, counted on its reference's grid in one pass.

    Cells 1..L are the reference's cells; slot 0 and L+1 collect values below and above them,
    whose count and sum give their exact contribution to the Wasserstein distance.
    """

    exponent: int
    first: int
    n_cells: int
    counts: np.ndarray
    n: int = 0
    missing: int = 0
    unparsed: int = 0  #: strings that are not numbers
    non_integral: int = 0  #: fractional values where the reference was whole numbers
    negatives: int = 0
    sum: float = 0.0
    low_sum: float = 0.0
    high_sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    values: list[np.ndarray] | None = field(default_factory=list)
    domain: dict[float, int] | None = field(default_factory=dict)

    @classmethod
    def on(cls, ref: NumericProfile) -> CurrentNumeric:
        return cls(
            ref.exponent, ref.offset, len(ref.counts), np.zeros(len(ref.counts) + 2, np.int64)
        )

    def update(self, x: np.ndarray, missing: int, unparsed: int, check_integral: bool) -> None:
        self.missing += missing
        self.unparsed += unparsed
        if x.size == 0:
            return
        w = math.ldexp(1.0, self.exponent)
        t = x * (1.0 / w)
        np.floor(t, out=t)
        t -= self.first
        np.clip(t, -1, self.n_cells, out=t)
        idx = t.astype(np.intp)
        idx += 1
        cnt = np.bincount(idx, minlength=self.n_cells + 2)
        if cnt[0]:
            self.low_sum += float(x[x < self.first * w].sum())
        if cnt[-1]:
            self.high_sum += float(x[x >= (self.first + self.n_cells) * w].sum())
        self.counts += cnt
        self.n += int(x.size)
        self.sum += float(x.sum())
        lo, hi = float(x.min()), float(x.max())
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        if lo < 0:
            self.negatives += int(np.count_nonzero(x < 0))
        if check_integral:
            self.non_integral += int(x.size - np.count_nonzero(x == np.floor(x)))
        if self.values is not None:
            self.values = self.values + [x.copy()] if self.n <= CURRENT_EXACT_LIMIT else None
        if self.domain is not None:
            if np.count_nonzero(cnt) > FEW_VALUES + 1:
                self.domain = None
            else:
                u, c = np.unique(x, return_counts=True)
                for v, k in zip(u.tolist(), c.tolist(), strict=True):
                    self.domain[v] = self.domain.get(v, 0) + k
                if len(self.domain) > FEW_VALUES + 1:
                    self.domain = None

    def exact_values(self) -> np.ndarray | None:
        if self.values is None:
            return None
        return np.concatenate(self.values) if self.values else np.zeros(0)
