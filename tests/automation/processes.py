"""A ``modelloop`` command run as a process, as from a terminal, its output read as it comes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from tests.foreground import foreground, wait_for


class Command:
    """A ``modelloop`` command started as from a terminal; its output lines (stdout and stderr
    together) collected as they come."""

    def __init__(self, root, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelloop", "-w", str(root), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=foreground,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
        self.pid, self.lines = self.proc.pid, []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout))
        self.reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, limit: float = 120):
        return wait_for(lambda: next((ln for ln in list(self.lines) if text in ln), None), limit)

    def stop(self, sig=signal.SIGTERM, limit: float = 120) -> int:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
        try:
            self.proc.wait(limit)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.reader.join(limit)
        return self.proc.returncode
