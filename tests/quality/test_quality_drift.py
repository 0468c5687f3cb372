"""Drift statistics agree with SciPy's reference functions on the same data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from modelloop.quality import Baseline
from modelloop.quality import drift as D


def current_on(ref, x):
    cur = D.CurrentNumeric.on(ref)
    cur.update(np.asarray(x, float), 0, 0, False)
    return cur


def test_wasserstein_equals_scipy_on_the_binned_data_and_is_close_to_raw():
    rng = np.random.default_rng(0)
    r, x = rng.normal(0, 1, 50_000), rng.normal(0.3, 1.4, 40_000)  # x overshoots r's range
    ref = Baseline.from_frame(pd.DataFrame({"v": r})).columns["v"]
    cur = current_on(ref, x)
    assert cur.counts[0] > 0 and cur.counts[-1] > 0
    w = ref.width
    mids = (ref.offset + np.arange(len(ref.counts)) + 0.5) * w
    lo, hi = ref.offset * w, (ref.offset + len(ref.counts)) * w
    tails = x[(x < lo) | (x >= hi)]
    binned = stats.wasserstein_distance(
        mids,
        np.concatenate([mids, tails]),
        u_weights=ref.counts,
        v_weights=np.concatenate([cur.counts[1:-1], np.ones(len(tails))]),
    )
    got = D.numeric_statistics(ref, cur)["wasserstein"] * max(ref.std, 0.001)
    assert got == pytest.approx(binned, rel=1e-9)
    assert got == pytest.approx(stats.wasserstein_distance(r, x), abs=w)


def test_ks_on_integer_data_is_exact_and_its_p_value_is_scipys_asymptotic_one():
    rng = np.random.default_rng(1)
    r, x = rng.poisson(20, 30_000), rng.poisson(20.3, 20_000)
    ref = Baseline.from_frame(pd.DataFrame({"v": r})).columns["v"]
    value, p, _ = D.compare_numeric(ref, current_on(ref, x), "ks")
    expected = stats.ks_2samp(r, x, method="asymp")
    assert value == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
    linf = D.compare_numeric(ref, current_on(ref, x), "linf")[0]
    assert linf == pytest.approx(expected.statistic, abs=1e-12)
    assert D.linf_robust(linf, 30_000, 20_000) == pytest.approx(
        max(0, linf - 1.8 * np.sqrt(50_000 / 6e8))
    )


def test_ks_on_continuous_data_is_within_a_cell_of_scipy():
    rng = np.random.default_rng(2)
    r, x = rng.gamma(2.0, 1.0, 200_000), rng.gamma(2.1, 1.0, 150_000)
    ref = Baseline.from_frame(pd.DataFrame({"v": r})).columns["v"]
    value = D.compare_numeric(ref, current_on(ref, x), "ks")[0]
    assert value == pytest.approx(stats.ks_2samp(r, x).statistic, abs=2e-3)


def test_small_samples_use_scipys_exact_functions():
    rng = np.random.default_rng(3)
    r, x = rng.normal(0, 1, 400), rng.normal(0.2, 1, 300)
    ref = Baseline.from_frame(pd.DataFrame({"v": r})).columns["v"]
    value, p, st = D.compare_numeric(ref, current_on(ref, x), "ks")
    expected = stats.ks_2samp(r, x)
    assert (value, p) == (
        pytest.approx(expected.statistic, abs=1e-15),
        pytest.approx(expected.pvalue, rel=1e-12),
    )
    assert st["wasserstein"] == pytest.approx(stats.wasserstein_distance(r, x) / r.std(), rel=1e-12)


def test_categorical_statistics_equal_scipy():
    rng = np.random.default_rng(4)
    r = rng.choice(list("abcd"), 5000, p=[0.4, 0.3, 0.2, 0.1])
    x = rng.choice(list("abcde"), 3000, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    ref = Baseline.from_frame(pd.DataFrame({"c": r})).columns["c"]
    cur = Baseline.from_frame(pd.DataFrame({"c": x})).columns["c"]
    keys = list("abcde")
    a = np.array([np.sum(r == k) for k in keys], float)
    b = np.array([np.sum(x == k) for k in keys], float)
    p, q = a / a.sum(), b / b.sum()
    js, _, st = D.compare_categorical(ref, cur, "jensenshannon")
    assert js == pytest.approx(jensenshannon(p, q), rel=1e-12)
    chi, pval, _ = D.compare_categorical(ref, cur, "chisquare")
    expected = stats.chi2_contingency(np.vstack([a, b]), correction=False)
    assert (chi, pval) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert st["linf"] == pytest.approx(np.abs(p - q).max())
    pe, qe = np.clip(p, 1e-4, None), np.clip(q, 1e-4, None)
    assert st["psi"] == pytest.approx(np.sum(rel_entr(pe, qe) + rel_entr(qe, pe)))


def test_numeric_psi_uses_reference_deciles():
    rng = np.random.default_rng(5)
    r, x = rng.normal(0, 1, 100_000), rng.normal(0.2, 1, 100_000)
    ref = Baseline.from_frame(pd.DataFrame({"v": r})).columns["v"]
    _, p, q = D.decile_bins(ref, current_on(ref, x))
    np.testing.assert_allclose(p, 0.1, atol=2e-3)  # deciles of the reference
    edges = np.quantile(r, np.linspace(0, 1, 11)[1:-1])
    q_raw = np.bincount(np.searchsorted(edges, x, side="right"), minlength=10) / len(x)
    np.testing.assert_allclose(q, q_raw, atol=2e-3)


def test_multiple_testing_corrections():
    p = [0.01, 0.02, 0.03, 0.5]
    assert D.adjust_pvalues(p, "none") == p
    assert D.adjust_pvalues(p, "bonferroni") == pytest.approx([0.04, 0.08, 0.12, 1.0])
    assert D.adjust_pvalues(p, "holm") == pytest.approx([0.04, 0.06, 0.06, 0.5])
    assert D.adjust_pvalues(p, "fdr_bh") == pytest.approx(stats.false_discovery_control(p).tolist())


@pytest.mark.parametrize(
    ("kind", "n", "distinct", "method"),
    [
        ("numeric", 5000, 100, "wasserstein"),
        ("numeric", 5000, 4, "jensenshannon"),
        ("categorical", 5000, 100, "jensenshannon"),
        ("numeric", 1000, 100, "ks"),
        ("numeric", 800, 5, "chisquare"),
        ("categorical", 800, 3, "chisquare"),
    ],
)
def test_default_methods_follow_evidently(kind, n, distinct, method):
    assert D.default_method(kind, n, distinct) == method
