"""Fail points for crash tests: ``MODELLOOP_FAULT=<name>`` makes the process SIGKILL itself there.

``MODELLOOP_BARRIER=<name>:<folder>:<n>`` makes the process wait there until ``n`` processes
reached it (each leaves a file in ``folder``), so that race tests make the race certain.

Crash safety is a promise ("a killed process leaves nothing half-written"); killing a process at a
named point is the only deterministic way to test every step of a write (the technique of etcd's
gofail and TiKV's fail-rs). Unset, a checkpoint costs two dictionary lookups.
"""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    if os.environ.get("MODELLOOP_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    barrier = os.environ.get("MODELLOOP_BARRIER")
    if barrier and barrier.startswith(name + ":"):
        _wait_at_barrier(*barrier[len(name) + 1 :].rsplit(":", 1))


def _wait_at_barrier(folder: str, n: str, limit: float = 120.0) -> None:
    """Leave a mark in ``folder`` and wait until ``n`` marks are there (at most ``limit`` s)."""
    import time
    from pathlib import Path

    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + limit
    while len(os.listdir(folder)) < int(n) and time.monotonic() < deadline:
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
