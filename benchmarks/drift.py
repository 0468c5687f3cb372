"""Drift check: modelloop against a stored baseline vs Evidently, NannyML and per-column SciPy.

Reference and current frames of --rows rows x 25 columns (20 numeric, 5 categorical strings) with
strong drift in num_00 (mean +0.5 sd), num_01 (sd x1.5), num_02 (lognormal mu +0.5) and cat_00
(proportions), subtle drift in num_03 (mean +0.03 sd) and cat_01 (one level 0.10 -> 0.11), and
19 unchanged columns. Every approach runs in this one process on the same frames:

* modelloop: the baseline is fitted once (timed separately), stored as JSON and read back; the
  figure is ``check(current, baseline)`` with the default (Evidently-equivalent) configuration;
* Evidently ``Report([DataDriftPreset()])`` with column types declared, defaults otherwise;
* NannyML ``UnivariateDriftCalculator`` (default Jensen-Shannon, chunk_size = rows // 10; a column
  counts as flagged when any current chunk alerts; a different workload, shown for scale);
* the anchor: SciPy ``ks_2samp`` per numeric column and ``chi2_contingency`` per categorical one.

Evidently 0.7.23 does not import with pandas 3 and NannyML needs statsmodels: run this script with
an interpreter that has them (e.g. a venv with ``pip install evidently==0.7.23 "pandas<3" nannyml
statsmodels`` and ``PYTHONPATH=src``); without them it prints a note and skips them.

Memory "over the loaded data" is the tracemalloc peak of a separate, untimed run of each approach
(NumPy and pandas buffers are traced); times are wall-clock medians of --repeats runs after one
warm-up (Evidently and NannyML: one run, they are slow).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry (no network here anyway)
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelloop.quality import Baseline, check  # noqa: E402

NUM = [f"num_{i:02d}" for i in range(20)]
CAT = [f"cat_{i:02d}" for i in range(5)]
DRIFTED = {"num_00", "num_01", "num_02", "cat_00"}
SUBTLE = {"num_03", "cat_01"}


def make_frame(n: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    makers: list[Callable[[], np.ndarray]] = [
        lambda: rng.normal(0.5 if drift else 0.0, 1.0, n),
        lambda: rng.normal(0.0, 1.5 if drift else 1.0, n),
        lambda: rng.lognormal(0.5 if drift else 0.0, 1.0, n),
        lambda: rng.normal(0.03 if drift else 0.0, 1.0, n),
    ]
    for i, name in enumerate(NUM):
        if i < 4:
            cols[name] = makers[i]()
            continue
        kind = i % 8
        cols[name] = [
            lambda: rng.normal(10, 3, n),
            lambda: rng.uniform(-5, 5, n),
            lambda: rng.exponential(2.0, n),
            lambda: rng.gamma(3.0, 2.0, n),
            lambda: rng.poisson(7, n).astype(float),
            lambda: rng.integers(0, 1000, n).astype(float),
            lambda: rng.standard_t(3, n),
            lambda: np.where(rng.random(n) < 0.5, rng.normal(-2, 1, n), rng.normal(2, 1, n)),
        ][kind]()
    for i, name in enumerate(CAT):
        levels = [3, 10, 25, 50, 100][i]
        p = np.full(levels, 1.0 / levels)
        if name == "cat_00" and drift:
            p = np.array([0.2, 0.3, 0.5])
        elif name == "cat_00":
            p = np.array([0.5, 0.3, 0.2])
        elif name == "cat_01":
            p = np.full(10, 0.9 / 9)
            p[0] = 0.11 if drift else 0.10
            p[1:] = (1 - p[0]) / 9
        cols[name] = rng.choice(np.array([f"{name}_v{j}" for j in range(levels)]), n, p=p)
    return pd.DataFrame(cols)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def peak_mb(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def scipy_anchor(ref: pd.DataFrame, cur: pd.DataFrame) -> set[str]:
    from scipy import stats

    flagged = set()
    for c in NUM:
        if stats.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()).pvalue < 0.05:
            flagged.add(c)
    for c in CAT:
        a, b = ref[c].value_counts(), cur[c].value_counts()
        idx = a.index.union(b.index)
        table = np.vstack([a.reindex(idx, fill_value=0), b.reindex(idx, fill_value=0)])
        if stats.chi2_contingency(table)[1] < 0.05:
            flagged.add(c)
    return flagged


def evidently_run(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[set[str], dict[str, float]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    dd = DataDefinition(numerical_columns=NUM, categorical_columns=CAT)
    res = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    flagged, values = set(), {}
    for m in res.dict()["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            v = float(m["value"])
            values[cfg["column"]] = v
            is_p = "p_value" in cfg["method"]
            if (v < cfg["threshold"]) if is_p else (v >= cfg["threshold"]):
                flagged.add(cfg["column"])
    return flagged, values


def nannyml_run(ref: pd.DataFrame, cur: pd.DataFrame) -> set[str]:
    import nannyml as nml

    calc = nml.UnivariateDriftCalculator(
        column_names=NUM + CAT,
        chunk_size=max(len(ref) // 10, 1),
        categorical_methods=["jensen_shannon"],
    )
    calc.fit(ref)
    res = calc.calculate(cur).filter(period="analysis").to_df()
    flagged = set()
    for c in NUM + CAT:
        if res[(c, "jensen_shannon", "alert")].any():
            flagged.add(c)
    return flagged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--skip-nannyml", action="store_true")
    args = ap.parse_args()
    n = args.rows
    print(f"generating 2 x {n:,} rows x 25 columns ...", flush=True)
    ref, cur = make_frame(n, 1, False), make_frame(n, 2, True)
    print(
        f"numpy {np.__version__}, pandas {pd.__version__}; loaded data {(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / 2**20:.0f} MB"
    )

    t = time.perf_counter()
    baseline = Baseline.from_frame(ref)
    fit_s = time.perf_counter() - t
    stored = json.dumps(baseline.to_dict())
    baseline = Baseline.from_dict(json.loads(stored))
    rows = {}

    ml_s, report = timed(lambda: check(cur, baseline), args.repeats)
    ml_flags = set(report.verdict.drifted_columns)
    ml_values = {r.column: r.value for r in report.drift}
    rows["modelloop check"] = (ml_s, peak_mb(lambda: check(cur, baseline)), ml_flags)
    print(
        f"modelloop baseline fit (one-time): {fit_s:.2f} s; stored baseline {len(stored) / 2**20:.2f} MB JSON",
        flush=True,
    )

    sp_s, sp_flags = timed(lambda: scipy_anchor(ref, cur), 1)
    rows["scipy per-column KS/chi2 (anchor)"] = (
        sp_s,
        peak_mb(lambda: scipy_anchor(ref, cur)),
        sp_flags,
    )

    ev_values: dict[str, float] = {}
    if args.skip_evidently:
        print("note: Evidently skipped (--skip-evidently)")
    else:
        try:
            import evidently

            print(f"running Evidently {evidently.__version__} (slow) ...", flush=True)
            t = time.perf_counter()
            ev_flags, ev_values = evidently_run(ref, cur)
            ev_s = time.perf_counter() - t
            ev_mem = peak_mb(lambda: evidently_run(ref, cur)) if n <= 200_000 else float("nan")
            rows["evidently DataDriftPreset"] = (ev_s, ev_mem, ev_flags)
        except (
            Exception
        ) as exc:  # an import or runtime failure of a third-party tool is reported, not fatal
            print(f"note: Evidently skipped: {type(exc).__name__}: {exc}")
    if args.skip_nannyml:
        print("note: NannyML skipped (--skip-nannyml)")
    else:
        try:
            import nannyml

            print(f"running NannyML {nannyml.__version__} ...", flush=True)
            t = time.perf_counter()
            nm_flags = nannyml_run(ref, cur)
            rows["nannyml univariate (JS, 10 chunks)"] = (
                time.perf_counter() - t,
                float("nan"),
                nm_flags,
            )
        except Exception as exc:
            print(f"note: NannyML skipped: {type(exc).__name__}: {exc}")

    print()
    print(
        f"{'approach':38s} {'seconds':>9s} {'rows/s':>12s} {'x modelloop':>12s} {'peak MB over data':>18s}  flagged columns"
    )
    for name, (s, mem, flags) in rows.items():
        print(f"{name:38s} {s:9.3f} {n / s:12,.0f} {s / ml_s:12.1f} {mem:18.1f}  {sorted(flags)}")
    print()
    print(f"designed drift: strong {sorted(DRIFTED)}, subtle {sorted(SUBTLE)}")
    print(
        f"modelloop verdict: dataset_drift={report.verdict.dataset_drift} (share {report.verdict.drift_share:.2f})"
    )
    for name, (_, _, flags) in rows.items():
        if name != "modelloop check":
            same = "same columns" if flags == ml_flags else f"differ: {sorted(flags ^ ml_flags)}"
            print(f"modelloop vs {name}: {same}; speed-up {rows[name][0] / ml_s:.1f}x")
    if ev_values:
        diffs = {c: abs(ml_values[c] - ev_values[c]) for c in ev_values if c in ml_values}
        worst = max(diffs, key=diffs.get)
        print(f"max |modelloop - Evidently| statistic: {diffs[worst]:.2e} ({worst})")


if __name__ == "__main__":
    main()
