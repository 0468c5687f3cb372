"""Baselines: per-column statistics of a dataset version, the reference for checks and drift.

A :class:`Baseline` is built in one streaming pass (``Baseline.from_batches``), merges with the
baseline of another partition (``a.merge(b)`` equals the baseline of the union: counts, extremes,
histograms and domains exactly, mean and standard deviation up to float rounding), and serialises
to plain JSON, natively (``to_dict``) or in SageMaker Model Monitor's ``statistics.json`` /
``constraints.json`` layout (``to_sagemaker`` / ``from_sagemaker``).

Columns are profiled by :mod:`modelloop.quality.profiles` (numbers on an exactly mergeable grid,
categories by count); the SageMaker layout is :mod:`modelloop.quality.sagemaker`.

Every column has a *role* (:mod:`modelloop.quality.roles`): feature, target, identifier, time or
ignored. Identifiers keep only their counts (their values are not a distribution), and checks
compare only features and the target. Baselines written before roles existed get the default
roles when read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from modelloop.errors import InvalidInput, SchemaMismatch
from modelloop.quality import roles as R
from modelloop.quality._columns import CATEGORICAL, NUMERIC, iter_batches
from modelloop.quality.profiles import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    profile_from_dict,
)

#: Categorical columns with at most this many categories get a suggested domain constraint.
DOMAIN_SUGGEST_LIMIT = 1000
#: Fewer values than this say nothing about a distribution: no domain is suggested from them, and
#: checks report such columns (and smaller current data) as "not enough data", not as drift.
MIN_ROWS = 30
FORMAT = "modelloop.baseline/1"


@dataclass
class Baseline:
    """Per-column profiles of a dataset, plus the constraints suggested from them.

    ``roles`` maps every column (profiled or skipped) to its role; columns it leaves out get the
    default role (:meth:`role`). ``constraints`` holds constraints that override the suggested
    ones (e.g. read from a SageMaker constraints.json); ``monitoring_config`` keeps a SageMaker
    ``monitoring_config`` read with the baseline, which :func:`modelloop.quality.checks.check`
    then uses by default.
    """

    n_rows: int
    columns: dict[str, Profile]
    skipped: list[str] = field(default_factory=list)  #: columns of types we do not profile
    constraints: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitoring_config: dict[str, Any] | None = None
    roles: dict[str, str] = field(default_factory=dict)

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def from_batches(
        cls,
        data: Any,
        *,
        categorical: Iterable[str] = (),
        target: str | None = None,
        roles: dict[str, str] | None = None,
    ) -> Baseline:
        """Profile data in one pass: a DataFrame, a pyarrow Table, or an iterable of batches.

        ``categorical`` names numeric columns to treat as categories (codes, ids, small ints);
        ``target`` names the label column; ``roles`` sets other roles explicitly (e.g. a time
        column kept as text, or a column to ignore). Other roles are inferred: datetimes are
        ``time``, identifier-like text is ``identifier``, the rest are features.
        """
        forced = set(categorical)
        given = check_roles(dict(roles or {}))
        if target is not None:
            given[target] = "target"
        columns: dict[str, Profile] = {}
        skipped: list[str] = []
        temporal: set[str] = set()
        n_rows = 0
        for batch in iter_batches(data):
            if not columns and not skipped:
                unknown = sorted(set(given) - set(batch.names))
                if unknown:
                    raise InvalidInput(
                        f"roles name columns not in the data: {', '.join(unknown)}",
                        hint=f"the columns are: {', '.join(batch.names)}",
                    )
                for name in batch.names:
                    kind = CATEGORICAL if name in forced else batch.kind(name)
                    if kind == NUMERIC:
                        columns[name] = NumericProfile()
                    elif kind == CATEGORICAL:
                        columns[name] = CategoricalProfile()
                    else:
                        skipped.append(name)
                        if batch.is_temporal(name):
                            temporal.add(name)
            n_rows += batch.n_rows
            for name, prof in columns.items():
                if isinstance(prof, NumericProfile):
                    x, unparsed = batch.numbers(name)
                    prof.update(x, batch.n_rows - x.size - unparsed, batch.is_integer_typed(name))
                    prof.missing += unparsed
                else:
                    keys, counts = batch.value_counts(name)
                    prof.update(keys, counts, batch.missing(name))
        out = cls(n_rows=n_rows, columns=columns, skipped=skipped)
        for name in [*columns, *skipped]:
            if name in given:
                out.roles[name] = given[name]
            elif name in temporal:
                out.roles[name] = "time"
            else:
                out.roles[name] = out.role(name) if name not in forced else "feature"
        for name, prof in columns.items():
            if out.roles[name] == "identifier" and isinstance(prof, CategoricalProfile):
                prof.drop_counts()
        return out

    from_frame = from_batches

    def merge(self, other: Baseline) -> Baseline:
        """The baseline of both partitions together; both must have the same schema."""
        if self.schema != other.schema:
            raise SchemaMismatch(
                f"cannot merge baselines of different schemas: {self.schema} and {other.schema}",
                hint="merge only baselines of partitions of the same dataset",
            )
        columns = {name: prof.merge(other.columns[name]) for name, prof in self.columns.items()}
        return Baseline(self.n_rows + other.n_rows, columns, list(self.skipped),
                        roles=dict(self.roles))  # fmt: skip

    # -- reading ----------------------------------------------------------------------------------
    @property
    def schema(self) -> dict[str, str]:
        """Column name -> ``numeric`` | ``categorical``."""
        return {name: prof.kind for name, prof in self.columns.items()}

    def role(self, name: str) -> str:
        """The column's role: recorded, or else the default (for baselines older than roles and
        baselines from SageMaker files): identifier-like text is an identifier, columns of types
        we do not profile are ignored, everything else is a feature."""
        if name in self.roles:
            return self.roles[name]
        prof = self.columns.get(name)
        if prof is None:
            return "ignored"
        if isinstance(prof, CategoricalProfile) and R.is_identifier(prof.n_distinct, prof.n):
            return "identifier"
        return "feature"

    def with_roles(self, roles: dict[str, str]) -> Baseline:
        """A copy with some roles changed (e.g. excluded columns set to ``ignored``)."""
        check_roles(roles)
        merged = {name: self.role(name) for name in [*self.columns, *self.skipped]} | roles
        return Baseline(self.n_rows, self.columns, self.skipped, self.constraints,
                        self.monitoring_config, merged)  # fmt: skip

    def constraint(self, name: str) -> dict[str, Any]:
        """The constraints for one column: completeness, is_non_negative or domains.

        A domain is suggested only from enough values (:data:`MIN_ROWS`) that repeat: from a
        handful of rows, or from an identifier, any new value would look like a violation.
        """
        prof = self.columns[name]
        total = prof.n + prof.missing
        suggested: dict[str, Any] = {"completeness": prof.n / total if total else 1.0}
        if isinstance(prof, NumericProfile):
            suggested["is_non_negative"] = bool(prof.n == 0 or prof.min >= 0)
        elif (
            prof.n >= MIN_ROWS
            and prof.distinct is None
            and len(prof.counts) <= DOMAIN_SUGGEST_LIMIT
            and len(prof.counts) <= max(prof.n // 2, 1)
        ):
            suggested["domains"] = sorted(prof.counts)
        return {**suggested, **self.constraints.get(name, {})}

    # -- native JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "n_rows": self.n_rows,
            "columns": {name: prof.to_dict() for name, prof in self.columns.items()},
            "skipped": list(self.skipped),
            "roles": {name: self.role(name) for name in [*self.columns, *self.skipped]},
            "constraints": self.constraints,
            "monitoring_config": self.monitoring_config,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Baseline:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise InvalidInput(
                f"not a modelloop baseline (format {found!r}, expected {FORMAT!r})",
                hint="pass the dict written by Baseline.to_dict(), or use Baseline.from_sagemaker",
            )
        try:
            columns: dict[str, Profile] = {}
            for name, p in d["columns"].items():
                columns[name] = profile_from_dict(p)
            return cls(
                int(d["n_rows"]),
                columns,
                list(d.get("skipped", [])),
                dict(d.get("constraints") or {}),
                d.get("monitoring_config"),
                check_roles(dict(d.get("roles") or {})),  # absent before roles: defaults
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"baseline JSON is damaged: {exc!r}", hint="re-create the baseline"
            ) from exc

    # -- SageMaker Model Monitor layout -----------------------------------------------------------
    def to_sagemaker(self, config: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(statistics.json, constraints.json)`` dicts in SageMaker Model Monitor's layout
        (:func:`modelloop.quality.sagemaker.to_sagemaker`)."""
        from modelloop.quality import sagemaker

        return sagemaker.to_sagemaker(self, config)

    @classmethod
    def from_sagemaker(
        cls, statistics: dict[str, Any], constraints: dict[str, Any] | None = None
    ) -> Baseline:
        """Read SageMaker ``statistics.json`` (and optionally ``constraints.json``) dicts
        (:func:`modelloop.quality.sagemaker.from_sagemaker`)."""
        from modelloop.quality import sagemaker

        return sagemaker.from_sagemaker(statistics, constraints)


def check_roles(roles: dict[str, str]) -> dict[str, str]:
    """``roles`` itself, once every role is one of :data:`modelloop.quality.roles.ROLES`."""
    for name, role in roles.items():
        if role not in R.ROLES:
            raise InvalidInput(
                f"column {name!r} has unknown role {role!r}", hint=f"use one of {', '.join(R.ROLES)}"
            )
    return roles
