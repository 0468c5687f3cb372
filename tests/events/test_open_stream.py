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
