"""The README walked as a new user walks it: every command of its examples, as written, in order,
in one workspace made from the quickstart's sample files (``modelloop samples``).

Each command is read by ``bash``, so quoting, globs and line continuations are exactly the
README's, and run by ``modelloop``'s console entry point in this process (``serve`` as a process
of its own). A command must exit 0 unless
:data:`EXPECTED` names its documented exit status and the line it prints; the only commands not
run are in :data:`SKIPPED`, each with why. Files the examples use come from the README too (the
custom trainer, ``loop.yaml`` and ``check.yaml`` are its code blocks) or from the walk itself
(``truth.csv``: the ground truth of the requests it sent, which a user brings from elsewhere;
``mlflow.db``: a user's MLflow tracking store with a registered model, made before the command
that imports from it).
``serve``, which runs until stopped, is started as written but on a free port instead of 8080, in
the background; the walk sends it requests and stops it after the endpoint examples.

After every evaluation — ``evaluate``, ``train --holdout`` and the evaluate step of ``loop run``
— the walk checks, from what the job or step recorded and from the data itself (the samples'
``application_id`` is unique per row), that no scored row is a row its model trained on.

The sections are walked in the README's order, except that Monitoring, which watches the endpoint
of the "Real-time endpoints" examples, is walked after them. "Two commands" (install + demo, the
test suite) is not walked: tests/test_demo.py runs the demo, and the suite is this.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import invoke_cli

from modelloop.training import warm_workers

README = Path(__file__).parents[1] / "README.md"

SECTIONS = [
    "Quickstart, step by step",
    "Datasets",
    "Training, tuning and evaluation",
    "Model registry",
    "Loops and the demo",
    "Batch transform",
    "Real-time endpoints",
    "Monitoring",  # after the endpoints: it checks and monitors their captured traffic
]

#: Files the examples read, written from the README's own code blocks before their section runs:
#: (section, text before the block, the block's language, file name).
FILES_FROM_README = [
    ("Training, tuning and evaluation", "For example, `my_trainer.py`", "python", "my_trainer.py"),
    ("Loops and the demo", "A **loop** is a short YAML file", "yaml", "loop.yaml"),
    ("Monitoring", "`--config` (YAML or JSON", "yaml", "check.yaml"),
]

#: Commands whose documented outcome is not exit 0: the command (without its comment) → (exit
#: status, text its output must hold, why).
EXPECTED = {
    "modelloop evaluate loans@2 loans@2 --baseline loans@1": (
        1, "trained on",
        "both models trained on rows of loans@2: the README shows the refusal (the line names the "
        "overlap and the fix) before the --exclude-overlap form"),
    'modelloop evaluate loans@2 loans@2 --baseline loans@1 --exclude-overlap --gate "roc_auc+=0.005"': (
        3, "gate: failed",
        "'evaluate exits 3 when the gate fails': the baseline's ROC AUC on these rows is above "
        "0.995 on the easy sample data, so no candidate can gain 0.005"),
    "modelloop jobs cancel 12": (
        1, "only queued or running jobs can be cancelled",
        "every job of the walk has finished; the README says a finished job is an error"),
    "modelloop runs approve 1": (
        1, "no waiting approval steps",
        "the README's loop approves by itself (register: {approval: auto}): run 1 waits for none"),
    'modelloop models trust mine@1 --reason "reviewed its source"': (
        1, "holds no code",
        "mine@1 is a skops model, which holds no code; the README says trusting one is an error"),
}

#: Commands the walk does not run, and why: each runs until it is stopped.
SKIPPED = {
    "modelloop monitor scheduler": "runs until stopped (the README's '--once' form terminates, "
                                   "but the example is the long-running scheduler)",
}


def _section(readme: str, title: str) -> str:
    parts = re.split(r"^## ", readme, flags=re.M)
    found = [p for p in parts if p.startswith(title)]
    assert len(found) == 1, f"README section {title!r} not found once"
    return found[0]


def _commands(section: str) -> list[str]:
    """The commands of the section's bash blocks: continuations joined, comment lines dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1]
                continue
            line = pending + line
            pending = ""
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.strip())
    return commands


