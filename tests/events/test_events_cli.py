"""``modelloop events --group G``: how far a consumer group is, without consuming anything."""

from __future__ import annotations

from tests.conftest import invoke_cli

from modelloop import Workspace


def test_events_group_shows_position_pending_and_lag(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    first = ws.store.append_event("a.happened", "s1", {})
    consumer = ws.events_stream.consumer("controller", "c1", start="earliest")
    consumer.read()
    second = ws.store.append_event("b.happened", "s2", {})
    out = invoke_cli("events", "--group", "controller", "--json", cwd=ws.root).json()
    assert out["group"]["position"] == first and out["group"]["pending"] == {"c1": 1}
    assert [e["id"] for e in out["events"]] == [second]
    text = invoke_cli("events", "--group", "controller", cwd=ws.root).out
    assert "handed out up to event 1" in text and "c1 1" in text and "b.happened" in text
    assert [d.event["id"] for d in consumer.read()] == [second]  # the command took nothing
    missing = invoke_cli("events", "--group", "nobody", cwd=ws.root, check=False)
    assert missing.code != 0 and "no consumer group 'nobody'" in missing.err
    ws.close()
