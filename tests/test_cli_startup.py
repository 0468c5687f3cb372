"""Commands that only read the store import no heavy library (what a command imports is most of
its start-up): no Alembic on a current schema, no scikit-learn, skops, matplotlib, pandas.
A structural test, not a timing one: ``python -X importtime`` names every module imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.conftest import write_csv

from modelloop.data.samples import loan_applications

#: Libraries a command that reads the store has no use for.
HEAVY = ("alembic", "sklearn", "skops", "matplotlib", "pandas", "pyarrow", "scipy", "numpy",
         "optuna", "mlflow", "ray")  # fmt: skip


def _imported(args, cwd) -> set[str]:
    """The modules the ``modelloop`` command imports, run as a person runs it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelloop", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "MODELLOOP_HOME"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}  # fmt: skip


@pytest.mark.parametrize("command", [("data", "list"), ("jobs", "list"), ("models", "list"),
                                     ("data", "list", "--json")])  # fmt: skip
def test_commands_that_read_the_store_import_no_heavy_library(local_workspace, tmp_path, command):
    ws = local_workspace
    for day in range(2):
        ws.datasets.ingest("loans", [write_csv(tmp_path / f"d{day}.csv",
                                               loan_applications(50, seed=day))])  # fmt: skip
    ws.datasets.ingest("other", [write_csv(tmp_path / "o.csv", loan_applications(20, seed=9))])
    modules = _imported(command, ws.root)
    assert "modelloop.cli.main" in modules and "sqlalchemy" in modules  # it did read the store
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"'modelloop {' '.join(command)}' imports {heavy[:10]}"
