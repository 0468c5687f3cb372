"""Drift check: modelloop against Evidently, NannyML and per-column SciPy, on equal work.

Reference and current frames of --rows rows x 25 columns (20 numeric, 5 categorical strings) with
strong drift in num_00 (mean +0.5 sd), num_01 (sd x1.5), num_02 (lognormal mu +0.5) and cat_00
(proportions), subtle drift in num_03 (mean +0.03 sd) and cat_01 (one level 0.10 -> 0.11), and
19 unchanged columns. Every tool runs in this one process on the same two frames, and each is
timed two ways, so that no tool is credited for work it skipped:

* **baseline + check**: from the two raw frames to the flagged columns (modelloop: fit the
  baseline on the reference, then check the current frame; NannyML: ``fit(reference)`` then
  ``calculate(current)``; Evidently and SciPy always read both frames, so this is all they do);
* **check alone**: with the reference already summarised (modelloop: a baseline stored as JSON
  and read back; NannyML: the fitted calculator). Evidently and SciPy have no stored reference:
  their check alone is the same run as above, and the table says so.

Every tool runs once as a warm-up (imports, caches, first-call costs) before it is timed; times
are the median of --repeats runs (Evidently: --slow-repeats, it is slow). Configurations:

* modelloop ``check(current, baseline)``, default (Evidently-equivalent) drift methods;
* Evidently ``Report([DataDriftPreset()])`` with column types declared, defaults otherwise;
* NannyML ``UnivariateDriftCalculator``, Jensen-Shannon on every column with one chunk per frame
  (the whole current frame against the whole reference, as the others do) and a constant
  threshold of 0.1, Evidently's rule for categorical columns (its default is chunks with
  thresholds from the reference chunks' spread, a different question);
* the anchor: SciPy ``ks_2samp`` per numeric column and ``chi2_contingency`` per categorical one.

The flagged set of each tool is printed; modelloop's must equal Evidently's on the strong-drift
columns (exit status 1 otherwise). ``--memory`` adds the tracemalloc peak of a separate, untimed
run of each (NumPy and pandas buffers are traced).

Evidently 0.7.23 does not import with pandas 3, so the anchors live in their own environment,
made from the ``bench`` extra (it pins pandas < 3)::

    uv venv .venv-bench && uv pip install --python .venv-bench/bin/python -e ".[bench]"
    .venv-bench/bin/python benchmarks/drift.py            # 1,000,000 rows: about 10 minutes
    .venv-bench/bin/python benchmarks/drift.py --rows 50000

Without them it prints a note, and ``run()`` gives rows saying which anchor is missing.
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
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

# The anchors' usage telemetry (this machine has no network; do not try)
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
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
    """Median wall seconds of ``repeats`` runs after one warm-up run, and the last result."""
    fn()  # warm-up
    times, out = [], None
    for _ in range(max(repeats, 1)):
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


def nannyml_fit(ref: pd.DataFrame):
    """NannyML's baseline: a calculator fitted on the reference (one chunk: the whole frame)."""
    import nannyml as nml
    from nannyml.thresholds import ConstantThreshold

    calc = nml.UnivariateDriftCalculator(
        column_names=NUM + CAT, treat_as_categorical=CAT, chunk_number=1,
        continuous_methods=["jensen_shannon"], categorical_methods=["jensen_shannon"],
        thresholds={"jensen_shannon": ConstantThreshold(lower=None, upper=0.1)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return calc.fit(ref)


def nannyml_check(calc, cur: pd.DataFrame) -> set[str]:
    with warnings.catch_warnings():  # its JS distance warns on sqrt of -0.0 for equal bins
        warnings.simplefilter("ignore", RuntimeWarning)
        res = calc.calculate(cur).filter(period="analysis").to_df()
    return {c for c in NUM + CAT if res[(c, "jensen_shannon", "alert")].any()}


def _missing(tool: str, exc: BaseException) -> str:
    return (f"{tool} skipped ({type(exc).__name__}: {str(exc)[:120]}); it needs the bench "
            "environment: see benchmarks/drift.py's docstring")


def measure(n: int, repeats: int = 3, slow_repeats: int = 1, *, evidently: bool = True,
            nannyml: bool = True, memory: bool = False) -> dict:
    """Run every tool on the same two frames; returns timings, flagged sets and notes."""
    print(f"generating 2 x {n:,} rows x 25 columns ...", flush=True)
    ref, cur = make_frame(n, 1, False), make_frame(n, 2, True)
    loaded = (ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / 2**20
    print(f"numpy {np.__version__}, pandas {pd.__version__}; loaded data {loaded:.0f} MB",
          flush=True)
    stored = json.dumps(Baseline.from_frame(ref).to_dict())
    baseline = Baseline.from_dict(json.loads(stored))

    def flags(report) -> set[str]:
        return set(report.verdict.drifted_columns)

    tools: dict[str, dict] = {}
    both_s, both_flags = timed(lambda: flags(check(cur, Baseline.from_frame(ref))), repeats)
    check_s, report = timed(lambda: check(cur, baseline), repeats)
    tools["modelloop"] = {"both": both_s, "check": check_s, "flags": flags(report)}
    if both_flags != flags(report):
        raise AssertionError("modelloop flags differently with a stored baseline: "
                             f"{sorted(both_flags)} vs {sorted(flags(report))}")
    if memory:
        tools["modelloop"]["mem"] = peak_mb(lambda: check(cur, baseline))
    print(f"modelloop: baseline + check {both_s:.3f} s, check alone {check_s:.3f} s; stored "
          f"baseline {len(stored) / 2**20:.2f} MB JSON", flush=True)

    s, sp_flags = timed(lambda: scipy_anchor(ref, cur), 1)
    tools["scipy"] = {"both": s, "check": s, "flags": sp_flags, "same_run": True}
    if memory:
        tools["scipy"]["mem"] = peak_mb(lambda: scipy_anchor(ref, cur))

    notes: dict[str, str] = {}
    ev_values: dict[str, float] = {}
    if evidently:
        try:
            import evidently as ev

            print(f"running Evidently {ev.__version__} (warm-up + {slow_repeats}) ...",
                  flush=True)
            s, (ev_flags, ev_values) = timed(lambda: evidently_run(ref, cur), slow_repeats)
            tools["evidently"] = {"both": s, "check": s, "flags": ev_flags, "same_run": True}
            if memory and n <= 200_000:
                tools["evidently"]["mem"] = peak_mb(lambda: evidently_run(ref, cur))
        except Exception as exc:  # an anchor that does not import or run is reported, not fatal
            notes["evidently"] = _missing("Evidently", exc)
    else:
        notes["evidently"] = "Evidently skipped (--skip-evidently)"
    if nannyml:
        try:
            import nannyml as nml

            print(f"running NannyML {nml.__version__} ...", flush=True)
            both_s, nm_flags = timed(lambda: nannyml_check(nannyml_fit(ref), cur), slow_repeats)
            calc = nannyml_fit(ref)
            check_s, nm_flags2 = timed(lambda: nannyml_check(calc, cur), repeats)
            assert nm_flags == nm_flags2
            tools["nannyml"] = {"both": both_s, "check": check_s, "flags": nm_flags}
        except Exception as exc:
            notes["nannyml"] = _missing("NannyML", exc)
    else:
        notes["nannyml"] = "NannyML skipped (--skip-nannyml)"
    for note in notes.values():
        print(f"note: {note}", flush=True)
    out = {"rows": n, "tools": tools, "notes": notes, "report": report}
    if ev_values:
        diffs = {c: abs(v - ev_values[c]) for c, v in
                 ((r.column, r.value) for r in report.drift) if c in ev_values}
        worst = max(diffs, key=diffs.get)
        out["max_stat_diff"] = (diffs[worst], worst)
    return out


LABELS = {
    "modelloop": "modelloop check",
    "scipy": "SciPy per-column KS / chi2 (anchor)",
    "evidently": "Evidently DataDriftPreset",
    "nannyml": "NannyML univariate (JS, one chunk)",
}


def agreement(res: dict) -> bool | None:
    """modelloop's flags equal Evidently's on the strong-drift columns (None: no Evidently)."""
    ev = res["tools"].get("evidently")
    if ev is None:
        return None
    return res["tools"]["modelloop"]["flags"] & DRIFTED == ev["flags"] & DRIFTED


def print_table(res: dict) -> None:
    tools, n = res["tools"], res["rows"]
    ml = tools["modelloop"]
    print()
    print(f"{'tool':38s} {'baseline+check s':>16s} {'x modelloop':>11s} {'check alone s':>13s} "
          f"{'x modelloop':>11s} {'peak MB':>8s}  flagged columns")
    for key, t in tools.items():
        alone = "(same run)" if t.get("same_run") else f"{t['check']:.3f}"
        mem = f"{t['mem']:8.1f}" if "mem" in t else f"{'-':>8s}"
        print(f"{LABELS[key]:38s} {t['both']:16.3f} {t['both'] / ml['both']:11.1f} "
              f"{alone:>13s} {t['check'] / ml['check']:11.1f} {mem}  {sorted(t['flags'])}")
    print(f"\n{n:,} rows per frame; rows/s of modelloop: baseline + check "
          f"{n / ml['both']:,.0f}, check alone {n / ml['check']:,.0f}")
    print(f"designed drift: strong {sorted(DRIFTED)}, subtle {sorted(SUBTLE)}")
    v = res["report"].verdict
    print(f"modelloop verdict: dataset_drift={v.dataset_drift} (share {v.drift_share:.2f})")
    for key, t in tools.items():
        if key != "modelloop":
            diff = t["flags"] ^ ml["flags"]
            print(f"modelloop vs {LABELS[key]}: "
                  + ("same columns" if not diff else f"differ on {sorted(diff)}"))
    agree = agreement(res)
    if agree is not None:
        print(f"strong-drift columns: modelloop and Evidently "
              f"{'agree' if agree else 'DISAGREE'}")
    if "max_stat_diff" in res:
        d, col = res["max_stat_diff"]
        print(f"max |modelloop - Evidently| statistic: {d:.2e} ({col})")


def rows_of(res: dict) -> list[dict]:
    """The figures as run_all rows."""
    tools, notes = res["tools"], res["notes"]
    ml = tools["modelloop"]
    n = res["rows"]

    def row(figure, value, unit, goal=None, met=None, note=None):
        r = {"benchmark": "drift", "figure": figure, "value": value, "unit": unit, "goal": goal,
             "met": met}
        if note:
            r["note"] = note
        return r

    out = [row("modelloop baseline + check", ml["both"], "s", note=f"{n:,} rows per frame"),
           row("modelloop check alone", ml["check"], "s")]
    for key in ("evidently", "nannyml", "scipy"):
        label = LABELS[key]
        if key not in tools:
            out.append(row(f"{label} vs modelloop, baseline + check", None, "x",
                           note=notes.get(key)))
            continue
        t = tools[key]
        out.append(row(f"{label} vs modelloop, baseline + check", t["both"] / ml["both"], "x",
                       note=f"{t['both']:.2f} s; flags {','.join(sorted(t['flags']))}"))
        out.append(row(f"{label} vs modelloop, check alone", t["check"] / ml["check"], "x",
                       note="the same run: it reads both frames every time"
                       if t.get("same_run") else f"{t['check']:.3f} s"))
    agree = agreement(res)
    out.append(row("modelloop flags = Evidently's on the strong-drift columns",
                   None if agree is None else float(agree), "", "equal", agree,
                   note=notes.get("evidently") if agree is None
                   else f"modelloop flags {','.join(sorted(ml['flags']))}"))
    return out


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py: 50,000 rows per frame when quick (about a minute with the
    anchors), else the full 1,000,000."""
    res = measure(50_000 if quick else 1_000_000, repeats=3, slow_repeats=1)
    print_table(res)
    return rows_of(res)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slow-repeats", type=int, default=1,
                    help="timed runs of Evidently and NannyML's fit (after the warm-up)")
    ap.add_argument("--memory", action="store_true", help="also measure peak memory (slower)")
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--skip-nannyml", action="store_true")
    args = ap.parse_args(argv)
    res = measure(args.rows, args.repeats, args.slow_repeats, evidently=not args.skip_evidently,
                  nannyml=not args.skip_nannyml, memory=args.memory)
    print_table(res)
    return 0 if agreement(res) is not False else 1


if __name__ == "__main__":
    sys.exit(main())
