"""``modelloop up``'s stream consumers: one ``modelloop data stream`` child per consumer recorded
in the store (``ws.streams.consumers()``: each ``data stream`` run records its source and
options), kept in step with the store as ``up`` runs.

A consumer that exits (refused because another runs elsewhere: the store lease allows one per
dataset and source; stopped by a batch with a new column) is not fatal to the rest: it is
started again after a pause that doubles up to a minute, so a stuck one does not spin.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

#: Seconds between looks at the recorded consumers.
EVERY = 2.0
#: The longest pause before a consumer that exited is started again.
MAX_PAUSE = 60.0


def consumer_argv(base: list[str], c: dict) -> list[str]:
    """The ``modelloop data stream`` command of a recorded consumer ``c``."""
    o = c["options"]
    argv = [*base, "data", "stream", c["dataset"], "--from", c["url"],
            "--every-rows", str(o.get("every_rows", 10_000)),
            "--every-seconds", repr(float(o.get("every_seconds", 60.0)))]
    for k in o.get("key_columns") or ():
        argv += ["--key", k]
    if o.get("event_time_column"):
        argv += ["--event-time", o["event_time_column"]]
    if o.get("allow_schema_evolution"):
        argv.append("--allow-schema-evolution")
    if o.get("consumer"):
        argv += ["--consumer", o["consumer"]]
    return argv


class StreamConsumers:
    """The consumer children of one ``up``. ``start(label, argv)`` starts a child (its lines in
    the log view under ``label``), ``stop(label, proc)`` stops one, ``say`` writes a line."""

    def __init__(self, ws, base: list[str], *, start: Callable[[str, list[str]], subprocess.Popen],
                 stop: Callable[[str, subprocess.Popen], None], say: Callable[[str], None]):
        self.ws, self.base = ws, base
        self.start, self.stop, self.say = start, stop, say
        self.children: dict[tuple[str, str], tuple[str, subprocess.Popen]] = {}
        self.pauses: dict[tuple[str, str], tuple[float, float]] = {}  # key: (not before, pause)
        self.synced = float("-inf")

    def wanted(self) -> dict[tuple[str, str], tuple[str, list[str]]]:
        out: dict[tuple[str, str], tuple[str, list[str]]] = {}
        for c in self.ws.streams.consumers():
            label = f"stream:{c['dataset']}"
            if any(lab == label for lab, _ in out.values()):  # a second source of the dataset
                label += f"<{c['source']}"
            out[(c["dataset"], c["source"])] = (label, consumer_argv(self.base, c))
        return out

    def sync(self) -> None:
        """Every ``EVERY`` seconds: start the recorded consumers not running, stop those no
        longer recorded (their dataset was deleted)."""
        now = time.monotonic()
        if now - self.synced < EVERY:
            return
        self.synced = now
        try:
            wanted = self.wanted()
        except Exception as exc:  # the store may be down for a moment: try again
            self.say(f"stream consumers: {type(exc).__name__}: {exc}")
            return
        for key in sorted(set(self.children) - set(wanted)):
            self.stop(*self.children.pop(key))
        for key, (label, argv) in wanted.items():
            running = self.children.get(key)
            if running is not None and running[1].poll() is None:
                continue
            if running is not None:
                pause = min(MAX_PAUSE, self.pauses.get(key, (0.0, 1.0))[1] * 2)
                self.pauses[key] = (now + pause, pause)
                self.say(f"{label} exited with code {running[1].returncode}; starting it again "
                         f"in {pause:g} s")
                del self.children[key]
            if now < self.pauses.get(key, (0.0, 0.0))[0]:
                continue
            self.children[key] = (label, self.start(label, argv))

    def stop_all(self) -> None:
        for key in list(self.children):
            self.stop(*self.children.pop(key))
