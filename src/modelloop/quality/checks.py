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

import math
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from modelloop.errors import InvalidInput, SchemaMismatch
from modelloop.quality import drift as D
from modelloop.quality import roles as R
from modelloop.quality.baseline import MIN_ROWS


def _or_list(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else "".join(items)


def _known_method(value: Any) -> Any:
    """A registered drift statistic's name, or ``auto`` (read when validated, so statistics
    registered after import count)."""
    if value != "auto" and not (isinstance(value, str) and value in D.STATISTICS):
        expected = _or_list([repr(n) for n in ["auto", *D.names()]])
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )
    return value


Method = Annotated[str, BeforeValidator(_known_method)]


class ColumnCheck(BaseModel):
    """Settings for one column, overriding the type-wide ones."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "auto"
    threshold: float | None = Field(
        None, description="distance at or above which it drifts, or p-value below which"
    )
    drift: bool = True
    min_value: float | None = None
    max_value: float | None = None


class CheckConfig(BaseModel):
    """What to check and the thresholds; every field has a documented default.

    Defaults follow Evidently's DataDriftPreset (see :mod:`modelloop.quality.drift`), with p-values
    corrected across columns (Benjamini-Hochberg). ``CheckConfig.evidently()`` drops the correction
    to reproduce Evidently exactly; ``CheckConfig.from_sagemaker(constraints)`` reads SageMaker's
    ``monitoring_config``.
    """

    model_config = ConfigDict(extra="forbid")

    numeric_method: Method = "auto"
    categorical_method: Method = "auto"
    numeric_threshold: float | None = None
    categorical_threshold: float | None = None
    correction: Literal["fdr_bh", "bonferroni", "holm", "none"] = "fdr_bh"
    drift: bool = True
    drift_share: float = Field(0.5, ge=0, le=1)
    evaluate_constraints: bool = True
    datatype_check_threshold: float = Field(0.1, ge=0, le=1)
    domain_content_threshold: float = Field(0.1, ge=0, le=1)
    completeness_tolerance: float = Field(0.0, ge=0, le=1)
    prediction_columns: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnCheck] = Field(default_factory=dict)
    min_rows: int = Field(
        MIN_ROWS, ge=1, description="fewer rows (or values of a column) are not enough data"
    )
    significance: float | None = Field(
        0.05, gt=0, lt=1,
        description="a distance drifts only if KS / chi-square also finds p below this (None: "
        "the distance alone decides, as in Evidently and SageMaker)",
    )  # fmt: skip

    @classmethod
    def evidently(cls, **overrides: Any) -> CheckConfig:
        """Evidently 0.7's DataDriftPreset defaults (no multiple-testing correction, no
        significance gate, no minimum)."""
        return cls(**{"correction": "none", "significance": None, "min_rows": 1, **overrides})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckConfig:
        try:
            return cls.model_validate(d)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(
                f"check config field {where!r}: {first['msg']}",
                hint=f"methods are {', '.join(D.names())} or auto; thresholds are numbers",
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)

    @classmethod
    def from_sagemaker(cls, constraints: dict[str, Any]) -> CheckConfig:
        """From a SageMaker constraints.json dict, or just its ``monitoring_config``."""
        mc = constraints.get("monitoring_config", constraints) or {}
        dc = mc.get("distribution_constraints", {}) or {}
        threshold = float(dc.get("comparison_threshold", 0.1))
        return cls(
            numeric_method="linf"
            if dc.get("comparison_method", "Robust") == "Simple"
            else "linf_robust",
            numeric_threshold=threshold,
            categorical_method="chisquare"
            if dc.get("categorical_drift_method") == "ChiSquared"
            else "linf",
            categorical_threshold=float(dc.get("categorical_comparison_threshold", threshold)),
            correction="none",
            significance=None,  # SageMaker's distances decide alone (Robust is noise-aware)
            drift=dc.get("perform_comparison", "Enabled") == "Enabled",
            evaluate_constraints=mc.get("evaluate_constraints", "Enabled") == "Enabled",
            datatype_check_threshold=float(mc.get("datatype_check_threshold", 0.1)),
            domain_content_threshold=float(mc.get("domain_content_threshold", 0.1)),
        )

    def to_sagemaker(self) -> dict[str, Any]:
        """SageMaker's ``monitoring_config``; methods it cannot express fall back to its defaults."""
        linf = self.numeric_method in ("linf", "linf_robust")
        chi = self.categorical_method == "chisquare"
        cat_linf = self.categorical_method == "linf"
        return {
            "evaluate_constraints": "Enabled" if self.evaluate_constraints else "Disabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": self.datatype_check_threshold,
            "domain_content_threshold": self.domain_content_threshold,
            "distribution_constraints": {
                "perform_comparison": "Enabled" if self.drift else "Disabled",
                "comparison_threshold": (self.numeric_threshold or 0.1) if linf else 0.1,
                "comparison_method": "Simple" if self.numeric_method == "linf" else "Robust",
                "categorical_comparison_threshold": (self.categorical_threshold or 0.1)
                if chi or cat_linf
                else 0.1,
                "categorical_drift_method": "ChiSquared" if chi else "LInfinity",
            },
        }

    def column(self, name: str) -> ColumnCheck:
        return self.columns.get(name) or ColumnCheck()

    def method_for(
        self, name: str, kind: str, n_reference: int, n_distinct: float
    ) -> tuple[str, float]:
        """The method and threshold used for one column."""
        col = self.column(name)
        method = col.method
        if method == "auto":
            method = self.numeric_method if kind == "numeric" else self.categorical_method
        if method == "auto":
            method = D.default_method(kind, n_reference, n_distinct)
        if kind not in D.get(method).kinds:
            raise InvalidInput(
                f"drift method {method!r} does not apply to {kind} column {name!r}",
                hint=f"use {_or_list(D.names(kind))} for "
                + ("categories" if kind == "categorical" else "numbers"),
            )
        threshold = col.threshold
        type_method = self.numeric_method if kind == "numeric" else self.categorical_method
        if threshold is None and col.method == "auto" and type_method != "auto":
            # a type-wide threshold goes with the type-wide method it was set for
            threshold = self.numeric_threshold if kind == "numeric" else self.categorical_threshold
        return method, D.get(method).threshold if threshold is None else float(threshold)


