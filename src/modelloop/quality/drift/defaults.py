"""Which statistic a column gets when none is named, and which test gates a distance.

The defaults mirror Evidently 0.7 (``_get_default_stattest`` in
``evidently/legacy/calculations/stattests/registry.py``); see :mod:`modelloop.quality.drift`.
"""

from __future__ import annotations

import math

#: Reference sizes at or below this use statistical tests by default (Evidently's rule).
SMALL_REFERENCE = 1000
#: Numeric columns with at most this many distinct values are compared as categories.
FEW_VALUES = 5


def default_method(kind: str, n_reference: int, n_distinct: float) -> str:
    """Evidently's default method for a column (see :mod:`modelloop.quality.drift`)."""
    few = kind == "categorical" or n_distinct <= FEW_VALUES
    if n_reference <= SMALL_REFERENCE:
        return "chisquare" if few else "ks"
    return "jensenshannon" if few else "wasserstein"


def significance_test(kind: str, n_distinct: float = math.inf) -> str:
    """The test whose p-value says whether a distance on this column is significant."""
    return "chisquare" if kind == "categorical" or n_distinct <= FEW_VALUES else "ks"
