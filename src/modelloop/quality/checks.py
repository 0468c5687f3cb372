"""Checks of data against a baseline: constraint violations, a per-column drift table, a verdict.

``check(data, baseline, config)`` reads the data once (a frame, a Table, or batches of a larger
dataset, e.g. captured endpoint traffic turned into a frame), counts every column on its
baseline's precomputed cells, and reports:

* ``violations`` in the shape of SageMaker's ``constraint_violations.json`` (``feature_name``,
  ``constraint_check_type``, ``description``), with its check types ``missing_column_check``,
  ``extra_column_check``, ``data_type_check``, ``completeness_check``,
  ``categorical_values_check`` and ``baseline_drift_check`` (completeness allows for sampling
  noise: three binomial standard errors below the baseline's), plus ``range_check`` (ours: a value
  below zero where the baseline was non-negative, or outside a configured min/max);
* ``drift``: one row per column: method, value, threshold, p-value (raw and corrected), verdict,
  and every cheap statistic (PSI, L-infinity, Jensen-Shannon, Wasserstein) for the table;
* ``verdict``: the dataset drifts when at least ``drift_share`` (0.5, Evidently's default) of the
  feature columns drift; prediction columns (model outputs) are reported as prediction drift, the
  target (where the data has it) as target drift.

Only real signal alarms:

* columns are compared by their role (:mod:`modelloop.quality.roles`): identifiers, time and
  ignored columns are not checked, and a missing target is not a violation (traffic has none);
* data with fewer than ``min_rows`` rows (30) is "not enough data": only its columns are checked,
  no proportion or distribution; a column with fewer than ``min_rows`` values on either side is
  listed as not enough data instead of getting a drift verdict;
* a distance (Wasserstein, Jensen-Shannon, PSI, L-infinity) flags drift only when the difference
  is also significant (``significance``: the KS test for numbers, chi-square for categories, p
  corrected across columns): on 100 current rows of unchanged data, Wasserstein >= 0.1 alone
  fires for about 70% of numeric columns (measured), the gated rule for 1-3%;
* chi-square pools categories expected fewer than 5 times (Cochran's rule), so a new rare
  category is not a drift; completeness allows for the sampling noise of both samples.

Configuration is plain data (:class:`CheckConfig`, pydantic), so monitors can store it as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modelloop.errors import SchemaMismatch
from modelloop.quality import drift as D
from modelloop.quality import roles as R
from modelloop.quality.check_config import CheckConfig
from modelloop.quality.constraints import Violation, constraint_violations, schema_violations
from modelloop.quality.profiles import CategoricalProfile, NumericProfile


@dataclass
class DriftRow:
    """One column of the drift table."""

    column: str
    kind: str  #: numeric | categorical
    role: str  #: feature | prediction | target
    method: str
    value: float
    threshold: float
    drifted: bool
    #: raw p-value: of the test method, or of the significance gate of a distance
    p_value: float | None = None
    p_adjusted: float | None = None  #: after the multiple-testing correction
    n_reference: int = 0
    n_current: int = 0
    statistics: dict[str, float] = field(default_factory=dict)


@dataclass
class Verdict:
    dataset_drift: bool
    drift_share: float  #: share of feature columns that drift
    drifted_columns: list[str]
    n_columns: int  #: feature columns compared
    prediction_drift: bool | None  #: None when no prediction columns were named
    n_violations: int
    target_drift: bool | None = None  #: None when the data has no target column
    enough_data: bool = True  #: at least ``min_rows`` rows
    not_enough_data: list[str] = field(default_factory=list)  #: columns with too few values

    @property
    def ok(self) -> bool:
        return not (
            self.dataset_drift or self.prediction_drift or self.target_drift or self.n_violations
        )


@dataclass
class CheckReport:
    violations: list[Violation]
    drift: list[DriftRow]
    verdict: Verdict
    n_rows: int
    config: dict[str, Any]

    def to_sagemaker_violations(self) -> dict[str, Any]:
        """The ``constraint_violations.json`` document."""
        return {"violations": [asdict(v) for v in self.violations]}

    def to_dict(self) -> dict[str, Any]:
        verdict = asdict(self.verdict) | {"ok": self.verdict.ok}
        return {
            "n_rows": self.n_rows,
            "verdict": verdict,
            "violations": [asdict(v) for v in self.violations],
            "drift": [asdict(r) for r in self.drift],
            "config": self.config,
        }


# -- the check ------------------------------------------------------------------------------------
def check(
    data: Any, baseline: Any, config: CheckConfig | dict[str, Any] | None = None
) -> CheckReport:
    """Check data (frame, Table, or batches) against a :class:`~modelloop.quality.baseline.Baseline`.

    Without ``config``, a baseline read from SageMaker files is checked with its own
    ``monitoring_config``, any other with :class:`CheckConfig`'s defaults.
    """
    from modelloop.quality._columns import iter_batches

    if config is None:
        config = (
            CheckConfig.from_sagemaker(baseline.monitoring_config)
            if baseline.monitoring_config
            else CheckConfig()
        )
    elif isinstance(config, dict):
        config = CheckConfig.from_dict(config)

    current: dict[str, Any] = {}
    names: list[str] = []
    n_rows = 0
    for batch in iter_batches(data):
        if not names:
            names = batch.names
            if not set(names) & {*baseline.columns, *baseline.skipped}:
                raise SchemaMismatch(
                    f"the data shares no column with the baseline (data: {names[:8]}, baseline: {list(baseline.columns)[:8]})",
                    hint="check against the baseline of the same dataset, or create a baseline for this one",
                )
            present = [
                c for c in baseline.columns if c in names and baseline.role(c) in R.CHECKED
            ]
            for name in present:
                ref = baseline.columns[name]
                if isinstance(ref, NumericProfile):
                    current[name] = D.CurrentNumeric.on(ref) if ref.n else NumericProfile()
                else:
                    current[name] = CategoricalProfile()
        n_rows += batch.n_rows
        for name, acc in current.items():
            ref = baseline.columns[name]
            if isinstance(acc, CategoricalProfile):
                keys, counts = batch.value_counts(name)
                acc.update(keys, counts, batch.missing(name))
                continue
            x, unparsed = batch.numbers(name)
            missing = batch.n_rows - x.size - unparsed
            if isinstance(acc, NumericProfile):  # reference had no values: only count
                acc.update(x, missing + unparsed)
            else:
                check_integral = ref.integral and not batch.is_integer_typed(name)
                acc.update(x, missing, unparsed, check_integral)

    enough = n_rows >= config.min_rows
    violations = schema_violations(names, baseline) if config.evaluate_constraints else []
    if config.evaluate_constraints and enough:
        violations += constraint_violations(baseline, current, config)
    rows = _drift_rows(baseline, current, config) if config.drift and enough else []
    thin = sorted(
        name for name, cur in current.items()
        if config.drift and config.column(name).drift
        and min(cur.n, baseline.columns[name].n) < config.min_rows
        and baseline.columns[name].n  # a column empty in the baseline has nothing to compare
    ) if enough else []  # fmt: skip
    for r in rows:
        if r.drifted:
            test = D.get(r.method).is_test
            violations.append(
                Violation(
                    r.column,
                    "baseline_drift_check",
                    f"{r.method} {'p-value' if test else 'distance'} "
                    f"{(r.p_adjusted if test else r.value):.4g} "
                    f"{'<' if test else '>='} threshold {r.threshold:g}"
                    + (f" (p {r.p_adjusted:.2g})" if not test and
                       r.p_adjusted is not None else ""),  # fmt: skip
                )
            )
    features = [r for r in rows if r.role == "feature"]
    drifted = [r.column for r in features if r.drifted]
    share = len(drifted) / len(features) if features else 0.0
    preds = [r for r in rows if r.role == "prediction"]
    targets = [r for r in rows if r.role == "target"]
    verdict = Verdict(
        dataset_drift=bool(features) and share >= config.drift_share,
        drift_share=share,
        drifted_columns=drifted,
        n_columns=len(features),
        prediction_drift=any(r.drifted for r in preds) if config.prediction_columns else None,
        n_violations=len(violations),
        target_drift=any(r.drifted for r in targets) if targets else None,
        enough_data=enough,
        not_enough_data=thin,
    )
    return CheckReport(violations, rows, verdict, n_rows, config.to_dict())


def _drift_rows(baseline: Any, current: dict[str, Any], config: CheckConfig) -> list[DriftRow]:
    rows: list[DriftRow] = []
    gate = config.significance is not None
    for name, cur in current.items():
        ref = baseline.columns[name]
        if not config.column(name).drift or min(ref.n, cur.n) < config.min_rows:
            continue
        if isinstance(cur, CategoricalProfile):
            method, threshold = config.method_for(
                name, "categorical", ref.n, len(set(ref.counts) | set(cur.counts))
            )
            value, p, stats = D.compare_categorical(ref, cur, method)
            if p is None and gate:
                p = D.compare_categorical(ref, cur, D.significance_test("categorical"))[1]
            kind = "categorical"
        else:
            method, threshold = config.method_for(
                name, "numeric", ref.n, D.distinct_values(ref, cur)
            )
            value, p, stats = D.compare_numeric(ref, cur, method)
            if p is None and gate:
                test = D.significance_test("numeric", D.distinct_values(ref, cur))
                p = D.compare_numeric(ref, cur, test)[1]
            kind = "numeric"
        role = (
            "prediction" if name in config.prediction_columns
            else "target" if baseline.role(name) == "target" else "feature"
        )  # fmt: skip
        rows.append(
            DriftRow(
                name,
                kind,
                role,
                method,
                float(value),
                threshold,
                False,
                p,
                None,
                ref.n,
                cur.n,
                stats,
            )
        )
    tested = [r for r in rows if r.p_value is not None]
    for r, adj in zip(
        tested, D.adjust_pvalues([r.p_value for r in tested], config.correction), strict=True
    ):
        r.p_adjusted = float(adj)
    for r in rows:
        stat = D.get(r.method)
        significant = stat.is_test or r.p_adjusted is None or r.p_adjusted < config.significance
        r.drifted = bool(stat.drifts(r.value, r.p_adjusted, r.threshold)) and significant
    return rows
