"""Who is calling the control plane, and whether they may: the HTTP side of :mod:`modelloop.access`.

Every route calls :func:`authenticate` with its ``Authorization`` header and :func:`require` with
its operation's least role, and every mutating call is recorded with :func:`audit`. Errors are
:class:`~modelloop.errors.Unauthenticated` (401) and :class:`~modelloop.errors.Forbidden` (403).
"""

from __future__ import annotations

from modelloop.access.audit import outcome_of
from modelloop.access.tokens import ROLES, Principal, bearer_token, local_principal, require
from modelloop.errors import Forbidden, Unauthenticated

__all__ = ["ROLES", "Forbidden", "Principal", "Unauthenticated", "audit", "authenticate",
           "bearer_token", "local_principal", "require"]  # fmt: skip


def authenticate(ws, authorization_header: str | None, *,
                 anonymous: Principal | None = None) -> Principal:  # fmt: skip
    """The caller presenting ``authorization_header``, verified against ``ws.tokens`` (cached:
    microseconds after a token's first use in this process). Without a header: ``anonymous``
    if the server allows it (authentication off on a loopback address), else 401."""
    token = bearer_token(authorization_header)
    if token is None and anonymous is not None:
        return anonymous
    return ws.tokens.verify(token)


def audit(ws, principal: Principal, action: str, *, arguments: dict | None = None,
          subject: str | None = None, error: BaseException | None = None,
          source: str = "api") -> int:  # fmt: skip
    """Record one mutating call (``action`` like ``models.approve``) by ``principal``, ended
    by ``error`` (None: ok); secrets in ``arguments`` are redacted by the audit log."""
    return ws.audit.record(actor=principal.name, actor_kind=principal.kind, action=action,
                           subject=subject, arguments=arguments or {}, outcome=outcome_of(error),
                           source=source)  # fmt: skip
