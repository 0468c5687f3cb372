"""A stream consumer killed (SIGKILL, a real subprocess) at any point of a micro-batch loses no
row that reached the source and commits none twice: on the embedded source (the append buffer)
and on Redis Streams. Killed after the commit but before the acknowledgement, the entries come
back and are recognised by the position recorded with the version; killed before the commit,
they come back and are committed then."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

ROWS, EVERY = 120, 40


def _consume(ws, source: str, fault: str | None = None) -> int:
    env = {**os.environ, "MODELLOOP_FAULT": fault or ""}
    proc = subprocess.run(
        [sys.executable, "-m", "modelloop", "-w", str(ws.root), "data", "stream", "orders",
         "--from", source, "--every-rows", str(EVERY), "--until-idle", "--json"],
        env=env, capture_output=True, text=True, timeout=300)
    if fault is None:
        assert proc.returncode == 0, proc.stderr
    return proc.returncode


@pytest.fixture(params=["embedded", "redis"])
def source(request, local_workspace):
    """Where ROWS rows (``id`` 0..ROWS-1) wait for the consumer: the source URL and, for Redis,
    the client (to see what is left unacknowledged)."""
    rows = [{"id": i, "card": f"c{i % 7}", "amount": i / 4} for i in range(ROWS)]
    if request.param == "embedded":
        for start in range(0, ROWS, 10):
            local_workspace.datasets.append_rows("orders", rows[start:start + 10])
        yield "rows", None
        return
    import redis

    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url, decode_responses=True)
    key = f"orders-{uuid.uuid4().hex}"
    for r in rows:
        client.xadd(key, {"row": json.dumps(r)})
    yield f"{url}?stream={key}&group=g", (client, key)
    client.delete(key)
    client.close()


@pytest.mark.slow  # three consumer processes each: about 10 s
def test_a_killed_consumer_loses_no_committed_row_and_duplicates_none(local_workspace, source):
    ws, (url, redis_side) = local_workspace, source
    # killed between the version's commit and the source's acknowledgement
    assert _consume(ws, url, "stream.committed") == -9
    assert [v.added_rows for v in ws.datasets.versions("orders")] == [EVERY]
    # killed with the next batch written but not committed
    assert _consume(ws, url, "stream.staged") == -9
    assert len(ws.datasets.versions("orders")) == 1
    _consume(ws, url)
    ids = ws.datasets.to_pandas("orders")["id"].tolist()
    assert sorted(ids) == list(range(ROWS))  # every row, once
    assert [v.added_rows for v in ws.datasets.versions("orders")] == [EVERY] * (ROWS // EVERY)
    status = ws.datasets.stream_status("orders")
    assert status["backlog"]["rows"] == 0
    assert [s["rows"] for s in status["sources"]] == [ROWS]
    if redis_side is not None:
        client, key = redis_side
        assert client.xpending(key, "g")["pending"] == 0  # all acknowledged in the end
