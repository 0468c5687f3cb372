"""``[events] url`` picks the stream's backend; the workspace opens it as ``ws.events_stream``."""

from __future__ import annotations

import pytest

from modelloop import Workspace
from modelloop.errors import ConfigError
from modelloop.events.embedded import StoreStream


def test_the_default_stream_is_the_metadata_store(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    stream = ws.events_stream
    assert isinstance(stream, StoreStream) and stream.store is ws.store
    consumer = stream.consumer("g", "m", start="earliest")
    ws.store.append_event("x.happened", "s", {})
    assert [d.event["kind"] for d in consumer.read()] == ["x.happened"]
    ws.close()


@pytest.mark.parametrize("url", ["kafka://broker:9092", "127.0.0.1:6379"])
def test_an_events_url_that_is_not_redis_is_refused(tmp_path, url):
    ws = Workspace.init(tmp_path / "ws")
    (ws.root / "modelloop.toml").write_text(
        (ws.root / "modelloop.toml").read_text() + f'\n[events]\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match=r"\[events\] url"):
        Workspace(ws.root)


def test_events_must_be_a_table(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    (ws.root / "modelloop.toml").write_text(
        'events = "redis://x"\n' + (ws.root / "modelloop.toml").read_text())
    with pytest.raises(ConfigError, match=r"\[events\] must be a table"):
        Workspace(ws.root)


def _with_events_url(ws, url: str) -> Workspace:
    path = ws.root / "modelloop.toml"
    path.write_text(path.read_text() + f'\n[events]\nurl = "{url}"\n')
    return Workspace(ws.root)


def test_a_redis_url_opens_redis_streams_fed_from_the_store(tmp_path, redis_url):
    from modelloop.events.redis_stream import RedisStream

    ws = _with_events_url(Workspace.init(tmp_path / "ws"), f"{redis_url}?stream=t:{tmp_path.name}")
    stream = ws.events_stream
    assert isinstance(stream, RedisStream) and stream.key == f"t:{tmp_path.name}"
    consumer = stream.consumer("g", "m")
    ws.store.append_event("x.happened", "s", {"a": 1})
    (got,) = consumer.read(block=10)
    assert got.event["kind"] == "x.happened" and got.event["payload"] == {"a": 1}
    assert got.event["time"] == ws.store.list_events()[0]["time"]
    stream.client.delete(stream.key)
    ws.close()


def test_an_unreachable_redis_is_a_config_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws = _with_events_url(Workspace.init(tmp_path / "ws"), f"redis://127.0.0.1:{port}/0")
    with pytest.raises(ConfigError, match="cannot reach Redis"):
        ws.events_stream.consumer("g", "m")
