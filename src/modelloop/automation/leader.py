"""Leadership: of several controllers on one workspace, exactly one acts at a time.

The leader holds a lease row in the metadata store (``leases``, on SQLite and PostgreSQL alike;
an advisory lock would tie leadership to one database connection and say nothing on SQLite). A
heartbeat thread renews it every quarter of its time to live, so a long tick (a monitor run)
never loses it; standbys try to take it at the same pace, and one of them gets it within
``ttl`` + ``ttl / 4`` seconds of the leader's death.

A leader that cannot renew (the store is unreachable, the process was paused) stops acting
before its lease runs out: it counts its own deadline from the moment it *sent* the renewal, on
its monotonic clock, and gives up a margin before it. The store set the expiry later than that
moment on its own clock, so the local deadline always comes first. ``term`` (a fencing token)
grows with each new holder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

LEASE = "controller"


def holder_id() -> str:
    """Who this process is, for a person reading ``controller status``: host, pid, and a
    random tail (two processes of one pid on different boots or containers differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leader:
    """The lease ``name`` held (or wanted) by ``holder``. :attr:`leading` says whether this
    process may act now; it turns false on its own when renewals stop succeeding."""

    def __init__(self, store, *, name: str = LEASE, holder: str | None = None,
                 ttl: float = 10.0, on_change: Callable[[str], None] | None = None):  # fmt: skip
        if not ttl > 0:
            from modelloop.errors import InvalidInput

            raise InvalidInput(f"the lease must last some time, not {ttl!r} s",
                               hint="give --lease-seconds a positive number, e.g. 10")
        self.store = store
        self.name = name
        self.holder = holder or holder_id()
        self.ttl = float(ttl)
        self.margin = min(self.ttl / 4, 2.0)  # stop acting this long before the lease runs out
        self.term: int | None = None
        self.error: str | None = None  # the last renewal's failure, for the progress line
        self._valid_until = 0.0
        self._on_change = on_change
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._valid_until

    @property
    def beating(self) -> bool:
        """Whether the heartbeat thread renews the lease (between :meth:`start` and
        :meth:`release`)."""
        return self._thread is not None and not self._stop.is_set()

    def try_lead(self) -> bool:
        """Renew the lease or take it if it is free; whether this process leads now."""
        with self._lock:
            was = self.leading
            sent = time.monotonic()
            try:
                lease = self.store.acquire_lease(self.name, self.holder, self.ttl)
                self.error = None
            except Exception as exc:  # noqa: BLE001 - the store is down: stop leading in time
                lease, self.error = None, f"{type(exc).__name__}: {exc}"
                if self.leading:  # keep acting only until the deadline of the last renewal
                    return True
            if lease is None:
                self._valid_until = 0.0
            else:
                self._valid_until = sent + self.ttl - self.margin
                if lease["term"] != self.term:
                    was = False  # a new term (taken back after it ran out) is a new leadership
                self.term = lease["term"]
            now = self.leading
        if now != was and self._on_change:
            self._on_change("leading" if now else "standby")
        return now

    def current(self) -> dict | None:
        """The lease as the store has it (who leads, until when), or None if never taken."""
        return self.store.get_lease(self.name)

    # -- the heartbeat --------------------------------------------------------------------------
    def start(self) -> None:
        """Try to lead now, then renew (or try to take over) every quarter of the lease."""
        self.try_lead()
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="modelloop-lease",
                                            daemon=True)  # fmt: skip
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            self.try_lead()

    def release(self) -> None:
        """Stop the heartbeat and let the lease go, so a standby takes over at once instead of
        after the lease runs out (a graceful stop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl)
        with self._lock:
            was, self._valid_until = self.leading, 0.0
            with contextlib.suppress(Exception):  # unreachable: the lease runs out by itself
                self.store.release_lease(self.name, self.holder)
        if was and self._on_change:
            self._on_change("released")
