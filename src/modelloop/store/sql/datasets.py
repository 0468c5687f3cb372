"""SQL of datasets: versions committed atomically with the checks they rest on, and deleted
with what depended on them (baselines, the lineage of registered models)."""

from __future__ import annotations

import json
import re

import sqlalchemy as sa

from modelloop.common.hashing import sha256_bytes
from modelloop.errors import Conflict, InvalidInput, NotFound
from modelloop.store.interfaces.datasets import DatasetStore
from modelloop.store.sql.engine import SqlBase, aware, row_dict, utcnow
from modelloop.store.sql.events import insert_event
from modelloop.store.sql.streams import forget_stream_state, record_stream_commit
from modelloop.store.tables.blobs import pending_blobs
from modelloop.store.tables.datasets import (
    dataset_parts,
    dataset_sources,
    dataset_versions,
    datasets,
)
from modelloop.store.tables.jobs import jobs
from modelloop.store.tables.monitoring import baselines, monitors
from modelloop.store.tables.registry import model_versions, models


class SqlDatasets(SqlBase, DatasetStore):
    def get_dataset(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.name == name)).first()
            return row_dict(row) if row else None

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
            return [row_dict(r) for r in conn.execute(q)]

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
            return [row_dict(r) for r in conn.execute(q)]

    def get_dataset_version(self, name: str, version: int | None = None) -> dict | None:
        q = self._versions_query().where(datasets.c.name == name)
        if version is None:
            q = q.order_by(dataset_versions.c.version.desc()).limit(1)
        else:
            q = q.where(dataset_versions.c.version == version)
        with self._read() as conn:
            row = conn.execute(q).first()
            return row_dict(row) if row else None

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
            return [row_dict(r) for r in conn.execute(q)]

    def dataset_sources(self, name, up_to_version):
        q = (
            sa.select(dataset_sources, dataset_versions.c.version)
            .join(dataset_versions, dataset_versions.c.id == dataset_sources.c.version_id)
            .join(datasets, datasets.c.id == dataset_sources.c.dataset_id)
            .where(datasets.c.name == name, dataset_versions.c.version <= up_to_version)
            .order_by(dataset_versions.c.version, dataset_sources.c.id)
        )
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(q)]

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
        stream=None,
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
                expected_schema_json, stream,
            )  # fmt: skip
        except sa.exc.IntegrityError as e:  # a concurrent writer created the dataset first
            raise Conflict(f"dataset {name!r} was created while this ingest ran") from e

    def _commit_dataset_version(
        self, now, name, txn, schema_json, added_rows, quarantined_rows, parts, sources,
        event_time_column, event_time_min, event_time_max, schema_changes, expected_schema_json,
        stream,
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
            prev_tmin = aware(prev.event_time_min) if prev else None
            prev_tmax = aware(prev.event_time_max) if prev else None
            tmin = min([t for t in (prev_tmin, event_time_min) if t is not None], default=None)
            tmax = max([t for t in (prev_tmax, event_time_max) if t is not None], default=None)
            # Content of a version = the ordered digests of all its data parts.
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
            content_hash = sha256_bytes("\n".join(all_parts))
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
            if stream is not None:
                record_stream_commit(conn, name, version, added_rows, stream, now)
            conn.execute(pending_blobs.delete().where(pending_blobs.c.txn == txn))
            insert_event(
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
                # and its stream state with it: a dataset (or stream) created again under the
                # name must not start at the old position or take the old buffered rows
                forget_stream_state(conn, name)
            dropped, kept = self._drop_baselines_of(conn, name, version, digests)
            deleted = [r.version for r in doomed]
            insert_event(
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
