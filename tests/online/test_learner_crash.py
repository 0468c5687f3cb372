"""SIGKILL of the learner process loses no acknowledged event and learns none twice.

The learner runs as its own process; it is killed from outside while events keep arriving, then
killed by its own crash point after learning a batch it has not saved, then run to the end. Its
prequential metric must equal River's on the same event order, over exactly every event: an
event learned twice or lost would change the model and the count."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import uuid

import pytest
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
source = None
if sys.argv[3] != "intake":
    from modelloop.online.sources import StreamSource
    if sys.argv[3] == "stream":
        from modelloop.events.embedded import StoreStream
        stream = StoreStream(store)
    else:
        from modelloop.events.redis_stream import RedisStream
        stream = RedisStream(sys.argv[3], store, key=sys.argv[4])
    source = StreamSource(stream, store, "phish")
Learner(store, "phish", "online", spec=sys.argv[2], batch=40, publish_interval=0,
        source=source).run(stop, 0.01)
"""


def _start(url, source, key, **env):
    return subprocess.Popen([sys.executable, "-c", LEARNER, url, SPEC, source, key],
                            env={**os.environ, **env})  # fmt: skip


def _published(store):
    row = store.get_online_model("phish", "online")
    return row["applied_seq"] if row else 0


@pytest.fixture(params=["intake", "stream", "redis"])
def source(request):
    """Where the learner reads: intake, the embedded event stream, Redis Streams."""
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return request.param


def test_sigkilled_learner_resumes_exactly(tmp_path, source):
    url = f"sqlite:///{tmp_path}/meta.db"
    store = open_store(url)
    key = f"modelloop-test-{uuid.uuid4().hex}"
    launch = functools.partial(_start, url, source, key)
    ids = [0]

    def append(batch):  # acknowledged once this returns: durable in the store
        if source == "intake":
            assert Intake(store).append("phish", batch)["accepted"] == len(batch)
        else:  # labelled events on the event stream (one event each, as an app would append)
            ids.extend(store.append_event("online.event", "phish", e) for e in batch)

    # 800 of Phishing's 1,250 events: 600 before the kill, 200 more while no learner runs
    rows = list(datasets.Phishing())[:800]
    events = [{"features": x, "label": y} for x, y in rows]

    first = launch()
    acknowledged = 0
    for start in range(0, len(events), 50):  # events keep arriving while it learns
        append(events[start : start + 50])
        acknowledged = start + 50
        if acknowledged == 600:
            wait_for(lambda: _published(store) >= 200)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(60)
    assert acknowledged >= len(events) - 50
    acknowledged = len(events)
    killed_at = _published(store)
    assert killed_at < (acknowledged if source == "intake" else ids[-1])

    # Killed by its own crash point after learning a batch it had not saved.
    second = launch(MODELLOOP_FAULT="online.learned")
    assert second.wait(120) == -signal.SIGKILL
    assert _published(store) == killed_at

    third = launch()
    last = acknowledged if source == "intake" else ids[-1]
    wait_for(lambda: _published(store) == last)
    third.send_signal(signal.SIGTERM)
    assert third.wait(60) == 0 and not alive(third.pid)

    state = loads(store.get_online_model("phish", "online", state=True)["state"])
    expected = evaluate.progressive_val_score(rows, build_model(SPEC), metrics.Accuracy())
    assert state["events"] == len(rows) and state["applied_seq"] == last
    assert state["metric"].get() == expected.get()
    store.close()
