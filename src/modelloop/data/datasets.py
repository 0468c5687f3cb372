"""Datasets: named, append-only data in immutable, content-hashed versions.

An ingest turns files into Parquet parts (see :mod:`modelloop.data.ingest`), stores the parts as
blobs in the artifact store and records the new version in the metadata store — blobs first, the
metadata row last, in one transaction. A version's data is every part added by it and by the
versions before it, so ``loans@3`` is the whole dataset as it stood after the third ingest, and
``loans@3..5`` only the parts versions 4 and 5 added (see :class:`modelloop.data.refs.Ref`).

Crash safety: before uploading, the writer lists its blobs as *pending*; the commit transaction
removes that list. A writer killed in between leaves a pending list naming exactly what to undo,
and :meth:`Datasets.recover` (run whenever a workspace opens) undoes it once the writer is dead.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelloop._faults import checkpoint, pid_alive
from modelloop.artifacts import ArtifactStore
from modelloop.common.hashing import sha256_bytes, sha256_file
from modelloop.config import current_actor
from modelloop.data.refs import Ref, check_name, parse_ref, parse_time
from modelloop.errors import Conflict, InvalidInput, NotFound, SchemaMismatch
from modelloop.store import MetadataStore

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

#: A writer on another machine is presumed dead after this long (its pid cannot be checked).
REMOTE_WRITER_TIMEOUT = timedelta(hours=24)
#: An ingest that keeps losing races to concurrent writers gives up after this many runs.
MAX_INGEST_ATTEMPTS = 20


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
            schema=_readable_schema(r),
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


class Datasets:
    """The datasets of one workspace."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, scratch: Path):
        self.store = store
        self.artifacts = artifacts
        self.scratch = Path(scratch)

    # -- reading the catalogue ----------------------------------------------------------------
    def list(self) -> list[dict]:
        out = []
        for r in self.store.list_datasets():
            r = dict(r)
            r["columns"] = len(json.loads(r.pop("schema_json"))["fields"])
            out.append(r)
        return out

    def get(self, ref: str | Ref) -> DatasetVersion:
        """Resolve ``name``, ``name@3``, ``name@latest`` or a range ``name@3..5`` to a version."""
        ref = parse_ref(ref)
        record = self.store.get_dataset_version(ref.name, ref.version)
        if record is None:
            if self.store.get_dataset(ref.name) is None:
                known = [d["name"] for d in self.store.list_datasets()]
                raise NotFound(
                    f"no dataset named {ref.name!r}",
                    hint=f"known datasets: {', '.join(known)}"
                    if known
                    else "ingest one with 'modelloop data ingest NAME FILE'",
                )
            latest = self.store.get_dataset_version(ref.name)
            raise NotFound(
                f"dataset {ref.name!r} has no version {ref.version}",
                hint=f"its versions are 1 to {latest['version']}",
            )
        version = DatasetVersion.from_record(record)
        return version if ref.after is None else self._range(version, ref.after)

    def _range(self, end: DatasetVersion, after: int) -> DatasetVersion:
        """The rows the versions after ``after`` up to ``end`` added, as a version-like record."""
        import dataclasses

        if after >= end.version:
            raise InvalidInput(
                f"{end.name}@{after}.. names no rows: {end.ref} is the latest version",
                hint=f"the newest rows are {end.name}@{end.version - 1}..{end.version}"
                if end.version > 1 else f"use {end.ref}")
        versions = [v for v in self.store.list_dataset_versions(end.name)
                    if after < v["version"] <= end.version]
        parts = [p for p in self.store.dataset_parts(end.name, end.version) if p["version"] > after]
        return dataclasses.replace(
            end,
            after=after,
            row_count=sum(v["added_rows"] for v in versions),
            added_rows=sum(v["added_rows"] for v in versions),
            quarantined_rows=sum(v["quarantined_rows"] for v in versions),
            # the formula of a version's hash (the store's), over the range's parts only
            content_hash=sha256_bytes("\n".join(p["digest"] for p in parts)),
            event_time_min=None,  # recorded per version as cumulative bounds only
            event_time_max=None,
        )

    def versions(self, name: str) -> list[DatasetVersion]:
        self.get(check_name(name))  # clear error for an unknown dataset
        return [DatasetVersion.from_record(r) for r in self.store.list_dataset_versions(name)]

    def sources(self, ref: str | Ref) -> list[dict]:
        """The files each version was ingested from (lineage of the data)."""
        v = self.get(ref)
        return [s for s in self.store.dataset_sources(v.name, v.version)
                if v.after is None or s["version"] > v.after]

    # -- ingest -------------------------------------------------------------------------------
    def ingest(
        self,
        name: str,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        allow_schema_evolution: bool = False,
        event_time_column: str | None = None,
        format: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> IngestReport:
        """Append files (CSV, Parquet, JSON Lines; files, folders or globs) as a new version.

        Concurrent ingests into one dataset take turns at the commit: one that lost the race (a
        file it read was committed by another, or the schema changed) runs again, skipping what
        is now ingested, so a file is never ingested twice.
        """
        check_name(name)
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if not paths:
            raise InvalidInput("no files to ingest", hint="name at least one file, folder or glob")
        for attempt in range(1, MAX_INGEST_ATTEMPTS + 1):
            try:
                return self._ingest_once(
                    name, paths, allow_schema_evolution, event_time_column, format, progress
                )
            except Conflict:
                if attempt == MAX_INGEST_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _ingest_once(
        self, name, paths, allow_schema_evolution, event_time_column, format, progress
    ) -> IngestReport:
        from modelloop.data.ingest.engine import IngestOptions, ingest_files

        self.recover()
        current = self.store.get_dataset_version(name)
        dataset = self.store.get_dataset(name)
        schema = _readable_schema(current) if current else None
        if event_time_column is None and dataset:
            event_time_column = dataset["event_time_column"]

        txn = f"{os.getpid()}-{uuid.uuid4().hex}"
        staging = self.scratch / f"ingest-{txn}"
        staging.mkdir(parents=True)
        try:
            result = ingest_files(
                [str(p) for p in paths],
                staging,
                schema,
                IngestOptions(
                    allow_schema_evolution=allow_schema_evolution,
                    event_time_column=event_time_column,
                    format=format,
                    skip_hashes=self.store.known_source_hashes(name),
                    # s3:// input: the artifact store's options when it is on S3 too
                    storage_options={} if self.artifacts.is_local else dict(self.artifacts.options),
                ),
                progress=progress,
            )
            skipped = [str(s) for s in result.skipped]
            if not result.sources:
                return IngestReport(name, None, [], skipped)
            if current is not None and result.schema != schema:
                self._check_earlier_versions_read_as(name, result.schema)
            checkpoint("ingest.staged")

            parts = [{"kind": "data", "path": p.path, "rows": p.rows} for p in result.parts]
            if result.quarantine is not None:
                parts.append(
                    {
                        "kind": "quarantine",
                        "path": result.quarantine,
                        "rows": result.quarantined_rows,
                    }
                )
            for p in parts:
                p["digest"] = sha256_file(p["path"])
                p["size"] = os.path.getsize(p["path"])
            self.store.add_pending_blobs(txn, [p["digest"] for p in parts])
            checkpoint("ingest.pending")
            for i, p in enumerate(parts):
                self.artifacts.put_file(p["path"], p["digest"])
                if i == 0:
                    checkpoint("ingest.uploading")
            checkpoint("ingest.uploaded")
            sources = [
                {
                    "path": s.path,
                    "sha256": s.sha256,
                    "size": s.size,
                    "format": s.format,
                    "rows": s.rows,
                    "quarantined_rows": s.quarantined_rows,
                }
                for s in result.sources
            ]
            record = self.store.commit_dataset_version(
                name=name,
                txn=txn,
                schema_json=schema_to_json(result.schema),
                added_rows=result.rows,
                quarantined_rows=result.quarantined_rows,
                parts=[{k: p[k] for k in ("kind", "digest", "rows", "size")} for p in parts],
                sources=sources,
                event_time_column=event_time_column,
                event_time_min=_utc(result.event_time_min),
                event_time_max=_utc(result.event_time_max),
                schema_changes=json.dumps(result.schema_changes) if result.schema_changes else None,
                expected_schema_json=current["schema_json"] if current else None,
            )
            checkpoint("ingest.committed")
            return IngestReport(name, DatasetVersion.from_record(record), sources, skipped)
        except BaseException:
            self._undo(txn)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- delete -------------------------------------------------------------------------------
    def delete(
        self,
        ref: str | Ref,
        *,
        force: bool = False,
        reason: str | None = None,
        and_later: bool = False,
        actor: str | None = None,
    ) -> dict:
        """Delete a version, so that a bad ingest can always be undone and ingested again.

        Versions are cumulative, so ``loans@3`` is part of ``loans@4``: a version with later
        versions is deleted only together with them (``and_later``). Refused for data that
        trained a registered model unless ``force`` (with a ``reason``). The files it was
        ingested from can be ingested again; its number is given to the next ingest. Works on a
        version whose schema cannot be read. Returns what was deleted.
        """
        ref = parse_ref(ref)
        if ref.after is not None:
            raise InvalidInput(
                f"delete takes one version, not the range {ref}",
                hint=f"name the first version to delete: {ref.name}@{ref.after + 1} --and-later",
            )
        if ref.version is None:
            raise InvalidInput(
                f"name the version to delete: {ref.name}@N",
                hint=f"see the versions with 'modelloop data show {ref.name}'",
            )
        if self.store.get_dataset(ref.name) is None:
            self.get(ref.name)  # the usual NotFound, listing the known datasets
        done = self.store.delete_dataset_versions(
            ref.name, ref.version, and_later=and_later, force=force,
            actor=actor or current_actor(), reason=reason,
        )  # fmt: skip
        # the metadata is gone first: a crash here leaves unreferenced blobs, never a version
        # whose parts are missing
        keep = self.store.referenced_digests(done["digests"])
        for digest in set(done.pop("digests")) - keep:
            self.artifacts.delete(digest)
        return done

    def _check_earlier_versions_read_as(self, name: str, schema: pa.Schema) -> None:
        """Readers cast every earlier part to the newest schema: refuse one they could not."""
        from modelloop.data.schema import castable

        index = {f.name: f.type for f in schema}
        for r in {r["schema_json"]: r for r in self.store.list_dataset_versions(name)}.values():
            for f in _readable_schema(r):
                if f.name in index and not castable(f.type, index[f.name]):
                    raise SchemaMismatch(
                        f"column '{f.name}' would become {index[f.name]}, but {name}@"
                        f"{r['version']} holds it as {f.type}, which cannot be read as that",
                        hint="convert the column in the file to the dataset's type",
                    )

    def _undo(self, txn: str) -> None:
        """Remove what an unfinished writer uploaded, unless something else refers to it."""
        for t in self.store.pending_transactions():
            if t["txn"] == txn:
                keep = self.store.referenced_digests(t["digests"], ignore_txn=txn)
                for digest in set(t["digests"]) - keep:
                    self.artifacts.delete(digest)
                self.store.drop_pending(txn)

    def recover(self) -> int:
        """Undo the leftovers of writers that died mid-write; returns how many were undone."""
        undone = 0
        host = socket.gethostname()
        now = datetime.now(UTC)
        for t in self.store.pending_transactions():
            mine = t["host"] == host
            dead = (
                (not pid_alive(t["pid"]))
                if mine
                else (now - t["created_at"] > REMOTE_WRITER_TIMEOUT)
            )
            if dead:
                self._undo(t["txn"])
                undone += 1
        if self.scratch.exists():
            for entry in self.scratch.glob("ingest-*"):
                pid = entry.name.split("-")[1]
                if pid.isdigit() and not pid_alive(int(pid)):
                    shutil.rmtree(entry, ignore_errors=True)
        self.artifacts.clean_tmp()
        return undone

    # -- reading data -------------------------------------------------------------------------
    def _parts(
        self, ref: str | Ref, since=None, until=None, kind: str = "data"
    ) -> tuple[DatasetVersion, list[dict]]:
        v = self.get(ref)
        since = parse_time(since) if isinstance(since, str) else since
        until = parse_time(until) if isinstance(until, str) else until
        parts = self.store.dataset_parts(v.name, v.version, kind=kind, since=since, until=until)
        return v, [p for p in parts if v.after is None or p["version"] > v.after]

    def parts(
        self,
        ref: str | Ref,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> list[dict]:
        """The data parts a read of ``ref`` (and the window) returns, in reading order: each with
        its ``digest`` (the sha256 of its Parquet bytes), ``rows``, ``size`` and ``version``. What
        a job records to say exactly which rows it read."""
        return [
            {"digest": p["digest"], "rows": p["rows"], "size": p.get("size"),
             "version": p["version"]}
            for p in self._parts(ref, since, until)[1]
        ]

    def iter_batches(
        self,
        ref: str | Ref,
        *,
        columns: list[str] | None = None,
        batch_size: int = 65_536,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the version's rows as Arrow record batches (memory bounded by one part).

        ``since``/``until`` keep only the parts ingested in that window (``"7d"``, an ISO time).
        """
        import pyarrow.parquet as pq

        v, parts = self._parts(ref, since, until)
        columns = self._check_columns(v, columns)
        schema = _target_schema(v.schema, columns)
        for part in parts:
            pf = pq.ParquetFile(self.artifacts.open(part["digest"]))
            have = set(pf.schema_arrow.names)  # a property that rebuilds the schema: once
            present = [f.name for f in schema if f.name in have]
            for batch in pf.iter_batches(batch_size=batch_size, columns=present):
                yield _conform(batch, schema)

    def to_arrow(
        self,
        ref: str | Ref,
        *,
        columns: list[str] | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        v, parts = self._parts(ref, since, until)
        columns = self._check_columns(v, columns)
        schema = _target_schema(v.schema, columns)
        tables = []
        for p in parts:
            pf = pq.ParquetFile(self.artifacts.open(p["digest"]))
            have = set(pf.schema_arrow.names)  # a property that rebuilds the schema: once
            present = [f.name for f in schema if f.name in have]
            tables.append(_conform(pf.read(columns=present), schema))
        if not tables:
            return schema.empty_table()
        return pa.concat_tables(tables)

    def to_pandas(self, ref: str | Ref, **kwargs) -> pd.DataFrame:
        return self.to_arrow(ref, **kwargs).to_pandas()

    def head(self, ref: str | Ref, n: int = 10, *, columns: list[str] | None = None) -> pa.Table:
        import pyarrow as pa

        v = self.get(ref)
        got, taken = [], 0
        for batch in self.iter_batches(v.ref, columns=columns, batch_size=max(n, 1)):
            got.append(batch.slice(0, n - taken))
            taken += got[-1].num_rows
            if taken >= n:
                break
        schema = (
            got[0].schema
            if got
            else (v.schema if columns is None else pa.schema([v.schema.field(c) for c in columns]))
        )
        return pa.Table.from_batches(got, schema=schema)

    def quarantined(self, ref: str | Ref) -> pa.Table:
        """Rows rejected by the ingests up to this version, each with its source and reason."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        _v, parts = self._parts(ref, kind="quarantine")
        tables = [pq.read_table(self.artifacts.open(p["digest"])) for p in parts]
        return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})

    def stats(self, ref: str | Ref) -> list[dict]:
        """Per-column summary in one streaming pass: missing, min, max, mean, distinct (capped)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        v = self.get(ref)
        acc = {
            f.name: {
                "column": f.name,
                "type": str(f.type),
                "missing": 0,
                "min": None,
                "max": None,
                "sum": 0.0,
                "count": 0,
                "distinct": set(),
            }
            for f in v.schema
        }
        for batch in self.iter_batches(v.ref, batch_size=1 << 20):
            for name, col in zip(batch.schema.names, batch.columns, strict=True):
                a = acc[name]
                a["missing"] += col.null_count
                t = col.type
                if (
                    pa.types.is_integer(t)
                    or pa.types.is_floating(t)
                    or pa.types.is_timestamp(t)
                    or pa.types.is_date(t)
                    or pa.types.is_time(t)
                ):  # not durations nor intervals: Arrow has no min_max for them
                    mm = pc.min_max(col)
                    lo, hi = mm["min"].as_py(), mm["max"].as_py()
                    if lo is not None:
                        a["min"] = lo if a["min"] is None else min(a["min"], lo)
                        a["max"] = hi if a["max"] is None else max(a["max"], hi)
                    if not pa.types.is_temporal(t):
                        s = pc.sum(col).as_py()
                        a["sum"] += s or 0
                        a["count"] += len(col) - col.null_count
                elif (
                    pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t)
                ) and len(a["distinct"]) <= 1000:
                    a["distinct"].update(pc.unique(col).to_pylist())
        out = []
        for a in acc.values():
            row = {
                "column": a["column"],
                "type": a["type"],
                "missing": a["missing"],
                "min": a["min"],
                "max": a["max"],
                "mean": (a["sum"] / a["count"]) if a["count"] else None,
                "distinct": (len(a["distinct"] - {None}) if a["distinct"] else None),
            }
            if row["distinct"] is not None and len(a["distinct"]) > 1000:
                row["distinct"] = ">1000"
            out.append(row)
        return out

    @staticmethod
    def _check_columns(v: DatasetVersion, columns: list[str] | None) -> list[str] | None:
        if columns is None:
            return None
        known = set(v.schema.names)
        missing = [c for c in columns if c not in known]
        if missing:
            raise InvalidInput(
                f"dataset {v.ref} has no column {missing[0]!r}",
                hint=f"its columns are: {', '.join(v.schema.names)}",
            )
        return list(columns)


def _readable_schema(record: dict) -> pa.Schema:
    """A version's schema; one an older modelloop committed unreadable gets a way out."""
    try:
        return schema_from_json(record["schema_json"])
    except (OSError, ValueError, KeyError) as e:  # pyarrow's ArrowInvalid is a ValueError
        ref = f"{record['name']}@{record['version']}"
        raise InvalidInput(
            f"dataset version {ref} was recorded with a schema that cannot be read ({e})",
            hint=f"delete it with 'modelloop data delete {ref}' and ingest its files again",
        ) from None


def _utc(value):
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _target_schema(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    import pyarrow as pa

    return schema if columns is None else pa.schema([schema.field(c) for c in columns])


def _conform(data, schema: pa.Schema):
    """A part written before a schema evolution, shaped as the version's schema.

    Columns added later read as nulls; a widened type is cast. Parts already in shape pass
    through untouched (the common case costs one schema comparison).
    """
    import pyarrow as pa

    if data.schema.equals(schema, check_metadata=False):
        return data
    arrays, have = [], set(data.schema.names)
    for column_field in schema:
        if column_field.name in have:
            column = data.column(column_field.name)
            arrays.append(column if column.type == column_field.type else column.cast(column_field.type))
        else:
            arrays.append(pa.nulls(data.num_rows, type=column_field.type))
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    return pa.Table.from_arrays(arrays, schema=schema)
