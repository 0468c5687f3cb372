"""Batch transform through the CLI: resume after SIGKILL, Ray, and one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from transform_helpers import make_frame, register_classifier, write

from modelloop import Workspace


@pytest.fixture
def ws_dir(local_workspace):
    register_classifier(local_workspace)
    return local_workspace


def _transform(ws, *args):
    return [sys.executable, "-m", "modelloop", "-w", str(ws.root), "transform", *map(str, args)]


def _kill_mid_run(ws, cmd) -> int:
    """Start ``cmd``; SIGKILL the transform's worker once it recorded a few chunks. Returns its job."""

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Workspace(ws.root).store
    job = None
    while proc.poll() is None:
        jobs = store.list_jobs(kind="transform", status="running", limit=1)
        if jobs and jobs[0]["pid"]:
            job = jobs[0]
            if store.transform_progress(job["spec"]["key"])["chunks"] >= 3:
                os.kill(job["pid"], signal.SIGKILL)
                break
        time.sleep(0.02)
    _out, err = proc.communicate(timeout=120)
    assert job is not None, err
    assert proc.returncode != 0, "the transform finished before it could be killed"
    assert "resume" in err and len(err.strip().splitlines()) == 1, err
    return job["id"]


@pytest.mark.worker_processes
@pytest.mark.slow
@pytest.mark.parametrize("how", ["resume", "rerun"])
def test_resume_after_sigkill_gives_identical_output(ws_dir, tmp_path, cli, how):
    ws = ws_dir
    source = write(make_frame(30_000), tmp_path / "in.csv", "csv")
    common = ["--model", "clf@1", "--input", source, "--proba", "--id-column", "id",
              "--chunk-mb", "0.03", "--workers", "1"]
    reference = tmp_path / "reference.csv"
    cli(*_transform(ws, *common, "--output", reference)[3:])
    output = tmp_path / "out.csv"
    job_id = _kill_mid_run(ws, _transform(ws, *common, "--output", output))
    assert not output.exists()  # never half an output
    if how == "resume":
        again = cli("-w", ws.root, "transform", "resume", job_id, "--json").json()
    else:
        again = cli(*_transform(ws, *common, "--output", output, "--json")[3:]).json()
    assert again["chunks_skipped"] >= 3 and again["chunks_skipped"] < again["chunks"]
    assert again["rows"] == 30_000
    assert output.read_bytes() == reference.read_bytes()  # no row lost, none duplicated


HAVE_RAY = __import__("importlib").util.find_spec("ray") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_RAY and not os.environ.get("CI"), reason="ray is not installed")
@pytest.mark.ray
def test_ray_executor_gives_the_same_output(ws_dir, tmp_path, cli, local_ray):
    ws = ws_dir
    source = write(make_frame(3000), tmp_path / "in.parquet", "parquet")
    common = ["--model", "clf", "--input", source, "--proba", "--chunk-rows", "700"]
    cli(*_transform(ws, *common, "--output", tmp_path / "local.parquet", "-j", "2")[3:])
    env = {"RAY_ADDRESS": ""}  # this process's Ray: the suite's one local Ray (tests/conftest.py)
    result = cli(*_transform(ws, *common, "--output", tmp_path / "ray.parquet",
                             "--executor", "ray", "-j", "1", "--json")[3:], env=env).json()
    assert result["status"] == "completed" and result["chunks"] > 2
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "local.parquet"))


def test_bad_input_is_one_line_on_stderr(ws_dir, tmp_path, cli):
    ws = ws_dir
    good = write(make_frame(20), tmp_path / "in.csv", "csv")
    lacking = write(make_frame(20).drop(columns=["f3"]), tmp_path / "lacking.csv", "csv")
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\x01\x02binary\x00\n\x00")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    cases = [
        (["--model", "nope", "--input", good, "--output", tmp_path / "o.csv"],
         "no model named 'nope'"),
        (["--model", "clf@champion", "--input", good, "--output", tmp_path / "o.csv"],
         "has no alias 'champion'"),
        (["--model", "clf", "--input", tmp_path / "missing.csv", "--output", tmp_path / "o.csv"],
         "no such input file"),
        (["--model", "clf", "--input", garbage, "--output", tmp_path / "o.csv"],
         "is not a text file"),
        (["--model", "clf", "--input", lacking, "--output", tmp_path / "o.csv"],
         "the input lacks column the model requires: f3"),
        (["--model", "clf", "--input", good, "--output", tmp_path / "nowhere" / "o.csv"],
         "does not exist"),
        (["--model", "clf", "--input", good, "--output", tmp_path / "s3.csv",
          "--id-column", "customer"], "id column 'customer' is not in the input"),
    ]
    if os.geteuid() != 0:  # root writes anywhere
        cases.append((["--model", "clf", "--input", good, "--output", locked / "o.csv"],
                      "permission denied"))
    for args, message in cases:
        r = cli("-w", ws.root, "transform", *args, check=False)
        assert r.code != 0, (args, r)
        assert message in r.err, (args, r)
        assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r
    usage = cli("-w", ws.root, "transform", "--model", "clf", "--input", good, check=False)
    assert usage.code == 2 and "missing --output" in usage.err


def test_resuming_a_finished_transform_returns_its_result_without_a_new_job(ws_dir, tmp_path,
                                                                            cli):
    ws = ws_dir
    source = write(make_frame(500), tmp_path / "in.csv", "csv")
    output = tmp_path / "out.csv"
    done = cli("-w", ws.root, "transform", "--model", "clf@1", "--input", source, "--output",
               output, "--json").json()
    written = output.read_bytes()
    again = cli("-w", ws.root, "transform", "resume", done["job_id"], "--json").json()
    assert again["job_id"] == done["job_id"] and again["chunks_skipped"] == again["chunks"]
    assert output.read_bytes() == written
    assert len(Workspace(ws.root).store.list_jobs(kind="transform")) == 1
    output.unlink()  # its output gone: resume writes it again, from its recorded chunks
    redo = cli("-w", ws.root, "transform", "resume", done["job_id"], "--json").json()
    assert redo["job_id"] != done["job_id"] and output.read_bytes() == written
