"""A dataset version's record: what ``ws.datasets.get`` returns, and its schema as stored (readable
JSON for people, the exact Arrow schema for code)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelloop.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa


# -- schema <-> JSON ------------------------------------------------------------------------------
def schema_to_json(schema: pa.Schema) -> str:
    """Readable fields for people, plus the exact Arrow schema for the code."""
    fields = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
    exact = base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode()
    return json.dumps({"fields": fields, "arrow": exact}, sort_keys=True)


def schema_from_json(text: str) -> pa.Schema:
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(json.loads(text)["arrow"])))


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset, or the rows a range of versions added (``after`` set:
    the versions after ``after`` up to ``version``; counts and content hash are the range's)."""

    name: str
    version: int
    created_at: datetime
    schema: Any  # pyarrow.Schema
    row_count: int
    added_rows: int
    quarantined_rows: int
    content_hash: str
    event_time_min: datetime | None = None
    event_time_max: datetime | None = None
    schema_changes: list[str] = field(default_factory=list)
    after: int | None = None

    @property
    def ref(self) -> str:
        head = f"{self.after}.." if self.after is not None else ""
        return f"{self.name}@{head}{self.version}"

    @classmethod
    def from_record(cls, r: dict) -> DatasetVersion:
        return cls(
            name=r["name"],
            version=r["version"],
            created_at=r["created_at"],
            schema=readable_schema(r),
            row_count=r["row_count"],
            added_rows=r["added_rows"],
            quarantined_rows=r["quarantined_rows"],
            content_hash=r["content_hash"],
            event_time_min=r.get("event_time_min"),
            event_time_max=r.get("event_time_max"),
            schema_changes=json.loads(r["schema_changes"]) if r.get("schema_changes") else [],
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "after": self.after,
            "created_at": self.created_at.isoformat(),
            "schema": [{"name": f.name, "type": str(f.type)} for f in self.schema],
            "row_count": self.row_count,
            "added_rows": self.added_rows,
            "quarantined_rows": self.quarantined_rows,
            "content_hash": self.content_hash,
            "event_time_min": self.event_time_min.isoformat() if self.event_time_min else None,
            "event_time_max": self.event_time_max.isoformat() if self.event_time_max else None,
            "schema_changes": self.schema_changes,
        }


@dataclass
class IngestReport:
    """What an ingest did: the new version (None when every file was already ingested)."""

    dataset: str
    version: DatasetVersion | None
    sources: list[dict]
    skipped: list[str]

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "version": self.version.to_dict() if self.version else None,
            "sources": self.sources,
            "skipped": self.skipped,
        }


def readable_schema(record: dict) -> pa.Schema:
    """A version's schema; one an older modelloop committed unreadable gets a way out."""
    try:
        return schema_from_json(record["schema_json"])
    except (OSError, ValueError, KeyError) as e:  # pyarrow's ArrowInvalid is a ValueError
        ref = f"{record['name']}@{record['version']}"
        raise InvalidInput(
            f"dataset version {ref} was recorded with a schema that cannot be read ({e})",
            hint=f"delete it with 'modelloop data delete {ref}' and ingest its files again",
        ) from None


def utc(value):
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
