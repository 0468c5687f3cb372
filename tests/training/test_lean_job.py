"""A train job imports what its work needs and nothing else: no matplotlib (its report is drawn
when asked for), no skops trusted-type scan (kept per environment), no Optuna, no pydantic, no
Alembic; nor does what an early cold worker imports before it (``worker._preload_for``); and
the command line imports none of the heavy libraries before a command runs. Structural, not
timed: the modules a process holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import write_csv

from modelloop.data.samples import loan_applications

#: Modules a plain train job has no use for; sklearn.utils._testing is the trace of skops' scan.
NOT_NEEDED = ("matplotlib", "optuna", "pydantic", "alembic", "sklearn.utils._testing", "pytest")

#: What every command imports before its own work (``modelloop train`` then starts its cold
#: worker): none of the libraries a job or a server needs, nor the API, remote or feature code.
NOT_FOR_THE_COMMAND = ("sqlalchemy", "pandas", "pyarrow", "numpy", "sklearn", "scipy", "skops",
                       "rich", "fastapi", "pydantic", "argon2", "httpx", "uvicorn", "alembic",
                       "modelloop.api", "modelloop.remote", "modelloop.features",
                       "modelloop.streams", "modelloop.serving", "modelloop.store")  # fmt: skip

JOB = """
import json, sys
import modelloop.cli.main
command = sorted(sys.modules)
from modelloop import worker
worker._preload_for("train")  # what an early cold worker imports while the command checks
from modelloop.workspace import Workspace
ws = Workspace(sys.argv[1])
job = ws.training.train("loans", "approved", "logistic_regression")
print(json.dumps({"status": job["status"], "modules": sorted(sys.modules), "command": command}))
"""


def test_a_train_job_imports_only_what_its_work_needs(local_workspace, tmp_path):
    ws = local_workspace
    ws.datasets.ingest("loans", [write_csv(tmp_path / "d.csv", loan_applications(300))])
    env = {**os.environ, "MODELLOOP_JOB_RUNNER": "inline",
           "MODELLOOP_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    for run in ("first: skops' lists computed and kept", "later: a job as jobs run"):
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(JOB), str(ws.root)], env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["status"] == "succeeded", run
    loaded = set(out["modules"])
    assert "sklearn.linear_model" in loaded and "skops.io" in loaded  # it did train and save
    extra = sorted(m for m in loaded if m in NOT_NEEDED or m.split(".")[0] in NOT_NEEDED)
    assert not extra, f"a train job imported {extra[:10]}"
    command = sorted(m for m in out["command"] if any(m == n or m.startswith(n + ".")
                                                       for n in NOT_FOR_THE_COMMAND))
    assert not command, f"the command line imports {command[:10]} before any command runs"
    names = {a["name"] for a in ws.jobs.artifacts_of(ws.jobs.list(limit=1)[0]["id"])}
    assert "report/data.json" in names and "report/report.html" not in names
