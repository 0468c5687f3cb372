"""Whether a loaded scikit-learn model can be called on a bare array instead of a DataFrame.

A DataFrame costs scikit-learn more per call than the arithmetic of a linear model or a small
forest (feature-name checks, dtype checks per column, a conversion to an array), so serving's
data plane and batch transform call such models on arrays when that gives the same answers.
"""

from __future__ import annotations

import warnings
from typing import Any

#: What scikit-learn says when a model fitted on a DataFrame is called on an array; the callers
#: that pass arrays on purpose (after :func:`accepts_arrays`) silence exactly this.
NO_FEATURE_NAMES = "X does not have valid feature names"


def accepts_arrays(packaged: Any) -> bool:
    """Whether a scikit-learn model gives the same answers on a bare array as on a DataFrame
    (it does unless a step selects columns by name); probed once at load."""
    if packaged.flavor != "sklearn":
        return False
    import numpy as np
    import pandas as pd

    n = len(packaged.signature.names)
    X = np.linspace(0.0, 1.0, 3 * n).reshape(3, n)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = packaged.model.predict(X)
            b = packaged.predict(pd.DataFrame(X, columns=packaged.signature.names),
                                 validate=False)
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:
        return False
