"""Feature set definitions and the offline store: point-in-time joins equal a brute-force
reference on randomized data, late rows included; bad definitions are clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.features.reference import same, value

from modelloop.errors import InvalidInput

FEATURES = [
    {"name": "n_1h", "aggregate": "count", "window": "1h"},
    {"name": "amount_1h", "aggregate": "sum", "column": "amount", "window": "1h"},
    {"name": "mean_24h", "aggregate": "mean", "column": "amount", "window": "24h"},
    {"name": "min_3h", "aggregate": "min", "column": "amount", "window": "3h"},
    {"name": "max_day", "aggregate": "max", "column": "amount", "window": "1d",
     "window_type": "tumbling"},
    {"name": "hop_2h", "aggregate": "sum", "column": "amount", "window": "2h",
     "window_type": "hopping", "hop": "30m"},
    {"name": "shops_6h", "aggregate": "count_distinct", "column": "shop", "window": "6h"},
    {"name": "last_shop", "aggregate": "last", "column": "shop"},
    {"name": "double_1h", "aggregate": "sum", "expression": "amount * 2 + 1", "window": "1h"},
]
SPEC = {"name": "cards", "source": "tx", "entities": ["card"], "event_time": "ts",
        "allowed_lateness": "2h", "features": FEATURES}
BASE = np.datetime64("2026-01-01T00:00:00", "ns").astype(np.int64)


def random_events(rng, n, cards=25, days=2, late=0):
    """n events over ``days``; the last ``late`` arrive after the others but happened earlier."""
    t = BASE + np.sort(rng.integers(0, days * 86400, n)) * 10**9
    if late:
        t[-late:] = t[-late:] - rng.integers(1, 7200, late) * 10**9  # up to 2 h late
    amount = rng.normal(50, 20, n).round(2)
    amount[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"card": rng.integers(0, cards, n), "ts": pd.to_datetime(t, utc=True),
                         "amount": amount, "shop": rng.choice(list("abcde"), n)})


def reference(frame: pd.DataFrame, queries: pd.DataFrame) -> list[dict]:
    rows = {}
    for k, e, a, s in zip(frame.card, frame.ts, frame.amount, frame.shop, strict=True):
        rows.setdefault(k, []).append((e.value, {"amount": a, "shop": s, "expr": a * 2 + 1}))
    out = []
    for k, t in zip(queries.card, queries.ts, strict=True):
        out.append({f["name"]: value({**f, "column": "expr"} if "expression" in f else f,
                                     rows.get(k, []), t.value) for f in FEATURES})
    return out


def ingest(ws, tmp_path, frame, i):
    path = tmp_path / f"tx{i}.parquet"
    frame.to_parquet(path)
    ws.datasets.ingest("tx", path)


@pytest.mark.parametrize("seed", [1, 2])
def test_point_in_time_join_equals_brute_force_reference_with_late_rows(local_workspace, tmp_path,
                                                                          seed):
    ws, rng = local_workspace, np.random.default_rng(seed)
    events = random_events(rng, 1500, late=150)
    ingest(ws, tmp_path, events.iloc[:700], 1)  # the late rows come in the second version
    ingest(ws, tmp_path, events.iloc[700:], 2)
    ws.features.apply(SPEC)
    queries = pd.DataFrame({
        "card": rng.integers(0, 28, 400),  # 25..27: keys without events, kept with empty values
        "ts": pd.to_datetime(BASE + rng.integers(-3600, 2 * 86400 + 7200, 400) * 10**9, utc=True)})
    exact = events.sample(60, random_state=seed)[["card", "ts"]]  # at an event's very time
    queries = pd.concat([queries, exact], ignore_index=True)
    got = ws.features.get_historical("cards", queries)
    assert list(got["card"]) == list(queries["card"])  # every row, in order
    want = reference(events, queries)
    wrong = [(i, name, w[name], got[name].iloc[i]) for i, w in enumerate(want)
             for name in w if not same(w[name], got[name].iloc[i])]
    assert not wrong, wrong[:5]
    assert (got["n_1h"] > 0).sum() > 50 and got["last_shop"].notna().sum() > 100  # not all empty
    early = ws.features.get_historical("cards", queries, source="tx@1")  # as the source was then
    assert early["n_1h"].sum() < got["n_1h"].sum()


def test_bad_definitions_name_each_problem(local_workspace, tmp_path):
    ws = local_workspace
    ingest(ws, tmp_path, random_events(np.random.default_rng(0), 50), 1)
    bad = {**SPEC, "features": [
        {"name": "a", "aggregate": "median", "column": "amount", "window": "1h"},
        {"name": "b", "aggregate": "sum", "column": "amount", "window": "1 fortnight"},
        {"name": "c", "aggregate": "sum", "column": "amount"},
        {"name": "d", "aggregate": "sum", "expression": "__import__('os')", "window": "1h"},
        {"name": "e", "aggregate": "sum", "column": "amount", "window": "1h",
         "window_type": "hopping"}]}
    with pytest.raises(InvalidInput) as err:
        ws.features.apply(bad)
    text = "\n".join(err.value.details)
    for needle in ("unknown aggregate 'median'", "window '1 fortnight'",
                   "aggregate 'sum' needs a window", "is not allowed in an expression",
                   "hopping window needs hop"):
        assert needle in text
    with pytest.raises(InvalidInput, match="does not fit") as err:
        ws.features.apply({**SPEC, "features": [
            {"name": "x", "aggregate": "sum", "column": "amout", "window": "1h"},
            {"name": "y", "aggregate": "mean", "column": "shop", "window": "1h"}]})
    assert "unknown column 'amout'" in err.value.details[0]
    assert "not numeric" in err.value.details[1]
    ws.features.apply(SPEC)
    with pytest.raises(InvalidInput, match="lacks column"):
        ws.features.get_historical("cards", pd.DataFrame({"card": [1]}))
    with pytest.raises(InvalidInput, match="cannot read the times"):
        ws.features.get_historical("cards", pd.DataFrame({"card": [1], "ts": ["yesterday"]}))


def test_cli_apply_list_show_history(local_workspace, tmp_path, cli):
    import yaml

    ws = local_workspace
    events = random_events(np.random.default_rng(3), 200)
    ingest(ws, tmp_path, events, 1)
    spec = tmp_path / "features.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    run = lambda *a: cli("-w", str(ws.root), "features", *a)  # noqa: E731
    assert "v1 applied" in run("apply", str(spec)).out
    assert "v1 unchanged" in run("apply", str(spec)).out
    assert run("list", "--json").json()[0]["name"] == "cards"
    assert "hopping 2h every 30m" in run("show", "cards").out
    queries = tmp_path / "q.csv"
    events[["card", "ts"]].head(20).to_csv(queries, index=False)
    rows = run("history", "cards", "--entities", str(queries), "--json").json()
    assert len(rows) == 20 and all(r["n_1h"] >= 1 for r in rows)  # each row sees its own event
    bad = cli("-w", str(ws.root), "features", "show", "nope", check=False)
    assert bad.code != 0 and "no feature set named 'nope'" in bad.err


def test_events_are_ordered_by_entity_then_time_then_arrival():
    from modelloop.features.windows import Events

    rng = np.random.default_rng(0)
    for top in (50, 70_000, 3_000_000):  # one 16-bit digit, two, and the plain sort
        codes = rng.integers(0, top, 20_000)
        times = rng.integers(0, 500, 20_000)  # many ties: arrival order must break them
        events = Events.build(codes, times, {"seq": np.arange(20_000, dtype=float)})
        want = np.lexsort((np.arange(20_000), times, codes))
        assert np.array_equal(events.values["seq"], want.astype(float))
