"""Checks: the right columns flagged, false alarms at the chosen rate, violations, bad input."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modelloop.errors import InvalidInput, SchemaMismatch
from modelloop.quality import Baseline, CheckConfig, ColumnCheck, check


def test_known_drift_is_flagged_and_stable_columns_are_not(make_frame):
    ref, cur = make_frame(20_000, seed=10), make_frame(20_000, seed=11, shift=0.5)
    report = check(cur, Baseline.from_frame(ref))
    assert report.verdict.drifted_columns == ["num_0", "cat_0"]
    methods = {r.column: r.method for r in report.drift}
    assert methods == {
        "num_0": "wasserstein",
        "num_1": "wasserstein",
        "num_2": "wasserstein",
        "flag": "jensenshannon",  # two values: compared as categories, as Evidently does
        "cat_0": "jensenshannon",
        "cat_1": "jensenshannon",
    }
    assert report.verdict.drift_share == pytest.approx(2 / 6) and not report.verdict.dataset_drift
    drift_violations = [
        v.feature_name
        for v in report.violations
        if v.constraint_check_type == "baseline_drift_check"
    ]
    assert drift_violations == ["num_0", "cat_0"]
    # half the columns drifting makes the dataset drift (Evidently's drift_share 0.5)
    assert check(cur, Baseline.from_frame(ref), CheckConfig(drift_share=0.3)).verdict.dataset_drift


def test_false_alarm_rate_of_tests_matches_their_level():
    """Small references use KS / chi-square; on unchanged columns p < 0.05 fires about 5% of the
    time per column; with Benjamini-Hochberg, runs with any alarm among 11 unchanged columns stay
    near 5% (the FWER under the complete null) and the false discovery proportion near 5% or less."""
    per_column, runs_with_alarm, power, fdp = [], 0, 0, []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        cols = {f"x{i}": rng.normal(size=300) for i in range(10)}
        cur_cols = {f"x{i}": rng.normal(size=300) for i in range(10)}
        cols["c"], cur_cols["c"] = rng.choice(list("abc"), 300), rng.choice(list("abc"), 300)
        cols["moved"], cur_cols["moved"] = rng.normal(size=300), rng.normal(0.5, 1, 300)
        baseline = Baseline.from_frame(pd.DataFrame(cols))
        raw = check(pd.DataFrame(cur_cols), baseline, CheckConfig.evidently())
        assert {r.method for r in raw.drift} == {"ks", "chisquare"}
        per_column += [r.drifted for r in raw.drift if r.column != "moved"]
        nulls_only = CheckConfig(columns={"moved": ColumnCheck(drift=False)})
        runs_with_alarm += any(
            r.drifted for r in check(pd.DataFrame(cur_cols), baseline, nulls_only).drift
        )
        corrected = check(pd.DataFrame(cur_cols), baseline)
        power += "moved" in corrected.verdict.drifted_columns
        found = corrected.verdict.drifted_columns
        fdp.append(sum(c != "moved" for c in found) / max(len(found), 1))
    assert 0.01 <= np.mean(per_column) <= 0.09  # 330 null columns, level 0.05
    assert runs_with_alarm <= 4  # of 30; 1.5 expected
    assert np.mean(fdp) <= 0.1
    assert power >= 28


def test_batches_give_the_same_report_as_the_frame(make_frame):
    ref, cur = make_frame(8000, seed=12), make_frame(9000, seed=13, shift=0.3)
    baseline = Baseline.from_frame(ref)
    batches = pa.Table.from_pandas(cur, preserve_index=False).to_batches(max_chunksize=2000)
    a, b = check(cur, baseline), check(iter(batches), baseline)
    assert [(r.column, r.drifted) for r in a.drift] == [(r.column, r.drifted) for r in b.drift]
    for ra, rb in zip(a.drift, b.drift, strict=True):
        assert ra.value == pytest.approx(rb.value, rel=1e-9, abs=1e-12)
    assert a.n_rows == b.n_rows == 9000


def test_constraint_violations_in_sagemaker_shape(make_frame):
    ref = make_frame(5000, seed=14)
    cur = make_frame(5000, seed=15).drop(columns=["num_2"])
    cur["new"] = 1.0
    cur["cat_0"] = np.where(np.arange(5000) % 4 == 0, "zzz", cur["cat_0"])  # 25% unknown
    cur["num_1"] = cur["num_1"].astype(object)
    cur.loc[:1000, "num_1"] = "n/a"  # not numbers
    cur["num_0"] = cur["num_0"].where(np.arange(5000) % 5 != 0)  # 20% missing
    cur.loc[0, "flag"] = -1
    config = CheckConfig(columns={"num_0": ColumnCheck(max_value=2.0)})
    report = check(cur, Baseline.from_frame(ref), config)
    got = {(v.feature_name, v.constraint_check_type) for v in report.violations}
    assert {
        ("num_2", "missing_column_check"),
        ("new", "extra_column_check"),
        ("cat_0", "categorical_values_check"),
        ("num_1", "data_type_check"),
        ("num_0", "completeness_check"),
        ("flag", "range_check"),
        ("num_0", "range_check"),
    } <= got
    doc = report.to_sagemaker_violations()
    assert set(doc) == {"violations"}
    assert all(
        set(v) == {"feature_name", "constraint_check_type", "description"}
        for v in doc["violations"]
    )
    assert not report.verdict.ok
    assert report.to_dict()["verdict"]["n_violations"] == len(doc["violations"])
    # the same data without the damage has no violations
    clean = check(make_frame(5000, seed=15), Baseline.from_frame(ref))
    assert clean.violations == [] and clean.verdict.ok


def test_prediction_drift_is_reported_apart_from_feature_drift():
    rng = np.random.default_rng(16)
    ref = pd.DataFrame({"x": rng.normal(size=5000), "score": rng.beta(2, 5, 5000)})
    cur = pd.DataFrame({"x": rng.normal(size=5000), "score": rng.beta(5, 2, 5000)})
    report = check(cur, Baseline.from_frame(ref), CheckConfig(prediction_columns=["score"]))
    assert report.verdict.prediction_drift is True
    assert report.verdict.drifted_columns == [] and report.verdict.n_columns == 1
    assert {r.column: r.role for r in report.drift} == {"x": "feature", "score": "prediction"}


def test_methods_and_thresholds_are_configurable_per_column(make_frame):
    ref, cur = make_frame(5000, seed=17), make_frame(5000, seed=18, shift=0.5)
    config = CheckConfig(
        numeric_method="psi",
        columns={
            "num_0": ColumnCheck(threshold=5.0),
            "cat_0": ColumnCheck(method="chisquare"),
            "num_1": ColumnCheck(drift=False),
        },
    )
    report = check(cur, Baseline.from_frame(ref), config)
    rows = {r.column: r for r in report.drift}
    assert "num_1" not in rows
    assert (
        rows["num_0"].method == "psi"
        and rows["num_0"].threshold == 5.0
        and not rows["num_0"].drifted
    )
    assert (
        rows["cat_0"].method == "chisquare"
        and rows["cat_0"].drifted
        and rows["cat_0"].p_adjusted is not None
    )
    again = CheckConfig.from_dict(config.to_dict())
    assert again == config
    sm = CheckConfig.from_sagemaker(
        {
            "monitoring_config": CheckConfig(
                numeric_method="linf", numeric_threshold=0.2
            ).to_sagemaker()
        }
    )
    assert (sm.numeric_method, sm.numeric_threshold, sm.categorical_method) == ("linf", 0.2, "linf")


def test_bad_input_gets_clear_errors(make_frame):
    baseline = Baseline.from_frame(make_frame(500, seed=19))
    with pytest.raises(SchemaMismatch, match="shares no column"):
        check(pd.DataFrame({"income": [1.0], "age": [30]}), baseline)
    with pytest.raises(InvalidInput, match="numeric_method"):
        CheckConfig.from_dict({"numeric_method": "magic"})
    with pytest.raises(InvalidInput, match="categorical column 'cat_0'"):
        check(
            make_frame(500, seed=20),
            baseline,
            CheckConfig(columns={"cat_0": ColumnCheck(method="ks")}),
        )
