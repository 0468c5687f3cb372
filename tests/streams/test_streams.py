"""Stream-fed datasets in one process: rows appended over HTTP (the serving port's ingest route)
and the SDK, committed in micro-batches by the consumer; bad rows quarantined with their reason
and counted; a producer that starts sending nulls raises alarms on the first batch it spoils."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelloop.errors import InvalidInput, SchemaMismatch


def _rows(start: int, n: int, **override) -> list[dict]:
    return [{"id": i, "card": f"c{i % 5}", "amount": 10.0 + i % 13,
             "ts": f"2024-05-01T10:{i % 60:02d}:00", **override} for i in range(start, start + n)]


def test_rows_posted_to_the_serving_port_become_versions_by_size(local_workspace):
    from starlette.testclient import TestClient

    ws = local_workspace
    operator = {"authorization": "Bearer " + ws.tokens.create("producer", role="operator")["token"]}
    viewer = {"authorization": "Bearer " + ws.tokens.create("reader", role="viewer")["token"]}
    with TestClient(ws.endpoints.server_app(), headers=operator) as client:
        # rows are data a model will train on: an operator's token, whatever the endpoints say
        for headers, status in (({"authorization": ""}, 401), (viewer, 403)):
            r = client.post("/datasets/orders/rows", json=_rows(0, 3), headers=headers)
            assert r.status_code == status and "token" in r.text.lower(), r.text
        r = client.post("/datasets/orders/rows", json=_rows(0, 30))
        assert r.status_code == 200 and r.json() == {"dataset": "orders", "rows": 30,
                                                     "buffered_rows": 30}
        lines = "\n".join(f'{{"id": {i}, "card": "c", "amount": 1, "ts": "2024-05-01"}}'
                          for i in range(30, 45))
        r = client.post("/datasets/orders/rows", content=lines,
                        headers={"content-type": "application/jsonlines"})
        assert r.json()["buffered_rows"] == 45
        bad = client.post("/datasets/orders/rows", content=b"{not json",
                          headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "message" in bad.text
    batches = []
    out = ws.streams.consume("orders", every_rows=25, until_idle=True, on_batch=batches.append)
    # whole appends: 30 rows reach 25 at once; the rest is committed when the source is idle
    assert [b["rows"] for b in batches] == [30, 15] and out["versions"] == ["orders@1", "orders@2"]
    assert sorted(ws.datasets.to_pandas("orders")["id"]) == list(range(45))
    assert ws.datasets.stream_status("orders")["backlog"]["rows"] == 0


def test_bad_rows_are_quarantined_with_their_reason_and_counted(local_workspace, cli):
    ws = local_workspace
    ws.datasets.append_rows("orders", _rows(0, 20))
    ws.datasets.append_rows("orders", [
        {"id": 100, "card": None, "amount": 1.0, "ts": "2024-05-01T11:00:00"},  # no key
        {"id": 101, "card": "c1", "amount": 1.0},                                # no event time
        {"id": 102, "card": "c1", "amount": 1.0, "ts": "yesterday-ish"},         # unparseable
        {"id": 103, "card": "c1", "amount": "lots", "ts": "2024-05-01T11:00:00"},  # not a number
        *_rows(104, 6),
    ])
    # (the first batch sets the types: in a new dataset's first version, as in a first file,
    # a column of numbers and words would be text)
    out = ws.streams.consume("orders", every_rows=20, key_columns=["card"],
                             event_time_column="ts", until_idle=True)
    assert (out["rows"], out["quarantined_rows"]) == (26, 4)
    reasons = dict(zip(*ws.datasets.quarantined("orders").to_pandas()[["record", "reason"]]
                       .to_dict("list").values(), strict=True))
    by_id = {__import__("json").loads(k)["id"]: v for k, v in reasons.items()}
    assert by_id[100] == "column 'card': missing (a required column)"
    assert by_id[101] == "column 'ts': missing (a required column)"
    assert "'yesterday-ish' is not a valid timestamp" in by_id[102]
    assert "'lots' is not a valid double" in by_id[103]
    # each batch is its lineage record, and the source its quarantined rows name
    assert [s["path"] for s in ws.datasets.sources("orders")] == ["rows#1..1", "rows#2..2"]
    assert set(ws.datasets.quarantined("orders").to_pandas()["source"]) == {"rows#2..2"}
    assert [p["value"] for p in ws.metric_series.points(
        "stream.quarantined_rows", {"dataset": "orders"})] == [0.0, 4.0]
    shown = cli("-w", str(ws.root), "data", "stream", "orders", "--status", "--json").json()
    assert shown["sources"][0]["rows"] == 26 and shown["backlog"]["rows"] == 0
    with pytest.raises(InvalidInput, match="not in"):  # a key column the data does not have
        ws.datasets.append_rows("orders", _rows(200, 2))
        ws.streams.consume("orders", key_columns=["customer"], until_idle=True)
    assert ws.datasets.stream_status("orders")["backlog"]["rows"] == 2  # kept, not lost
    err = cli("-w", str(ws.root), "data", "stream", "orders", "--from", "kafka://x", check=False)
    assert err.code != 0 and "unknown stream source" in err.err
    with pytest.raises(InvalidInput, match="list"):
        ws.datasets.append_rows("orders", "not rows")
    # one consumer per dataset and source: a second is refused while the first runs
    ws.streams.consume("orders", until_idle=True, key_columns=["card"],
                       should_stop=lambda: _second_is_refused(ws))
    assert ws.store.get_lease("stream:orders:rows")["expired"] is True  # released on exit


def _second_is_refused(ws) -> bool:
    from modelloop.errors import Conflict

    with pytest.raises(Conflict, match="another consumer is running"):
        ws.streams.consume("orders", until_idle=True)
    return True


def test_a_producer_sending_nulls_raises_alarms_within_one_micro_batch(local_workspace):
    ws = local_workspace

    def _rows(start, n, **override):  # no growing id: its drift is not what this is about
        return [{k: v for k, v in r.items() if k != "id"} for r in globals()["_rows"](
            start, n, **override)]

    ws.datasets.append_rows("orders", _rows(0, 200))
    ws.streams.consume("orders", every_rows=200, until_idle=True)
    # streaming statistics per batch, and the dataset's monitor against its baseline
    ws.alarms.create("amount-nulls", "stream.null_fraction", threshold=0.2,
                     dimensions={"dataset": "orders", "column": "amount"})
    ws.monitoring.ensure_baseline("orders@1")
    ws.monitoring.create_monitor("orders-quality", dataset="orders", baseline="orders@1",
                                 after_ingest=True)
    ws.alarms.create("orders-violations", "violations", threshold=0,
                     dimensions={"monitor": "orders-quality"})
    ws.datasets.append_rows("orders", _rows(200, 200))
    batches = []
    ws.streams.consume("orders", every_rows=200, until_idle=True, on_batch=batches.append)
    assert [r["n_violations"] for r in batches[0]["monitor_runs"]] == [0]
    # OK, or no data when an hour (the alarms' period, clock-aligned) began since the points
    states = {a["alarm"]: a["state"] for a in ws.alarms.evaluate()}
    assert set(states) == {"amount-nulls", "orders-violations"}
    assert set(states.values()) <= {"OK", "INSUFFICIENT_DATA"}

    # from here the clock has moved on a period by the time anything evaluates alarms at "now"
    # (a batch read across an hour's boundary): a batch's alarms are evaluated at its points' time
    evaluate = ws.alarms.evaluate
    ws.alarms.evaluate = lambda name=None, *, at=None: evaluate(
        name, at=at or datetime.now(UTC) + timedelta(hours=1))

    # the producer broke: half its rows say amount is null, half leave it out
    broken = _rows(400, 200, amount=None)
    ws.datasets.append_rows("orders", broken[:100])
    ws.datasets.append_rows("orders", [{k: v for k, v in r.items() if k != "amount"}
                                       for r in broken[100:]])
    batches = []
    ws.streams.consume("orders", every_rows=100, until_idle=True, on_batch=batches.append)
    assert len(batches) == 2 and batches[0]["monitor_runs"][0]["n_violations"] >= 1
    assert {a["alarm"]: a["state"] for a in batches[0]["alarms"]} == {
        "amount-nulls": "ALARM", "orders-violations": "ALARM"}  # on the first broken batch
    # a batch none of whose rows has the column: committed, the column null, no schema change
    assert ws.datasets.get("orders@4").schema_changes == []
    assert [p["value"] for p in ws.metric_series.points(
        "stream.null_fraction", {"dataset": "orders", "column": "amount"})] == [0, 0, 1, 1]

    # a batch with a column the dataset lacks stops the consumer, its rows kept (unless evolving)
    ws.datasets.append_rows("orders", [{"card": "c1", "amount": 1.0, "coupon": "X"}])
    with pytest.raises(SchemaMismatch, match="coupon"):
        ws.streams.consume("orders", until_idle=True)
    assert ws.streams.consume("orders", until_idle=True, allow_schema_evolution=True)["rows"] == 1


def test_a_redis_stream_is_committed_by_time_and_its_bad_entries_quarantined(local_workspace,
                                                                             redis_url,
                                                                             monkeypatch):
    """Also: a recorded consumer's URL (``up`` runs it again from the store) holds no password;
    the consumer takes it from MODELLOOP_REDIS_PASSWORD when it runs, and says so when it is
    unset (the test server's default user takes any password: nopass)."""
    import json
    import uuid

    import redis

    from modelloop.errors import ConfigError

    ws, key = local_workspace, f"orders-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for r in _rows(0, 5):
            client.xadd(key, {"row": json.dumps(r)})
        client.xadd(key, {"id": "5", "card": "c0", "amount": "2.5", "ts": "2024-05-01"})  # flat
        client.xadd(key, {"row": '{"id": 6, "card": '})  # not JSON
        url = redis_url.replace("redis://", "redis://default:s3cret@", 1) + f"?stream={key}"
        # fewer rows than every_rows: the batch is committed when its first row waited long enough
        out = ws.streams.consume("orders", url, every_rows=1000, every_seconds=0.2, max_batches=1)
        assert (out["rows"], out["quarantined_rows"]) == (6, 1)
        [bad] = ws.datasets.quarantined("orders").to_pylist()
        assert bad["reason"].startswith("not JSON") and f"/{key}#" in bad["source"]
        assert client.xpending(key, "modelloop-orders")["pending"] == 0
        [source] = ws.datasets.stream_status("orders")["sources"]
        assert source["source"].endswith(f"/{key}#modelloop-orders") and source["rows"] == 6
        [recorded] = ws.streams.consumers()
        assert recorded["url"] == url.replace("s3cret", "***")
        monkeypatch.delenv("MODELLOOP_REDIS_PASSWORD", raising=False)
        with pytest.raises(ConfigError, match="MODELLOOP_REDIS_PASSWORD"):
            ws.streams.consume("orders", recorded["url"], until_idle=True)
        monkeypatch.setenv("MODELLOOP_REDIS_PASSWORD", "s3cret")
        assert ws.streams.consume("orders", recorded["url"], until_idle=True)["batches"] == 0
        with pytest.raises(InvalidInput, match="names no stream"):
            ws.streams.consume("orders", redis_url, until_idle=True)
    finally:
        client.delete(key)
        client.close()


def test_a_folder_source_is_a_watch_trigger(local_workspace, cli, tmp_path):
    ws = local_workspace
    ws.datasets.append_rows("orders", _rows(0, 3))
    ws.streams.consume("orders", until_idle=True)
    (tmp_path / "landing").mkdir()
    shown = cli("-w", str(ws.root), "data", "stream", "orders", "--from",
                str(tmp_path / "landing"), "--json").json()
    assert shown["name"] == "stream-orders"
    assert ws.triggers.get("stream-orders")["cause"]["location"] == str(tmp_path / "landing")
    assert ws.triggers.get("stream-orders")["action"]["do"] == "ingest"


def test_a_deleted_dataset_created_again_starts_its_stream_afresh(local_workspace, cli):
    ws = local_workspace
    ws.datasets.append_rows("orders", _rows(0, 4))
    ws.streams.consume("orders", every_rows=4, max_batches=1)
    ws.datasets.append_rows("orders", _rows(4, 2))  # buffered, never committed
    assert ws.datasets.stream_status("orders")["sources"]
    cli("-w", str(ws.root), "data", "delete", "orders@1")
    # the stream's position and buffer went with the dataset, in its transaction
    status = ws.datasets.stream_status("orders")
    assert status["sources"] == [] and status["backlog"]["rows"] == 0
    ws.datasets.append_rows("orders", _rows(100, 3))
    out = ws.streams.consume("orders", every_rows=3, max_batches=1)
    assert out["versions"] == ["orders@1"]
    assert sorted(ws.datasets.to_pandas("orders")["id"]) == [100, 101, 102]


def test_a_redis_stream_created_again_under_its_key_is_read_from_its_start(local_workspace,
                                                                           redis_url, caplog):
    import json
    import logging
    import uuid

    import redis

    ws, key = local_workspace, f"orders-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    url = f"{redis_url}?stream={key}"
    try:
        for i, r in enumerate(_rows(0, 3), start=1):
            client.xadd(key, {"row": json.dumps(r)}, id=f"100-{i}")
        assert ws.streams.consume("orders", url, every_rows=3, max_batches=1)["rows"] == 3  # 100-3
        # created again with ids below the position: beyond the new stream's last id
        client.delete(key)
        for i, r in enumerate(_rows(10, 2), start=1):
            client.xadd(key, {"row": json.dumps(r)}, id=f"5-{i}")
        with caplog.at_level(logging.WARNING, logger="modelloop.streams"):
            assert ws.streams.consume("orders", url, every_rows=2, max_batches=1)["rows"] == 2
        assert "new stream" in caplog.text
        # trimmed or created again past the position: its first entry is after it
        client.delete(key)
        client.xadd(key, {"row": json.dumps(_rows(20, 1)[0])}, id="1-1")
        client.xadd(key, {"row": json.dumps(_rows(21, 1)[0])}, id="200-1")
        client.xtrim(key, minid="200-1", approximate=False)
        assert ws.streams.consume("orders", url, every_rows=1, max_batches=1)["rows"] == 1
        assert sorted(ws.datasets.to_pandas("orders")["id"]) == [0, 1, 2, 10, 11, 21]
        assert ws.datasets.stream_status("orders")["sources"][0]["position"] == "200-1"
    finally:
        client.delete(key)
        client.close()

