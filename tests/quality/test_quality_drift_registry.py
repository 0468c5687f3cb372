"""A drift statistic is one class and one registration: checks take its name with no other edit."""

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidInput
from modelloop.quality import Baseline, CheckConfig, check
from modelloop.quality import drift as D
from modelloop.quality.drift.base import NUMERIC


class MeanShift(D.DriftStatistic):
    """|mean difference| / reference std: a toy distance on numbers."""

    name = "mean_shift"
    kinds = frozenset({NUMERIC})
    threshold = 0.2

    def compute(self, cmp):
        ref, cur = cmp.ref, cmp.cur
        return D.Measure(abs(cur.sum / cur.n - ref.mean) / max(ref.std, 1e-3))


@pytest.fixture
def mean_shift():
    D.register(MeanShift)
    yield
    D.STATISTICS.pop("mean_shift")


def test_a_registered_statistic_is_used_by_checks(mean_shift, make_frame):
    ref, cur = make_frame(5000, seed=1), make_frame(2000, seed=2, shift=0.5)
    config = CheckConfig.from_dict({"numeric_method": "mean_shift", "significance": None})
    rows = {r.column: r for r in check(cur, Baseline.from_frame(ref), config).drift}
    assert rows["num_0"].method == "mean_shift" and rows["num_0"].threshold == 0.2
    assert rows["num_0"].drifted and rows["num_0"].value == pytest.approx(0.5, abs=0.1)
    assert not rows["num_1"].drifted
    assert rows["cat_0"].method == "jensenshannon"  # numbers only: categories keep their default
    # the other summary statistics are still reported beside it
    assert {"mean_shift", "wasserstein", "psi", "linf"} <= set(rows["num_0"].statistics)


def test_kinds_and_names_come_from_the_registry(mean_shift, make_frame):
    ref = Baseline.from_frame(make_frame(500, seed=3))
    with pytest.raises(InvalidInput) as exc:
        check(make_frame(500, seed=4), ref, CheckConfig(categorical_method="mean_shift"))
    assert exc.value.hint == "use jensenshannon, psi, linf, linf_robust or chisquare for categories"
    with pytest.raises(InvalidInput) as exc:
        CheckConfig.from_dict({"numeric_method": "nope"})
    assert "'chisquare' or 'mean_shift'" in str(exc.value) and "mean_shift" in exc.value.hint


def test_unregistered_names_are_refused_once_removed(make_frame):
    with pytest.raises(InvalidInput):
        CheckConfig.from_dict({"numeric_method": "mean_shift"})


def test_registration_needs_a_name_kinds_and_threshold():
    class Nameless(D.DriftStatistic):
        threshold = 0.1

    class NoKinds(D.DriftStatistic):
        name, threshold, kinds = "no_kinds", 0.1, frozenset()

    for cls in (Nameless, NoKinds):
        with pytest.raises(TypeError):
            D.register(cls)
    assert D.names() == [
        "wasserstein", "jensenshannon", "psi", "linf", "linf_robust", "ks", "chisquare"
    ]  # fmt: skip


def test_each_statistic_reports_its_own_value_beside_the_summary():
    rng = np.random.default_rng(0)
    ref = Baseline.from_frame(pd.DataFrame({"v": rng.normal(0, 1, 5000)}))
    prof = ref.columns["v"]
    cur = D.CurrentNumeric.on(prof)
    cur.update(rng.normal(0.1, 1, 3000), 0, 0, False)
    for name in D.names("numeric"):
        value, p, stats = D.compare_numeric(prof, cur, name)
        assert stats[name] == value and (p is not None) == D.get(name).is_test
