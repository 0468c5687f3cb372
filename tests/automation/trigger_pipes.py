"""Pipelines the trigger tests start: quick, and one that holds until a file exists."""

from __future__ import annotations

import os
import time
from pathlib import Path

from modelloop.pipelines import pipeline, step


@step(cache=False)
def note(tag: str) -> dict:
    """Leave a mark per run (how many times the action ran), then wait while HOLD exists."""
    folder = Path(os.environ["TRIGGER_TEST_DIR"])
    (folder / f"ran-{tag}-{time.time_ns()}").touch()
    deadline = time.monotonic() + 60
    while (folder / "HOLD").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if (folder / "FAIL").exists():
        raise RuntimeError("asked to fail")
    return {"tag": tag}


@step(cache=False)
def finish(noted: dict) -> dict:
    return {**noted, "finished": True}


@pipeline(name="marker")
def marker(tag: str = "x"):
    finish(note(tag))
