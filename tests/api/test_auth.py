"""Tokens and roles (modelloop.access.tokens, modelloop.api.auth): hashed, shown once, verified
once per process then cached, refused when missing, wrong, expired or revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelloop.access import tokens as T
from modelloop.api.auth import ROLES, Principal, authenticate, bearer_token, require
from modelloop.errors import AlreadyExists, Forbidden, InvalidInput, NotFound, Unauthenticated


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("auth") / "ws")
    yield ws
    ws.close()


def test_a_token_is_shown_once_and_stored_as_an_argon2_hash(ws):
    made = ws.tokens.create("ci", role="operator", expires="90d")
    token = made["token"]
    assert T.TOKEN_RE.match(token) and token.startswith(f"ml_{made['id']}_")
    assert made["role"] == "operator" and made["state"] == "active" and "hash" not in made
    assert timedelta(days=89) < made["expires_at"] - datetime.now(UTC) <= timedelta(days=90)
    row = ws.store.get_token(made["id"])
    assert row["hash"].startswith("$argon2id$") and token.split("_", 2)[2] not in row["hash"]
    listed = ws.tokens.list()
    assert [t["name"] for t in listed] == ["ci"] and all("token" not in t and "hash" not in t for t in listed)
    principal = authenticate(ws, f"Bearer {token}")
    assert principal == Principal("ci", "operator", made["id"]) and principal.kind == "token"
    assert ws.store.get_token(made["id"])["last_used_at"] is not None
    with pytest.raises(AlreadyExists, match="revoke it first"):
        ws.tokens.create("ci")
    ws.tokens.revoke("ci")


def test_a_known_token_is_verified_from_the_cache(ws, monkeypatch):
    token = ws.tokens.create("cached", role="viewer")["token"]
    assert ws.tokens.verify(token).name == "cached"
    hashes = []
    monkeypatch.setattr(T.Tokens, "_secret_matches", lambda *a: hashes.append(a))
    reads = []
    get_token = ws.store.get_token
    monkeypatch.setattr(ws.store, "get_token", lambda i: reads.append(i) or get_token(i))
    for _ in range(100):
        assert ws.tokens.verify(token).name == "cached"
    assert hashes == [] and reads == []  # no argon2, no store read within RECHECK_SECONDS
    assert ws.tokens.cached(token).name == "cached"  # what an async server asks first
    assert ws.tokens.cached(f"ml_1_{'A' * 43}") is None and ws.tokens.cached(None) is None
    ws.tokens.revoke("cached")


def test_missing_malformed_wrong_expired_and_revoked_tokens_are_401(ws, monkeypatch):
    good = ws.tokens.create("short", role="admin", expires="1h")
    token = good["token"]
    for header in (None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer nonsense",
                   f"Bearer ml_{good['id']}_{'A' * 43}", f"Bearer ml_999999_{'A' * 43}"):  # fmt: skip
        with pytest.raises(Unauthenticated) as err:
            authenticate(ws, header)
        assert err.value.status == 401
    assert authenticate(ws, f"bearer {token}").role == "admin"
    # expired: checked on every call, from the cache too
    later = datetime.now(UTC) + timedelta(hours=2)
    monkeypatch.setattr(T, "datetime", type("D", (), {"now": staticmethod(lambda tz=None: later)}))
    with pytest.raises(Unauthenticated, match="expired"):
        authenticate(ws, f"Bearer {token}")
    monkeypatch.undo()
    # revoked: at once in this process, and in another within RECHECK_SECONDS
    other = T.Tokens(ws.store)
    assert other.verify(token).name == "short"
    assert ws.tokens.revoke(str(good["id"]))["state"] == "revoked"
    with pytest.raises(Unauthenticated, match="revoked"):
        ws.tokens.verify(token)
    monkeypatch.setattr(T, "RECHECK_SECONDS", 0.0)
    with pytest.raises(Unauthenticated, match="revoked"):
        other.verify(token)
    assert "short" not in [t["name"] for t in ws.tokens.list()]
    assert ws.tokens.list(include_revoked=True)[-1]["state"] == "revoked"


def _counting_hasher(monkeypatch) -> list:
    """Patch the module's hasher hook so every argon2 ``verify`` is counted."""
    verified, real = [], T._hasher

    def hasher():
        inner = real()

        class Counting:
            def hash(self, secret):
                return inner.hash(secret)

            def verify(self, hash, secret):
                verified.append(hash)
                return inner.verify(hash, secret)

        return Counting()

    monkeypatch.setattr(T, "_hasher", hasher)
    return verified