@dataclass
class Violation:
    feature_name: str
    constraint_check_type: str
    description: str


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
    from modelloop.quality.baseline import CategoricalProfile, NumericProfile

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
    violations = _schema_violations(names, baseline) if config.evaluate_constraints else []
    if config.evaluate_constraints and enough:
        violations += _violations(baseline, current, config)
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


def _schema_violations(names: list[str], baseline: Any) -> list[Violation]:
    """Missing features and columns the baseline does not know (whatever the data's size)."""
    out: list[Violation] = []
    for name in baseline.columns:
        if name not in names and baseline.role(name) == "feature":
            out.append(
                Violation(
                    name, "missing_column_check", f"baseline column {name!r} is not in the data"
                )
            )
    known = {*baseline.columns, *baseline.skipped, *baseline.roles}
    for name in names:
        if name not in known:
            out.append(
                Violation(name, "extra_column_check", f"column {name!r} is not in the baseline")
            )
    return out


def _violations(baseline: Any, current: dict[str, Any], config: CheckConfig) -> list[Violation]:
    from modelloop.quality.baseline import CategoricalProfile, NumericProfile

    out: list[Violation] = []
    for name, cur in current.items():
        con = baseline.constraint(name)
        ref = baseline.columns[name]
        unparsed = getattr(cur, "unparsed", 0)
        total = cur.n + cur.missing + unparsed
        if total == 0:
            continue
        completeness = (cur.n + unparsed) / total
        # SageMaker compares completeness literally, which alarms on sampling noise alone (a 2%
        # missing rate is observed as 2.1% half the time); allow three standard errors of the
        # difference of the two samples' rates. A rate never seen in the reference is taken as at
        # most one in its rows, so one null among thousands of rows is not an alarm.
        expected = con["completeness"]
        ref_total = ref.n + ref.missing
        p = min(max(1 - expected, 1 / max(ref_total, 1)), 1.0)
        noise = 3 * math.sqrt(p * (1 - p) * (1 / total + 1 / max(ref_total, 1)))
        if completeness < expected - max(config.completeness_tolerance, noise):
            out.append(
                Violation(
                    name,
                    "completeness_check",
                    f"completeness {completeness:.4g} is below the baseline's {con['completeness']:.4g}",
                )
            )
        if isinstance(cur, CategoricalProfile):
            domain = con.get("domains")
            if domain is not None and cur.n:
                allowed = set(domain)
                outside = sum(c for k, c in cur.counts.items() if k not in allowed)
                if outside / cur.n > config.domain_content_threshold:
                    examples = sorted(k for k in cur.counts if k not in allowed)[:5]
                    out.append(
                        Violation(
                            name,
                            "categorical_values_check",
                            f"{outside / cur.n:.2%} of values are outside the baseline domain "
                            f"(e.g. {examples}); threshold {config.domain_content_threshold:g}",
                        )
                    )
            continue
        if isinstance(cur, NumericProfile):
            continue
        bad = unparsed + (cur.non_integral if ref.integral else 0)
        if cur.n + unparsed and bad / (cur.n + unparsed) > config.datatype_check_threshold:
            expected = "Integral" if ref.integral else "Fractional"
            out.append(
                Violation(
                    name,
                    "data_type_check",
                    f"{bad / (cur.n + unparsed):.2%} of values are not {expected} "
                    f"({unparsed} not numbers); threshold {config.datatype_check_threshold:g}",
                )
            )
        col = config.column(name)
        if con.get("is_non_negative") and cur.negatives:
            out.append(
                Violation(
                    name,
                    "range_check",
                    f"{cur.negatives} negative values; the baseline is non-negative",
                )
            )
        if col.min_value is not None and cur.n and cur.min < col.min_value:
            out.append(
                Violation(name, "range_check", f"minimum {cur.min:g} is below {col.min_value:g}")
            )
        if col.max_value is not None and cur.n and cur.max > col.max_value:
            out.append(
                Violation(name, "range_check", f"maximum {cur.max:g} is above {col.max_value:g}")
            )
    return out


def _drift_rows(baseline: Any, current: dict[str, Any], config: CheckConfig) -> list[DriftRow]:
    from modelloop.quality.baseline import CategoricalProfile

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
