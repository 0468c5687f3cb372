"""The online store: online values equal offline values at the same time for every entity over a
replayed stream (late rows inside the allowed lateness included), on SQLite and on Redis; bad
rows are rejected with their reason; dataset versions are applied once each."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.features.reference import same
from tests.features.test_offline import SPEC, ingest, random_events

from modelloop.features.offline import historical
from modelloop.features.online import apply_rows, lookup
from modelloop.features.online_store import RedisOnlineStore, SqliteOnlineStore
from modelloop.features.spec import parse_feature_set

HOUR = 3600 * 10**9


@pytest.fixture(params=["sqlite", "redis"])
def online_store(request, tmp_path):
    if request.param == "sqlite":
        store = SqliteOnlineStore(tmp_path / "online.db")
    else:
        store = RedisOnlineStore(request.getfixturevalue("redis_url"),
                                 prefix=f"t{uuid.uuid4().hex[:8]}")  # fmt: skip
    yield store
    store.close()


def test_online_equals_offline_at_the_same_time_over_a_replayed_stream(online_store):
    fs = parse_feature_set(SPEC)
    rng = np.random.default_rng(7)
    events = random_events(rng, 1200, cards=20, late=0)
    late = rng.random(len(events)) < 0.1  # a tenth arrive up to 2 h (the allowed lateness) late
    shift = np.where(late, rng.integers(1, 7200, len(events)), 0) * 10**9
    events["ts"] = pd.to_datetime(events["ts"].astype("int64") - shift, utc=True)
    cuts = sorted(rng.choice(np.arange(1, len(events)), 6, replace=False).tolist()) + [len(events)]
    start, checked = 0, 0
    for cut in cuts:  # micro-batches of random sizes, in arrival order
        report = apply_rows(fs, online_store, events.iloc[start:cut])
        assert report["too_late"] == 0 and not report["rejected"]
        start = cut
        seen = events.iloc[:cut]
        watermark = int(seen["ts"].astype("int64").max())
        for at in (watermark, watermark + HOUR // 2, watermark + 5 * HOUR):  # stored, expired
            keys = list(range(22))  # 20, 21: never seen
            online = lookup(fs, online_store, keys, at)
            frame = pd.DataFrame({"card": keys, "ts": pd.to_datetime([at] * len(keys), utc=True)})
            table = pa.Table.from_pandas(seen.assign(ts=seen["ts"].dt.tz_convert(None)), preserve_index=False)
            offline = historical(fs, table, frame)
            for i, row in enumerate(online):
                for f in fs.features:
                    assert same(row[f.name], offline[f.name].iloc[i], tol=0), (cut, at, i, f.name)
                    checked += 1
    assert checked > 1000


def test_bad_and_too_late_rows_are_counted_with_their_reason(online_store):
    fs = parse_feature_set(SPEC)
    t0 = pd.Timestamp("2026-01-02T00:00:00Z")
    rows = [{"card": 1, "ts": t0.isoformat(), "amount": 5.0, "shop": "a"},
            {"card": None, "ts": t0.isoformat(), "amount": 1.0, "shop": "a"},
            {"card": 2, "ts": "not a time", "amount": 1.0, "shop": "a"},
            {"card": 3, "ts": None, "amount": 1.0, "shop": "a"},
            {"card": 1, "ts": (t0 - pd.Timedelta("3h")).isoformat(), "amount": 9.0, "shop": "b"},
            {"card": 1, "ts": (t0 - pd.Timedelta("1h")).isoformat(), "amount": 2.0, "shop": "c"}]
    report = apply_rows(fs, online_store, rows)
    reasons = {r["row"]: r["reason"] for r in report["rejected"]}
    assert reasons == {1: "missing entity key 'card'", 2: "unparseable event time 'ts'",
                       3: "missing event time 'ts'"}
    assert report["too_late"] == 1 and report["applied"] == 2  # 3 h late > 2 h allowed
    (row,) = lookup(fs, online_store, ["1"], t0.value)
    assert row["n_1h"] == 2 and row["amount_1h"] == 7.0 and row["last_shop"] == "a"


def test_dataset_versions_are_applied_once_each_and_served_by_the_cli(local_workspace, tmp_path, cli):
    ws = local_workspace
    events = random_events(np.random.default_rng(5), 600, cards=10)
    ingest(ws, tmp_path, events.iloc[:300], 1)
    ws.features.apply(SPEC)
    assert ws.features.update("cards")["backfilled"] is True
    ingest(ws, tmp_path, events.iloc[300:], 2)  # applied by the ingest itself
    again = ws.features.update("cards")
    assert again["applied"] == 0 and again["backfilled"] is False  # nothing twice
    at = pd.Timestamp(events["ts"].max())
    online = ws.features.get_online("cards", list(range(10)), at=at.isoformat())
    offline = ws.features.get_historical(
        "cards", pd.DataFrame({"card": range(10), "ts": [at] * 10}))
    for i, row in enumerate(online):
        assert all(same(row[f["name"]], offline[f["name"]].iloc[i], tol=0) for f in SPEC["features"])
    run = lambda *a: cli("-w", str(ws.root), "features", *a)  # noqa: E731
    got = run("get", "cards", "card=3", "--at", at.isoformat(), "--json").json()
    assert got[0]["card"] == "3" and got[0]["n_1h"] == online[3]["n_1h"]
    assert run("backfill", "cards", "--json").json()["version"] == 2
    bad = cli("-w", str(ws.root), "features", "get", "cards", "3", check=False)
    assert bad.code != 0 and "KEY=VALUE" in bad.err


def test_a_changed_definition_is_not_served_from_the_old_online_values(local_workspace, tmp_path):
    from modelloop.errors import Conflict

    ws = local_workspace
    ingest(ws, tmp_path, random_events(np.random.default_rng(2), 100, cards=5), 1)
    ws.features.apply(SPEC)
    ws.features.backfill("cards")
    ws.features.apply({**SPEC, "features": SPEC["features"][:3]})
    with pytest.raises(Conflict, match="features backfill cards"):
        ws.features.get_online("cards", [1])
    with pytest.raises(Conflict, match="another definition"):
        ws.features.push("cards", [])
    ws.features.backfill("cards")
    assert set(ws.features.get_online("cards", [1])[0]) == {"card", "n_1h", "amount_1h", "mean_24h"}


def test_a_stream_fed_dataset_keeps_its_online_features_up_to_date(local_workspace):
    """Rows arriving on the dataset's stream are committed in micro-batches, and each batch's
    version is applied to the online store as it commits: online equals offline afterwards."""
    ws = local_workspace
    events = random_events(np.random.default_rng(9), 300, cards=6)
    rows = [{"card": int(r.card), "ts": r.ts.isoformat(), "amount": None if np.isnan(r.amount)
             else float(r.amount), "shop": r.shop} for r in events.itertuples()]
    ws.datasets.append_rows("tx", rows[:100])
    ws.streams.consume("tx", every_rows=100, until_idle=True, event_time_column="ts")
    ws.features.apply(SPEC)
    ws.features.update("cards")
    ws.datasets.append_rows("tx", rows[100:])
    out = ws.streams.consume("tx", every_rows=100, until_idle=True)
    latest = ws.datasets.get("tx").version
    assert latest >= 2 and out
    assert ws.features.online_store.meta("cards")["checkpoint"] == latest  # applied as committed
    at = pd.Timestamp(events["ts"].max())
    online = ws.features.get_online("cards", list(range(6)), at=at.isoformat())
    offline = ws.features.get_historical("cards", pd.DataFrame({"card": range(6), "ts": [at] * 6}))
    for i, row in enumerate(online):
        assert all(same(row[f["name"]], offline[f["name"]].iloc[i], tol=0) for f in SPEC["features"])


def test_the_online_store_is_chosen_by_the_configuration(tmp_path, redis_url):
    from modelloop import Workspace
    from modelloop.errors import ConfigError

    ws = Workspace.init(tmp_path / "ws")
    toml = ws.root / "modelloop.toml"
    toml.write_text(toml.read_text() + f'\n[features]\nonline_store = "{redis_url}"\n')
    with Workspace(ws.root) as again:
        assert isinstance(again.features.online_store, RedisOnlineStore)
    toml.write_text(toml.read_text().replace(redis_url, "memcached://x"))
    with pytest.raises(ConfigError, match=r"\[features\] online_store"):
        Workspace(ws.root)
    ws.close()
