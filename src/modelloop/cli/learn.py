"""``modelloop learn``: the learner of an online endpoint, and the learners a server starts.

``modelloop learn NAME`` learns NAME's labelled events in this process while it holds the
endpoint's lease (``automation/learning.py``). ``modelloop serve`` (and so ``up``) keeps one such
process per online endpoint of the workspace (:class:`LearnerChildren`): started when the
endpoint appears, restarted if it dies, stopped when the endpoint goes or the server stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import click

from modelloop.cli import render
from modelloop.cli.context import Context, pass_ctx


@click.command()
@click.argument("name")
@click.option("--lease-seconds", type=float, default=10.0, show_default=True,
              help="The learner's lease: a standby takes over this long after it dies.")
@pass_ctx
def learn(c: Context, name: str, lease_seconds: float) -> None:
    """Learn online endpoint NAME's labelled events until stopped (SIGTERM / Ctrl-C: a last
    checkpoint first). One learner per endpoint learns at a time; others wait as standbys."""
    from modelloop.automation.learning import run_learner
    from modelloop.cli.controller import graceful_stop

    with graceful_stop("checkpointing and stopping the learner") as stop:
        learned = run_learner(c.local_ws, name, stop, lease_seconds=lease_seconds,
                              say=lambda line: click.echo(f"modelloop: {line}", err=True))
    render.note(f"learner of {name} stopped after {learned} events")


def _child_setup() -> None:  # in the child between fork and exec: ended with its parent
    os.setpgrp()
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class LearnerChildren:
    """One ``modelloop learn NAME`` process per online endpoint, kept in step with the store
    every ``every`` seconds (a thread of the server's parent process)."""

    def __init__(self, ws, every: float = 2.0):
        self.ws, self.every = ws, every
        self.children: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="learners", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.sync()
            except Exception as exc:  # the store may be down for a moment: try again
                render.note(f"learners: {type(exc).__name__}: {exc}")
            if self._stop.wait(self.every):
                return

    def sync(self) -> None:
        from modelloop.serving.spec import online_variant

        online = {e["name"] for e in self.ws.endpoints.list() if online_variant(e["spec"])}
        for name in sorted(set(self.children) - online):
            self._end(name)
        for name in sorted(online):
            proc = self.children.get(name)
            if proc is not None and proc.poll() is None:
                continue
            if proc is not None:
                render.note(f"learner of {name} exited ({proc.returncode}); restarting it")
            self.children[name] = subprocess.Popen(
                [sys.executable, "-m", "modelloop", "-w", str(self.ws.root), "learn", name],
                stdin=subprocess.DEVNULL, cwd=self.ws.root, preexec_fn=_child_setup)

    def _end(self, name: str, limit: float = 30.0) -> None:
        proc = self.children.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + limit
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for name in list(self.children):
            self._end(name)
