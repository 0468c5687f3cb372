"""Features looked up by entity key for a model trained from a feature set (no skew by
construction): the request carries the entity key and the request-time fields; the values of the
recorded feature set come from its online store, computed by the same code as the point-in-time
join its training rows came from, and are placed in the model's columns before validation."""

from __future__ import annotations

from collections.abc import Callable

from modelloop.errors import InvalidInput
from modelloop.serving.dataplane.payload import Payload

#: ``lookup(recorded feature set, keys, at or None) -> one dict of values per key``.
FeatureLookup = Callable[[dict, list, object], list]


class FeatureJoin:
    """Wraps a variant's ``prepare``: named request columns in, the model's columns out."""

    def __init__(self, recorded: dict, lookup: FeatureLookup, prepare, columns: list[str]):
        self.recorded = recorded
        self.lookup = lookup
        self.inner = prepare
        self.columns = list(columns)
        self.entity = recorded["spec"]["entities"][0]
        self.event_time = recorded["spec"]["event_time"]

    def prepare(self, payload: Payload):
        cols = payload.columns
        rows = payload.rows
        if payload.header is None and cols is None and rows and self.entity in rows[0]:
            cols, rows = rows[0], rows[1:]  # a CSV header row
        if cols is None or self.entity not in [str(c) for c in cols]:
            raise InvalidInput(
                f"this model reads feature set {self.recorded['name']!r}: send named columns "
                f"with the entity key {self.entity!r} (and its request-time fields)",
                hint=f"e.g. {{\"dataframe_split\": {{\"columns\": [\"{self.entity}\", ...], "
                     f"\"data\": [[42, ...]]}}}}")  # fmt: skip
        cols = [str(c) for c in cols]
        rows = [list(r) for r in rows]
        where = {c: i for i, c in enumerate(cols)}
        keys = [r[where[self.entity]] for r in rows]
        if any(k is None for k in keys):
            raise InvalidInput(f"a row has no entity key {self.entity!r}")
        values: list = [None] * len(rows)
        if self.event_time in where:  # each row as of its own time
            by_time: dict = {}
            for i, r in enumerate(rows):
                by_time.setdefault(r[where[self.event_time]], []).append(i)
            for at, idx in by_time.items():
                for i, v in zip(idx, self.lookup(self.recorded, [keys[i] for i in idx], at),
                                strict=True):  # fmt: skip
                    values[i] = v
        else:
            values = self.lookup(self.recorded, keys, None)
        out = []
        for r, v in zip(rows, values, strict=True):
            out.append([r[where[c]] if c in where else _value(v.get(c)) for c in self.columns])
        return self.inner(Payload(self.columns, out, header="absent", params=payload.params))


def _value(v):
    return float("nan") if v is None else v
