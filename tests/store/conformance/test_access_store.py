"""Conformance: AccessStore (store/interfaces/access.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from modelloop.errors import AlreadyExists


def _token(store, name="ci", **kw):
    fields = {"role": "viewer", "hash": "$argon2id$x", "expires_at": None, "created_by": "me"}
    return store.create_token(name=name, **(fields | kw))


def test_a_name_is_unique_among_tokens_not_revoked(store):
    first = _token(store, expires_at=datetime.now(UTC) - timedelta(days=1))  # expired, not revoked
    assert first["name"] == "ci" and first["revoked_at"] is None and first["created_at"].tzinfo
    with pytest.raises(AlreadyExists, match="revoke it first"):
        _token(store)
    revoked = store.revoke_token(first["id"])
    assert revoked["revoked_at"] is not None
    assert store.revoke_token(first["id"])["revoked_at"] == revoked["revoked_at"]  # kept
    second = _token(store, role="admin")
    assert second["id"] > first["id"] and second["role"] == "admin"
    assert [t["id"] for t in store.list_tokens()] == [second["id"]]
    assert [t["id"] for t in store.list_tokens(include_revoked=True)] == [first["id"], second["id"]]
    assert store.get_token(first["id"])["revoked_at"] == revoked["revoked_at"]
    assert store.get_token(10**9) is None and store.revoke_token(10**9) is None


def test_last_used_only_moves_forward(store):
    token = _token(store)
    later = datetime.now(UTC) + timedelta(minutes=5)
    store.touch_token(token["id"], later)
    store.touch_token(token["id"], later - timedelta(minutes=1))
    assert store.get_token(token["id"])["last_used_at"] == later


def test_audit_records_are_appended_and_filtered(store):
    t0 = datetime.now(UTC) - timedelta(hours=2)
    ids = [
        store.append_audit(actor="ci", actor_kind="token", action="models.approve",
                           subject="m@1", arguments={"reason": "ok"}, outcome="ok", source="api",
                           at=t0),
        store.append_audit(actor="ana", actor_kind="user", action="models.reject",
                           subject=None, arguments={}, outcome="error: NotFound: no m", source="cli"),
        store.append_audit(actor="ci", actor_kind="token", action="datasets.ingest",
                           subject="loans", arguments={"paths": ["a.csv"]}, outcome="ok",
                           source="api"),
    ]  # fmt: skip
    assert ids == sorted(ids)
    rows = store.list_audit()
    assert [r["id"] for r in rows] == ids[::-1]  # newest first
    assert rows[-1]["arguments"] == {"reason": "ok"} and rows[-1]["at"].tzinfo is not None
    assert [r["id"] for r in store.list_audit(actor="ci")] == [ids[2], ids[0]]
    assert [r["id"] for r in store.list_audit(action="models.*")] == [ids[1], ids[0]]
    assert [r["id"] for r in store.list_audit(action="models_*")] == []  # '_' is no wildcard
    assert [r["id"] for r in store.list_audit(source="cli")] == [ids[1]]
    since = t0 + timedelta(hours=1)
    assert [r["id"] for r in store.list_audit(since=since)] == ids[:0:-1]
    assert [r["id"] for r in store.list_audit(until=since)] == [ids[0]]
    assert [r["id"] for r in store.list_audit(limit=1, offset=1)] == [ids[1]]


def test_the_database_refuses_to_change_or_delete_audit_records(store):
    from modelloop.store.tables.access import audit_log

    store.append_audit(actor="ci", actor_kind="token", action="x", subject=None, arguments={},
                       outcome="ok", source="api")  # fmt: skip
    for statement in (audit_log.update().values(actor="someone else"), audit_log.delete()):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(statement)
    assert [r["actor"] for r in store.list_audit()] == ["ci"]
    assert not any(hasattr(store, name) for name in ("update_audit", "delete_audit"))
