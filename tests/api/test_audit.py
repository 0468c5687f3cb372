"""The audit log (modelloop.access.audit): appended with secrets redacted, read with filters."""

from __future__ import annotations

import pytest

from modelloop.access.audit import outcome_of, redact
from modelloop.errors import InvalidInput, NotFound


def test_secrets_are_redacted_by_name_and_by_look():
    token = "ml_12_" + "a" * 43
    got = redact({"name": "ci", "token": token, "password": "p", "api_key": "k", "tls_key": "x",
                  "nested": [{"Authorization": "Bearer xyz"}, f"--token={token}"],
                  "url": "postgresql://u:hunter2@db/x", "header": "Bearer abc.def",
                  "keys": ["a"], "secret": None, "n": 3})  # fmt: skip
    assert got == {"name": "ci", "token": "***", "password": "***", "api_key": "***",
                   "tls_key": "***", "nested": [{"Authorization": "***"}, "--token=ml_***"],
                   "url": "postgresql://u:***@db/x", "header": "Bearer ***", "keys": ["a"],
                   "secret": None, "n": 3}  # fmt: skip
    assert outcome_of(None) == "ok"
    assert outcome_of(NotFound(f"no {token}")) == "error: NotFound: no ml_***"


def test_records_are_listed_newest_first_with_filters(local_workspace):
    audit = local_workspace.audit
    first = audit.record(actor="ci", actor_kind="token", action="models.approve", subject="m@1",
                         arguments={"reason": "good", "token": "ml_1_x"}, source="api")  # fmt: skip
    second = audit.record(actor="ana", actor_kind="user", action="cli: token create",
                          arguments={"name": "ci"}, outcome="error: boom", source="cli")  # fmt: skip
    rows = audit.list()
    assert [r["id"] for r in rows] == [second, first]
    assert rows[1]["arguments"] == {"reason": "good", "token": "***"}
    assert [r["id"] for r in audit.list(actor="ci", since="1d")] == [first]
    assert [r["id"] for r in audit.list(action="cli:*")] == [second]
    assert audit.list(until="1d") == []
    with pytest.raises(InvalidInput):
        audit.list(limit=5000)
    with pytest.raises(InvalidInput):
        audit.list(since="yesterday-ish")
    with pytest.raises(InvalidInput):
        audit.record(actor="x", actor_kind="robot", action="a")
    assert not any(hasattr(audit, verb) for verb in ("update", "delete", "remove"))
