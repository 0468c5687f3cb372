"""Drift statistics, computed from a baseline's precomputed cells and one pass over new data.

Methods (``method`` in :class:`~modelloop.quality.checks.CheckConfig`), and when each one flags:

==============  ============================================================  ==================
method          what                                                          drift when
==============  ============================================================  ==================
wasserstein     Wasserstein-1 distance / max(reference std, 0.001)            value >= 0.1
jensenshannon   Jensen-Shannon distance (natural log; scipy's definition)     value >= 0.1
psi             population stability index over 10 reference-quantile bins    value >= 0.25
linf            max |CDF_ref - CDF_cur| (SageMaker/Deequ ``Simple``)           value >= 0.1
linf_robust     max(0, linf - 1.8 sqrt((n+m)/(n m))) (SageMaker ``Robust``)     value >= 0.1
ks              two-sample Kolmogorov-Smirnov test, p-value                    p < 0.05
chisquare       chi-square test of homogeneity (2 x k table), p-value          p < 0.05
==============  ============================================================  ==================

``auto`` (the default) mirrors Evidently 0.7's defaults (``_get_default_stattest`` in
``evidently/legacy/calculations/stattests/registry.py``), so verdicts agree with its DataDriftPreset:

* reference of more than 1,000 values: numeric with more than 5 distinct values (reference and
  current together) -> ``wasserstein``; categorical, or numeric with at most 5 distinct values ->
  ``jensenshannon`` over the values;
* reference of at most 1,000 values: numeric with more than 5 distinct values -> ``ks``; otherwise
  ``chisquare``. (Evidently uses a goodness-of-fit chi-square against the reference proportions, and
  a z-test for two values; we use the two-sample homogeneity test, which equals the z-test for two
  values and does not treat a small reference as exact.)

p-values from several columns are corrected for multiple testing (Benjamini-Hochberg by default;
``bonferroni``, ``holm`` or ``none``), so that on data without drift the chance of any false alarm
stays near the chosen level instead of growing with the number of columns.

Exactness: with at most 1,000 reference values (kept exactly by the baseline) and at most
``current.CURRENT_EXACT_LIMIT`` current values, ``ks`` and ``wasserstein`` are SciPy's own
``ks_2samp`` / ``wasserstein_distance`` on the raw values. Otherwise they are computed on the
reference's grid of up to 16,384 cells, with values mapped to cell midpoints and current values
outside the reference range kept exactly (through their count and sum): the Wasserstein distance is
exactly SciPy's on that representation and within about one cell width of the raw value, and the KS
statistic is the CDF distance at cell edges (at most one cell's mass below the raw one; the p-value
then uses SciPy's asymptotic ``kstwo`` distribution like ``ks_2samp(method="asymp")``).
Jensen-Shannon on categories is exact. Numeric ``psi``/``jensenshannon``/``chisquare`` on many
distinct values use 10 bins at reference deciles (cell boundaries), a convention, not Evidently's
Sturges bins over both samples.

Each statistic is a :class:`~modelloop.quality.drift.base.DriftStatistic` subclass in a module of
its own, registered below. To add one, write ``quality/drift/<name>.py`` and :func:`register` its
class (here for a built-in, anywhere for a plug-in): checks, monitors, the CLI and loop specs read
the names, kinds and thresholds from the registry.
"""

from __future__ import annotations

from modelloop.quality.drift.base import (
    STATISTICS,
    DriftStatistic,
    Measure,
    get,
    names,
    register,
)
from modelloop.quality.drift.chi_square import ChiSquare
from modelloop.quality.drift.comparison import (
    CategoricalComparison,
    NumericComparison,
    compare_categorical,
    compare_numeric,
    decile_bins,
    distinct_values,
    numeric_statistics,
)
from modelloop.quality.drift.corrections import CORRECTIONS, adjust_pvalues
from modelloop.quality.drift.current import CurrentNumeric
from modelloop.quality.drift.defaults import FEW_VALUES, default_method, significance_test
from modelloop.quality.drift.jensen_shannon import JensenShannon
from modelloop.quality.drift.ks import KolmogorovSmirnov
from modelloop.quality.drift.linf import Linf, LinfRobust, linf_robust
from modelloop.quality.drift.psi import PopulationStability
from modelloop.quality.drift.wasserstein import Wasserstein

for _statistic in (
    Wasserstein,
    JensenShannon,
    PopulationStability,
    Linf,
    LinfRobust,
    KolmogorovSmirnov,
    ChiSquare,
):
    register(_statistic)

__all__ = [
    "CORRECTIONS",
    "FEW_VALUES",
    "STATISTICS",
    "CategoricalComparison",
    "CurrentNumeric",
    "DriftStatistic",
    "Measure",
    "NumericComparison",
    "adjust_pvalues",
    "compare_categorical",
    "compare_numeric",
    "decile_bins",
    "default_method",
    "distinct_values",
    "get",
    "linf_robust",
    "names",
    "numeric_statistics",
    "register",
    "significance_test",
]
