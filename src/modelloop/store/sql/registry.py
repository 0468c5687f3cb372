"""SQL of the model registry: every status change and alias move is a history line and an
event in the transaction that makes it."""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.common.paging import paged as _page
from modelloop.common.status import ApprovalStatus
from modelloop.errors import AlreadyExists, InvalidInput, NotFound
from modelloop.store.interfaces.registry import ModelRegistryStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.sql.events import insert_event
from modelloop.store.tables.registry import (
    model_aliases,
    model_files,
    model_history,
    model_versions,
    models,
)


class SqlRegistry(SqlBase, ModelRegistryStore):
    def _model_id(self, conn, name: str, *, lock: bool = False) -> int:
        q = sa.select(models.c.id).where(models.c.name == name)
        if lock:
            q = q.with_for_update()
        model_id = conn.execute(q).scalar()
        if model_id is None:
            raise NotFound(
                f"no model named {name!r}", hint="list models with 'modelloop models list'"
            )
        return model_id

    def _history(
        self,
        conn,
        model_id,
        action,
        *,
        version=None,
        alias=None,
        from_version=None,
        actor=None,
        reason=None,
    ):
        conn.execute(
            model_history.insert().values(
                model_id=model_id,
                time=utcnow(),
                action=action,
                version=version,
                alias=alias,
                from_version=from_version,
                actor=actor,
                reason=reason,
            )
        )

    def register_model_version(
        self,
        *,
        name,
        files,
        manifest,
        package_hash,
        flavor,
        task,
        job_id,
        actor,
        description=None,
        holds_code=False,
        trust=None,
    ) -> dict:
        now = utcnow()
        trusted = (
            {}
            if not trust
            else {
                "trusted_by": trust["actor"],
                "trusted_at": now,
                "trusted_reason": trust["reason"],
            }
        )
        with self._write() as conn:
            model_id = conn.execute(
                sa.select(models.c.id).where(models.c.name == name).with_for_update()
            ).scalar()
            if model_id is None:
                model_id = conn.execute(
                    models.insert().values(name=name, created_at=now)
                ).inserted_primary_key[0]
            version = (
                conn.execute(
                    sa.select(sa.func.max(model_versions.c.version)).where(
                        model_versions.c.model_id == model_id
                    )
                ).scalar()
                or 0
            ) + 1
            version_id = conn.execute(
                model_versions.insert().values(
                    model_id=model_id,
                    version=version,
                    created_at=now,
                    created_by=actor,
                    status=ApprovalStatus.PENDING,
                    package_hash=package_hash,
                    flavor=flavor,
                    task=task,
                    job_id=job_id,
                    manifest=json.dumps(manifest, default=str),
                    description=description,
                    holds_code=bool(holds_code),
                    **trusted,
                )
            ).inserted_primary_key[0]
            conn.execute(
                model_files.insert(),
                [
                    {
                        "version_id": version_id,
                        "path": f["path"],
                        "digest": f["digest"],
                        "size": f["size"],
                    }
                    for f in files
                ],
            )
            self._history(conn, model_id, "registered", version=version, actor=actor)
            insert_event(
                conn,
                "model.registered",
                f"{name}@{version}",
                {"model": name, "version": version, "job_id": job_id, "actor": actor},
            )
            if trust:
                self._trusted(conn, model_id, name, version, trust["actor"], trust["reason"])
        return self.get_model_version(name, version)

    def _trusted(self, conn, model_id, name, version, actor, reason):
        self._history(conn, model_id, "trusted", version=version, actor=actor, reason=reason)
        insert_event(
            conn,
            "model.trusted",
            f"{name}@{version}",
            {"model": name, "version": version, "actor": actor, "reason": reason},
        )

    def trust_model_version(self, name, version, *, actor, reason) -> dict:
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.trusted_by is not None:
                raise InvalidInput(f"{name}@{version} is already trusted (by {row.trusted_by})")
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == row.id)
                .values(trusted_by=actor, trusted_at=utcnow(), trusted_reason=reason)
            )
            self._trusted(conn, model_id, name, version, actor, reason)
        return self.get_model_version(name, version)

    def _versions_q(self):
        return sa.select(model_versions, models.c.name).join(
            models, models.c.id == model_versions.c.model_id
        )

    @staticmethod
    def _mv(row) -> dict:
        out = row_dict(row)
        out["manifest"] = json.loads(out["manifest"])
        return out

    def get_model_version(self, name, version=None):
        q = self._versions_q().where(models.c.name == name)
        q = (
            q.order_by(model_versions.c.version.desc()).limit(1)
            if version is None
            else q.where(model_versions.c.version == version)
        )
        with self._read() as conn:
            row = conn.execute(q).first()
            return self._mv(row) if row else None

    def get_model(self, name):
        with self._read() as conn:
            row = conn.execute(sa.select(models).where(models.c.name == name)).first()
            return row_dict(row) if row else None

    def list_models(self, *, limit=None, offset=0):
        with self._read() as conn:
            page = _page(sa.select(models).order_by(models.c.name), limit, offset)
            rows = [row_dict(r) for r in conn.execute(page)]
            if not rows:
                return rows
            ids = sa.select(page.subquery().c.id)  # the page's models, however many
            latest = dict(conn.execute(
                sa.select(model_versions.c.model_id, sa.func.max(model_versions.c.version))
                .where(model_versions.c.model_id.in_(ids)).group_by(model_versions.c.model_id)
            ).all())  # fmt: skip
            aliases: dict = {}
            q = sa.select(model_aliases).where(model_aliases.c.model_id.in_(ids))
            for a in conn.execute(q.order_by(model_aliases.c.alias)):
                aliases.setdefault(a.model_id, {})[a.alias] = a.version
            for r in rows:
                r["latest_version"] = latest.get(r["id"])
                r["aliases"] = aliases.get(r["id"], {})
            return rows

    def list_model_versions(self, name, *, limit=None, offset=0, newest_first=False):
        order = model_versions.c.version.desc() if newest_first else model_versions.c.version
        q = _page(self._versions_q().where(models.c.name == name).order_by(order), limit, offset)
        with self._read() as conn:
            return [self._mv(r) for r in conn.execute(q)]

    def model_aliases(self, name):
        q = (
            sa.select(model_aliases.c.alias, model_aliases.c.version)
            .join(models, models.c.id == model_aliases.c.model_id)
            .where(models.c.name == name)
            .order_by(model_aliases.c.alias)
        )
        with self._read() as conn:
            return {r.alias: r.version for r in conn.execute(q)}

    def model_files(self, name, version):
        q = (
            sa.select(model_files.c.path, model_files.c.digest, model_files.c.size)
            .join(model_versions, model_versions.c.id == model_files.c.version_id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == name, model_versions.c.version == version)
            .order_by(model_files.c.path)
        )
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(q)]

    def _locked_version(self, conn, name, version):
        model_id = self._model_id(conn, name, lock=True)
        row = conn.execute(
            sa.select(model_versions).where(
                model_versions.c.model_id == model_id, model_versions.c.version == version
            )
        ).first()
        if row is None:
            raise NotFound(
                f"model {name!r} has no version {version}",
                hint=f"see its versions with 'modelloop models show {name}'",
            )
        return model_id, row

    def set_model_status(self, name, version, status, *, actor, reason, allowed_from) -> dict:
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.status == status:
                raise InvalidInput(f"{name}@{version} is already {status}")
            if row.status not in allowed_from:
                raise InvalidInput(
                    f"{name}@{version} is {row.status}; it cannot become {status} this way",
                    hint="approving a rejected version needs --force and a --reason",
                )
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == row.id)
                .values(status=status, status_by=actor, status_at=utcnow(), status_reason=reason)
            )
            self._history(conn, model_id, status, version=version, actor=actor, reason=reason)
            insert_event(
                conn,
                f"model.{status}",
                f"{name}@{version}",
                {
                    "model": name,
                    "version": version,
                    "from_status": row.status,
                    "actor": actor,
                    "reason": reason,
                },
            )
        return self.get_model_version(name, version)

    def move_alias(
        self,
        name,
        alias,
        version,
        *,
        actor,
        reason,
        action="alias_set",
        expected=-1,
        allowed_status=None,
    ):
        """Point ``alias`` at ``version`` (None removes it). With ``expected`` (not -1), only if the
        alias currently points there — a compare-and-set for rollbacks. With ``allowed_status``,
        only if the version's status is one of them, checked in the same transaction as the move
        (an approval gate a concurrent reject cannot slip past). Returns the previous version."""
        with self._write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            if version is not None:
                _, row = self._locked_version(conn, name, version)
                if allowed_status is not None and row.status not in allowed_status:
                    gate = "approved" if tuple(allowed_status) == (ApprovalStatus.APPROVED,) else "not rejected"
                    raise InvalidInput(
                        f"{name}@{version} is {row.status}; alias {alias!r} points only at "
                        f"{gate} versions",
                        hint=f"approve it first ('modelloop models approve {name}@{version}'), or "
                        "pass --force with a --reason"
                        if row.status == ApprovalStatus.PENDING
                        else "pass --force with a --reason to point it there anyway",
                    )
            current = conn.execute(
                sa.select(model_aliases).where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
                )
            ).first()
            previous = current.version if current else None
            if expected != -1 and previous != expected:
                raise AlreadyExists(
                    f"alias {alias!r} of {name} moved meanwhile (now {previous})",
                    hint="run the command again",
                )
            if version is not None and previous == version:
                return previous  # no change: no history line, no event
            if version is None:
                if current is None:
                    raise NotFound(f"model {name!r} has no alias {alias!r}")
                conn.execute(model_aliases.delete().where(model_aliases.c.id == current.id))
            elif current is None:
                conn.execute(
                    model_aliases.insert().values(
                        model_id=model_id, alias=alias, version=version, updated_at=utcnow()
                    )
                )
            else:
                conn.execute(
                    model_aliases.update()
                    .where(model_aliases.c.id == current.id)
                    .values(version=version, updated_at=utcnow())
                )
            self._history(
                conn,
                model_id,
                action if version is not None else "alias_removed",
                version=version,
                alias=alias,
                from_version=previous,
                actor=actor,
                reason=reason,
            )
            insert_event(
                conn,
                "model.alias_moved" if version is not None else "model.alias_removed",
                f"{name}@{alias}",
                {
                    "model": name,
                    "alias": alias,
                    "version": version,
                    "from_version": previous,
                    "action": action,
                    "actor": actor,
                    "reason": reason,
                },
            )
        return previous

    def model_history(self, name, *, limit=None, offset=0, newest_first=False):
        order = model_history.c.id.desc() if newest_first else model_history.c.id
        q = (
            sa.select(model_history)
            .join(models, models.c.id == model_history.c.model_id)
            .where(models.c.name == name)
            .order_by(order)
        )
        q = _page(q, limit, offset)
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(q)]

    def mark_model_deployed(self, name, version, *, actor, where):
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.deployed_at is None:
                conn.execute(
                    model_versions.update()
                    .where(model_versions.c.id == row.id)
                    .values(deployed_at=utcnow())
                )
            self._history(conn, model_id, "deployed", version=version, actor=actor, reason=where)

    def delete_model_version(self, name, version, *, actor, reason):
        with self._write() as conn:
            model_id, row = self._locked_version(conn, name, version)
            if row.deployed_at is not None:
                raise InvalidInput(
                    f"{name}@{version} has been deployed and is kept for audit",
                    hint="reject it instead: 'modelloop models reject'",
                )
            aliases = [
                a.alias
                for a in conn.execute(
                    sa.select(model_aliases).where(
                        model_aliases.c.model_id == model_id, model_aliases.c.version == version
                    )
                )
            ]
            if aliases:
                raise InvalidInput(
                    f"{name}@{version} is aliased as {', '.join(aliases)}",
                    hint="move those aliases first",
                )
            conn.execute(model_files.delete().where(model_files.c.version_id == row.id))
            conn.execute(model_versions.delete().where(model_versions.c.id == row.id))
            self._history(conn, model_id, "deleted", version=version, actor=actor, reason=reason)
            insert_event(
                conn, "model.deleted", f"{name}@{version}", {"model": name, "version": version}
            )
