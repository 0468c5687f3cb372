"""Run every benchmark at a quick size and print one table of figures, ratios and goals.

    python benchmarks/run_all.py                 # quick sizes: about 10 minutes on 2 cores
    python benchmarks/run_all.py --json out.json # also write the table as JSON
    python benchmarks/run_all.py --only drift --only serving
    python benchmarks/run_all.py --full          # each benchmark's default (issue) size: long

A benchmark is any ``benchmarks/<name>.py`` (not starting with ``_``) with a function
``run(quick: bool = True) -> list[dict]`` returning one row per figure::

    {"benchmark": str, "figure": str, "value": float | None, "unit": str,
     "goal": str | None, "met": bool | None, "note": str (optional)}

so a new benchmark plugs in by its file alone. Each runs in a child process of its own (a crash,
a hang or a leaked thread cannot spoil the others' figures), one at a time (they time
themselves; two at once on 2 cores would measure each other), with a time limit. A benchmark
that fails, times out or has no ``run`` gives a row saying so and the rest still run; one whose
anchor is not installed returns rows saying so itself (``value`` None and a ``note``).

The anchors need packages that do not all install beside the test suite (Evidently wants
pandas < 3): the complete run uses a separate environment with the ``bench`` extra, see the
README's "Benchmarks" section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The order of the table (benchmarks found but not listed here follow, by name).
ORDER = ["drift", "serving", "batch_transform", "tuning", "pipeline_overhead", "ingest",
         "job_overhead", "model_loading", "demo"]

ROW_KEYS = ("benchmark", "figure", "value", "unit", "goal", "met", "note")

#: Runs in the child process: load one benchmark file, call its run(quick), write its rows.
CHILD = r"""
import importlib.util, json, signal, sys, traceback
# a run_all started in the background (nohup, CI) hands its children SIGINT ignored, and Python
# then installs no handler: the SIGINT that stops an overrunning benchmark would go unheard
signal.signal(signal.SIGINT, signal.default_int_handler)
path, quick, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
spec = importlib.util.spec_from_file_location("bench_" + __import__("pathlib").Path(path).stem, path)
module = importlib.util.module_from_spec(spec)
result = {}
try:
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        result = {"status": "no run()", "error": "the module has no run(quick) function"}
    else:
        result = {"status": "ok", "rows": module.run(quick=quick)}
except BaseException as exc:
    traceback.print_exc()
    result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".strip()}
with open(out, "w") as f:
    json.dump(result, f, default=lambda o: o.item() if hasattr(o, "item") else str(o))
"""


def discover(folder: Path = HERE) -> list[Path]:
    """Benchmark files of ``folder``, in table order."""
    found = {p.stem: p for p in folder.glob("*.py")
             if not p.name.startswith("_") and p.stem != "run_all"}
    order = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    return [found[n] for n in order]


def status_row(name: str, status: str, error: str | None = None) -> dict:
    """The row of a benchmark that gave no figures (failed, timed out, no run())."""
    note = f"{status}: {error}" if error else status
    return {"benchmark": name, "figure": status, "value": None, "unit": "", "goal": None,
            "met": None, "note": note[:300]}


def normalise(name: str, rows) -> list[dict]:
    """Rows as the table wants them: every key present, values JSON-safe (NaN -> None)."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return [status_row(name, "failed", f"run() returned {type(rows).__name__}, not a list "
                                           "of dicts")]
    out = []
    for r in rows:
        row = {k: r.get(k) for k in ROW_KEYS}
        row["benchmark"] = row["benchmark"] or name
        row["figure"] = str(row["figure"] or "?")
        row["unit"] = row["unit"] or ""
        v = row["value"]
        if isinstance(v, bool) or v is None:
            row["value"] = None if v is None else float(v)
        else:
            try:
                v = float(v)
                row["value"] = None if math.isnan(v) or math.isinf(v) else v
            except (TypeError, ValueError):
                row["value"] = None
        row["met"] = None if row["met"] is None else bool(row["met"])
        if row["note"] is None:
            del row["note"]
        out.append(row)
    return out or [status_row(name, "no figures")]


