"""Conformance: making each parsed table fit the dataset's schema.

The target schema starts as the dataset's (None for a new dataset: the first table's types,
text values inferred) and changes only by the rules in :mod:`modelloop.data.ingest.engine`'s
docstring: widened over a new dataset's first file, evolved when allowed, else a
:class:`~modelloop.errors.SchemaMismatch` naming the column. Values that fail put their row in
quarantine; a column where most values fail is a type clash, found at the end of the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelloop.data.ingest.quarantine import Quarantine
from modelloop.data.schema import (
    MAX_NESTING,
    cast_typed,
    castable,
    conform_text,
    fits,
    infer_text,
    is_text,
    is_time,
    nesting,
    normalize_type,
    unify,
)
from modelloop.errors import InvalidInput, SchemaMismatch

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


@dataclass
class _ColumnStats:
    """Per file and column: how many values were given and how many failed to convert."""

    given: int = 0
    bad: int = 0
    examples: list[str] = field(default_factory=list)


class Conformer:
    """The target schema and the rules that move it; one per ingest call."""

    def __init__(self, schema: pa.Schema | None, *, evolve: bool, event: str | None,
                 max_bad_fraction: float, quarantine: Quarantine, required: tuple[str, ...] = (),
                 fill_missing: bool = False):
        self.new = schema is None
        self.target: pa.Schema | None = schema
        self.original = schema  # what the dataset's earlier versions are read as
        self.changes: list[str] = []
        self.evolve, self.event = evolve, event
        # columns a row must have a value in (a stream's entity keys and event time): a row
        # without one goes to quarantine, saying which
        self.required = tuple(required)
        # a column absent from a whole input is nulls, not a mismatch (a stream's JSON rows: a
        # key left out is a null, and the null checks downstream see it)
        self.fill_missing = fill_missing
        self.max_bad_fraction = max_bad_fraction
        self.quarantine = quarantine
        self.src = None
        self.stats: dict[str, _ColumnStats] = {}
        if self.target is not None and self.event is not None:
            if self.event not in self.target.names:
                raise InvalidInput(
                    f"event-time column '{self.event}' is not in the dataset",
                    hint=f"columns: {', '.join(self.target.names)}",
                )
            self.check_event_type(self.target.field(self.event).type)

    def begin(self, src) -> None:
        """Start a file (a :class:`~modelloop.data.ingest.engine.SourceFile`)."""
        self.src, self.stats = src, {}

    def reject(self, row: int | None, record: str, reason: str) -> None:
        self.quarantine.add(self.src.path, row, record, reason)

    def types_for(self, names: list[str]) -> dict:
        """The target's types of the given columns (to parse text straight into them)."""
        import pyarrow as pa

        if self.target is None:
            return {}
        given = set(names)
        return {f.name: f.type for f in self.target
                if f.name in given and not pa.types.is_null(f.type)}

    def conform(self, table: pa.Table, row_of: Callable[[int], int]) -> pa.Table:
        """``table`` with the target's columns and types; rows whose values fail go to quarantine."""
        import numpy as np
        import pyarrow as pa

        names = set(table.column_names)
        if len(names) != table.num_columns or "" in names:
            self.check_names(table.column_names)
        for name, t in zip(table.column_names, table.schema.types, strict=True):
            if nesting(t) > MAX_NESTING:
                raise InvalidInput(
                    f"column '{name}' of '{self.src.path}' nests {nesting(t)} levels of lists "
                    f"or structs: data nested more than {MAX_NESTING} levels cannot be read back",
                    hint="flatten the column, or store it as JSON text",
                )
        if self.target is None:
            self.target = self.first_schema(table)
        self._check_columns(table)
        for name in self.required:
            if name not in self.target.names:
                raise InvalidInput(f"required column '{name}' is not in '{self.src.path}'",
                                   hint=f"columns: {', '.join(self.target.names)}")
        if table.num_rows == 0:  # columns checked; no values to conform
            return self.target.empty_table()
        cols, failures = [], []
        for f in self.target:
            if f.name not in names:
                cols.append(pa.nulls(table.num_rows, f.type))
                continue
            col = table[f.name]
            if col.type == f.type:
                pass
            elif is_text(col.type) and not is_text(f.type):
                if self.new and f.name != self.event:
                    self._widen(f, infer_text(col), quiet=True)
                    f = self.target.field(f.name)
                col, bad = self._text(f, col)
                if bad is not None:
                    failures.append((f.name, bad))
            elif fits(col.type, f.type):
                col = cast_typed(col, f.type)
            elif self.new or self.evolve:
                self._widen(f, col.type)
                col = cast_typed(col, self.target.field(f.name).type)
            else:
                raise SchemaMismatch(
                    f"column '{f.name}' of '{self.src.path}' is {col.type}, but the dataset's is "
                    f"{f.type}",
                    hint="convert the column, or allow schema evolution to widen the dataset's type",
                )
            cols.append(col)
        out = pa.Table.from_arrays(cols, schema=self.target)
        missing = []
        for name in self.required:
            null = out[name].is_null().to_numpy(zero_copy_only=False)
            failed = next((bad for n, bad in failures if n == name), None)
            if failed is not None:
                null = null & ~failed
            if null.any():
                missing.append((name, null))
        if failures or missing:
            bad_any = np.zeros(table.num_rows, dtype=bool)
            for _, bad in failures + missing:
                bad_any |= bad
            for i in np.flatnonzero(bad_any):
                reason = "; ".join(
                    [f"column '{name}': {table[name][int(i)].as_py()!r} is not a valid "
                     f"{self.target.field(name).type}" for name, bad in failures if bad[i]]
                    + [f"column '{name}': missing (a required column)"
                       for name, null in missing if null[i]]
                )
                record = json.dumps(table.slice(int(i), 1).to_pylist()[0], default=str)
                self.reject(row_of(int(i)), record, reason)
            self.src.quarantined_rows += int(bad_any.sum())
            out = out.filter(pa.array(~bad_any))
        return out

    def _text(self, f: pa.Field, col) -> tuple[pa.Array, np.ndarray | None]:
        """Conform a text column; under evolution, a column that mostly fails is widened instead."""
        values, bad = conform_text(col, f.type)
        given = len(col) - col.null_count
        if bad is not None and self.evolve and bad.sum() > self.max_bad_fraction * given:
            self._widen(f, infer_text(col))
            values, bad = conform_text(col, self.target.field(f.name).type)
        stats = self.stats.setdefault(f.name, _ColumnStats())
        stats.given += given
        if bad is not None:
            stats.bad += int(bad.sum())
            if len(stats.examples) < 3:
                import numpy as np

                for i in np.flatnonzero(bad)[: 3 - len(stats.examples)]:
                    stats.examples.append(repr(col[int(i)].as_py()))
        return values, bad

    def first_schema(self, table: pa.Table) -> pa.Schema:
        """A new dataset's schema from its first block: normalized types, text values inferred."""
        import pyarrow as pa

        fields = []
        for name, col in zip(table.column_names, table.columns, strict=True):
            t = normalize_type(col.type)
            if is_text(t):
                t = infer_text(col)
                if name == self.event and not is_time(t):
                    t = pa.timestamp("us")
            fields.append(pa.field(name, t))
        if self.event is not None:
            if self.event not in table.column_names:
                raise InvalidInput(
                    f"event-time column '{self.event}' is not in '{self.src.path}'",
                    hint=f"columns: {', '.join(table.column_names)}",
                )
            self.check_event_type(next(f.type for f in fields if f.name == self.event))
        return pa.schema(fields)

    def check_event_type(self, t: pa.DataType) -> None:
        import pyarrow as pa

        if not (is_time(t) or pa.types.is_null(t)):
            raise SchemaMismatch(
                f"event-time column '{self.event}' holds {t}, not times",
                hint="name a column of timestamps or dates (ISO 8601 text in CSV or JSON)",
            )

    def check_names(self, names: list[str]) -> None:
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        if dupes or "" in seen:
            raise InvalidInput(
                f"'{self.src.path}' has "
                + (
                    f"duplicate column names: {', '.join(dupes)}"
                    if dupes
                    else "an empty column name"
                ),
                hint="give every column a distinct name",
            )

    def _check_columns(self, table: pa.Table) -> None:
        """Missing and extra columns (sets: a file may have tens of thousands of columns)."""
        import pyarrow as pa

        names, known = table.column_names, set(self.target.names)
        given = set(names)
        extra = [n for n in names if n not in known]
        missing = [n for n in self.target.names if n not in given]
        if not self.evolve and (extra or missing and not self.fill_missing):
            what = []
            if missing:
                what.append("lacks column " + ", ".join(f"'{n}'" for n in missing))
            if extra:
                what.append(
                    "has column " + ", ".join(f"'{n}'" for n in extra) + " not in the dataset"
                )
            raise SchemaMismatch(
                f"'{self.src.path}' " + " and ".join(what),
                hint="make the columns match, or allow schema evolution",
            )
        added = []
        for n in extra:
            col = table[n]
            t = infer_text(col) if is_text(col.type) else normalize_type(col.type)
            t = pa.string() if pa.types.is_null(t) else t
            added.append(pa.field(n, t))
            self._change(f"added column '{n}' ({t}) from '{self.src.path}'")
        if added:
            self.target = pa.schema(list(self.target) + added)
        for n in missing if not self.fill_missing else ():
            self._change(f"column '{n}' missing from '{self.src.path}': filled with nulls")

    def _widen(self, f: pa.Field, incoming: pa.DataType, quiet: bool = False) -> None:
        import pyarrow as pa

        wider = unify(f.type, incoming)
        if f.name == self.event and not is_time(wider):
            raise SchemaMismatch(
                f"event-time column '{f.name}' of '{self.src.path}' is not parseable as time",
                hint="use ISO 8601 timestamps",
            )
        if wider == f.type:
            return
        if self.original is not None and f.name in self.original.names:
            had = self.original.field(f.name).type
            if not castable(had, wider):
                raise SchemaMismatch(
                    f"column '{f.name}' of '{self.src.path}' holds {incoming}, where the dataset "
                    f"holds {had}: the dataset's earlier versions cannot be read as {wider}",
                    hint="convert the column in the file to the dataset's type",
                )
        self.target = self.target.set(self.target.get_field_index(f.name), pa.field(f.name, wider))
        if not (quiet or self.new):
            self._change(f"column '{f.name}' widened from {f.type} to {wider} by '{self.src.path}'")

    def _change(self, text: str) -> None:
        if not self.new:
            self.changes.append(text)

    def check_clashes(self) -> None:
        """At the end of a file: a column where most values failed is a type clash, not bad rows."""
        for name, s in self.stats.items():
            if s.bad and s.bad > self.max_bad_fraction * s.given:
                t = self.target.field(name).type
                if name == self.event:
                    message = (
                        f"event-time column '{name}' of '{self.src.path}' is not parseable as time"
                    )
                else:
                    message = (
                        f"column '{name}' of '{self.src.path}' does not fit the dataset's type {t}"
                    )
                raise SchemaMismatch(
                    f"{message}: {s.bad} of {s.given} values failed, e.g. {', '.join(s.examples)}",
                    hint="fix the file, or allow schema evolution to change the column's type",
                )
