"""benchmarks/run_all.py's plumbing, on tiny fake benchmark modules (never the real benchmarks:
they take minutes and time things).

A benchmark that fails, has no run() or returns garbage gives a row saying so and the others
still run; the table and the JSON carry every row in the documented shape."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run_all():
    sys.path.insert(0, str(BENCH))
    try:
        import run_all

        yield run_all
    finally:
        sys.path.remove(str(BENCH))


FAKES = {
    "fast_one": '''
        import numpy as np
        def run(quick=True):
            return [
                {"benchmark": "fast_one", "figure": "speed-up vs anchor", "value": np.float64(12.5),
                 "unit": "x", "goal": ">= 10x", "met": np.bool_(True)},
                {"benchmark": "fast_one", "figure": "anchor", "value": float("nan"), "unit": "s",
                 "goal": None, "met": None, "note": "skipped: anchor not installed"},
                {"benchmark": "fast_one", "figure": "quick?", "value": 1.0 if quick else 0.0,
                 "unit": "", "goal": "quick", "met": False},
            ]
        def main(argv=None):
            return 0
    ''',
    "broken": '''
        def run(quick=True):
            raise RuntimeError("the anchor server did not start")
    ''',
    "no_run": '''
        def main(argv=None):
            return 0
    ''',
    "garbage": '''
        def run(quick=True):
            return 42
    ''',
    "_helper": '''
        raise SystemExit("a helper module is not a benchmark")
    ''',
}


@pytest.fixture
def fakes(tmp_path):
    for name, body in FAKES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    return tmp_path


def test_discover_skips_helpers_and_orders_by_name(run_all, fakes):
    assert [p.stem for p in run_all.discover(fakes)] == ["broken", "fast_one", "garbage",
                                                          "no_run"]


def test_every_benchmark_gives_rows_and_failures_do_not_stop_the_rest(run_all, fakes, tmp_path):
    out = tmp_path / "report.json"
    assert run_all.main(["--dir", str(fakes), "--json", str(out)]) == 0
    report = json.loads(out.read_text())

    assert set(report) >= {"started", "quick", "machine", "benchmarks", "rows", "seconds", "goals"}
    assert report["quick"] is True
    status = {b["name"]: b["status"] for b in report["benchmarks"]}
    assert status == {"broken": "failed", "fast_one": "ok", "garbage": "ok", "no_run": "no run()"}
    broken = next(b for b in report["benchmarks"] if b["name"] == "broken")
    assert "the anchor server did not start" in broken["error"]

    for row in report["rows"]:
        assert set(row) - {"note"} == {"benchmark", "figure", "value", "unit", "goal", "met"}
    by_name: dict[str, list[dict]] = {}
    for row in report["rows"]:
        by_name.setdefault(row["benchmark"], []).append(row)
    speed, anchor, quick = by_name["fast_one"]
    assert speed == {"benchmark": "fast_one", "figure": "speed-up vs anchor", "value": 12.5,
                     "unit": "x", "goal": ">= 10x", "met": True}
    assert anchor["value"] is None and anchor["note"].startswith("skipped")  # NaN is no JSON
    assert quick["value"] == 1.0 and quick["met"] is False
    assert by_name["broken"][0]["figure"] == "failed" and by_name["broken"][0]["value"] is None
    assert "RuntimeError" in by_name["broken"][0]["note"]
    assert by_name["no_run"][0]["figure"] == "no run()"
    assert by_name["garbage"][0]["figure"] == "failed"
    assert report["goals"] == {"met": 1, "total": 2}


def test_the_table_names_every_row_and_the_goals(run_all, fakes):
    from rich.console import Console

    report = run_all.run_all(run_all.discover(fakes), quick=False, timeout=60)
    assert report["quick"] is False
    fast = [r for r in report["rows"] if r["benchmark"] == "fast_one"]
    assert fast[2]["value"] == 0.0  # run(quick=False) was called
    buf = io.StringIO()
    run_all.render(report, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    for needle in ("speed-up vs anchor", "12.5", ">= 10x", "not met", "no run()", "failed",
                   "skipped: anchor not installed", "goals met: 1 of 2"):
        assert needle in text, needle


def test_a_benchmark_over_its_time_limit_is_stopped_and_reported(run_all, tmp_path):
    pidfile = tmp_path / "server.pid"
    (tmp_path / "slow.py").write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        def run(quick=True):
            # a server in a session of its own, as the serving benchmarks start theirs
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                 start_new_session=True)
            open({str(pidfile)!r}, "w").write(str(p.pid))
            time.sleep(60)
    """))
    (tmp_path / "after.py").write_text(
        "def run(quick=True):\n    return [{'figure': 'ran', 'value': 1, 'unit': ''}]\n")
    report = run_all.run_all(run_all.discover(tmp_path), timeout=2)
    assert [b["status"] for b in report["benchmarks"]] == ["ok", "timed out"]
    assert report["rows"][0]["benchmark"] == "after"  # filled in from the file name
    assert report["rows"][1]["figure"] == "timed out"
    import psutil

    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the benchmark's server outlived it"
        time.sleep(0.1)


def test_only_names_an_unknown_benchmark(run_all, fakes):
    with pytest.raises(SystemExit):
        run_all.main(["--dir", str(fakes), "--only", "nope"])
