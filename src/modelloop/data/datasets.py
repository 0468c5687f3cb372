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

import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from modelloop._faults import checkpoint, pid_alive
from modelloop.artifacts import ArtifactStore
from modelloop.common.hashing import sha256_bytes, sha256_file
from modelloop.config import current_actor
from modelloop.data import reading
from modelloop.data.ingest.names import check_source_names
from modelloop.data.refs import Ref, check_name, parse_ref, parse_time
from modelloop.data.stream_rows import MicroBatch
from modelloop.data.versions import (
    DatasetVersion,
    IngestReport,
    readable_schema,
    schema_to_json,
    utc,
)
from modelloop.errors import Conflict, InvalidInput, NotFound, SchemaMismatch
from modelloop.store import MetadataStore

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

#: A writer on another machine is presumed dead after this long (its pid cannot be checked).
REMOTE_WRITER_TIMEOUT = timedelta(hours=24)
#: An ingest that keeps losing races to concurrent writers gives up after this many runs.
MAX_INGEST_ATTEMPTS = 20


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

    def online_features(self, ref: str, target: str) -> list[dict]:
        """An online model's features from a dataset version's schema: every column but
        ``target``, numbers as ``number``, text and booleans as ``category`` (times and nested
        values are left out: River's models take neither)."""
        import pyarrow as pa

        schema = self.get(ref).schema
        if target not in schema.names:
            raise InvalidInput(f"{ref} has no column {target!r}",
                               hint=f"its columns: {', '.join(schema.names)}")
        out = []
        for f in schema:
            if f.name == target:
                continue
            if pa.types.is_integer(f.type) or pa.types.is_floating(f.type):
                out.append({"name": f.name, "type": "number"})
            elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type) \
                    or pa.types.is_boolean(f.type) or pa.types.is_dictionary(f.type):
                out.append({"name": f.name, "type": "category"})
        return out

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
        source_names: list[str] | None = None,
    ) -> IngestReport:
        """Append files (CSV, Parquet, JSON Lines; files, folders or globs) as a new version.

        Concurrent ingests into one dataset take turns at the commit: one that lost the race (a
        file it read was committed by another, or the schema changed) runs again, skipping what
        is now ingested, so a file is never ingested twice.

        Each file is recorded as a source under the path that named it, or, with
        ``source_names``, under the name given for it (one per file found, in order): an API
        server ingests copies of a client's files and records them by the client's paths.
        """
        check_name(name)
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if not paths:
            raise InvalidInput("no files to ingest", hint="name at least one file, folder or glob")
        names = check_source_names(source_names)
        for attempt in range(1, MAX_INGEST_ATTEMPTS + 1):
            try:
                return self._ingest_once(
                    name, paths, allow_schema_evolution, event_time_column, format, progress,
                    source_names=names,
                )
            except Conflict:
                if attempt == MAX_INGEST_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    # -- streamed rows (the buffer, and micro-batches committed from it or from a stream) -------
    def append_rows(self, name: str, rows: list[dict]) -> dict:
        """Append rows to ``name``'s stream buffer, durable when this returns: a stream
        consumer (``modelloop data stream NAME``) commits them as versions, by size or time,
        each row once, through file ingest's schema rules and quarantine. Returns
        ``{"dataset", "rows", "buffered_rows"}`` (the buffer's rows, these included)."""
        from modelloop.data.stream_rows import encode_rows

        check_name(name)
        body, n = encode_rows(rows)
        self.store.append_stream_rows(name, body, n)
        return {"dataset": name, "rows": n,
                "buffered_rows": self.store.stream_backlog(name)["rows"]}

    def stream_status(self, name: str) -> dict:
        """Rows waiting in ``name``'s append buffer (``backlog``) and, per stream source, the
        last entry its committed versions hold (``sources``)."""
        check_name(name)
        return {"dataset": name, "backlog": self.store.stream_backlog(name),
                "sources": self.store.stream_offsets(name)}

    def ingest_micro_batch(self, name: str, path: str, batch: MicroBatch, *,
                           event_time_column: str | None = None,
                           allow_schema_evolution: bool = False) -> IngestReport:
        """Commit one micro-batch of a stream (its rows as a JSON Lines file at ``path``) as a
        version, with the batch's source position in the same transaction (exactly once: see
        :class:`~modelloop.data.stream_rows.MicroBatch`). Each bad row is quarantined with its
        reason, however many there are: a stream's rows are independent records; a column no
        row of the batch has is nulls (a JSON key left out). A
        :class:`~modelloop.errors.Conflict` means another consumer committed these entries."""
        check_name(name)
        return self._ingest_once(name, [path], allow_schema_evolution, event_time_column,
                                 "jsonl", None, batch)

    def _ingest_once(
        self, name, paths, allow_schema_evolution, event_time_column, format, progress,
        batch: MicroBatch | None = None, source_names: tuple[str, ...] = (),
    ) -> IngestReport:  # fmt: skip
        from modelloop.data.ingest.engine import IngestOptions, ingest_files

        self.recover()
        current = self.store.get_dataset_version(name)
        dataset = self.store.get_dataset(name)
        schema = readable_schema(current) if current else None
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
                    # a micro-batch's identity is its entries (its source record), not its bytes
                    skip_hashes=self.store.known_source_hashes(name) if batch is None else (),
                    max_bad_fraction=0.5 if batch is None else 1.0,
                    required=batch.required if batch is not None else (),
                    source_name=batch.label if batch is not None else None,
                    source_names=source_names,
                    fill_missing=batch is not None,
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
            if batch is not None:
                sources[0]["sha256"] = sha256_bytes(batch.label)
            record = self.store.commit_dataset_version(
                name=name,
                txn=txn,
                schema_json=schema_to_json(result.schema),
                added_rows=result.rows,
                quarantined_rows=result.quarantined_rows,
                parts=[{k: p[k] for k in ("kind", "digest", "rows", "size")} for p in parts],
                sources=sources,
                event_time_column=event_time_column,
                event_time_min=utc(result.event_time_min),
                event_time_max=utc(result.event_time_max),
                schema_changes=json.dumps(result.schema_changes) if result.schema_changes else None,
                expected_schema_json=current["schema_json"] if current else None,
                **({} if batch is None else {"stream": batch.record()}),
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
            for f in readable_schema(r):
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
        v, parts = self._parts(ref, since, until)
        return reading.iter_batches(self.artifacts, v, parts, columns, batch_size)

    def to_arrow(
        self,
        ref: str | Ref,
        *,
        columns: list[str] | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> pa.Table:
        v, parts = self._parts(ref, since, until)
        return reading.read_table(self.artifacts, v, parts, columns)

    def to_pandas(self, ref: str | Ref, **kwargs) -> pd.DataFrame:
        return self.to_arrow(ref, **kwargs).to_pandas()

    def head(self, ref: str | Ref, n: int = 10, *, columns: list[str] | None = None) -> pa.Table:
        v, parts = self._parts(ref)
        return reading.head(self.artifacts, v, parts, n, columns)

    def quarantined(self, ref: str | Ref) -> pa.Table:
        """Rows rejected by the ingests up to this version, each with its source and reason."""
        _v, parts = self._parts(ref, kind="quarantine")
        return reading.read_quarantine(self.artifacts, parts)

    def quarantine_rows(self, ref: str | Ref, *, limit: int = 100, offset: int = 0) -> list[dict]:
        """A page of :meth:`quarantined` as records (``source``, ``row``, ``record``: the raw
        row, ``reason``), read only as far as the page: what a browser shows, where the whole
        table (Arrow) may be millions of rows."""
        _v, parts = self._parts(ref, kind="quarantine")
        return reading.quarantine_page(self.artifacts, parts, limit, offset)

    def stats(self, ref: str | Ref) -> list[dict]:
        """Per-column summary in one streaming pass: missing, min, max, mean, distinct (capped)."""
        v, parts = self._parts(ref)
        return reading.column_stats(v.schema, reading.iter_batches(self.artifacts, v, parts,
                                                                   None, 1 << 20))

