"""A stand-in for ``modelloop.api.auth`` while ``modelloop.access`` is not installed: only the
local caller (``[api] auth = "none"``, loopback) gets in. Removed when access lands."""

from __future__ import annotations

from dataclasses import dataclass

from modelloop.errors import ModelloopError


class Unauthenticated(ModelloopError):
    status = 401


class Forbidden(ModelloopError):
    status = 403


ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    token_id: int | None = None
    kind: str = "user"


def local_principal() -> Principal:
    from modelloop.config import current_actor

    return Principal(current_actor(), "admin")


def authenticate(ws, header, *, anonymous=None) -> Principal:
    if anonymous is not None and header is None:
        return anonymous
    raise Unauthenticated("this server cannot check tokens yet")


def require(principal: Principal, role: str) -> None:
    if ROLES.index(principal.role) < ROLES.index(role):
        raise Forbidden(f"{principal.name} is a {principal.role}; this needs {role}")


def audit(ws, principal, action, *, arguments=None, subject=None, error=None, source="api") -> int:
    return 0
