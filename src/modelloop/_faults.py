"""Fail points for crash tests: ``MODELLOOP_FAULT=<name>`` makes the process SIGKILL itself there.

Crash safety is a promise ("a killed process leaves nothing half-written"); killing a process at a
named point is the only deterministic way to test every step of a write (the technique of etcd's
gofail and TiKV's fail-rs). Unset, a checkpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    if os.environ.get("MODELLOOP_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
