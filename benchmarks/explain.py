"""Bias metrics: modelloop against smclarify's ``bias_report`` (SageMaker Clarify's own library).

One facet (``sex=female``) on --rows rows (default 1,000,000): a binary label, a group column for
CDDL/CDDPL, five numeric features and a logistic regression's predicted labels. Both sides get the
same DataFrame, already in memory, and compute the same metrics: every pre-training metric (CI,
DPL, KL, JS, LP, TVD, KS, CDDL) and every post-training one but FT (DPPL, DI, DCA, DCR, RD, SD,
DAR, DRR, AD, CDDPL, TE, GE), facet, label and predicted label binarised from the raw columns by
each side. modelloop runs in this process; smclarify in its own venv
(``scripts/smclarify_anchor.py``: it fails with pandas 3), timing itself on the frame it read from
the same Parquet file. Each side runs once as a warm-up, then --repeat timed runs (median), one
process each. Every value must agree to 1e-9 (exit status 1 otherwise).

FT (the flip test) is a k-nearest-neighbours search, timed separately on --ft-rows rows: both
sides fit scikit-learn's ``KNeighborsClassifier`` with the same settings, so the difference there
is only smclarify's per-row Python lists around it. Goal: the bias metrics at least 10x faster.

SHAP (``--shap-rows``, default 10,000): global attributions of a 100-tree, depth-10 random forest
(TreeSHAP) and of a logistic regression (Kernel SHAP, 20 k-means centroids, 200 samples a row, on
``--kernel-rows`` rows), both scikit-learn pipelines on 20 numeric columns, against calling
``shap`` directly on the same fitted model (the forest: ``TreeExplainer`` on the pipeline's
encoded rows; the regression: ``KernelExplainer`` on the pipeline's probability with the same
centroids and seed). Each side runs once as a warm-up on a few rows; values must agree to 1e-9.
Goal: at most 1.2x the time of shap alone.

    python benchmarks/explain.py                     # 1,000,000 rows, FT on 100,000, SHAP 10,000
    python benchmarks/explain.py --rows 200000 --ft-rows 0 --shap-rows 1000 --kernel-rows 100
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
GOAL = 10.0
SHAP_GOAL = 1.2
POST_NO_FT = ["AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "GE", "RD", "SD", "TE"]


def _anchor():
    spec = importlib.util.spec_from_file_location("smclarify_anchor",
                                                  ROOT / "scripts" / "smclarify_anchor.py")  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], rows, p=[0.4, 0.6])
    X = rng.normal(size=(rows, 5))
    region = rng.integers(0, 8, rows)
    logit = X[:, 0] + 0.5 * X[:, 1] - 0.3 * X[:, 2] + 0.6 * (sex == "male") - 0.2
    approved = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    features = np.column_stack([X, sex == "male"])
    fit = LogisticRegression(max_iter=200).fit(features[:20_000], approved[:20_000])
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame.insert(0, "sex", sex)
    frame["region"], frame["approved"] = region, approved
    frame["pred"] = fit.predict(features).astype(int)
    return frame


def _ours(frame: pd.DataFrame, methods: list[str], stages):
    from modelloop.explain.bias import analyse

    return analyse(frame, "sex=female", "approved=1", predicted="pred", group="region",
                   methods=methods, stages=stages).to_clarify()  # fmt: skip


def _timed(fn, repeat: int):
    result = fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def _disagreements(ours: dict, theirs: dict) -> list[str]:
    bad = []
    for stage in ("pre_training", "post_training"):
        if stage not in theirs:
            continue
        mine = {x["name"]: x["value"] for x in
                ours[f"{stage}_bias_metrics"]["facets"]["sex"][0]["metrics"]}  # fmt: skip
        for x in theirs[stage][0]["metrics"]:
            got, want = mine.get(x["name"]), x["value"]
            same = got == want if not isinstance(want, float) else (
                isinstance(got, float) and math.isclose(got, want, rel_tol=0, abs_tol=1e-9))
            if not same:
                bad.append(f"{stage} {x['name']}: modelloop {got!r}, smclarify {want!r}")
    return bad


def measure(rows: int, ft_rows: int, repeat: int) -> dict:
    anchor = _anchor()
    python = anchor.ensure_python()
    res: dict = {"rows": rows, "ft_rows": ft_rows}
    with tempfile.TemporaryDirectory() as tmp:
        frame = make_frame(rows)
        path = Path(tmp) / "bias.parquet"
        frame.to_parquet(path)
        ours, res["modelloop_s"] = _timed(
            lambda: _ours(frame, [*anchor_pre(), *POST_NO_FT], None), repeat)
        theirs = anchor.call({"parquet": str(path), "facet": "sex", "facet_values": ["female"],
                              "label": "approved", "label_values": [1], "predicted": "pred",
                              "group": "region", "repeat": repeat,
                              "metrics": {"post_training": POST_NO_FT}}, python)  # fmt: skip
        res["smclarify_s"] = sum(statistics.median(t) for t in theirs["seconds"].values())
        res["disagreements"] = _disagreements(ours, theirs)
        if ft_rows:
            small = frame.iloc[:ft_rows].reset_index(drop=True)
            small_path = Path(tmp) / "ft.parquet"
            small.to_parquet(small_path)
            ft_ours, res["ft_modelloop_s"] = _timed(
                lambda: _ours(small, ["FT"], ("post_training",)), 1)
            ft_theirs = anchor.call({"parquet": str(small_path), "facet": "sex",
                                     "facet_values": ["female"], "label": "approved",
                                     "label_values": [1], "predicted": "pred", "group": "region",
                                     "repeat": 1, "stages": ["post_training"],
                                     "metrics": {"post_training": ["FT"]}}, python)  # fmt: skip
            res["ft_smclarify_s"] = statistics.median(ft_theirs["seconds"]["post_training"])
            res["disagreements"] += _disagreements(ft_ours, ft_theirs)
    return res


def anchor_pre() -> list[str]:
    return ["CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD"]


class _Loaded:
    """What :func:`modelloop.explain.attributions.explain` reads of a registered model."""

    def __init__(self, pipeline, names):
        from types import SimpleNamespace

        self.model, self.signature, self.task = pipeline, SimpleNamespace(names=names), "binary"
        self.classes_, self.has_proba = pipeline.classes_, True

    def predict_proba(self, X, validate=False):
        return self.model.predict_proba(X)

    def predict(self, X, validate=False):
        return self.model.predict(X)


def _shap_frame(rows: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"f{i:02d}" for i in range(20)])
    logit = X.f00 - 0.8 * X.f01 + 0.5 * X.f02 * X.f03 + 0.3 * X.f04
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def measure_shap(rows: int, kernel_rows: int) -> dict:
    """Ours vs shap alone, per model: seconds and the largest difference in values."""
    import shap
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelloop.explain.attributions import explain

    X, y = _shap_frame(max(rows, kernel_rows, 2000))
    names = list(X.columns)
    out = {}
    forest = make_pipeline(StandardScaler(), RandomForestClassifier(
        n_estimators=100, max_depth=10, n_jobs=1, random_state=0)).fit(X, y)  # fmt: skip
    rows_x = X.iloc[:rows]

    def forest_ours(n):
        return explain(_Loaded(forest, names), rows_x.iloc[:n], rows=None, method="tree").values

    def forest_shap(n):
        values = shap.TreeExplainer(forest[-1]).shap_values(forest[:-1].transform(rows_x.iloc[:n]),
                                                            check_additivity=False)  # fmt: skip
        return np.asarray(values)[:, :, 1]

    out["forest"] = _side_by_side(forest_ours, forest_shap, rows)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    k_rows = X.iloc[:kernel_rows]

    def kernel_ours(n):
        return explain(_Loaded(logreg, names), k_rows.iloc[:n], background=X, rows=None,
                       method="kernel", nsamples=200, centroids=20).values  # fmt: skip

    def kernel_shap(n):
        summary = shap.kmeans(X.to_numpy(), 20)
        f = lambda Z: logreg.predict_proba(pd.DataFrame(Z, columns=names))[:, 1]  # noqa: E731
        explainer = shap.KernelExplainer(f, summary, seed=0)
        np.random.seed(0)
        return np.asarray(explainer.shap_values(k_rows.iloc[:n].to_numpy(), nsamples=200,
                                                silent=True))  # fmt: skip

    out["kernel"] = _side_by_side(kernel_ours, kernel_shap, kernel_rows)
    out["rows"], out["kernel_rows"] = rows, kernel_rows
    return out


def _side_by_side(ours, theirs, n: int) -> dict:
    ours(5), theirs(5)  # warm-up: imports, numba compilation, first calls
    started = time.perf_counter()
    mine = ours(n)
    t_ours = time.perf_counter() - started
    started = time.perf_counter()
    ref = theirs(n)
    t_shap = time.perf_counter() - started
    return {"modelloop_s": t_ours, "shap_s": t_shap, "max_diff": float(np.max(np.abs(mine - ref)))}


def print_shap(res: dict) -> None:
    for key, what, n in (("forest", "TreeSHAP, 100-tree forest", res["rows"]),
                         ("kernel", "Kernel SHAP, logistic regression", res["kernel_rows"])):  # fmt: skip
        r = res[key]
        ratio = r["modelloop_s"] / r["shap_s"]
        print(f"{what}, {n:,} rows: modelloop {r['modelloop_s']:.3f} s, shap alone "
              f"{r['shap_s']:.3f} s: {ratio:.2f}x (goal <= {SHAP_GOAL}x: "
              f"{'met' if ratio <= SHAP_GOAL else 'NOT met'}); largest difference "
              f"{r['max_diff']:.2e}")  # fmt: skip


def shap_rows(res: dict) -> list[dict]:
    rows = []
    for key, what, n in (("forest", "TreeSHAP forest", res["rows"]),
                         ("kernel", "Kernel SHAP logistic regression", res["kernel_rows"])):  # fmt: skip
        r = res[key]
        ratio = r["modelloop_s"] / r["shap_s"]
        same = r["max_diff"] <= 1e-9
        rows.append({"benchmark": "explain", "figure": f"{what}, {n:,} rows: time vs shap alone",
                     "value": ratio, "unit": "x", "goal": f"<= {SHAP_GOAL}x",
                     "met": bool(ratio <= SHAP_GOAL and same),
                     **({} if same else {"note": f"values differ by {r['max_diff']:.2e}"})})  # fmt: skip
    return rows


def print_table(res: dict) -> None:
    ratio = res["smclarify_s"] / res["modelloop_s"]
    print(f"bias metrics, one facet, {res['rows']:,} rows (20 metrics, FT aside):")
    print(f"  modelloop  {res['modelloop_s']:8.3f} s")
    print(f"  smclarify  {res['smclarify_s']:8.3f} s   bias_report, pre- + post-training")
    print(f"  speed-up   {ratio:8.1f}x   goal >= {GOAL:.0f}x: {'met' if ratio >= GOAL else 'NOT met'}")
    if "ft_modelloop_s" in res:
        print(f"flip test (FT), {res['ft_rows']:,} rows: modelloop {res['ft_modelloop_s']:.3f} s, "
              f"smclarify {res['ft_smclarify_s']:.3f} s "
              f"({res['ft_smclarify_s'] / res['ft_modelloop_s']:.1f}x)")  # fmt: skip
    if res["disagreements"]:
        print("VALUES DISAGREE:\n  " + "\n  ".join(res["disagreements"]))
    else:
        print("every value agrees with smclarify's to 1e-9")


def rows_of(res: dict) -> list[dict]:
    ratio = res["smclarify_s"] / res["modelloop_s"]
    agree = not res["disagreements"]
    base = {"benchmark": "explain"}
    out = [
        {**base, "figure": f"bias metrics, {res['rows']:,} rows: modelloop", "unit": "s",
         "value": res["modelloop_s"], "goal": None, "met": None},
        {**base, "figure": f"bias metrics, {res['rows']:,} rows: smclarify bias_report",
         "unit": "s", "value": res["smclarify_s"], "goal": None, "met": None},
        {**base, "figure": "bias metrics speed-up vs smclarify (same values)", "unit": "x",
         "value": ratio, "goal": f">= {GOAL:.0f}x", "met": bool(ratio >= GOAL and agree),
         **({} if agree else {"note": "values disagree: " + "; ".join(res["disagreements"][:3])})},
    ]  # fmt: skip
    if "ft_modelloop_s" in res:
        out.append({**base, "figure": f"flip test (FT), {res['ft_rows']:,} rows: speed-up vs "
                    "smclarify", "unit": "x", "goal": None, "met": None,
                    "value": res["ft_smclarify_s"] / res["ft_modelloop_s"]})  # fmt: skip
    return out


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py: the bias metrics on the full 1,000,000 rows (about a minute,
    most of it smclarify's), FT on 20,000 rows; SHAP on 300 rows (forest) and 50 (kernel) when
    quick, 10,000 and 1,000 otherwise (many minutes: TreeSHAP of a 100-tree forest is ~8 ms a
    row, on either side)."""
    res = measure(1_000_000, 20_000 if quick else 100_000, repeat=3)
    print_table(res)
    shap_res = measure_shap(300 if quick else 10_000, 50 if quick else 1_000)
    print_shap(shap_res)
    return rows_of(res) + shap_rows(shap_res)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ft-rows", type=int, default=100_000, help="rows for the flip test (0: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up")
    ap.add_argument("--shap-rows", type=int, default=10_000, help="TreeSHAP rows (0: skip SHAP)")
    ap.add_argument("--kernel-rows", type=int, default=1_000, help="Kernel SHAP rows")
    args = ap.parse_args(argv)
    res = measure(args.rows, args.ft_rows, args.repeat)
    print_table(res)
    bad = bool(res["disagreements"])
    if args.shap_rows:
        shap_res = measure_shap(args.shap_rows, args.kernel_rows)
        print_shap(shap_res)
        bad = bad or any(shap_res[k]["max_diff"] > 1e-9 for k in ("forest", "kernel"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
