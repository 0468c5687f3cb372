"""Baselines: one pass, exact merges, JSON and SageMaker round trips, clear errors."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modelloop.errors import InvalidInput, SchemaMismatch
from modelloop.quality import Baseline, check
from modelloop.quality.profiles import GRID_CELLS, NumericProfile


def assert_same(a: Baseline, b: Baseline) -> None:
    assert a.n_rows == b.n_rows and a.schema == b.schema
    for name, pa_ in a.columns.items():
        pb = b.columns[name]
        assert (pa_.n, pa_.missing) == (pb.n, pb.missing), name
        if isinstance(pa_, NumericProfile):
            assert (pa_.min, pa_.max, pa_.exponent, pa_.offset) == (
                pb.min,
                pb.max,
                pb.exponent,
                pb.offset,
            )
            np.testing.assert_array_equal(pa_.counts, pb.counts)
            assert pa_.domain == pb.domain and pa_.integral == pb.integral
            assert (pa_.values is None) == (pb.values is None)
            if pa_.values is not None:
                np.testing.assert_array_equal(pa_.values, pb.values)
            assert pa_.mean == pytest.approx(pb.mean, rel=1e-12, abs=1e-12)
            assert pa_.std == pytest.approx(pb.std, rel=1e-10)
            assert pa_.sum == pytest.approx(pb.sum, rel=1e-12, abs=1e-9)
        else:
            assert pa_.counts == pb.counts


def test_merged_partitions_equal_the_baseline_of_the_union(make_frame):
    df = make_frame(30_000, seed=1)
    # partitions with very different ranges force the grid to coarsen on merge
    df.loc[:9999, "num_0"] *= 0.001
    df.loc[20000:, "num_0"] += 1e4
    parts = [df.iloc[:10000], df.iloc[10000:20000], df.iloc[20000:]]
    merged = (
        Baseline.from_frame(parts[0])
        .merge(Baseline.from_frame(parts[1]))
        .merge(Baseline.from_frame(parts[2]))
    )
    whole = Baseline.from_frame(df)
    assert_same(merged, whole)
    assert len(whole.columns["num_0"].counts) <= GRID_CELLS
    # the same data as a stream of record batches gives the same baseline
    batches = pa.Table.from_pandas(df, preserve_index=False).to_batches(max_chunksize=7000)
    assert len(batches) > 1
    assert_same(Baseline.from_batches(batches), whole)


def test_small_columns_keep_exact_values_until_the_union_is_too_large():
    a = Baseline.from_frame(pd.DataFrame({"x": np.arange(600.0)}))
    b = Baseline.from_frame(pd.DataFrame({"x": np.arange(600.0) + 0.5}))
    assert a.columns["x"].values is not None
    assert a.merge(b).columns["x"].values is None  # 1,200 values > EXACT_LIMIT
    small = Baseline.from_frame(pd.DataFrame({"x": [3.0, 1.0, 2.0]}))
    np.testing.assert_array_equal(small.columns["x"].values, [1.0, 2.0, 3.0])
    assert small.columns["x"].domain == {1.0: 1, 2.0: 1, 3.0: 1}


def test_statistics_are_right(make_frame):
    df = make_frame(5000, seed=2)
    b = Baseline.from_frame(df)
    p = b.columns["num_1"]
    x = df["num_1"].dropna().to_numpy()
    assert (p.n, p.missing) == (len(x), int(df["num_1"].isna().sum()))
    assert p.mean == pytest.approx(x.mean()) and p.std == pytest.approx(x.std())
    assert (p.min, p.max) == (x.min(), x.max())
    assert p.counts.sum() == p.n
    np.testing.assert_allclose(
        p.quantiles(np.array([0.1, 0.5, 0.9])), np.quantile(x, [0.1, 0.5, 0.9]), atol=2 * p.width
    )
    assert b.columns["num_2"].integral and not b.columns["num_0"].integral
    assert b.columns["cat_0"].counts == df["cat_0"].value_counts().to_dict()
    assert b.constraint("cat_0")["domains"] == ["a", "b", "c"]
    assert b.constraint("num_1")["completeness"] == pytest.approx(len(x) / len(df))
    assert b.constraint("num_1")["is_non_negative"] and not b.constraint("num_0")["is_non_negative"]


def test_native_json_round_trip(make_frame):
    b = Baseline.from_frame(make_frame(3000, seed=3))
    text = json.dumps(b.to_dict())
    again = Baseline.from_dict(json.loads(text))
    assert_same(again, b)
    assert again.to_dict() == b.to_dict()
    assert len(text) < 60_000  # compact: counts are packed


def _as_from_sagemaker(stats: dict, cons: dict) -> tuple[dict, dict]:
    """The files as SageMaker itself writes them: without modelloop's additions."""
    stats = {**stats, "features": [{k: v for k, v in f.items() if k != "modelloop"}
                                   for f in stats["features"] if f["inferred_type"] != "Unknown"]}
    return stats, {k: v for k, v in cons.items() if k != "modelloop"}