def test_a_revoked_or_expired_token_is_hashed_once_not_at_every_presentation(ws, monkeypatch):
    verified = _counting_hasher(monkeypatch)
    gone = ws.tokens.create("gone-again", role="viewer")
    brief = ws.tokens.create("brief-again", role="viewer", expires="1h")
    ws.tokens.revoke("gone-again")
    later = datetime.now(UTC) + timedelta(hours=2)
    monkeypatch.setattr(T, "datetime", type("D", (), {"now": staticmethod(lambda tz=None: later)}))
    tokens = T.Tokens(ws.store)  # another process: nothing cached yet
    for token, why in ((gone["token"], "revoked"), (brief["token"], "expired")):
        for _ in range(3):
            with pytest.raises(Unauthenticated, match=why):
                tokens.verify(token)
    assert len(verified) == 2  # one hash per token, the first time
    monkeypatch.setattr(T, "RECHECK_SECONDS", 0.0)  # past the re-read interval: the row is
    reads = []  # read again (state can only stay dead), the secret is not hashed again
    get_token = ws.store.get_token
    monkeypatch.setattr(ws.store, "get_token", lambda i: reads.append(i) or get_token(i))
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.verify(gone["token"])
    assert reads == [gone["id"]] and len(verified) == 2
    # a wrong secret for a revoked token's id is still a plain wrong token
    with pytest.raises(Unauthenticated, match="not valid"):
        tokens.verify(f"ml_{gone['id']}_{'C' * 43}")
    ws.tokens.revoke("brief-again")


def test_roles_order_what_a_principal_may_do():
    assert ROLES == ("viewer", "operator", "admin")
    viewer, admin = Principal("v", "viewer", 1), Principal("a", "admin", 2)
    require(viewer, "viewer")
    require(admin, "operator")
    with pytest.raises(Forbidden, match="needs operator") as err:
        require(viewer, "operator")
    assert err.value.status == 403
    with pytest.raises(InvalidInput, match="unknown role"):
        require(admin, "root")


def test_bad_token_requests_are_refused_by_name(ws):
    with pytest.raises(InvalidInput, match="unknown role"):
        ws.tokens.create("x", role="root")
    for name in ("1abc", "a b", "", "x" * 200):
        with pytest.raises(InvalidInput, match="invalid token name"):
            ws.tokens.create(name)
    for expires in ("soon", "0d", "-1d"):
        with pytest.raises(InvalidInput, match="expires"):
            ws.tokens.create("x", expires=expires)
    with pytest.raises(NotFound):
        ws.tokens.revoke("nobody")
    with pytest.raises(NotFound):
        ws.tokens.revoke("99999999999999999999999")
    assert bearer_token(None) is None and bearer_token("Bearer  abc ") == "abc"
    assert authenticate(ws, None, anonymous=Principal("me", "admin")).name == "me"


def test_hashing_is_bounded_so_made_up_secrets_cannot_take_every_core(ws, monkeypatch):
    from modelloop.errors import RateLimited

    made = ws.tokens.create("busy", role="viewer")
    tokens = T.Tokens(ws.store)
    monkeypatch.setattr(T, "HASH_WAIT_SECONDS", 0.01)
    for _ in range(T.MAX_HASHING):  # every hashing slot taken (by slow checks elsewhere)
        tokens._hashing.acquire()
    with pytest.raises(RateLimited) as err:
        tokens.verify(f"ml_{made['id']}_{'B' * 43}")
    assert err.value.status == 429
    for _ in range(T.MAX_HASHING):
        tokens._hashing.release()
    assert tokens.verify(made["token"]).name == "busy"
    ws.tokens.revoke("busy")
