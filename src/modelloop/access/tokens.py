"""API tokens: ``ml_<id>_<secret>``, a 256-bit secret stored as an argon2id hash, shown once.

Verifying a token costs one argon2 hash (tens of milliseconds, on purpose), so each process
verifies a token once and then keeps it in a cache keyed by the sha256 of the presented text;
a cached token is re-read from the store at most every :data:`RECHECK_SECONDS`, so a revoke
made anywhere takes effect within that time, and its expiry is checked on every call. A request
with a known token thus costs a dictionary look-up. A token whose secret matched but whose row is
revoked or expired is remembered too (with the row's hash), so presenting it again costs no hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from modelloop.common.durations import parse_duration
from modelloop.config import current_actor
from modelloop.errors import Forbidden, InvalidInput, NotFound, RateLimited, Unauthenticated

#: Roles, weakest first: each can do what the ones before it can.
ROLES = ("viewer", "operator", "admin")

#: Token names: like other names in a workspace, but starting with a letter (so NAME|ID is clear).
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
TOKEN_RE = re.compile(r"^ml_([0-9]{1,18})_([A-Za-z0-9_-]{43})$", re.ASCII)
#: How long a verified token is trusted before its row is read again (revocation, expiry).
RECHECK_SECONDS = 5.0
#: How often ``last_used_at`` is written for a token in use.
TOUCH_SECONDS = 60.0
_CACHE_LIMIT = 10_000
#: argon2 hashes one process computes at once, and how long a check waits for its turn: a flood
#: of made-up secrets for a real token id costs a server this much CPU at most (then 429s).
MAX_HASHING = 2
HASH_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token (``token_id`` set) or a local user (the OS user, role admin)."""

    name: str
    role: str
    token_id: int | None = None

    @property
    def kind(self) -> str:
        return "user" if self.token_id is None else "token"


def local_principal() -> Principal:
    """The person at this machine (CLI, SDK without a URL): they hold the store's files, so
    they are admin."""
    return Principal(current_actor(), "admin", None)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", hint=f"roles are {', '.join(ROLES)}")
    return role