def _block_after(section: str, marker: str, language: str) -> str:
    at = section.index(marker)
    return re.search(rf"```{language}\n(.*?)```", section[at:], re.S).group(1)


def _bare(command: str) -> str:
    """The command without its trailing comment (as bash reads it)."""
    words = shlex.split(command, comments=True)
    return shlex.join(words)


def _matches(command: str, table: dict) -> str | None:
    bare = _bare(command)
    return next((key for key in table if _bare(key) == bare), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Walk:
    """One user's shell: a current folder and the environment's ``modelloop`` first on PATH."""

    def __init__(self, root: Path):
        self.cwd = root
        # jobs run as a user's do: the default runner (warm worker processes where available)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLOOP_")}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["COLUMNS"] = "200"
        self.ran: list[str] = []
        self.server: subprocess.Popen | None = None
        self.port: int | None = None

    def run(self, command: str) -> subprocess.CompletedProcess:
        """``command`` as bash reads it (quoting, globs, comments), run by ``modelloop``'s console
        entry point in this process: a new interpreter per command cost seconds of imports each,
        some 70 times, on the suite's longest test. ``serve`` alone runs as a process of its own
        (:meth:`start_server`); tests/test_cli.py and others run the installed command."""
        words = subprocess.run(["bash", "-c", f'printf "%s\\0" {command}'], cwd=self.cwd,
                               env=self.env, capture_output=True, text=True, check=True)
        program, *args = words.stdout.split("\0")[:-1]
        assert program == "modelloop", command
        # jobs run as a user's do: the default runner, not the one this test process was given
        env = {k: None for k in os.environ if k.startswith("MODELLOOP_")} | {"COLUMNS": "200"}
        result = invoke_cli(*args, cwd=self.cwd, env=env, check=False)
        self.ran.append(command)
        return subprocess.CompletedProcess(words, result.code, result.out, result.err)

    def json(self, command: str):
        proc = self.run(command)
        assert proc.returncode == 0, f"{command}: {proc.stderr}"
        return json.loads(proc.stdout)

    def newest_job(self, kind: str) -> dict:
        jobs = self.json(f"modelloop jobs list --kind {kind} --json")
        return self.json(f"modelloop jobs show {max(j['id'] for j in jobs)} --json")

    def ids(self, ref: str) -> set[str]:
        from modelloop import Workspace

        ws = Workspace(self.cwd)
        try:
            return set(ws.datasets.to_pandas(ref, columns=["application_id"])["application_id"])
        finally:
            ws.close()

    def model_read(self, model: str) -> list[str]:
        """The dataset refs the training job of ``model`` read (not its holdout)."""
        version = self.json(f"modelloop models show {model} --json")["version"]
        job = self.json(f"modelloop jobs show {version['job_id']} --json")
        return [i["ref"] for i in job["inputs"]
                if i.get("kind") == "dataset" and i.get("role") != "holdout"]

    # -- the long-running server ----------------------------------------------------------------
    def start_server(self, command: str) -> None:
        """``serve`` as written, on a free port instead of 8080, in the background."""
        self.port = _free_port()
        words = shlex.split(command, comments=True)
        words[words.index("--port") + 1] = str(self.port)
        self.server = subprocess.Popen(words, cwd=self.cwd, env=self.env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.ran.append(command)
        said = []
        for line in self.server.stdout:  # serve binds before it says "serving on"
            said.append(line)
            if "serving on" in line:
                break
        assert said and "serving on" in said[-1], "".join(said)
        # keep reading what it prints, so that a full pipe never blocks the server
        threading.Thread(target=self.server.stdout.read, daemon=True).start()

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None


def _send_traffic(walk: Walk, endpoint: str, model: str, rows: int = 400) -> None:
    """Score rows of the last sample day one request each, with inference ids, and write their
    true labels to ``truth.csv`` — the ground truth a user brings for ``monitor labels``. With
    10% of requests captured, 400 give a check of traffic more than its 30 rows minimum."""
    import pandas as pd

    version = walk.json(f"modelloop models show {model} --json")["version"]
    columns = [c["name"] for c in version["manifest"]["signature"]["columns"]]
    day = pd.read_csv(walk.cwd / "incoming" / "loans-2026-01-03.csv").head(rows)
    day = day[pd.to_numeric(day["age"], errors="coerce").notna()]
    truth = []
    for _, row in day.iterrows():
        body = ",".join(str(row[c]) for c in columns).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{walk.port}/endpoints/{endpoint}/invocations", data=body,
            headers={"Content-Type": "text/csv",
                     "X-Amzn-SageMaker-Inference-Id": row["application_id"]})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200
        truth.append({"inference_id": row["application_id"], "label": int(row["approved"])})
    pd.DataFrame(truth).to_csv(walk.cwd / "truth.csv", index=False)


MLFLOW_STORE = """\
import warnings

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow.models import infer_signature
import pandas as pd
from sklearn.linear_model import LogisticRegression

warnings.simplefilter("ignore")
frame = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["a", "b", "c"])
model = LogisticRegression().fit(frame, (frame.a + frame.b > 0).astype(int))
mlflow.set_tracking_uri("sqlite:///mlflow.db")
with mlflow.start_run():
    mlflow.sklearn.log_model(model, name="model", registered_model_name="churn",
                             signature=infer_signature(frame, model.predict(frame)))
"""


def _make_mlflow_store(walk: Walk) -> None:
    """``mlflow.db``: a user's MLflow tracking store holding ``churn`` version 1, a model logged
    with ``mlflow.sklearn.log_model`` — what ``models import churn models:/churn/1`` imports."""
    if not (walk.cwd / "mlflow.db").exists():
        made = subprocess.run([sys.executable, "-c", MLFLOW_STORE], cwd=walk.cwd, env=walk.env,
                              capture_output=True, text=True, timeout=600)
        assert made.returncode == 0, made.stderr[-3000:]


def _check_no_overlap(walk: Walk, command: str) -> None:
    """The evaluation just run scored no row its model (or baseline) trained on."""
    if " --holdout " in command:
        job = walk.newest_job("train")
        held = [i["ref"] for i in job["inputs"] if i.get("role") == "holdout"]
        read = [i["ref"] for i in job["inputs"] if i.get("role") != "holdout"]
        assert held and read, job["inputs"]
        shared = walk.ids(held[0]) & set().union(*(walk.ids(r) for r in read))
        assert not shared, f"{command}: {len(shared)} holdout rows were trained on"
        return
    job = walk.newest_job("evaluate")
    spec, overlap = job["spec"], job["info"].get("overlap")
    assert overlap, f"{command}: the evaluation records no overlap: {job['info']}"
    models = [spec["model"]] + ([spec["baseline"]] if spec.get("baseline") else [])
    if overlap.get("policy") == "exclude":
        # rows either model trained on are left out: what was scored is the rest, and some is left
        assert overlap["excluded"] >= max(overlap["model"], overlap.get("baseline", 0)), overlap
        assert overlap["evaluated_rows"] == overlap["rows"] - overlap["excluded"] > 0, overlap
        return
    assert overlap["model"] == overlap.get("baseline", 0) == 0, overlap
    assert overlap["evaluated_rows"] == overlap["rows"], overlap
    scored = walk.ids(spec["dataset"])
    assert len(scored) == overlap["rows"], (len(scored), overlap)
    for model in models:  # every row the model read, its validation rows too: never too few
        read = set().union(*(walk.ids(r) for r in walk.model_read(model)))
        assert not scored & read, f"{command}: {model} read {len(scored & read)} scored rows"


def _check_loop_evaluation(walk: Walk, run: int) -> None:
    """The loop's evaluate step scored candidate and champion only on rows neither trained on:
    the candidate's validation rows (a time split: its newest rows) less the champion's."""
    from modelloop import Workspace

    steps = {s["name"]: s for s in walk.json(f"modelloop runs show {run} --json")["steps"]}
    ws = Workspace(walk.cwd)
    try:
        found, champion = (json.loads(ws.artifacts.read_bytes(steps[name]["outputs"][0]["digest"]))
                           for name in ("evaluate", "champion"))
        job = ws.jobs.get(found["job"])  # the candidate's training job
        split = job["info"]["split"]
        (read,) = [i["ref"] for i in job["inputs"] if i.get("kind") == "dataset"]
        frame = ws.datasets.to_pandas(read, columns=["application_id", split["time_column"]])
    finally:
        ws.close()
    assert split["method"] == "time", split
    valid = set(frame.nlargest(split["n_valid"], split["time_column"])["application_id"])
    trained = set().union(*(walk.ids(r) for r in walk.model_read(champion["ref"])))
    assert found["excluded_rows"] == len(valid & trained), (found, len(valid & trained))
    assert found["holdout_rows"] == len(valid - trained) > 0, found


def _run(walk: Walk, command: str) -> None:
    if command.startswith("modelloop serve"):
        walk.start_server(command)
        _send_traffic(walk, "loans", "loans@champion")  # what the endpoint serves
        return
    if "--tracking-uri sqlite:///mlflow.db" in command:
        _make_mlflow_store(walk)  # the user's own MLflow store, as truth.csv is their labels
    expected = _matches(command, EXPECTED)
    proc = walk.run(command)
    said = proc.stdout + proc.stderr
    if expected:
        code, needle, why = EXPECTED[expected]
        assert proc.returncode == code and needle in said, (command, why, proc.returncode, said)
        if code == 1:  # refused: nothing ran, so nothing was scored
            return
    else:
        assert proc.returncode == 0, (command, proc.returncode, said[-3000:])
    if command.startswith("modelloop evaluate") or " --holdout " in command:
        _check_no_overlap(walk, command)
    if command.startswith("modelloop loop run"):
        _check_loop_evaluation(walk, run=1)


@pytest.mark.slow
@pytest.mark.worker_processes  # as users run them (the default runner: see Walk)
@pytest.mark.timeout(3600)  # some 60 commands, a dozen of them train: minutes on a busy machine
def test_the_readme_examples_run_as_written_and_never_score_training_rows(tmp_path):
    readme = README.read_text()
    walk = Walk(tmp_path)
    skipped = []
    try:
        for title in SECTIONS:
            section = _section(readme, title)
            for where, marker, language, name in FILES_FROM_README:
                if where == title:
                    (walk.cwd / name).write_text(_block_after(section, marker, language))
            for line in _commands(section):
                for command in line.split(" && "):
                    words = shlex.split(command, comments=True)
                    assert words and words[0] in ("modelloop", "cd"), line
                    if words[0] == "cd":
                        walk.cwd = walk.cwd / words[1]
                    elif _matches(command, SKIPPED):
                        skipped.append(command)
                    else:
                        _run(walk, command)
            if title == "Real-time endpoints":
                walk.stop_server()  # writes its metrics and captures, as on any shutdown
    finally:
        walk.stop_server()
        for state in tmp_path.rglob(".modelloop"):  # the warm job servers its commands started
            warm_workers.shutdown(state)
    # the walk covered the README: every section ran commands, every exception was met
    assert {_matches(c, SKIPPED) for c in skipped} == set(SKIPPED), skipped
    assert all(any(_matches(c, {e: None}) for c in walk.ran) for e in EXPECTED), walk.ran
    listed = walk.json("modelloop data list --json")
    assert listed[0]["name"] == "loans" and listed[0]["latest_version"] == 2
