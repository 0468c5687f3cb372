"""A process killed (SIGKILL) in the middle of an ingest leaves all or nothing, and no debris."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from modelloop import Workspace


def _frame(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"id": np.arange(n), "x": rng.normal(size=n), "c": rng.choice(["a", "b"], n)}
    )


def assert_consistent(root, expect_rows: int | None = None):
    """Open the workspace as a fresh process would and check that nothing dangles."""
    ws = Workspace(root)
    ds = ws.datasets  # opening runs recovery of dead writers
    assert ws.store.pending_transactions() == []
    stored = set(ws.artifacts.digests())
    referenced = ws.store.referenced_digests(stored)
    assert stored == referenced, f"dangling blobs: {stored - referenced}"
    assert not list((ws.config.state_dir / "tmp").glob("ingest-*"))
    assert not list((ws.config.state_dir / "artifacts" / "tmp").glob("*.part"))
    rows = [d["row_count"] for d in ds.list()]
    if expect_rows is not None:
        assert rows == ([expect_rows] if expect_rows else [])
    for d in ds.list():  # every recorded version reads back whole
        for v in ds.versions(d["name"]):
            assert ds.to_arrow(v.ref).num_rows == v.row_count
    ws.close()
    return rows


def _ingest_cmd(root, path, fault=None):
    env = {**os.environ, "MODELLOOP_HOME": str(root)}
    if fault:
        env["MODELLOOP_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "modelloop", "data", "ingest", "d", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "fault,committed",
    [
        ("ingest.staged", False),
        ("ingest.pending", False),
        ("ingest.uploading", False),
        ("ingest.uploaded", False),
        ("ingest.committed", True),
    ],
)
def test_sigkill_at_each_step_leaves_all_or_nothing(tmp_path, fault, committed):
    root = tmp_path / "ws"
    Workspace.init(root).close()
    path = tmp_path / "in.csv"
    frame = _frame()
    frame.to_csv(path, index=False)
    proc = _ingest_cmd(root, path, fault)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert_consistent(root, expect_rows=len(frame) if committed else 0)
    # and the work resumes: ingesting again completes (or is recognised as done)
    again = _ingest_cmd(root, path)
    assert again.returncode == 0, again.stderr
    assert_consistent(root, expect_rows=len(frame))


def test_sigkill_at_a_random_moment(tmp_path):
    root = tmp_path / "ws"
    Workspace.init(root).close()
    path = tmp_path / "big.csv"
    _frame(400_000, seed=1).to_csv(path, index=False)
    rng = np.random.default_rng()
    for delay in rng.uniform(0.3, 2.0, size=2):
        env = {**os.environ, "MODELLOOP_HOME": str(root)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelloop", "data", "ingest", "d", str(path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows = assert_consistent(root)
        assert rows in ([], [400_000])