def test_sagemaker_layout_round_trip(make_frame):
    df = make_frame(20_000, seed=4)
    b = Baseline.from_frame(df)
    stats, cons = _as_from_sagemaker(*b.to_sagemaker())
    stats, cons = json.loads(json.dumps(stats)), json.loads(json.dumps(cons))  # plain JSON
    assert stats["dataset"]["item_count"] == 20_000
    f = {x["name"]: x for x in stats["features"]}
    ns = f["num_1"]["numerical_statistics"]
    assert set(ns) >= {"common", "mean", "sum", "std_dev", "min", "max", "distribution"}
    assert ns["common"] == {
        "num_present": b.columns["num_1"].n,
        "num_missing": b.columns["num_1"].missing,
    }
    kll = ns["distribution"]["kll"]
    assert (
        len(kll["buckets"]) == 10
        and sum(x["count"] for x in kll["buckets"]) == b.columns["num_1"].n
    )
    assert set(kll["sketch"]["parameters"]) == {"c", "k"}
    assert f["num_2"]["inferred_type"] == "Integral" and f["cat_0"]["inferred_type"] == "String"
    buckets = f["cat_0"]["string_statistics"]["distribution"]["categorical"]["buckets"]
    assert {x["value"]: x["count"] for x in buckets} == b.columns["cat_0"].counts
    mc = cons["monitoring_config"]
    assert mc["distribution_constraints"]["comparison_threshold"] == 0.1
    assert {
        "datatype_check_threshold",
        "domain_content_threshold",
        "evaluate_constraints",
        "emit_metrics",
    } <= set(mc)
    c = {x["name"]: x for x in cons["features"]}
    assert c["cat_0"]["string_constraints"]["domains"] == ["a", "b", "c"]
    assert c["num_1"]["num_constraints"]["is_non_negative"] is True

    back = Baseline.from_sagemaker(stats, cons)
    assert back.schema == b.schema and back.n_rows == b.n_rows
    for name, p in b.columns.items():
        q = back.columns[name]
        assert (q.n, q.missing) == (p.n, p.missing)
        if isinstance(p, NumericProfile):
            assert (q.min, q.max, q.integral) == (p.min, p.max, p.integral)
            assert q.mean == pytest.approx(p.mean) and q.std == pytest.approx(p.std)
            probs = np.linspace(0.05, 0.95, 19)
            np.testing.assert_allclose(
                q.quantiles(probs), p.quantiles(probs), atol=(p.max - p.min) / 500
            )
        else:
            assert q.counts == p.counts
        assert back.constraint(name) == b.constraint(name)
    # exporting again gives the same statistics.json
    stats2, cons2 = _as_from_sagemaker(*back.to_sagemaker())
    assert cons2 == cons
    for f1, f2 in zip(stats["features"], stats2["features"], strict=True):
        if "string_statistics" in f1:
            assert f1 == f2
        else:
            a, z = f1["numerical_statistics"], f2["numerical_statistics"]
            assert {k: a[k] for k in ("common", "min", "max", "sum")} == {
                k: z[k] for k in ("common", "min", "max", "sum")
            }
            np.testing.assert_allclose(
                a["distribution"]["kll"]["sketch"]["data"][0],
                z["distribution"]["kll"]["sketch"]["data"][0],
                atol=(a["max"] - a["min"]) / 500,
            )
    # a brought baseline checks its own data as stable, under its own monitoring_config
    report = check(df, back)
    assert report.verdict.drifted_columns == [] and report.violations == []
    assert {r.method for r in report.drift} == {"linf_robust", "linf"}


def test_small_sagemaker_columns_round_trip_exactly():
    b = Baseline.from_frame(pd.DataFrame({"x": [1.5, 2.0, 2.0, 7.25], "s": ["p", "q", "p", None]}))
    back = Baseline.from_sagemaker(*b.to_sagemaker())
    np.testing.assert_array_equal(back.columns["x"].values, b.columns["x"].values)
    assert back.to_sagemaker() == b.to_sagemaker()


def test_bad_input_gets_clear_errors(make_frame):
    a = Baseline.from_frame(make_frame(100, seed=5))
    other = Baseline.from_frame(pd.DataFrame({"income": [1.0, 2.0]}))
    with pytest.raises(SchemaMismatch, match="different schemas"):
        a.merge(other)
    with pytest.raises(InvalidInput, match="not a modelloop baseline"):
        Baseline.from_dict({"version": 0, "features": []})
    with pytest.raises(InvalidInput, match="item_count"):
        Baseline.from_sagemaker({"version": 0, "features": []})
    with pytest.raises(InvalidInput, match="'x'"):
        Baseline.from_sagemaker(
            {"dataset": {"item_count": 1}, "features": [{"name": "x", "numerical_statistics": {}}]}
        )
    with pytest.raises(InvalidInput, match="cannot read data"):
        Baseline.from_batches(42)
