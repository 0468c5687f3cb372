"""SQL of access: API tokens and the append-only audit log."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from modelloop.errors import AlreadyExists
from modelloop.store.interfaces.access import AccessStore
from modelloop.store.sql.engine import SqlBase, dumps, row_dict, utcnow
from modelloop.store.tables.access import api_tokens, audit_log


def _audit_row(row) -> dict:
    out = row_dict(row)
    out["arguments"] = json.loads(out["arguments"])
    return out


class SqlAccess(SqlBase, AccessStore):
    def create_token(self, *, name: str, role: str, hash: str, expires_at: datetime | None,
                     created_by: str) -> dict:  # fmt: skip
        taken = AlreadyExists(f"a token named {name!r} exists and is not revoked",
                              hint=f"revoke it first (modelloop token revoke {name}), or choose another name")  # fmt: skip
        with self._write() as conn:
            if conn.execute(sa.select(api_tokens.c.id).where(
                    api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))).first():  # fmt: skip
                raise taken
            try:
                with conn.begin_nested():  # the partial unique index settles a race
                    token_id = conn.execute(api_tokens.insert().values(
                        name=name, role=role, hash=hash, created_at=utcnow(),
                        expires_at=expires_at, created_by=created_by,
                    )).inserted_primary_key[0]  # fmt: skip
            except sa.exc.IntegrityError:
                raise taken from None
            return row_dict(conn.execute(
                sa.select(api_tokens).where(api_tokens.c.id == token_id)).one())  # fmt: skip

    def get_token(self, token_id: int) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).first()
            return row_dict(row) if row else None

    def list_tokens(self, *, include_revoked: bool = False) -> list[dict]:
        query = sa.select(api_tokens).order_by(api_tokens.c.id)
        if not include_revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        with self._read() as conn:
            return [row_dict(r) for r in conn.execute(query)]

    def revoke_token(self, token_id: int) -> dict | None:
        where = api_tokens.c.id == token_id
        with self._write() as conn:
            conn.execute(api_tokens.update().where(where, api_tokens.c.revoked_at.is_(None))
                         .values(revoked_at=utcnow()))  # fmt: skip
            row = conn.execute(sa.select(api_tokens).where(where)).first()
            return row_dict(row) if row else None

    def touch_token(self, token_id: int, at: datetime) -> None:
        column = api_tokens.c.last_used_at
        with self._write() as conn:
            conn.execute(api_tokens.update()
                         .where(api_tokens.c.id == token_id, sa.or_(column.is_(None), column < at))
                         .values(last_used_at=at))  # fmt: skip

    def append_audit(self, *, actor: str, actor_kind: str, action: str, subject: str | None,
                     arguments: dict, outcome: str, source: str,
                     at: datetime | None = None) -> int:  # fmt: skip
        with self._write() as conn:
            return conn.execute(audit_log.insert().values(
                at=at or utcnow(), actor=actor, actor_kind=actor_kind, action=action,
                subject=subject, arguments=dumps(arguments), outcome=outcome, source=source,
            )).inserted_primary_key[0]  # fmt: skip

    def list_audit(self, *, since: datetime | None = None, until: datetime | None = None,
                   actor: str | None = None, action: str | None = None,
                   source: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:  # fmt: skip
        c = audit_log.c
        query = sa.select(audit_log).order_by(c.id.desc()).limit(limit).offset(offset)
        if since is not None:
            query = query.where(c.at >= since)
        if until is not None:
            query = query.where(c.at < until)
        if actor is not None:
            query = query.where(c.actor == actor)
        if source is not None:
            query = query.where(c.source == source)
        if action is not None:
            if action.endswith("*"):
                prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(c.action.like(prefix + "%", escape="\\"))
            else:
                query = query.where(c.action == action)
        with self._read() as conn:
            return [_audit_row(r) for r in conn.execute(query)]
