"""Checks must not cry wolf: column roles, SageMaker round trips that check exactly like the
original, and no alarms from identifiers, time columns, constant or empty columns, tiny samples or
new rare categories, while real drift is still found."""

import json

import numpy as np
import pandas as pd
import pytest

from modelloop.quality import Baseline, CheckConfig, check
from modelloop.quality.roles import is_identifier
from modelloop.training.preprocessing import column_kind


def loans(n: int, seed: int, shift: float = 0.0, start: str = "2026-01-01") -> pd.DataFrame:
    """Applications with an id, a time, numbers, categories (one rare), a constant, nulls and a
    target; ``shift`` moves ``income`` (in sd)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "application_id": [f"{start}-{seed}-{i:06d}" for i in range(n)],
            "applied_at": pd.Timestamp(start, tz="UTC")
            + pd.to_timedelta(np.sort(rng.uniform(0, 86_400, n)), unit="s"),
            "income": rng.normal(50 + 10 * shift, 10, n),
            "age": rng.integers(18, 80, n),
            "car": rng.choice(["sedan", "suv", "van", "coupe"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "constant": np.full(n, 7),
            "channel": np.full(n, "web"),
            "empty": np.full(n, np.nan),
            "notes": pd.Series([None] * n, dtype=object),
            "approved": rng.integers(0, 2, n),
        }
    )
    df.loc[rng.random(n) < 0.05, "income"] = np.nan
    return df


@pytest.fixture(scope="module")
def baseline():
    return Baseline.from_frame(loans(5000, seed=1), target="approved")


def test_roles_are_recorded_and_identifiers_follow_trainings_rule(baseline):
    assert baseline.role("application_id") == "identifier"
    assert baseline.role("applied_at") == "time"
    assert baseline.role("approved") == "target"
    assert baseline.role("income") == "feature" and baseline.role("car") == "feature"
    assert baseline.columns["application_id"].counts == {}  # an id's values are not stored
    assert baseline.columns["application_id"].n_distinct == 5000
    # one rule for both: training drops exactly the text columns monitoring calls identifiers
    frame = loans(300, seed=2)
    frame["almost_id"] = frame["application_id"].where(frame.index > 0, frame["application_id"][1])
    frame["few"] = frame["application_id"].head(49)
    b = Baseline.from_frame(frame)
    for name in ("application_id", "car", "almost_id", "few", "channel"):
        col = frame[name]
        dropped = column_kind(col) == "drop"
        assert dropped == (b.role(name) == "identifier") == is_identifier(
            col.nunique(), int(col.notna().sum())
        ), name


def test_identifier_and_time_columns_do_not_alarm(baseline):
    report = check(loans(3000, seed=2, start="2026-02-01"), baseline)
    assert report.verdict.ok, report.to_dict()["violations"]
    checked = {r.column for r in report.drift}
    assert "application_id" not in checked and "applied_at" not in checked
    assert checked >= {"income", "age", "car"}


def test_old_baselines_without_roles_get_the_default_roles():
    old = Baseline.from_frame(loans(2000, seed=3)).to_dict()
    del old["roles"]
    # as stored before roles existed: identifiers kept their counts
    old["columns"]["application_id"] = {
        "kind": "categorical", "n": 2000, "missing": 0,
        "counts": [[f"id-{i}", 1] for i in range(2000)],
    }  # fmt: skip
    b = Baseline.from_dict(json.loads(json.dumps(old)))
    assert b.role("application_id") == "identifier" and b.role("income") == "feature"
    assert b.role("applied_at") == "ignored"  # skipped: never compared, never "extra"
    assert check(loans(1500, seed=4, start="2026-03-01"), b).verdict.ok


def test_the_target_is_optional_but_its_drift_is_reported(baseline):
    traffic = loans(2000, seed=5).drop(columns=["approved"])
    report = check(traffic, baseline)
    assert report.verdict.ok and report.verdict.target_drift is None
    labelled = loans(2000, seed=6)
    labelled["approved"] = (np.random.default_rng(6).random(2000) < 0.9).astype(int)
    report = check(labelled, baseline)
    assert report.verdict.target_drift is True and report.verdict.drifted_columns == []
    assert [v.feature_name for v in report.violations] == ["approved"]


CURRENT = {
    "same": lambda: loans(3000, seed=7, start="2026-04-01"),
    "shifted": lambda: loans(3000, seed=8, shift=0.8),
    "tiny": lambda: loans(12, seed=9),
    "sparse": lambda: loans(400, seed=10).assign(
        income=lambda d: d["income"].where(d.index < 20), notes="hello"
    ),
    "as_csv": lambda: loans(2000, seed=11).astype({"applied_at": str}),
    "traffic": lambda: loans(2000, seed=12).drop(columns=["approved", "application_id"]),
}


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_sagemaker_export_import_checks_exactly_like_the_original(baseline, name):
    stats, cons = baseline.to_sagemaker()
    back = Baseline.from_sagemaker(json.loads(json.dumps(stats)), json.loads(json.dumps(cons)))
    data = CURRENT[name]()
    original, brought = check(data, baseline).to_dict(), check(data, back).to_dict()
    assert brought == original
    # and after a second trip too (export of the imported baseline)
    again = Baseline.from_sagemaker(*back.to_sagemaker())
    assert check(data, again).to_dict() == original


def test_a_sagemaker_config_edited_after_export_is_honoured(baseline):
    stats, cons = baseline.to_sagemaker()
    cons["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = 0.3
    back = Baseline.from_sagemaker(stats, cons)
    assert back.monitoring_config == cons["monitoring_config"]
    report = check(loans(3000, seed=8, shift=0.8), back)
    assert {r.method for r in report.drift} <= {"linf_robust", "linf"}


def test_constant_empty_and_rare_columns_and_tiny_samples_do_not_alarm(baseline):
    # tiny data: not enough data, no alarm (but its columns are still checked)
    tiny = check(loans(12, seed=13), baseline)
    assert tiny.verdict.ok and not tiny.verdict.enough_data and tiny.drift == []
    assert check(loans(12, seed=13).drop(columns=["car"]), baseline).violations[0].feature_name == "car"
    # a column with too few values on one side is listed, not judged: its 20 values get no drift
    # verdict (its emptiness is a real completeness violation); a column empty in the baseline
    # that has values now suggests no domain to violate
    report = check(CURRENT["sparse"](), baseline)
    assert report.verdict.not_enough_data == ["income"]
    assert "income" not in {r.column for r in report.drift}
    assert [(v.feature_name, v.constraint_check_type) for v in report.violations] == [
        ("income", "completeness_check")
    ]
    # a new rare category (3 in 2000) and one null where there were none are not alarms
    rare = loans(2000, seed=14)
    rare.loc[:2, "car"] = "limousine"
    rare.loc[5, "age"] = None
    assert check(rare, baseline).verdict.ok
    # ... nor with a small reference, where chi-square is the default method
    small = Baseline.from_frame(loans(600, seed=15), target="approved")
    assert check(rare, small).verdict.ok
    # small current windows of unchanged data rarely alarm (measured: 1-3% per column)
    alarms = sum(not check(loans(100, seed=s), baseline).verdict.ok for s in range(100, 140))
    assert alarms <= 4


def test_real_drift_is_still_found(baseline):
    report = check(loans(3000, seed=16, shift=0.8), baseline)
    assert report.verdict.drifted_columns == ["income"]
    small = check(loans(200, seed=17, shift=1.0), baseline)
    assert small.verdict.drifted_columns == ["income"]
    empty_now = loans(3000, seed=18).assign(car=None)
    assert {v.constraint_check_type for v in check(empty_now, baseline).violations} == {
        "completeness_check"
    }
    novel = loans(3000, seed=19).assign(car="tractor")
    kinds = {(v.feature_name, v.constraint_check_type) for v in check(novel, baseline).violations}
    assert ("car", "categorical_values_check") in kinds and ("car", "baseline_drift_check") in kinds


def test_min_rows_and_significance_are_explicit_settings(baseline):
    cfg = CheckConfig(min_rows=5, significance=None)
    tiny = check(loans(12, seed=13), baseline, cfg)
    assert tiny.verdict.enough_data and tiny.drift
    assert CheckConfig().min_rows == 30 and CheckConfig().significance == 0.05
