"""The micro-batcher: entries from a source are gathered until ``every_rows`` rows or until the
first of them waited ``every_seconds``, then committed as one dataset version whose transaction
also records the source's position (or takes the buffered appends); only then is the source
acknowledged.

Why exactly once survives a SIGKILL anywhere: before the commit, nothing is acknowledged, so the
source delivers the batch again; after it, the position recorded with the version says which
re-delivered entries are already in a version. Crash points ``stream.staged`` (batch written, not
committed) and ``stream.committed`` (committed, not acknowledged) let tests kill it there.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from modelloop._faults import checkpoint
from modelloop.errors import Conflict

#: Conflicts in a row (another consumer committing the same entries) before giving up.
MAX_CONFLICTS = 5


class StreamConsumer:
    """Commits ``source``'s entries into dataset ``dataset`` through ``datasets`` (which runs
    the ingest engine); ``after_commit(report)`` hears each committed batch."""

    def __init__(self, datasets, source, dataset: str, *, every_rows: int, every_seconds: float,
                 required: tuple[str, ...] = (), event_time_column: str | None = None,
                 allow_schema_evolution: bool = False, scratch: Path,
                 after_commit: Callable | None = None):
        self.datasets, self.source, self.dataset = datasets, source, dataset
        self.every_rows, self.every_seconds = every_rows, every_seconds
        self.required, self.event_time_column = required, event_time_column
        self.evolve = allow_schema_evolution
        self.scratch, self.after_commit = Path(scratch), after_commit
        self.buffered: list = []
        self.rows = 0
        self.conflicts = 0  # in a row: a consumer that keeps losing gives up

    def run(self, *, max_batches: int | None = None, until_idle: bool = False,
            should_stop: Callable[[], bool] | None = None) -> dict:
        """Consume until stopped (``should_stop()`` true: what is buffered is committed first),
        ``max_batches`` were committed, or, with ``until_idle``, the source has nothing more."""
        out = {"batches": 0, "rows": 0, "quarantined_rows": 0, "versions": [], "conflicts": 0}
        while True:
            stopping = should_stop is not None and should_stop()
            got = [] if stopping else self.source.read(
                max(1, self.every_rows - self.rows), self._wait())
            self.buffered += got
            self.rows += sum(e.rows for e in got)
            idle = not got and (until_idle or stopping)
            if self.buffered and (idle or self._due()):
                report = self._commit()
                if report is None:
                    out["conflicts"] += 1
                else:
                    out["batches"] += 1
                    out["rows"] += report.version.added_rows
                    out["quarantined_rows"] += report.version.quarantined_rows
                    out["versions"].append(report.version.ref)
                    if max_batches is not None and out["batches"] >= max_batches:
                        return out
            elif idle:
                return out

    def _wait(self) -> float:
        """How long a read may block: until the buffered batch is due, at most a second (so a
        stop is heard)."""
        if not self.buffered:
            return 1.0
        return max(0.0, min(1.0, self.buffered[0].arrived + self.every_seconds - time.monotonic()))

    def _due(self) -> bool:
        return self.rows >= self.every_rows or \
            time.monotonic() - self.buffered[0].arrived >= self.every_seconds

    def _commit(self):
        entries, self.buffered, self.rows = self.buffered, [], 0
        batch = self.source.batch(entries, self.required)
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = self.scratch / f"stream-{os.getpid()}-{uuid.uuid4().hex}.jsonl"
        try:
            with open(path, "w", encoding="utf-8") as fh:
                for e in entries:
                    fh.write(e.lines)
            checkpoint("stream.staged")
            report = self.datasets.ingest_micro_batch(
                self.dataset, str(path), batch, event_time_column=self.event_time_column,
                allow_schema_evolution=self.evolve)
        except Conflict:
            # another consumer committed some of these entries: start again from what the
            # store says is committed (the source re-delivers the rest)
            self.conflicts += 1
            if self.conflicts >= MAX_CONFLICTS:
                raise
            self.source.reset()
            return None
        finally:
            path.unlink(missing_ok=True)
        self.conflicts = 0
        checkpoint("stream.committed")
        self.source.committed(entries, batch)
        if self.after_commit is not None:
            self.after_commit(report)
        return report