def run_one(path: Path, quick: bool, timeout: float) -> tuple[str, str | None, list[dict], float]:
    """Run one benchmark file in a child process: (status, error, rows, seconds)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="run-all-") as tmp:
        out = Path(tmp) / "rows.json"
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "1" if quick else "0",
                                 str(out)], start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # the servers and pools it started may sit in sessions of their own: note them first
            descendants = _descendants(proc.pid)
            # SIGINT first: the benchmark's finally blocks stop the servers it started
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            for p in descendants:
                with contextlib.suppress(Exception):
                    p.kill()
            seconds = time.perf_counter() - started
            return "timed out", f"over {timeout:g} s", [], seconds
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
            raise
        seconds = time.perf_counter() - started
        if not out.exists():
            return "failed", f"the child process exited with {proc.returncode}", [], seconds
        result = json.loads(out.read_text())
    status = result.get("status", "failed")
    return status, result.get("error"), result.get("rows") or [], seconds


def _descendants(pid: int) -> list:
    """The processes under ``pid`` (psutil handles; none without psutil)."""
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:
        return []


def run_all(paths: list[Path], *, quick: bool = True, timeout: float = 300.0) -> dict:
    """Run the benchmarks one after another; never stops at a failure."""
    started = time.perf_counter()
    report = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "benchmarks": [],
        "rows": [],
    }
    for path in paths:
        name = path.stem
        print(f"\n=== {name} ({'quick' if quick else 'full'}) ===", flush=True)
        status, error, rows, seconds = run_one(path, quick, timeout)
        rows = normalise(name, rows) if status == "ok" else [status_row(name, status, error)]
        report["benchmarks"].append({"name": name, "status": status, "error": error,
                                     "seconds": round(seconds, 1)})
        report["rows"].extend(rows)
    report["seconds"] = round(time.perf_counter() - started, 1)
    goals = [r["met"] for r in report["rows"] if r["met"] is not None]
    report["goals"] = {"met": sum(goals), "total": len(goals)}
    return report


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 0.01 or a == 0:
        return f"{value:.3g}"
    return f"{value:.2e}"


def render(report: dict, console=None) -> None:
    """The report as one rich table, then the goals met and the time each benchmark took."""
    from rich.console import Console
    from rich.table import Table

    # a log file or pipe is not a terminal: rich would wrap the table at 80 columns
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=f"modelloop benchmarks ({'quick' if report['quick'] else 'full'} sizes, "
                        f"{report['machine']['cpus']} cores)")
    for col, kw in (("benchmark", {}), ("figure", {}), ("value", {"justify": "right"}),
                    ("unit", {}), ("goal", {}), ("met", {}), ("note", {"overflow": "fold"})):
        table.add_column(col, **kw)
    last = None
    for r in report["rows"]:
        met = {True: "[green]met[/]", False: "[red]not met[/]", None: ""}[r["met"]]
        name = r["benchmark"] if r["benchmark"] != last else ""
        if last is not None and name:
            table.add_section()
        last = r["benchmark"]
        table.add_row(name, r["figure"], fmt(r["value"]), r["unit"], r["goal"] or "", met,
                      r.get("note", ""))
    console.print(table)
    g = report["goals"]
    times = ", ".join(f"{b['name']} {b['seconds']:.0f} s"
                      + ("" if b["status"] == "ok" else f" ({b['status']})")
                      for b in report["benchmarks"])
    console.print(f"goals met: {g['met']} of {g['total']}; total {report['seconds']:.0f} s "
                  f"({times})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    ap.add_argument("--only", action="append", metavar="NAME", help="run only these (repeatable)")
    ap.add_argument("--skip", action="append", default=[], metavar="NAME", help="leave these out")
    ap.add_argument("--full", action="store_true", help="each benchmark's full size (slow)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds one benchmark may take before it is stopped (default 300)")
    ap.add_argument("--dir", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    paths = discover(args.dir)
    if args.only:
        unknown = set(args.only) - {p.stem for p in paths}
        if unknown:
            ap.error(f"no benchmark named {', '.join(sorted(unknown))} "
                     f"(there are: {', '.join(p.stem for p in paths)})")
        paths = [p for p in paths if p.stem in args.only]
    paths = [p for p in paths if p.stem not in args.skip]
    report = run_all(paths, quick=not args.full, timeout=args.timeout)
    print()
    render(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
