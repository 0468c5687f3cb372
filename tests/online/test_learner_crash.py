"""SIGKILL of the learner process loses no acknowledged event and learns none twice.

The learner runs as its own process; it is killed from outside while events keep arriving, then
killed by its own crash point after learning a batch it has not saved, then run to the end. Its
prequential metric must equal River's on the same event order, over exactly every event: an
event learned twice or lost would change the model and the count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from river import datasets, evaluate, metrics

from foreground import alive, wait_for
from modelloop.online import Intake
from modelloop.online.models import build_model
from modelloop.online.publish import loads
from modelloop.store import open_store

SPEC = "preprocessing.StandardScaler|linear_model.LogisticRegression"
LEARNER = """
import signal, sys, threading
from modelloop.online.learner import Learner
from modelloop.store import open_store
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
store = open_store(sys.argv[1])
Learner(store, "phish", "online", spec=sys.argv[2], batch=40, publish_interval=0).run(stop, 0.01)
"""


def _start(url, **env):
    return subprocess.Popen([sys.executable, "-c", LEARNER, url, SPEC],
                            env={**os.environ, **env})  # fmt: skip


def _published(store):
    row = store.get_online_model("phish", "online")
    return row["applied_seq"] if row else 0


def test_sigkilled_learner_resumes_exactly(tmp_path):
    url = f"sqlite:///{tmp_path}/meta.db"
    store = open_store(url)
    intake = Intake(store)
    rows = list(datasets.Phishing())
    events = [{"features": x, "label": y} for x, y in rows]

    first = _start(url)
    acknowledged = 0
    for start in range(0, len(events), 50):  # events keep arriving while it learns
        assert intake.append("phish", events[start : start + 50])["accepted"] == 50
        acknowledged = start + 50
        if acknowledged == 600:
            wait_for(lambda: _published(store) >= 200)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(60)
    assert acknowledged >= len(events) - 50
    acknowledged = len(events)
    killed_at = _published(store)
    assert killed_at < acknowledged

    # Killed by its own crash point after learning a batch it had not saved.
    second = _start(url, MODELLOOP_FAULT="online.learned")
    assert second.wait(120) == -signal.SIGKILL
    assert _published(store) == killed_at

    third = _start(url)
    wait_for(lambda: _published(store) == acknowledged)
    third.send_signal(signal.SIGTERM)
    assert third.wait(60) == 0 and not alive(third.pid)

    state = loads(store.get_online_model("phish", "online", state=True)["state"])
    expected = evaluate.progressive_val_score(rows, build_model(SPEC), metrics.Accuracy())
    assert state["events"] == len(rows) and state["applied_seq"] == len(rows)
    assert state["metric"].get() == expected.get()
    store.close()