def require(principal: Principal, role: str) -> None:
    """:class:`Forbidden` unless ``principal``'s role is ``role`` or above."""
    if ROLES.index(principal.role) < ROLES.index(check_role(role)):
        raise Forbidden(f"{principal.kind} {principal.name!r} has role {principal.role}; "
                        f"this needs {role}", hint=f"use a token with role {role} or above")  # fmt: skip


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None without a header; another scheme
    or an empty token is :class:`Unauthenticated`."""
    if authorization_header is None:
        return None
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'",
                              hint="send 'Authorization: Bearer ml_…' (modelloop token create)")  # fmt: skip
    return token.strip()


def _hasher():
    from argon2 import PasswordHasher

    # OWASP's argon2id minimum (19 MiB, 2 passes): the secret is 256 random bits, so the hash
    # guards against a leaked table, not against guessing; a heavier setting only slows requests.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass
class _Verified:
    principal: Principal
    expires_at: datetime | None
    checked: float  # monotonic time of the last store read
    touched: float


@dataclass
class _Dead:
    """A token whose secret matched ``hash`` but whose row was revoked or expired: the verdict
    is repeated without a hash (and, within :data:`RECHECK_SECONDS`, without a store read)."""

    hash: str
    message: str
    hint: str | None
    checked: float

    def error(self) -> Unauthenticated:
        return Unauthenticated(self.message, hint=self.hint)


def _public(row: dict, now: datetime | None = None) -> dict:
    """A token row for people: no hash, and its state."""
    now = now or datetime.now(UTC)
    out = {k: v for k, v in row.items() if k != "hash"}
    out["state"] = ("revoked" if row["revoked_at"] else
                    "expired" if row["expires_at"] and row["expires_at"] <= now else "active")  # fmt: skip
    return out


class Tokens:
    """API tokens of one workspace (``ws.tokens``): create, list, revoke, verify."""

    def __init__(self, store):
        self.store = store
        self._cache: dict[str, _Verified] = {}
        self._refused: dict[str, float] = {}  # sha256 -> monotonic time: wrong secrets, briefly
        self._dead: dict[str, _Dead] = {}  # sha256 -> right secret, revoked or expired row
        self._lock = threading.Lock()
        self._hashing = threading.BoundedSemaphore(MAX_HASHING)

    def create(self, name: str, role: str = "viewer", *, expires: str | None = None,
               created_by: str | None = None) -> dict:  # fmt: skip
        """A new token named ``name`` with ``role``, expiring after ``expires`` (``90d``; None:
        never). The result holds the token itself under ``"token"``: the only time it is shown."""
        if not NAME_RE.match(name):
            raise InvalidInput(f"invalid token name {name!r}",
                               hint="a letter, then letters, digits, '.', '_' or '-' (at most 128)")  # fmt: skip
        check_role(role)
        expires_at = None
        if expires is not None:
            delta = parse_duration(expires, what="--expires")
            if delta.total_seconds() <= 0:
                raise InvalidInput(f"--expires {expires!r} must be in the future", hint="e.g. 90d")
            try:
                expires_at = datetime.now(UTC) + delta
            except OverflowError:
                raise InvalidInput(f"--expires {expires!r} is too far", hint="e.g. 90d") from None
        secret = secrets.token_urlsafe(32)  # 256 bits, 43 characters
        row = self.store.create_token(name=name, role=role, hash=_hasher().hash(secret),
                                      expires_at=expires_at, created_by=created_by or current_actor())  # fmt: skip
        return {**_public(row), "token": f"ml_{row['id']}_{secret}"}

    def list(self, *, include_revoked: bool = False) -> list[dict]:
        """Tokens (never their secrets), with their ``state``: active, expired or revoked."""
        now = datetime.now(UTC)
        return [_public(r, now) for r in self.store.list_tokens(include_revoked=include_revoked)]

    def get(self, token: str) -> dict:
        """The token named ``token`` (not revoked), or with that id."""
        return _public(self._row(token))

    def revoke(self, token: str) -> dict:
        """Revoke the token named ``token`` (the one not yet revoked), or with that id. It stops
        working at once in this process and within :data:`RECHECK_SECONDS` in every other."""
        row = self.store.revoke_token(self._row(token)["id"])
        with self._lock:
            for key in [k for k, v in self._cache.items() if v.principal.token_id == row["id"]]:
                del self._cache[key]
        return _public(row)

    def _row(self, token: str) -> dict:
        text = str(token).strip()
        if text.isascii() and text.isdigit():
            row = self.store.get_token(int(text)) if len(text) < 19 else None
        else:
            row = next((r for r in self.store.list_tokens() if r["name"] == text), None)
        if row is None:
            raise NotFound(f"no token {text!r}", hint="modelloop token list shows them")
        return row

    def verify(self, token: str | None) -> Principal:
        """Who presents ``token``; :class:`Unauthenticated` if it is missing, malformed, unknown,
        expired or revoked."""
        if not token:
            raise Unauthenticated("this needs an API token",
                                  hint="send 'Authorization: Bearer ml_…' (modelloop token create)")  # fmt: skip
        return self.cached(token) or self._verify_with_store(token)

    def cached(self, token: str | None) -> Principal | None:
        """Who presents ``token`` if that is known without the store or a hash (verified in this
        process less than :data:`RECHECK_SECONDS` ago), else None: then :meth:`verify`, which
        may block (an async server calls it in a thread). Expired: :class:`Unauthenticated`."""
        if not token:
            return None
        key, entry, clock = self._look_up(token)
        with self._lock:
            dead = self._dead.get(key)
        if dead is not None and clock - dead.checked < RECHECK_SECONDS:
            raise dead.error()
        if entry is None or clock - entry.checked >= RECHECK_SECONDS:
            return None
        self._check_expiry(entry.expires_at, entry.principal.name)
        return entry.principal

    def _look_up(self, token: str) -> tuple[str, _Verified | None, float]:
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            return key, self._cache.get(key), time.monotonic()

    def _verify_with_store(self, token: str) -> Principal:
        key, entry, clock = self._look_up(token)
        unknown = Unauthenticated("the API token is not valid",
                                  hint="check MODELLOOP_TOKEN, or create one (modelloop token create)")  # fmt: skip
        m = TOKEN_RE.match(token)
        if m is None:
            raise unknown
        with self._lock:
            refused, dead = self._refused.get(key), self._dead.get(key)
        if entry is None and refused is not None and clock - refused < RECHECK_SECONDS:
            raise unknown  # the same wrong token again: no second argon2 hash
        if dead is not None and clock - dead.checked < RECHECK_SECONDS:
            raise dead.error()  # the same revoked or expired token again: no store, no hash
        row = self.store.get_token(int(m.group(1)))
        # the secret is known to match when it did before against this very hash
        known = entry is not None or (
            dead is not None and row is not None and row["hash"] == dead.hash
        )
        if not known and (row is None or not self._secret_matches(row["hash"], m.group(2))):
            with self._lock:
                if len(self._refused) >= _CACHE_LIMIT:
                    self._refused.clear()
                self._refused[key] = clock
            raise unknown
        try:
            if row is None or row["revoked_at"] is not None:
                self._forget(key)
                raise Unauthenticated(f"the API token {row['name'] if row else ''!r} was revoked",
                                      hint="ask an admin for a new one (modelloop token create)")  # fmt: skip
            self._check_expiry(row["expires_at"], row["name"])
        except Unauthenticated as exc:
            if row is not None:  # its secret matched: remember the verdict, not to hash again
                with self._lock:
                    if len(self._dead) >= _CACHE_LIMIT:
                        self._dead.clear()
                    self._dead[key] = _Dead(row["hash"], exc.message, exc.hint, clock)
            raise
        principal = Principal(row["name"], row["role"], row["id"])
        touched = entry.touched if entry is not None else -TOUCH_SECONDS
        if clock - touched >= TOUCH_SECONDS:
            self.store.touch_token(row["id"], datetime.now(UTC))
            touched = clock
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = _Verified(principal, row["expires_at"], clock, touched)
            self._dead.pop(key, None)
        return principal

    def _secret_matches(self, hash: str, secret: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        if not self._hashing.acquire(timeout=HASH_WAIT_SECONDS):
            raise RateLimited("too many API tokens are being checked at once",
                              retry_after=1.0, hint="retry in a second")  # fmt: skip
        try:
            return _hasher().verify(hash, secret)
        except (VerificationError, InvalidHashError):
            return False
        finally:
            self._hashing.release()

    @staticmethod
    def _check_expiry(expires_at: datetime | None, name: str) -> None:
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise Unauthenticated(f"the API token {name!r} expired at {expires_at:%Y-%m-%d %H:%M} UTC",
                                  hint="ask an admin for a new one (modelloop token create)")  # fmt: skip

    def _forget(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)
