"""smclarify (SageMaker Clarify's open-source bias library) as an anchor, in a venv of its own.

smclarify 0.5 fails with pandas 3 (``Cannot interpret StringDtype``), and its unpinned boto3 and
s3fs pull the benchmark environment's s3fs back to 0.4, so it cannot share an environment with
modelloop's dev or bench extras. ``ensure_python()`` makes (once, under a lock) a small venv with
only ``smclarify==0.5`` and ``pandas<3`` — ``$MODELLOOP_SMCLARIFY_VENV``, default
``.venv-smclarify`` at the repository root — and returns its interpreter;
``scripts/test.sh`` calls it before the tests. The equality test
(``tests/explain/test_smclarify_equality.py``) and ``benchmarks/explain.py`` then run this file
with that interpreter: it reads a JSON spec (a Parquet file, facet, label, predicted label,
group; see :func:`run`) on stdin and prints smclarify's ``bias_report`` per stage, with the
seconds each took, as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ["smclarify==0.5", "pandas<3"]


def venv_dir() -> Path:
    return Path(os.environ.get("MODELLOOP_SMCLARIFY_VENV") or ROOT / ".venv-smclarify")


def ensure_python() -> Path:
    """The smclarify venv's python, created on first use (raises CalledProcessError when the
    package index cannot be reached)."""
    import shutil

    from filelock import FileLock

    venv = venv_dir()
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock"):
        if python.exists() and subprocess.run(
                [python, "-c", "import smclarify"], capture_output=True).returncode == 0:  # fmt: skip
            return python
        uv = shutil.which("uv")
        if uv:
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
            # --compile-bytecode: each comparison is a process of its own, and without .pyc files
            # (uv writes none by default) every one compiles pandas and SciPy again
            subprocess.run([uv, "pip", "install", "-q", "--compile-bytecode", "--python",
                            str(python), *REQUIREMENTS], check=True)  # fmt: skip
        else:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([python, "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    return python


def call(spec: dict, python: Path | None = None, timeout: float = 1800) -> dict:
    """Run :func:`run` on ``spec`` in the smclarify venv and return its JSON."""
    python = python or ensure_python()
    proc = subprocess.run([str(python), str(Path(__file__).resolve())], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"smclarify failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def run(spec: dict) -> dict:
    """``spec``: ``parquet``, ``facet`` (column), ``facet_values`` (list, or None for one vs
    rest), ``label`` (column), ``label_values`` (list of positive values or ``[threshold]``),
    ``predicted`` (column or None), ``group`` (column or None), ``stages``, ``metrics`` (stage ->
    names; default all), ``repeat`` (timed runs after the first, a warm-up, when > 0)."""
    import logging

    import pandas as pd
    from smclarify.bias.report import FacetColumn, LabelColumn, StageType, bias_report

    logging.disable(logging.CRITICAL)  # smclarify logs every failed metric with a traceback
    df = pd.read_parquet(spec["parquet"])
    out: dict = {"seconds": {}}
    for stage in spec.get("stages", ["pre_training", "post_training"]):

        def report(stage=stage):
            label = LabelColumn(spec["label"], df[spec["label"]], list(spec["label_values"]))
            kwargs = {}
            if stage == "post_training":
                kwargs["predicted_label_column"] = LabelColumn(
                    spec["predicted"], df[spec["predicted"]], list(spec["label_values"]))
            if (spec.get("metrics") or {}).get(stage):
                kwargs["metrics"] = spec["metrics"][stage]
            group = df[spec["group"]] if spec.get("group") else None
            facet = FacetColumn(spec["facet"], spec.get("facet_values"))
            return bias_report(df, facet, label, StageType(stage), group_variable=group, **kwargs)

        out[stage] = report()
        times = []
        for _ in range(int(spec.get("repeat", 0))):
            started = time.perf_counter()
            report()
            times.append(time.perf_counter() - started)
        out["seconds"][stage] = times
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--ensure"]:  # scripts/test.sh: make the venv before the tests
        print(f"smclarify venv: {ensure_python()}")
    else:
        json.dump(run(json.load(sys.stdin)), sys.stdout)
