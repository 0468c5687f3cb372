"""Rows that arrive one by one (HTTP, the SDK, a Redis stream) on their way into a dataset
version: how an append is encoded for the buffer, and what a micro-batch commit carries.

Appends are stored as JSON Lines, as they came (after conversion to JSON types): parsing and
conformance happen once, in the ingest engine, when the micro-batch is committed, so a streamed
row meets exactly the schema rules and quarantine of a file's row. A row that is not a JSON
object is kept too, and quarantined with that reason by the engine, never dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from modelloop.common.jsonable import to_jsonable
from modelloop.errors import InvalidInput

#: Most rows and bytes one append takes (a client sends more in several appends).
MAX_APPEND_ROWS = 100_000
MAX_APPEND_BYTES = 64 << 20


def encode_rows(rows) -> tuple[str, int]:
    """``rows`` (a list of objects, or one object) as JSON Lines and their number."""
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list | tuple):
        raise InvalidInput(f"rows must be a list of objects, not {type(rows).__name__}",
                           hint='send [{"col": value, ...}, ...] or JSON Lines')
    if not rows:
        raise InvalidInput("no rows to append", hint="send at least one row")
    if len(rows) > MAX_APPEND_ROWS:
        raise InvalidInput(f"{len(rows)} rows in one append: at most {MAX_APPEND_ROWS}",
                           hint="send them in several appends")
    lines = [json.dumps(to_jsonable(r), allow_nan=False, separators=(",", ":")) for r in rows]
    body = "\n".join(lines) + "\n"
    if len(body) > MAX_APPEND_BYTES:
        raise InvalidInput(f"{len(body)} bytes in one append: at most {MAX_APPEND_BYTES}",
                           hint="send the rows in several appends")
    return body, len(rows)


@dataclass(frozen=True)
class MicroBatch:
    """What a micro-batch's commit records with its version, in the same transaction.

    ``source`` names where the rows came from (``rows``: the append buffer; a Redis stream's
    ``redis://host:port/db/stream#group``), ``first`` and ``position`` its first and last
    entry, ``expected`` the position the batch starts after (None: the source's first commit;
    the commit is refused if another moved it meanwhile), ``consumed`` the buffered appends it
    takes, ``required`` the columns a row must have a value in (else it is quarantined)."""

    source: str
    first: str
    position: str
    expected: str | None = None
    consumed: tuple[int, ...] = ()
    required: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The batch as a lineage record names it (``dataset_sources.path``); its sha256 stands
        for the batch's entries, so one range can never be recorded twice."""
        return f"{self.source}#{self.first}..{self.position}"

    def record(self) -> dict:
        return {"source": self.source, "position": self.position, "expected": self.expected,
                "consumed": list(self.consumed)}
