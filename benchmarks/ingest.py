"""Ingest speed and memory against pyarrow's own read_csv + write_table (the floor).

Generates a 1,000,000-row, 20-column CSV (ints, floats, text, timestamps, booleans) in a temp
folder, then runs, alternately and each in a fresh subprocess so that peak memory is its own:

- anchor: ``pyarrow.csv.read_csv`` (multithreaded) + ``pyarrow.parquet.write_table`` of the file;
- modelloop: ``modelloop.data.ingest.ingest_files`` of the same file into a staging folder
  (sha256 of the file, schema inference, Parquet parts, quarantine checks).

Prints the median of 3 runs of each: rows/s, the ratio modelloop / anchor (goal >= 0.7), and
peak RSS of each against the file size. Usage: ``python benchmarks/ingest.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, csv_path, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
# imports are not part of the timing (pyarrow.compute included: modelloop's casts import it,
# ~0.1 s that, at run_all's 200,000 rows, would be a fifth of what is timed)
import pyarrow, pyarrow.compute, pyarrow.csv, pyarrow.parquet
from modelloop.data.ingest.engine import IngestOptions, ingest_files
start = time.perf_counter()
if mode == "anchor":
    table = pyarrow.csv.read_csv(csv_path)
    pyarrow.parquet.write_table(table, out / "anchor.parquet")
    rows = table.num_rows
else:
    out.mkdir()
    rows = ingest_files([csv_path], out, None, IngestOptions()).rows
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss": peak}))
"""


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """20 columns: 6 int, 6 float, 4 text, 2 timestamp, 2 bool."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as csv

    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(6):
        cols[f"int_{i}"] = rng.integers(0, 1_000_000, rows)
    for i in range(6):
        cols[f"float_{i}"] = rng.normal(0, 1000, rows).round(4)
    words = np.array(["north", "south", "east", "west", "centre", "unknown"])
    for i in range(4):
        cols[f"text_{i}"] = words[rng.integers(0, len(words), rows)]
    start = np.datetime64("2026-01-01T00:00:00", "us")
    for i in range(2):
        offsets = rng.integers(0, 86_400_000_000, rows).astype("timedelta64[us]")
        cols[f"time_{i}"] = pa.array(start + offsets)
    for i in range(2):
        cols[f"flag_{i}"] = rng.random(rows) < 0.5
    csv.write_csv(pa.table(cols), path)


def measure_one(mode: str, csv_path: Path, work: Path, k: int) -> dict:
    out = work / f"{mode}-{k}"
    if mode == "anchor":
        out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(csv_path), str(out)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(rows: int, repeat: int) -> dict:
    """Median seconds, peak RSS and rows of each side, run alternately in fresh processes."""
    with tempfile.TemporaryDirectory(prefix="modelloop-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "data.csv"
        generate(csv_path, rows)
        size = csv_path.stat().st_size
        print(f"file: {rows:,} rows x 20 columns, {size / 2**20:.0f} MiB", flush=True)
        runs: dict[str, list[dict]] = {"anchor": [], "modelloop": []}
        for k in range(repeat):
            for mode in ("anchor", "modelloop") if k % 2 == 0 else ("modelloop", "anchor"):
                runs[mode].append(measure_one(mode, csv_path, work, k))
    med = {
        m: {key: statistics.median(r[key] for r in rs) for key in ("seconds", "peak_rss", "rows")}
        for m, rs in runs.items()
    }
    if med["anchor"]["rows"] != med["modelloop"]["rows"]:
        raise AssertionError(f"rows differ: {med}")
    for m in ("anchor", "modelloop"):
        r = med[m]
        print(
            f"{m:>10}: {r['rows'] / r['seconds']:>12,.0f} rows/s  "
            f"({r['seconds']:.2f} s, runs {[round(x['seconds'], 2) for x in runs[m]]})  "
            f"peak RSS {r['peak_rss'] / 2**20:,.0f} MiB = {r['peak_rss'] / size:.2f}x file"
        )
    ratio = med["anchor"]["seconds"] / med["modelloop"]["seconds"]
    print(f"ratio modelloop / (read_csv + write_table): {ratio:.2f} (goal >= 0.7)")
    return {"med": med, "ratio": ratio, "size": size, "rows": rows}


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py: 200,000 rows when quick (the default: 1,000,000)."""
    res = measure(200_000 if quick else 1_000_000, 3)
    med = res["med"]
    return [
        {"benchmark": "ingest", "figure": "modelloop ingest", "unit": "rows/s",
         "value": med["modelloop"]["rows"] / med["modelloop"]["seconds"], "goal": None,
         "met": None, "note": f"{res['rows']:,} rows, {res['size'] / 2**20:.0f} MiB CSV"},
        {"benchmark": "ingest", "figure": "pyarrow read_csv + write_table (anchor)",
         "unit": "rows/s", "value": med["anchor"]["rows"] / med["anchor"]["seconds"],
         "goal": None, "met": None},
        {"benchmark": "ingest", "figure": "modelloop / anchor throughput", "value": res["ratio"],
         "unit": "x", "goal": ">= 0.7x", "met": res["ratio"] >= 0.7},
        {"benchmark": "ingest", "figure": "modelloop peak RSS / file size",
         "value": med["modelloop"]["peak_rss"] / res["size"], "unit": "x", "goal": None,
         "met": None},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    measure(args.rows, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
