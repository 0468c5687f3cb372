"""The test suite's own job kinds, ``sleep``, ``fail`` and ``crash``: a job to cancel, kill or
time out, one that fails, and one that takes its process down. They reach every process (this
one, workers, CLI subprocesses) the supported way for job kinds from outside the package:
``$MODELLOOP_JOB_KINDS`` names :func:`register` (set in ``tests/conftest.py``)."""

from __future__ import annotations

import os
import sys
import time

from modelloop.training.job_kinds import register_job_kind


def run_sleep_job(ctx, spec: dict) -> None:
    """Sleep (reporting a heartbeat metric each step): lets tests cancel or kill a running job.
    With ``children: N`` it first starts N child jobs (as a tune job's trials) left running."""
    for number in range(int(spec.get("children", 0))):
        ctx.child_job("trial", f"trial {number}", {"trial": number}, {})
    for step in range(int(spec.get("steps", 10))):
        ctx.recorder.log_metric("heartbeat", step, step=step)
        ctx.recorder.log_text(f"step {step}")
        time.sleep(float(spec.get("seconds", 0.1)))
    ctx.recorder.log_metric("steps", int(spec.get("steps", 10)))


def run_fail_job(ctx, spec: dict) -> None:
    """Fail, after saying so through the recorder and on its own stderr."""
    ctx.recorder.log_text("about to fail")
    print("said on stderr", file=sys.stderr, flush=True)
    raise RuntimeError(spec.get("message", "this job fails on purpose"))


def run_crash_job(ctx, spec: dict) -> None:
    """End the worker process abruptly, past any ``except`` and exit handler: ``os._exit`` or a
    segfault (reading address 0)."""
    ctx.recorder.log_text("about to crash")
    if spec.get("how") == "segfault":
        import ctypes

        ctypes.string_at(0)
    os._exit(int(spec.get("status", 3)))


def register() -> None:
    register_job_kind("sleep", run_sleep_job)
    register_job_kind("fail", run_fail_job)
    register_job_kind("crash", run_crash_job)
