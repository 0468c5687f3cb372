"""Jobs run inline (in the caller's process) leave that process as they found it.

An inline job is made cancellable by raising an exception into its thread
(``PyThreadState_SetAsyncExc``). Withdrawing that exception by passing NULL left CPython's
"asynchronous exception pending" flag set for the whole interpreter: from then on every thread
took the slow path at every function entry, and under a tracer (a debugger, ``coverage``,
``cProfile``) the first function called never started. These tests run in a child interpreter,
so a hang ends at the timeout instead of stalling the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import sys, threading
    import numpy as np, pandas as pd
    from modelloop import Workspace

    root, csv, cancel = sys.argv[1], sys.argv[2], sys.argv[3] == "cancel"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=(x[:, 0] > 0).astype(int))
    frame.to_csv(csv, index=False)
    with Workspace.init(root) as ws:
        ws.datasets.ingest("t", [csv])
        job = ws.training.train("t", "y", "logistic_regression")
        assert job["status"] == "succeeded", job
        if cancel:  # a job interrupted from another thread, as a cancel or timeout does
            from modelloop.training import job_runners

            key = (ws.store.url, 10_000)
            started, hold = threading.Event(), threading.Event()

            def body():
                try:
                    with job_runners.INLINE.cancellable(key):
                        started.set()
                        while True:
                            hold.wait(0.01)
                except BaseException as exc:
                    print("interrupted by", type(exc).__name__, flush=True)

            thread = threading.Thread(target=body)
            thread.start()
            started.wait()
            assert job_runners.INLINE.interrupt(key)
            thread.join()

    calls = []
    sys.settrace(lambda frame, event, arg: calls.append(event))  # what a debugger does

    def called():
        return 1

    called()
    sys.settrace(None)
    print("traced", len(calls) > 0, flush=True)
    """
)


def _run_child(tmp_path, mode):
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "ws"), str(tmp_path / "t.csv"), mode],
        capture_output=True, text=True, timeout=90,
        env={"MODELLOOP_JOB_RUNNER": "inline", "PATH": "/usr/bin:/bin",
             "HOME": str(tmp_path)},
    )  # fmt: skip


def test_a_tracer_still_runs_after_an_inline_job(tmp_path):
    result = _run_child(tmp_path, "plain")
    assert result.returncode == 0, result.stderr
    assert "traced True" in result.stdout


def test_a_tracer_still_runs_after_an_inline_job_was_interrupted(tmp_path):
    result = _run_child(tmp_path, "cancel")
    assert result.returncode == 0, result.stderr
    assert "interrupted by JobCancelled" in result.stdout
    assert "traced True" in result.stdout
