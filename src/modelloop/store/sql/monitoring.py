"""SQL of monitoring.

State changes that several processes may race on (a scheduler slot, an event-log position, an
alarm's state) are conditional updates: the process whose UPDATE matched the old value wins and
does the work; the others see ``False`` and skip it. That is what makes an alarm entering ALARM
append exactly one event even with two schedulers running.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from modelloop.errors import AlreadyExists
from modelloop.store.interfaces.monitoring import MonitoringStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.sql.events import insert_event
from modelloop.store.tables.monitoring import (
    alarm_history,
    alarms,
    baselines,
    labels,
    metric_points,
    monitor_runs,
    monitors,
)

_JSON = {"schema", "config", "summary", "actions", "data"}


def dims_key(dimensions: dict | None) -> str:
    """The canonical text of a series' dimensions (sorted keys, string values)."""
    return json.dumps({str(k): str(v) for k, v in (dimensions or {}).items()}, sort_keys=True)


def _out(row) -> dict:
    out = row_dict(row)
    for key in _JSON & set(out):
        out[key] = json.loads(out[key]) if out[key] else {}
    if "dims" in out:
        out["dimensions"] = json.loads(out.pop("dims"))
    return out


def _in(fields: dict) -> dict:
    values = {k: (json.dumps(v, default=str) if k in _JSON else v) for k, v in fields.items()}
    if "dimensions" in values:
        values["dims"] = dims_key(values.pop("dimensions"))
    return values


