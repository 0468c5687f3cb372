"""Constraint violations of data against a baseline, in SageMaker's ``constraint_violations.json``
shape: missing and extra columns, data types, completeness, categorical values and ranges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modelloop.quality.check_config import CheckConfig
from modelloop.quality.profiles import CategoricalProfile, NumericProfile


@dataclass
class Violation:
    feature_name: str
    constraint_check_type: str
    description: str


def schema_violations(names: list[str], baseline: Any) -> list[Violation]:
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


def constraint_violations(baseline: Any, current: dict[str, Any], config: CheckConfig) -> list[Violation]:
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
