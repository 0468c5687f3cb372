"""SQL of real-time serving.

A server's hot path touches none of this: it polls :meth:`endpoint_revisions` (one small query)
about twice a second, writes its statistics once a second and indexes one capture file per
endpoint, variant and flush (with its records' inference ids, for feedback to find them).
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from modelloop.common.status import EndpointStatus, RolloutStatus
from modelloop.errors import AlreadyExists, InvalidInput, NotFound
from modelloop.store.interfaces.serving import ServingStore
from modelloop.store.sql.engine import SqlBase, dumps, row_dict, utcnow
from modelloop.store.sql.events import insert_event
from modelloop.store.tables.serving import (
    capture_files,
    capture_ids,
    endpoint_rollouts,
    endpoint_stats,
    endpoints,
)


def _endpoint(row) -> dict:
    out = row_dict(row)
    out["spec"] = json.loads(out["spec"])
    return out


def _rollout(row) -> dict:
    out = row_dict(row)
    out["state"] = json.loads(out["state"])
    return out


def _rollout_finished(conn, rollout_id: int) -> None:
    """Append ``rollout.finished`` for a rollout that just left ``running`` (same transaction)."""
    r = conn.execute(
        sa.select(endpoint_rollouts).where(endpoint_rollouts.c.id == rollout_id)
    ).one()
    insert_event(conn, "rollout.finished", f"{r.endpoint}#{rollout_id}", {
        "rollout_id": rollout_id, "endpoint": r.endpoint, "strategy": r.strategy,
        "model": r.model, "status": r.status, "reason": r.reason,
    })


class SqlServing(SqlBase, ServingStore):
    """Endpoints, rollouts, capture files and statistics."""

    # -- endpoints ----------------------------------------------------------------------------
    def create_endpoint(self, name: str, spec: dict, *, actor: str | None = None) -> dict:
        now = utcnow()
        with self._write() as conn:
            if conn.execute(sa.select(endpoints.c.id).where(endpoints.c.name == name)).first():
                raise AlreadyExists(
                    f"endpoint {name!r} already exists",
                    hint=f"change it with 'modelloop endpoint update {name}' or deploy to it",
                )
            conn.execute(
                endpoints.insert().values(
                    name=name,
                    spec=dumps(spec),
                    revision=1,
                    status=EndpointStatus.IN_SERVICE,
                    created_at=now,
                    updated_at=now,
                    updated_by=actor,
                )
            )
        return self.get_endpoint(name)

    def get_endpoint(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(endpoints).where(endpoints.c.name == name)).first()
            return _endpoint(row) if row else None

    def list_endpoints(self) -> list[dict]:
        with self._read() as conn:
            return [_endpoint(r) for r in conn.execute(sa.select(endpoints).order_by("name"))]

    def endpoint_revisions(self) -> dict[str, int]:
        """name -> revision of every endpoint: what a server polls to notice changes."""
        with self._read() as conn:
            return dict(conn.execute(sa.select(endpoints.c.name, endpoints.c.revision)).all())

    def update_endpoint(
        self,
        name: str,
        spec: dict,
        *,
        actor: str | None = None,
        status: str | None = None,
        expected_revision: int | None = None,
    ) -> dict:
        """Replace the spec (revision + 1); with ``expected_revision``, only if nobody else did."""
        values = {
            "spec": dumps(spec),
            "revision": endpoints.c.revision + 1,
            "updated_at": utcnow(),
            "updated_by": actor,
        }
        if status:
            values["status"] = status
        q = endpoints.update().where(endpoints.c.name == name).values(**values)
        if expected_revision is not None:
            q = q.where(endpoints.c.revision == expected_revision)
        with self._write() as conn:
            if conn.execute(q).rowcount == 0:
                if self._endpoint_exists(conn, name):
                    raise InvalidInput(
                        f"endpoint {name!r} changed while this update was prepared",
                        hint="run the command again",
                    )
                raise NotFound(
                    f"no endpoint named {name!r}",
                    hint="list endpoints with 'modelloop endpoint list'",
                )
        return self.get_endpoint(name)

    def _endpoint_exists(self, conn, name: str) -> bool:
        return (
            conn.execute(sa.select(endpoints.c.id).where(endpoints.c.name == name)).first()
            is not None
        )

    def delete_endpoint(self, name: str) -> None:
        with self._write() as conn:
            if conn.execute(endpoints.delete().where(endpoints.c.name == name)).rowcount == 0:
                raise NotFound(
                    f"no endpoint named {name!r}",
                    hint="list endpoints with 'modelloop endpoint list'",
                )
            conn.execute(endpoint_stats.delete().where(endpoint_stats.c.endpoint == name))
            running = conn.execute(
                sa.select(endpoint_rollouts.c.id).where(
                    endpoint_rollouts.c.endpoint == name,
                    endpoint_rollouts.c.status == RolloutStatus.RUNNING,
                )
            ).scalars().all()
            for rollout_id in running:
                conn.execute(
                    endpoint_rollouts.update()
                    .where(endpoint_rollouts.c.id == rollout_id)
                    .values(status=RolloutStatus.FAILED, reason="endpoint deleted",
                            ended_at=utcnow())
                )
                _rollout_finished(conn, rollout_id)

    # -- rollouts -----------------------------------------------------------------------------
    def create_rollout(
        self, *, endpoint: str, strategy: str, model: str, state: dict, actor: str | None = None
    ) -> dict:
        """A running rollout; refused while another one runs on the same endpoint."""
        now = utcnow()
        with self._write() as conn:
            busy = conn.execute(
                sa.select(endpoint_rollouts.c.id).where(
                    endpoint_rollouts.c.endpoint == endpoint,
                    endpoint_rollouts.c.status == RolloutStatus.RUNNING,
                )
            ).first()
            if busy:
                raise InvalidInput(
                    f"endpoint {endpoint!r} is already rolling out (rollout {busy[0]})",
                    hint=f"wait for it, or stop it with 'modelloop endpoint rollback {endpoint}'",
                )
            rid = conn.execute(
                endpoint_rollouts.insert().values(
                    endpoint=endpoint,
                    status=RolloutStatus.RUNNING,
                    strategy=strategy,
                    model=model,
                    state=dumps(state),
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_rollout(rid)

    def get_rollout(self, rollout_id: int) -> dict | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(endpoint_rollouts).where(endpoint_rollouts.c.id == rollout_id)
            ).first()
            return _rollout(row) if row else None

    def list_rollouts(
        self, *, endpoint: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict]:
        q = sa.select(endpoint_rollouts).order_by(endpoint_rollouts.c.id.desc())
        if endpoint:
            q = q.where(endpoint_rollouts.c.endpoint == endpoint)
        if status:
            q = q.where(endpoint_rollouts.c.status == status)
        if limit:
            q = q.limit(limit)
        with self._read() as conn:
            return [_rollout(r) for r in conn.execute(q)]

    def claim_rollout(self, rollout_id: int, owner: str, until: datetime) -> bool:
        """Take (or extend) the lease to drive a running rollout; False if another holds it."""
        now = utcnow()
        with self._write() as conn:
            return (
                conn.execute(
                    endpoint_rollouts.update()
                    .where(
                        endpoint_rollouts.c.id == rollout_id,
                        endpoint_rollouts.c.status == RolloutStatus.RUNNING,
                        sa.or_(
                            endpoint_rollouts.c.lease_owner.is_(None),
                            endpoint_rollouts.c.lease_owner == owner,
                            endpoint_rollouts.c.lease_until < now,
                        ),
                    )
                    .values(lease_owner=owner, lease_until=until)
                ).rowcount
                > 0
            )

    def advance_rollout(
        self,
        rollout_id: int,
        *,
        state: dict,
        status: str = RolloutStatus.RUNNING,
        reason: str | None = None,
        spec: dict | None = None,
        endpoint_status: str | None = None,
        actor: str | None = None,
    ) -> bool:
        """Record a rollout's next state and, in the same transaction, the endpoint's new spec.

        Only a running rollout moves, so two drivers (or a driver and a manual rollback) racing
        on one rollout cannot both apply a step.
        """
        now = utcnow()
        with self._write() as conn:
            row = conn.execute(
                sa.select(endpoint_rollouts.c.endpoint).where(
                    endpoint_rollouts.c.id == rollout_id,
                    endpoint_rollouts.c.status == RolloutStatus.RUNNING,
                )
            ).first()
            if row is None:
                return False
            values = {"state": dumps(state), "status": status, "updated_at": now}
            if reason is not None:
                values["reason"] = reason
            if status != RolloutStatus.RUNNING:
                values.update(ended_at=now, lease_owner=None, lease_until=None)
            conn.execute(
                endpoint_rollouts.update()
                .where(endpoint_rollouts.c.id == rollout_id)
                .values(**values)
            )
            if status != RolloutStatus.RUNNING:
                _rollout_finished(conn, rollout_id)
            if spec is not None or endpoint_status is not None:
                ep_values = {"updated_at": now}
                if spec is not None:
                    ep_values.update(
                        spec=dumps(spec), revision=endpoints.c.revision + 1, updated_by=actor
                    )
                if endpoint_status is not None:
                    ep_values["status"] = endpoint_status
                conn.execute(
                    endpoints.update().where(endpoints.c.name == row[0]).values(**ep_values)
                )
        return True

    def mark_rollout(self, rollout_id: int, *, status: str, reason: str | None) -> None:
        """Set a finished rollout's status (e.g. a completed one undone by a rollback)."""
        with self._write() as conn:
            conn.execute(
                endpoint_rollouts.update()
                .where(endpoint_rollouts.c.id == rollout_id)
                .values(status=status, reason=reason, updated_at=utcnow())
            )

    # -- capture files ------------------------------------------------------------------------
    def add_capture_files(self, files: list[dict]) -> None:
        """Index capture files (endpoint, variant, hour, digest, records, first/last time) and,
        in the same transaction, their records' inference ids (``ids``: (id, rows) pairs)."""
        if not files:
            return
        now = utcnow()
        with self._write() as conn:
            for f in files:
                ids = f.get("ids")
                row = {k: v for k, v in f.items() if k != "ids"}
                file_id = conn.execute(
                    capture_files.insert().values(
                        **row, created_at=now, ids_indexed=ids is not None
                    )
                ).inserted_primary_key[0]
                if ids:
                    endpoint = f["endpoint"]
                    _insert_tuples(conn, capture_ids, ("file_id", "endpoint", "inference_id",
                                                       "rows"),
                                   [(file_id, endpoint, i, n) for i, n in ids])

    def find_capture_ids(self, endpoint: str, ids: list[str]) -> dict[str, set[int]]:
        """Indexed inference ids of an endpoint among ``ids``, each with its requests' row
        counts (one indexed lookup per 500 ids; no capture file is read)."""
        out: dict[str, set[int]] = {}
        wanted = sorted(set(ids))
        with self._read() as conn:
            for n in range(0, len(wanted), 500):
                q = sa.select(capture_ids.c.inference_id, capture_ids.c.rows).where(
                    capture_ids.c.endpoint == endpoint,
                    capture_ids.c.inference_id.in_(wanted[n : n + 500]),
                )
                for ident, rows in conn.execute(q):
                    out.setdefault(ident, set()).add(rows)
        return out

    def unindexed_capture_files(self, endpoint: str) -> list[dict]:
        """Capture files written before their ids were indexed (an older modelloop)."""
        q = sa.select(capture_files).where(
            capture_files.c.endpoint == endpoint, capture_files.c.ids_indexed.is_(sa.false())
        )
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(q)]

    def index_capture_file(self, file_id: int, endpoint: str, ids: list[tuple[str, int]]) -> None:
        """Record the ids of an older capture file, once (a racing indexer finds it done)."""
        with self._write() as conn:
            claimed = conn.execute(
                capture_files.update()
                .where(capture_files.c.id == file_id, capture_files.c.ids_indexed.is_(sa.false()))
                .values(ids_indexed=True)
            ).rowcount
            if claimed and ids:
                conn.execute(
                    capture_ids.insert(),
                    [
                        {"file_id": file_id, "endpoint": endpoint, "inference_id": i, "rows": n}
                        for i, n in ids
                    ],
                )

    def list_capture_files(
        self,
        endpoint: str,
        *,
        variant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict]:
        q = sa.select(capture_files).where(capture_files.c.endpoint == endpoint)
        if variant:
            q = q.where(capture_files.c.variant == variant)
        if since is not None:
            q = q.where(capture_files.c.last_time >= since)
        if until is not None:
            q = q.where(capture_files.c.first_time <= until)
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(q.order_by(capture_files.c.first_time))]

    # -- statistics ---------------------------------------------------------------------------
    def put_endpoint_stats(self, server: str, rows: list[tuple[str, str, dict]]) -> None:
        """Upsert a server's cumulative counters per (endpoint, variant)."""
        now = utcnow()
        t = endpoint_stats
        with self._write() as conn:
            for endpoint, variant, data in rows:
                changed = conn.execute(
                    t.update()
                    .where(t.c.server == server, t.c.endpoint == endpoint, t.c.variant == variant)
                    .values(data=dumps(data), updated_at=now)
                ).rowcount
                if not changed:
                    conn.execute(
                        t.insert().values(
                            server=server,
                            endpoint=endpoint,
                            variant=variant,
                            data=dumps(data),
                            updated_at=now,
                        )
                    )

    def read_endpoint_stats(self, endpoint: str | None = None) -> list[dict]:
        q = sa.select(endpoint_stats)
        if endpoint:
            q = q.where(endpoint_stats.c.endpoint == endpoint)
        with self._read() as conn:
            out = []
            for r in conn.execute(q):
                row = row_dict(r)
                row["data"] = json.loads(row["data"])
                out.append(row)
            return out


def _insert_tuples(conn, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows given as plain tuples with one executemany of the driver: serving indexes
    thousands of capture ids a second, and a list of dicts through a compiled insert costs
    several times more per row in SQLAlchemy than in the driver."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
    if mark is None:  # a driver of another style: the portable way
        conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})", rows)
