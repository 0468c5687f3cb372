"""SQLAlchemy implementation of the metadata store, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa

from modelloop.errors import (
    AlreadyExists,
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
)
from modelloop.store import migrate
from modelloop.store.base import MetadataStore
from modelloop.store.tables import (
    BLOB_REFERENCES,
    dataset_parts,
    dataset_sources,
    dataset_versions,
    datasets,
    events,
    job_artifacts,
    job_metrics,
    jobs,
    model_aliases,
    model_files,
    model_history,
    model_versions,
    models,
    pending_blobs,
)

_JOB_JSON = ("spec", "params", "metrics", "inputs", "outputs", "info")


def _job(row) -> dict:
    out = _row(row)
    for key in _JOB_JSON:
        out[key] = json.loads(out[key]) if out.get(key) else ({} if key != "inputs" else [])
    return out


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every time we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _row(row) -> dict:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = _aware(value)
    return out


def _engine(url: str) -> sa.Engine:
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 60})
            _configure_sqlite(engine)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the driver for {url.split(':', 1)[0]} is not installed ({exc.name})",
            hint="pip install 'modelloop[postgres]'",
        ) from None
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid metadata store URL: {exc}") from None
    return engine


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL so readers never block the writer, and writers that queue instead of failing.

    pysqlite's own transaction handling is turned off so that we emit BEGIN ourselves: writes
    use BEGIN IMMEDIATE, which takes the write lock up front and so cannot deadlock on upgrade.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


class CoreSqlStore(MetadataStore):
    """Datasets, jobs, models and events; :class:`SqlStore` adds each other concern's SQL."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)
        if self.engine.dialect.name == "sqlite" and self.engine.url.database not in (
            None,
            "",
            ":memory:",
        ):
            os.makedirs(os.path.dirname(self.engine.url.database) or ".", exist_ok=True)
        try:
            migrate.upgrade(self.engine)
        except sa.exc.OperationalError as exc:
            raise ConfigError(
                f"cannot open the metadata store {self.safe_url}: {exc.orig}"
            ) from None

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _read(self):
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self):
        with self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with conn.begin():
                yield conn

    # -- datasets -----------------------------------------------------------------------------
    def get_dataset(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.name == name)).first()
            return _row(row) if row else None

    def list_datasets(self) -> list[dict]:
        latest = (
            sa.select(
                dataset_versions.c.dataset_id, sa.func.max(dataset_versions.c.version).label("v")
            )
            .group_by(dataset_versions.c.dataset_id)
            .subquery()
        )
        q = (
            sa.select(
                datasets.c.name,
                datasets.c.created_at,
                datasets.c.event_time_column,
                dataset_versions.c.version.label("latest_version"),
                dataset_versions.c.created_at.label("updated_at"),
                dataset_versions.c.row_count,
                dataset_versions.c.quarantined_rows,
                dataset_versions.c.schema_json,
            )
            .join(latest, latest.c.dataset_id == datasets.c.id)
            .join(
                dataset_versions,
                (dataset_versions.c.dataset_id == datasets.c.id)
                & (dataset_versions.c.version == latest.c.v),
            )
            .order_by(datasets.c.name)
        )
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def _versions_query(self):
        return sa.select(dataset_versions, datasets.c.name).join(
            datasets, datasets.c.id == dataset_versions.c.dataset_id
        )

    def list_dataset_versions(self, name: str) -> list[dict]:
        q = (
            self._versions_query()
            .where(datasets.c.name == name)
            .order_by(dataset_versions.c.version)
        )
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def get_dataset_version(self, name: str, version: int | None = None) -> dict | None:
        q = self._versions_query().where(datasets.c.name == name)
        if version is None:
            q = q.order_by(dataset_versions.c.version.desc()).limit(1)
        else:
            q = q.where(dataset_versions.c.version == version)
        with self._read() as conn:
            row = conn.execute(q).first()
            return _row(row) if row else None

    def dataset_parts(self, name, up_to_version, *, kind="data", since=None, until=None):
        q = (
            sa.select(dataset_parts, dataset_versions.c.version, dataset_versions.c.created_at)
            .join(dataset_versions, dataset_versions.c.id == dataset_parts.c.version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(
                datasets.c.name == name,
                dataset_versions.c.version <= up_to_version,
                dataset_parts.c.kind == kind,
            )
            .order_by(dataset_versions.c.version, dataset_parts.c.ordinal)
        )
        if since is not None:
            q = q.where(dataset_versions.c.created_at >= since)
        if until is not None:
            q = q.where(dataset_versions.c.created_at < until)
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def dataset_sources(self, name, up_to_version):
        q = (
            sa.select(dataset_sources, dataset_versions.c.version)
            .join(dataset_versions, dataset_versions.c.id == dataset_sources.c.version_id)
            .join(datasets, datasets.c.id == dataset_sources.c.dataset_id)
            .where(datasets.c.name == name, dataset_versions.c.version <= up_to_version)
            .order_by(dataset_versions.c.version, dataset_sources.c.id)
        )
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def known_source_hashes(self, name: str) -> set[str]:
        q = (
            sa.select(dataset_sources.c.sha256)
            .join(datasets, datasets.c.id == dataset_sources.c.dataset_id)
            .where(datasets.c.name == name)
        )
        with self._read() as conn:
            return set(conn.execute(q).scalars())

    def commit_dataset_version(
        self,
        *,
        name,
        txn,
        schema_json,
        added_rows,
        quarantined_rows,
        parts,
        sources,
        event_time_column,
        event_time_min,
        event_time_max,
        schema_changes,
        expected_schema_json,
    ) -> dict:
        """Record the next version, atomically with the checks it rests on.

        Under the dataset's row lock (SQLite: the database write lock), so that concurrent
        writers on any machine take turns: a source file another writer committed meanwhile, or
        a schema that changed, is a :class:`Conflict` (the caller runs its ingest again), never a
        duplicate or a version in a schema it was not checked against.
        """
        now = utcnow()
        try:
            return self._commit_dataset_version(
                now, name, txn, schema_json, added_rows, quarantined_rows, parts, sources,
                event_time_column, event_time_min, event_time_max, schema_changes,
                expected_schema_json,
            )  # fmt: skip
        except sa.exc.IntegrityError as e:  # a concurrent writer created the dataset first
            raise Conflict(f"dataset {name!r} was created while this ingest ran") from e

    def _commit_dataset_version(
        self, now, name, txn, schema_json, added_rows, quarantined_rows, parts, sources,
        event_time_column, event_time_min, event_time_max, schema_changes, expected_schema_json,
    ) -> dict:  # fmt: skip
        with self._write() as conn:
            ds = conn.execute(
                sa.select(datasets).where(datasets.c.name == name).with_for_update()
            ).first()
            if ds is None:
                ds_id = conn.execute(
                    datasets.insert().values(
                        name=name, created_at=now, event_time_column=event_time_column
                    )
                ).inserted_primary_key[0]
            else:
                ds_id = ds.id
                if event_time_column and ds.event_time_column != event_time_column:
                    conn.execute(
                        datasets.update()
                        .where(datasets.c.id == ds_id)
                        .values(event_time_column=event_time_column)
                    )
            prev = conn.execute(
                sa.select(dataset_versions)
                .where(dataset_versions.c.dataset_id == ds_id)
                .order_by(dataset_versions.c.version.desc())
                .limit(1)
            ).first()
            if prev is not None and prev.schema_json != expected_schema_json:
                raise Conflict(
                    f"dataset {name!r} changed schema while this ingest ran (now version "
                    f"{prev.version})",
                    hint="run the ingest again",
                )
            if prev is None and expected_schema_json is not None:
                raise Conflict(f"dataset {name!r} was deleted while this ingest ran")
            hashes = [s["sha256"] for s in sources]
            if prev is not None and hashes:
                taken = conn.execute(
                    sa.select(dataset_sources.c.sha256).where(
                        dataset_sources.c.dataset_id == ds_id, dataset_sources.c.sha256.in_(hashes)
                    )
                ).first()
                if taken is not None:
                    raise Conflict(
                        f"a file of this ingest was ingested into {name!r} while it ran",
                        hint="run the ingest again: files already ingested are skipped",
                    )
            version = (prev.version if prev else 0) + 1
            row_count = (prev.row_count if prev else 0) + added_rows
            prev_tmin = _aware(prev.event_time_min) if prev else None
            prev_tmax = _aware(prev.event_time_max) if prev else None
            tmin = min([t for t in (prev_tmin, event_time_min) if t is not None], default=None)
            tmax = max([t for t in (prev_tmax, event_time_max) if t is not None], default=None)
            # Content of a version = the ordered digests of all its data parts.
            import hashlib

            prev_parts = (
                []
                if prev is None
                else list(
                    conn.execute(
                        sa.select(dataset_parts.c.digest)
                        .join(dataset_versions, dataset_versions.c.id == dataset_parts.c.version_id)
                        .where(
                            dataset_versions.c.dataset_id == ds_id, dataset_parts.c.kind == "data"
                        )
                        .order_by(dataset_versions.c.version, dataset_parts.c.ordinal)
                    ).scalars()
                )
            )
            all_parts = prev_parts + [p["digest"] for p in parts if p["kind"] == "data"]
            content_hash = hashlib.sha256("\n".join(all_parts).encode()).hexdigest()
            version_id = conn.execute(
                dataset_versions.insert().values(
                    dataset_id=ds_id,
                    version=version,
                    created_at=now,
                    schema_json=schema_json,
                    row_count=row_count,
                    added_rows=added_rows,
                    quarantined_rows=quarantined_rows,
                    content_hash=content_hash,
                    event_time_min=tmin,
                    event_time_max=tmax,
                    schema_changes=schema_changes,
                )
            ).inserted_primary_key[0]
            if parts:
                conn.execute(
                    dataset_parts.insert(),
                    [
                        {
                            "version_id": version_id,
                            "ordinal": i,
                            "kind": p["kind"],
                            "digest": p["digest"],
                            "rows": p["rows"],
                            "size": p["size"],
                        }
                        for i, p in enumerate(parts)
                    ],
                )
            if sources:
                conn.execute(
                    dataset_sources.insert(),
                    [{"dataset_id": ds_id, "version_id": version_id, **s} for s in sources],
                )
            conn.execute(pending_blobs.delete().where(pending_blobs.c.txn == txn))
            self._append_event(
                conn,
                "dataset.version_created",
                f"{name}@{version}",
                {
                    "dataset": name,
                    "version": version,
                    "added_rows": added_rows,
                    "quarantined_rows": quarantined_rows,
                    "row_count": row_count,
                },
            )
        return self.get_dataset_version(name, version)

    def delete_dataset_versions(self, name, version, *, and_later, force, actor, reason) -> dict:
        with self._write() as conn:
            ds = conn.execute(
                sa.select(datasets).where(datasets.c.name == name).with_for_update()
            ).first()
            if ds is None:
                raise NotFound(f"no dataset named {name!r}")
            rows = conn.execute(
                sa.select(dataset_versions.c.id, dataset_versions.c.version)
                .where(dataset_versions.c.dataset_id == ds.id)
                .order_by(dataset_versions.c.version)
            ).all()
            doomed = [r for r in rows if r.version >= version]
            if not doomed or doomed[0].version != version:
                raise NotFound(
                    f"dataset {name!r} has no version {version}",
                    hint=f"its versions are 1 to {rows[-1].version}" if rows else None,
                )
            later = [f"{name}@{r.version}" for r in doomed[1:]]
            if later and not and_later:
                raise InvalidInput(
                    f"{name}@{version} is part of {', '.join(later)} (versions are cumulative)",
                    hint="pass --and-later to delete those too, or delete the latest version",
                )
            users = self._models_trained_on(conn, name, version)
            if users and not force:
                raise InvalidInput(
                    f"{name}@{version} trained registered model {', '.join(users)}",
                    hint="keep it, or pass --force with a --reason (the model's lineage will "
                    "name deleted data)",
                )
            if users and not reason:
                raise InvalidInput(
                    f"deleting data that trained {', '.join(users)} needs a reason",
                    hint="give a reason: --reason TEXT",
                )
            ids = [r.id for r in doomed]
            digests = list(
                conn.execute(
                    sa.select(dataset_parts.c.digest).where(dataset_parts.c.version_id.in_(ids))
                ).scalars()
            )
            conn.execute(dataset_parts.delete().where(dataset_parts.c.version_id.in_(ids)))
            conn.execute(dataset_sources.delete().where(dataset_sources.c.version_id.in_(ids)))
            conn.execute(dataset_versions.delete().where(dataset_versions.c.id.in_(ids)))
            if version == 1:  # nothing left: the name is free again
                conn.execute(datasets.delete().where(datasets.c.id == ds.id))
            dropped, kept = self._drop_baselines_of(conn, name, version, digests)
            deleted = [r.version for r in doomed]
            self._append_event(
                conn,
                "dataset.version_deleted",
                f"{name}@{version}",
                {
                    "dataset": name,
                    "versions": deleted,
                    "actor": actor,
                    "reason": reason,
                    "forced": bool(users),
                    "models": users,
                    "baselines_deleted": dropped,
                    "baselines_kept": kept,
                },
            )
        return {
            "dataset": name,
            "versions": deleted,
            "models": users,
            "baselines_deleted": dropped,
            "baselines_kept": kept,
            "digests": digests,
        }

    @staticmethod
    def _drop_baselines_of(conn, name: str, version: int, digests: list[str]):
        """Baselines computed from the deleted versions describe rows that are gone, and their
        names (``loans-v3``) would clash with the baseline of a version ingested again: they are
        deleted, except those a monitor uses, which are kept but no longer stand for a version.
        Appends the deleted ones' blob digests to ``digests``."""
        import re

        from modelloop.store.monitoring_tables import baselines, monitors

        watched = set(conn.execute(sa.select(monitors.c.baseline)).scalars())
        dropped, kept = [], []
        for b in conn.execute(sa.select(baselines).where(baselines.c.dataset == name)).all():
            last = b.dataset_version
            if last is None:  # a range's baseline (loans-v4-5) is known by its name only
                m = re.fullmatch(re.escape(name) + r"-v[0-9]+-([0-9]+)", b.name)
                last = int(m.group(1)) if m else None
            if last is None or last < version:
                continue
            if b.name in watched:
                conn.execute(
                    baselines.update()
                    .where(baselines.c.id == b.id)
                    .values(dataset=None, dataset_version=None)
                )
                kept.append(b.name)
            else:
                conn.execute(baselines.delete().where(baselines.c.id == b.id))
                digests.append(b.digest)
                dropped.append(b.name)
        return dropped, kept

    @staticmethod
    def _models_trained_on(conn, name: str, version: int) -> list[str]:
        """Registered model versions whose job read ``name`` at ``version`` or later."""
        import re

        q = (
            sa.select(models.c.name, model_versions.c.version, model_versions.c.manifest,
                      jobs.c.inputs)
            .join(models, models.c.id == model_versions.c.model_id)
            .outerjoin(jobs, jobs.c.id == model_versions.c.job_id)
            .order_by(models.c.name, model_versions.c.version)
        )  # fmt: skip
        found = []
        for row in conn.execute(q):
            inputs = json.loads(row.inputs) if row.inputs else None
            if not inputs:
                inputs = (json.loads(row.manifest).get("lineage") or {}).get("inputs") or []
            for item in inputs:
                ref = str(item.get("ref", "")) if isinstance(item, dict) else ""
                if item.get("kind") != "dataset" or ref.partition("@")[0] != name:
                    continue
                numbers = [int(n) for n in re.findall(r"[0-9]+", ref.partition("@")[2])]
                if not numbers or max(numbers) >= version:  # cumulative: it read every version
                    found.append(f"{row.name}@{row.version}")
                    break
        return found

    # -- jobs -----------------------------------------------------------------------------------
    def create_job(
        self, *, kind, name, spec, params, inputs=None, parent_id=None, status="queued"
    ) -> int:
        with self._write() as conn:
            return conn.execute(
                jobs.insert().values(
                    kind=kind,
                    name=name,
                    status=status,
                    parent_id=parent_id,
                    spec=json.dumps(spec, default=str),
                    params=json.dumps(params, default=str),
                    metrics="{}",
                    inputs=json.dumps(inputs or [], default=str),
                    outputs="{}",
                    info="{}",
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]

    def update_job(self, job_id, *, only_if_status=None, **fields) -> bool:
        values = {
            k: (json.dumps(v, default=str) if k in _JOB_JSON else v) for k, v in fields.items()
        }
        q = jobs.update().where(jobs.c.id == job_id).values(**values)
        if only_if_status:
            q = q.where(jobs.c.status.in_(only_if_status))
        with self._write() as conn:
            return conn.execute(q).rowcount > 0

    def get_job(self, job_id):
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
            return _job(row) if row else None

    def list_jobs(self, *, kind=None, status=None, parent_id=None, limit=None):
        q = sa.select(jobs).order_by(jobs.c.id.desc())
        if kind:
            q = q.where(jobs.c.kind == kind)
        if status:
            q = q.where(jobs.c.status == status)
        if parent_id is not None:
            q = q.where(jobs.c.parent_id == parent_id)
        if limit:
            q = q.limit(limit)
        with self._read() as conn:
            return [_job(r) for r in conn.execute(q)]

    def log_job_metrics(self, job_id, rows):
        if not rows:
            return
        now = utcnow()
        with self._write() as conn:
            conn.execute(
                job_metrics.insert(),
                [
                    {"job_id": job_id, "key": k, "value": float(v), "step": step, "time": now}
                    for k, v, step in rows
                ],
            )

    def job_metric_series(self, job_id):
        q = sa.select(job_metrics).where(job_metrics.c.job_id == job_id).order_by(job_metrics.c.id)
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def add_job_artifact(self, job_id, name, digest, size):
        with self._write() as conn:
            conn.execute(
                job_artifacts.delete().where(
                    job_artifacts.c.job_id == job_id, job_artifacts.c.name == name
                )
            )
            conn.execute(
                job_artifacts.insert().values(job_id=job_id, name=name, digest=digest, size=size)
            )

    def job_artifacts(self, job_id):
        q = (
            sa.select(job_artifacts)
            .where(job_artifacts.c.job_id == job_id)
            .order_by(job_artifacts.c.name)
        )
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    # -- model registry -------------------------------------------------------------------------
    def _model_id(self, conn, name: str, *, lock: bool = False) -> int:
        q = sa.select(models.c.id).where(models.c.name == name)
        if lock:
            q = q.with_for_update()
        model_id = conn.execute(q).scalar()
        if model_id is None:
            raise NotFound(f"no model named {name!r}", hint="list models with 'modelloop models list'")
        return model_id

    def _history(self, conn, model_id, action, *, version=None, alias=None, from_version=None,
                 actor=None, reason=None):
        conn.execute(model_history.insert().values(
            model_id=model_id, time=utcnow(), action=action, version=version, alias=alias,
            from_version=from_version, actor=actor, reason=reason,
        ))

    def register_model_version(self, *, name, files, manifest, package_hash, flavor, task, job_id,
                               actor, description=None, holds_code=False, trust=None) -> dict:
        now = utcnow()
        trusted = {} if not trust else {"trusted_by": trust["actor"], "trusted_at": now,
                                        "trusted_reason": trust["reason"]}
        with self._write() as conn:
            model_id = conn.execute(
                sa.select(models.c.id).where(models.c.name == name).with_for_update()).scalar()
            if model_id is None:
                model_id = conn.execute(models.insert().values(name=name, created_at=now)).inserted_primary_key[0]
            version = (conn.execute(sa.select(sa.func.max(model_versions.c.version))
                                    .where(model_versions.c.model_id == model_id)).scalar() or 0) + 1
            version_id = conn.execute(model_versions.insert().values(
                model_id=model_id, version=version, created_at=now, created_by=actor, status="pending",
                package_hash=package_hash, flavor=flavor, task=task, job_id=job_id,
                manifest=json.dumps(manifest, default=str), description=description,
                holds_code=bool(holds_code), **trusted,
            )).inserted_primary_key[0]
            conn.execute(model_files.insert(), [
                {"version_id": version_id, "path": f["path"], "digest": f["digest"], "size": f["size"]} for f in files
            ])
            self._history(conn, model_id, "registered", version=version, actor=actor)
            self._append_event(conn, "model.registered", f"{name}@{version}",
                               {"model": name, "version": version, "job_id": job_id, "actor": actor})
            if trust:
                self._trusted(conn, model_id, name, version, trust["actor"], trust["reason"])
        return self.get_model_version(name, version)

    def _trusted(self, conn, model_id, name, version, actor, reason):
        self._history(conn, model_id, "trusted", version=version, actor=actor, reason=reason)
        self._append_event(conn, "model.trusted", f"{name}@{version}",
                           {"model": name, "version": version, "actor": actor, "reason": reason})

    def trust_model_version(self, name, version, *, actor, reason) -> dict:
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.trusted_by is not None:
                raise InvalidInput(f"{name}@{version} is already trusted (by {row.trusted_by})")
            conn.execute(model_versions.update().where(model_versions.c.id == row.id).values(
                trusted_by=actor, trusted_at=utcnow(), trusted_reason=reason))
            self._trusted(conn, model_id, name, version, actor, reason)
        return self.get_model_version(name, version)

    def _versions_q(self):
        return sa.select(model_versions, models.c.name).join(models, models.c.id == model_versions.c.model_id)

    @staticmethod
    def _mv(row) -> dict:
        out = _row(row)
        out["manifest"] = json.loads(out["manifest"])
        return out

    def get_model_version(self, name, version=None):
        q = self._versions_q().where(models.c.name == name)
        q = q.order_by(model_versions.c.version.desc()).limit(1) if version is None else q.where(model_versions.c.version == version)
        with self._read() as conn:
            row = conn.execute(q).first()
            return self._mv(row) if row else None

    def get_model(self, name):
        with self._read() as conn:
            row = conn.execute(sa.select(models).where(models.c.name == name)).first()
            return _row(row) if row else None

    def list_models(self):
        with self._read() as conn:
            rows = [_row(r) for r in conn.execute(sa.select(models).order_by(models.c.name))]
            for r in rows:
                r["latest_version"] = conn.execute(sa.select(sa.func.max(model_versions.c.version))
                                                   .where(model_versions.c.model_id == r["id"])).scalar()
                r["aliases"] = {a.alias: a.version for a in conn.execute(
                    sa.select(model_aliases).where(model_aliases.c.model_id == r["id"]))}
            return rows

    def list_model_versions(self, name):
        q = self._versions_q().where(models.c.name == name).order_by(model_versions.c.version)
        with self._read() as conn:
            return [self._mv(r) for r in conn.execute(q)]

    def model_aliases(self, name):
        q = (sa.select(model_aliases.c.alias, model_aliases.c.version)
             .join(models, models.c.id == model_aliases.c.model_id).where(models.c.name == name)
             .order_by(model_aliases.c.alias))
        with self._read() as conn:
            return {r.alias: r.version for r in conn.execute(q)}

    def model_files(self, name, version):
        q = (sa.select(model_files.c.path, model_files.c.digest, model_files.c.size)
             .join(model_versions, model_versions.c.id == model_files.c.version_id)
             .join(models, models.c.id == model_versions.c.model_id)
             .where(models.c.name == name, model_versions.c.version == version)
             .order_by(model_files.c.path))
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def _locked_version(self, conn, name, version):
        model_id = self._model_id(conn, name, lock=True)
        row = conn.execute(sa.select(model_versions).where(
            model_versions.c.model_id == model_id, model_versions.c.version == version)).first()
        if row is None:
            raise NotFound(f"model {name!r} has no version {version}",
                           hint=f"see its versions with 'modelloop models show {name}'")
        return model_id, row

    def set_model_status(self, name, version, status, *, actor, reason, allowed_from) -> dict:
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.status == status:
                raise InvalidInput(f"{name}@{version} is already {status}")
            if row.status not in allowed_from:
                raise InvalidInput(f"{name}@{version} is {row.status}; it cannot become {status} this way",
                                   hint="approving a rejected version needs --force and a --reason")
            conn.execute(model_versions.update().where(model_versions.c.id == row.id).values(
                status=status, status_by=actor, status_at=utcnow(), status_reason=reason))
            self._history(conn, model_id, status, version=version, actor=actor, reason=reason)
            self._append_event(conn, f"model.{status}", f"{name}@{version}",
                               {"model": name, "version": version, "from_status": row.status,
                                "actor": actor, "reason": reason})
        return self.get_model_version(name, version)

    def move_alias(self, name, alias, version, *, actor, reason, action="alias_set", expected=-1,
                   allowed_status=None):
        """Point ``alias`` at ``version`` (None removes it). With ``expected`` (not -1), only if the
        alias currently points there — a compare-and-set for rollbacks. With ``allowed_status``,
        only if the version's status is one of them, checked in the same transaction as the move
        (an approval gate a concurrent reject cannot slip past). Returns the previous version."""
        with self._write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            if version is not None:
                _, row = self._locked_version(conn, name, version)
                if allowed_status is not None and row.status not in allowed_status:
                    gate = "approved" if tuple(allowed_status) == ("approved",) else "not rejected"
                    raise InvalidInput(
                        f"{name}@{version} is {row.status}; alias {alias!r} points only at "
                        f"{gate} versions",
                        hint=f"approve it first ('modelloop models approve {name}@{version}'), or "
                        "pass --force with a --reason" if row.status == "pending" else
                        "pass --force with a --reason to point it there anyway")
            current = conn.execute(sa.select(model_aliases).where(
                model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)).first()
            previous = current.version if current else None
            if expected != -1 and previous != expected:
                raise AlreadyExists(f"alias {alias!r} of {name} moved meanwhile (now {previous})",
                                    hint="run the command again")
            if version is not None and previous == version:
                return previous  # no change: no history line, no event
            if version is None:
                if current is None:
                    raise NotFound(f"model {name!r} has no alias {alias!r}")
                conn.execute(model_aliases.delete().where(model_aliases.c.id == current.id))
            elif current is None:
                conn.execute(model_aliases.insert().values(model_id=model_id, alias=alias, version=version,
                                                           updated_at=utcnow()))
            else:
                conn.execute(model_aliases.update().where(model_aliases.c.id == current.id)
                             .values(version=version, updated_at=utcnow()))
            self._history(conn, model_id, action if version is not None else "alias_removed", version=version,
                          alias=alias, from_version=previous, actor=actor, reason=reason)
            self._append_event(conn, "model.alias_moved" if version is not None else "model.alias_removed",
                               f"{name}@{alias}", {"model": name, "alias": alias, "version": version,
                                                   "from_version": previous, "action": action,
                                                   "actor": actor, "reason": reason})
        return previous

    def model_history(self, name):
        q = (sa.select(model_history).join(models, models.c.id == model_history.c.model_id)
             .where(models.c.name == name).order_by(model_history.c.id))
        with self._read() as conn:
            return [_row(r) for r in conn.execute(q)]

    def mark_model_deployed(self, name, version, *, actor, where):
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.deployed_at is None:
                conn.execute(model_versions.update().where(model_versions.c.id == row.id).values(deployed_at=utcnow()))
            self._history(conn, model_id, "deployed", version=version, actor=actor, reason=where)

    def delete_model_version(self, name, version, *, actor, reason):
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.deployed_at is not None:
                raise InvalidInput(f"{name}@{version} has been deployed and is kept for audit",
                                   hint="reject it instead: 'modelloop models reject'")
            aliases = [a.alias for a in conn.execute(sa.select(model_aliases).where(
                model_aliases.c.model_id == model_id, model_aliases.c.version == version))]
            if aliases:
                raise InvalidInput(f"{name}@{version} is aliased as {', '.join(aliases)}",
                                   hint="move those aliases first")
            conn.execute(model_files.delete().where(model_files.c.version_id == row.id))
            conn.execute(model_versions.delete().where(model_versions.c.id == row.id))
            self._history(conn, model_id, "deleted", version=version, actor=actor, reason=reason)
            self._append_event(conn, "model.deleted", f"{name}@{version}", {"model": name, "version": version})

    # -- crash safety -------------------------------------------------------------------------
    def add_pending_blobs(self, txn: str, digests: Iterable[str]) -> None:
        rows = [
            {
                "txn": txn,
                "digest": d,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "created_at": utcnow(),
            }
            for d in digests
        ]
        if rows:
            with self._write() as conn:
                conn.execute(pending_blobs.insert(), rows)

    def pending_transactions(self) -> list[dict]:
        with self._read() as conn:
            rows = [
                _row(r) for r in conn.execute(sa.select(pending_blobs).order_by(pending_blobs.c.id))
            ]
        txns: dict[str, dict] = {}
        for r in rows:
            t = txns.setdefault(
                r["txn"],
                {
                    "txn": r["txn"],
                    "host": r["host"],
                    "pid": r["pid"],
                    "created_at": r["created_at"],
                    "digests": [],
                },
            )
            t["digests"].append(r["digest"])
        return list(txns.values())

    def drop_pending(self, txn: str) -> None:
        with self._write() as conn:
            conn.execute(pending_blobs.delete().where(pending_blobs.c.txn == txn))

    def referenced_digests(
        self, digests: Iterable[str], *, ignore_txn: str | None = None
    ) -> set[str]:
        wanted = list(set(digests))
        found: set[str] = set()
        with self._read() as conn:
            for table, column in BLOB_REFERENCES:
                col = table.c[column]
                for i in range(0, len(wanted), 500):
                    found |= set(
                        conn.execute(sa.select(col).where(col.in_(wanted[i : i + 500]))).scalars()
                    )
            # a digest another live writer is about to reference counts as referenced too
            for i in range(0, len(wanted), 500):
                found |= set(
                    conn.execute(
                        sa.select(pending_blobs.c.digest).where(
                            pending_blobs.c.digest.in_(wanted[i : i + 500]),
                            pending_blobs.c.txn != (ignore_txn or ""),
                        )
                    ).scalars()
                )
        return found

    # -- events -------------------------------------------------------------------------------
    def _append_event(self, conn, kind: str, subject: str, payload: dict) -> int:
        return conn.execute(
            events.insert().values(
                time=utcnow(), kind=kind, subject=subject, payload=json.dumps(payload, default=str)
            )
        ).inserted_primary_key[0]

    def append_event(self, kind: str, subject: str, payload: dict) -> int:
        with self._write() as conn:
            return self._append_event(conn, kind, subject, payload)

    def list_events(
        self, *, after_id: int = 0, kind: str | None = None, limit: int = 1000
    ) -> list[dict]:
        q = sa.select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        if kind:
            q = q.where(events.c.kind == kind)
        with self._read() as conn:
            out = []
            for r in conn.execute(q):
                d = _row(r)
                d["payload"] = json.loads(d["payload"])
                out.append(d)
            return out


# Each later concern keeps its tables and SQL in its own pair of modules (``*_tables.py``,
# ``sql_*.py``) so that this file stays about the core records. They import helpers defined above,
# hence the imports down here.
from modelloop.store.sql_batch import BatchStoreMixin  # noqa: E402
from modelloop.store.sql_monitoring import MonitoringStoreMixin  # noqa: E402
from modelloop.store.sql_pipelines import PipelineStoreMixin  # noqa: E402
from modelloop.store.sql_serving import ServingStoreMixin  # noqa: E402


class SqlStore(
    PipelineStoreMixin, ServingStoreMixin, MonitoringStoreMixin, BatchStoreMixin, CoreSqlStore
):
    """The metadata store on SQLAlchemy: SQLite by default, PostgreSQL to scale out."""