class SqlMonitoring(SqlBase, MonitoringStore):
    """Baselines, monitors, runs, labels, metric points and alarms."""

    def _insert_unique(self, table, what: str, fields: dict) -> int:
        with self._write() as conn:
            exists = conn.execute(
                sa.select(table.c.id).where(table.c.name == fields["name"])
            ).first()
            if exists:
                raise AlreadyExists(
                    f"a {what} named {fields['name']!r} already exists",
                    hint=f"choose another name, or delete the {what} first",
                )
            return conn.execute(
                table.insert().values(created_at=utcnow(), **_in(fields))
            ).inserted_primary_key[0]

    def _get_named(self, table, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
            return _out(row) if row else None

    def _list(self, q) -> list[dict]:
        with self._read() as conn:
            return [_out(r) for r in conn.execute(q)]

    # -- baselines ----------------------------------------------------------------------------
    def add_baseline(self, **fields) -> int:
        return self._insert_unique(baselines, "baseline", fields)

    def get_baseline(self, name: str) -> dict | None:
        return self._get_named(baselines, name)

    def find_baseline(self, dataset: str, version: int) -> dict | None:
        """The first baseline computed from exactly this dataset version."""
        q = (
            sa.select(baselines)
            .where(baselines.c.dataset == dataset, baselines.c.dataset_version == version)
            .order_by(baselines.c.id)
        )
        found = self._list(q)
        return found[0] if found else None

    def list_baselines(self) -> list[dict]:
        return self._list(sa.select(baselines).order_by(baselines.c.id))

    def delete_baseline(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(baselines.delete().where(baselines.c.name == name)).rowcount > 0

    # -- monitors -----------------------------------------------------------------------------
    def add_monitor(self, **fields) -> int:
        fields.setdefault("last_event_id", 0)
        fields.setdefault("enabled", True)
        return self._insert_unique(monitors, "monitor", fields)

    def get_monitor(self, name: str) -> dict | None:
        return self._get_named(monitors, name)

    def list_monitors(self) -> list[dict]:
        return self._list(sa.select(monitors).order_by(monitors.c.name))

    def update_monitor(self, name: str, *, only_if: dict | None = None, **fields) -> bool:
        """Set fields; with ``only_if`` ({column: old value}), only while those still hold."""
        q = monitors.update().where(monitors.c.name == name)
        for key, old in (only_if or {}).items():
            col = monitors.c[key]
            q = q.where(col.is_(None) if old is None else col == old)
        with self._write() as conn:
            return conn.execute(q.values(**_in(fields))).rowcount > 0

    def delete_monitor(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(monitors.delete().where(monitors.c.name == name)).rowcount > 0

    # -- monitor runs -------------------------------------------------------------------------
    def add_monitor_run(self, **fields) -> int:
        with self._write() as conn:
            return conn.execute(
                monitor_runs.insert().values(created_at=utcnow(), **_in(fields))
            ).inserted_primary_key[0]

    def get_monitor_run(self, run_id: int) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(monitor_runs).where(monitor_runs.c.id == run_id)).first()
            return _out(row) if row else None

    def list_monitor_runs(self, monitor: str | None = None, limit: int | None = None) -> list[dict]:
        q = sa.select(monitor_runs).order_by(monitor_runs.c.id.desc())
        if monitor:
            q = q.where(monitor_runs.c.monitor == monitor)
        if limit:
            q = q.limit(limit)
        return self._list(q)

    # -- labels -------------------------------------------------------------------------------
    def put_labels(self, endpoint: str, rows: list[tuple[str, str]]) -> int:
        """Insert or replace labels (inference id, label JSON); a later label wins."""
        if not rows:
            return 0
        now = utcnow()
        values = [
            {"endpoint": endpoint, "inference_id": i, "label": lab, "received_at": now}
            for i, lab in rows
        ]
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            q = insert(labels)
            q = q.on_conflict_do_update(
                index_elements=["endpoint", "inference_id"],
                set_={"label": q.excluded.label, "received_at": q.excluded.received_at},
            )
            for start in range(0, len(values), 5000):
                conn.execute(q, values[start : start + 5000])
        return len(values)

    def get_labels(self, endpoint: str) -> dict[str, str]:
        """inference id -> label JSON, for every label of an endpoint."""
        q = sa.select(labels.c.inference_id, labels.c.label).where(labels.c.endpoint == endpoint)
        with self._read() as conn:
            return dict(conn.execute(q).all())

    # -- metric series ------------------------------------------------------------------------
    def put_metric_points(self, points: list[tuple[str, dict, datetime, float]]) -> int:
        if not points:
            return 0
        rows = [
            {"name": n, "dims": dims_key(d), "time": t, "value": float(v)} for n, d, t, v in points
        ]
        with self._write() as conn:
            conn.execute(metric_points.insert(), rows)
        return len(rows)

    def metric_points(
        self,
        name: str,
        dimensions: dict | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict]:
        """Points of one series (exact dimensions), oldest first; ``until`` is exclusive."""
        q = (
            sa.select(metric_points.c.time, metric_points.c.value)
            .where(metric_points.c.name == name, metric_points.c.dims == dims_key(dimensions))
            .order_by(metric_points.c.time, metric_points.c.id)
        )
        if since is not None:
            q = q.where(metric_points.c.time >= since)
        if until is not None:
            q = q.where(metric_points.c.time < until)
        return self._list(q)

    def list_metric_series(self, prefix: str = "") -> list[dict]:
        """Each series (name, dimensions) with its point count and last time."""
        q = (
            sa.select(
                metric_points.c.name,
                metric_points.c.dims,
                sa.func.count().label("points"),
                sa.func.max(metric_points.c.time).label("last"),
            )
            .where(metric_points.c.name.startswith(prefix, autoescape=True))
            .group_by(metric_points.c.name, metric_points.c.dims)
            .order_by(metric_points.c.name, metric_points.c.dims)
        )
        return self._list(q)

    # -- alarms -------------------------------------------------------------------------------
    def add_alarm(self, **fields) -> int:
        return self._insert_unique(alarms, "alarm", fields)

    def get_alarm(self, name: str) -> dict | None:
        return self._get_named(alarms, name)

    def list_alarms(self, metric: str | None = None) -> list[dict]:
        q = sa.select(alarms).order_by(alarms.c.name)
        if metric:
            q = q.where(alarms.c.metric == metric)
        return self._list(q)

    def delete_alarm(self, name: str) -> bool:
        with self._write() as conn:
            conn.execute(alarm_history.delete().where(alarm_history.c.alarm == name))
            return conn.execute(alarms.delete().where(alarms.c.name == name)).rowcount > 0

    def transition_alarm(
        self,
        name: str,
        old_state: str,
        new_state: str,
        reason: str,
        data: dict,
        event: tuple[str, str, dict] | None = None,
    ) -> int | None:
        """Move an alarm from ``old_state`` to ``new_state``, with its history row and (optionally)
        an event, in one transaction. Returns the event id (0 without an event), or None when
        another process changed the state first."""
        now = utcnow()
        with self._write() as conn:
            changed = conn.execute(
                alarms.update()
                .where(alarms.c.name == name, alarms.c.state == old_state)
                .values(state=new_state, state_reason=reason, state_updated_at=now)
            ).rowcount
            if not changed:
                return None
            conn.execute(
                alarm_history.insert().values(
                    alarm=name,
                    time=now,
                    kind="state",
                    old_state=old_state,
                    new_state=new_state,
                    reason=reason,
                    data=json.dumps(data, default=str),
                )
            )
            return insert_event(conn, *event) if event else 0

    def add_alarm_history(self, name: str, kind: str, reason: str, data: dict) -> None:
        with self._write() as conn:
            conn.execute(
                alarm_history.insert().values(
                    alarm=name, time=utcnow(), kind=kind, reason=reason,
                    data=json.dumps(data, default=str),
                )
            )  # fmt: skip

    def alarm_history(self, name: str, limit: int = 100) -> list[dict]:
        q = (
            sa.select(alarm_history)
            .where(alarm_history.c.alarm == name)
            .order_by(alarm_history.c.id.desc())
            .limit(limit)
        )
        return self._list(q)
