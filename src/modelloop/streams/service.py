"""``ws.streams``: run a stream consumer for a dataset, and check each micro-batch as it commits.

The check of a batch is two things. Streaming statistics computed here on the rows the batch
added (rows, quarantined rows, each column's share of nulls) become metric series
(``stream.rows``, ``stream.quarantined_rows``, ``stream.null_fraction`` with dimensions
``dataset`` and ``column``), and the alarms are evaluated at once, so an alarm on a column's null
share fires on the first batch of a producer that broke. And the dataset's after-ingest monitors
(constraints and drift against their baseline) run on the batch's rows, as after any ingest
through the workspace, which wraps :meth:`~modelloop.data.datasets.Datasets.ingest_micro_batch`.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from modelloop._faults import pid_alive
from modelloop.common.hashing import sha256_bytes
from modelloop.data.refs import check_name
from modelloop.errors import Conflict, InvalidInput
from modelloop.streams.consumer import StreamConsumer
from modelloop.streams.sources import open_source, redacted


class Streams:
    """Stream consumers of one workspace's datasets. ``put_metrics`` writes metric points and
    ``evaluate_alarms(at=...)`` evaluates every alarm at a time (the workspace's telemetry)."""

    def __init__(self, store, datasets, scratch: Path, *, put_metrics: Callable[[list], None],
                 evaluate_alarms: Callable[..., list]):
        self.store, self.datasets, self.scratch = store, datasets, Path(scratch)
        self.put_metrics, self.evaluate_alarms = put_metrics, evaluate_alarms

    def consume(
        self,
        name: str,
        source: str = "rows",
        *,
        every_rows: int = 10_000,
        every_seconds: float = 60.0,
        key_columns: list[str] | None = None,
        event_time_column: str | None = None,
        allow_schema_evolution: bool = False,
        consumer: str | None = None,
        max_batches: int | None = None,
        until_idle: bool = False,
        on_batch: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict:
        """Feed dataset ``name`` from ``source`` (``rows``: its append buffer;
        ``redis://HOST:PORT/DB?stream=S&group=G``), committing a version every ``every_rows``
        rows or ``every_seconds`` after a batch's first row arrived. Rows without a value in a
        ``key_columns`` column or the event-time column are quarantined with that reason. A
        batch with a column the dataset lacks stops the consumer (its rows stay in the source)
        unless ``allow_schema_evolution``; a column it lacks is nulls.
        ``on_batch`` hears each batch's summary (its version, rows, quarantined rows, its
        monitor runs, the alarms it moved or that are in alarm). The source and options are
        recorded (:meth:`consumers`), so ``modelloop up`` runs this consumer too. Returns the
        totals."""
        check_name(name)
        if every_rows < 1:
            raise InvalidInput(f"every_rows must be at least 1, not {every_rows}")
        if not every_seconds > 0:
            raise InvalidInput(f"every_seconds must be above 0, not {every_seconds}")
        options = {"every_rows": every_rows, "every_seconds": every_seconds,
                   "key_columns": list(key_columns or ()), "event_time_column": event_time_column,
                   "allow_schema_evolution": allow_schema_evolution, "consumer": consumer}
        dataset = self.store.get_dataset(name)
        if event_time_column is None and dataset:
            event_time_column = dataset["event_time_column"]
        required = tuple(dict.fromkeys([*(key_columns or ()),
                                        *([event_time_column] if event_time_column else [])]))
        src = open_source(source, name, self.store, consumer)
        try:
            key = f"stream:{name}:{src.name}"
            lease = ConsumerLease(self.store, key if len(key) <= 128 else
                                  f"stream:{name}:{sha256_bytes(src.name)[:32]}")
        except BaseException:
            src.close()
            raise
        try:
            # how it runs, for `modelloop up` to run it again (the latest run's options win);
            # not a password: the consumer run again takes it from the environment
            self.store.record_stream_consumer(name, src.name, redacted(source), options)
        except BaseException:
            lease.release()
            src.close()
            raise

        def after_commit(report) -> None:
            summary = self.check_batch(report)
            if on_batch is not None:
                on_batch(summary)

        def stop() -> bool:
            return (should_stop is not None and should_stop()) or not lease.renew()

        try:
            return StreamConsumer(
                self.datasets, src, name, every_rows=every_rows, every_seconds=every_seconds,
                required=required, event_time_column=event_time_column,
                allow_schema_evolution=allow_schema_evolution, scratch=self.scratch,
                after_commit=after_commit,
            ).run(max_batches=max_batches, until_idle=until_idle, should_stop=stop)
        finally:
            lease.release()
            src.close()

    def consumers(self) -> list[dict]:
        """The recorded consumers (``dataset``, ``source``, ``url``, ``options``): how each was
        last run, as :meth:`consume`'s keyword arguments."""
        return self.store.stream_consumers()

    def check_batch(self, report) -> dict:
        """Write the batch's streaming statistics as metric points and evaluate the alarms."""
        v = report.version
        ref = f"{v.name}@{v.version - 1}..{v.version}" if v.version > 1 else v.ref
        now = datetime.now(UTC)
        dims = {"dataset": v.name}
        points = [("stream.rows", dims, now, float(v.added_rows)),
                  ("stream.quarantined_rows", dims, now, float(v.quarantined_rows))]
        if v.added_rows:
            table = self.datasets.to_arrow(ref)
            for column in table.column_names:
                share = table[column].null_count / table.num_rows
                points.append(("stream.null_fraction", {**dims, "column": column}, now, share))
        self.put_metrics(points)
        # those the batch moved, and any in alarm (the monitors' own evaluation, which ran
        # with the commit, may have moved them first)
        # at the points' time: reading the batch took a while, and an evaluation at "now" in the
        # next period would find these points missing
        changed = [a for a in self.evaluate_alarms(at=now) if a.get("changed") or a["state"] == "ALARM"]
        return {"version": v.ref, "rows": v.added_rows, "quarantined_rows": v.quarantined_rows,
                "monitor_runs": getattr(report, "monitor_runs", []), "alarms": changed}


class ConsumerLease:
    """One consumer per dataset and source: a store lease (``stream:DATASET:SOURCE``) taken at
    start and renewed as it runs. A second consumer is refused with a clear error instead of
    losing every commit race (the commits would stay exactly once either way); a holder whose
    process died on this machine is replaced at once, elsewhere after the lease ran out."""

    SECONDS = 60.0

    def __init__(self, store, name: str):
        self.store, self.name = store, name
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.renewed = time.monotonic()
        if store.acquire_lease(name, self.holder, self.SECONDS) is None:
            held = store.get_lease(name) or {}
            host, _, rest = str(held.get("holder", "")).partition(":")
            pid = rest.partition(":")[0]
            if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
                store.release_lease(name, held["holder"])
            if store.acquire_lease(name, self.holder, self.SECONDS) is None:
                raise Conflict(f"another consumer is running: {name} is held by "
                               f"{held.get('holder')}",
                               hint="one consumer per dataset and source; stop the other one")

    def renew(self) -> bool:
        """Renew a third of the way through the lease; False once it is lost."""
        if time.monotonic() - self.renewed < self.SECONDS / 3:
            return True
        self.renewed = time.monotonic()
        return self.store.acquire_lease(self.name, self.holder, self.SECONDS) is not None

    def release(self) -> None:
        self.store.release_lease(self.name, self.holder)
