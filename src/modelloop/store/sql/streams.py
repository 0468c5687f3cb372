"""SQL of stream-fed datasets: the append buffer, source positions, and what a micro-batch's
version commit does to them inside its transaction (:func:`record_stream_commit`)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.errors import Conflict
from modelloop.store.interfaces.streams import StreamStore
from modelloop.store.sql.engine import SqlBase, aware, row_dict, utcnow
from modelloop.store.tables.streams import stream_consumers, stream_offsets, stream_rows


class SqlStreams(SqlBase, StreamStore):
    def append_stream_rows(self, dataset: str, body: str, rows: int) -> dict:
        now = utcnow()
        with self._write() as conn:
            row_id = conn.execute(stream_rows.insert().values(
                dataset=dataset, rows=rows, body=body, created_at=now)).inserted_primary_key[0]
        return {"id": row_id, "dataset": dataset, "rows": rows, "created_at": now}

    def stream_rows(self, dataset: str, *, max_rows: int, skip: tuple[int, ...] = ()
                    ) -> list[dict]:  # fmt: skip
        out, total = [], 0
        skip = set(skip)
        query = (sa.select(stream_rows).where(stream_rows.c.dataset == dataset)
                 .order_by(stream_rows.c.id))
        with self._read() as conn:
            # in pages, so that a large backlog is not loaded whole for one micro-batch
            last = 0
            while total < max(max_rows, 1):
                page = conn.execute(query.where(stream_rows.c.id > last).limit(256)).all()
                if not page:
                    break
                for r in page:
                    last = r.id
                    if r.id in skip:
                        continue
                    d = row_dict(r)
                    d["created_at"] = aware(d["created_at"])
                    out.append(d)
                    total += r.rows
                    if total >= max(max_rows, 1):
                        break
        return out

    def stream_backlog(self, dataset: str) -> dict:
        with self._read() as conn:
            n, rows, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(stream_rows.c.rows), 0),
                          sa.func.min(stream_rows.c.created_at))
                .where(stream_rows.c.dataset == dataset)).one()  # fmt: skip
        return {"appends": int(n), "rows": int(rows), "oldest": aware(oldest)}

    def stream_offsets(self, dataset: str) -> list[dict]:
        with self._read() as conn:
            rows = conn.execute(sa.select(stream_offsets).where(stream_offsets.c.dataset == dataset)
                                .order_by(stream_offsets.c.source)).all()
        out = []
        for r in rows:
            d = row_dict(r)
            d.pop("dataset")
            d["updated_at"] = aware(d["updated_at"])
            out.append(d)
        return out

    def record_stream_consumer(self, dataset: str, source: str, url: str, options: dict
                               ) -> None:  # fmt: skip
        where = (stream_consumers.c.dataset == dataset) & (stream_consumers.c.source == source)
        values = {"url": url, "options": json.dumps(options, sort_keys=True),
                  "updated_at": utcnow()}
        with self._write() as conn:
            if not conn.execute(stream_consumers.update().where(where).values(**values)).rowcount:
                try:
                    with conn.begin_nested():
                        conn.execute(stream_consumers.insert().values(
                            dataset=dataset, source=source, **values))
                except sa.exc.IntegrityError:  # recorded at the same moment: ours is as good
                    conn.execute(stream_consumers.update().where(where).values(**values))

    def stream_consumers(self) -> list[dict]:
        with self._read() as conn:
            rows = conn.execute(sa.select(stream_consumers).order_by(
                stream_consumers.c.dataset, stream_consumers.c.source)).all()
        out = []
        for r in rows:
            d = row_dict(r)
            d["options"] = json.loads(d["options"])
            d["updated_at"] = aware(d["updated_at"])
            out.append(d)
        return out


def forget_stream_state(conn, dataset: str) -> None:
    """In a dataset's deletion transaction: its sources' positions, its buffered appends and
    its recorded consumers."""
    conn.execute(stream_consumers.delete().where(stream_consumers.c.dataset == dataset))
    conn.execute(stream_offsets.delete().where(stream_offsets.c.dataset == dataset))
    conn.execute(stream_rows.delete().where(stream_rows.c.dataset == dataset))


def record_stream_commit(conn, dataset: str, version: int, added_rows: int, stream: dict, now
                         ) -> None:  # fmt: skip
    """In a version's commit transaction: take the buffered appends ``stream["consumed"]``
    (every one, or Conflict) and move the source ``stream["source"]`` from
    ``stream["expected"]`` (None: never committed) to ``stream["position"]`` (or Conflict)."""
    consumed = list(stream.get("consumed") or ())
    if consumed:
        taken = conn.execute(stream_rows.delete().where(
            stream_rows.c.dataset == dataset, stream_rows.c.id.in_(consumed))).rowcount
        if taken != len(consumed):
            raise Conflict(f"rows buffered for {dataset!r} were committed by another consumer",
                           hint="one consumer per dataset and source; run it again")
    where = (stream_offsets.c.dataset == dataset) & (stream_offsets.c.source == stream["source"])
    expected = stream.get("expected")
    values = {"position": stream["position"], "version": version, "updated_at": now}
    if expected is None:
        if conn.execute(sa.select(stream_offsets.c.position).where(where)).first() is not None:
            moved = 0
        else:
            try:
                with conn.begin_nested():
                    conn.execute(stream_offsets.insert().values(
                        dataset=dataset, source=stream["source"], rows=added_rows, **values))
                moved = 1
            except sa.exc.IntegrityError:
                moved = 0
    else:
        moved = conn.execute(stream_offsets.update()
                             .where(where, stream_offsets.c.position == expected)
                             .values(rows=stream_offsets.c.rows + added_rows, **values)).rowcount
    if not moved:
        raise Conflict(f"{stream['source']} moved past {expected or 'its start'} in {dataset!r} "
                       "while this micro-batch was committed",
                       hint="one consumer per dataset and source; run it again")
