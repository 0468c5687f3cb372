"""What to check and the thresholds: :class:`CheckConfig` (plain data, stored by monitors as JSON).

Drift methods are the names of the registered drift statistics (:mod:`modelloop.quality.drift`),
read when a config is validated, so a statistic registered later is accepted too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from modelloop.errors import InvalidInput
from modelloop.quality import drift as D
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
