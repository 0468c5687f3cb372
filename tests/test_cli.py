"""The ``modelloop`` command as a person uses it: happy paths and every listed mistake."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from tests.conftest import invoke_cli
from tests.foreground import foreground, stop_command, wait_for

from modelloop.data.samples import loan_applications


@pytest.fixture
def ws_dir(tmp_path):
    invoke_cli("init", tmp_path / "ws")
    return tmp_path / "ws"


def assert_one_line_error(result, *needles):
    assert result.code != 0, result
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_init_ingest_list_show_head(ws_dir, tmp_path, cli):
    csv = tmp_path / "day1.csv"
    loan_applications(200, seed=1).to_csv(csv, index=False)
    out = cli("data", "ingest", "loans", csv, "--event-time", "applied_at", cwd=ws_dir)
    assert "loans@1" in out.out and "200 rows" in out.out
    listed = cli("data", "list", "--json", cwd=ws_dir).json()
    assert listed[0]["name"] == "loans" and listed[0]["row_count"] == 200
    shown = cli("data", "show", "loans@1", "--json", cwd=ws_dir).json()
    assert shown["ref"] == "loans@1" and {s["column"] for s in shown["stats"]} >= {"age", "salary"}
    assert shown["sources"][0]["path"].endswith("day1.csv")
    assert "Source files" in cli("data", "show", "loans", cwd=ws_dir).out
    head = cli("data", "head", "loans", "-n", "3", "--json", cwd=ws_dir).json()
    assert len(head) == 3 and "salary" in head[0]
    # found from a sub-folder like git, and from MODELLOOP_HOME / --workspace
    sub = ws_dir / "deep" / "er"
    sub.mkdir(parents=True)
    assert cli("data", "list", "--json", cwd=sub).json()[0]["name"] == "loans"
    assert (
        cli("--workspace", ws_dir, "data", "list", "--json", cwd=tmp_path).json()[0]["name"]
        == "loans"
    )
    assert cli("data", "list", "--json", cwd=tmp_path, env={"MODELLOOP_HOME": str(ws_dir)}).json()
    again = cli("data", "ingest", "loans", csv, cwd=ws_dir)
    assert "already ingested" in again.out + again.err


def test_help_everywhere(cli):
    assert "Usage" in cli("--help").out  # the installed command, as a process
    for args in (["data"], ["data", "ingest"], ["init"], ["events"], ["quickstart"]):
        assert "Usage" in invoke_cli(*args, "--help").out


def test_missing_file(ws_dir):
    r = invoke_cli("data", "ingest", "loans", "no/such/file.csv", cwd=ws_dir, check=False)
    assert_one_line_error(r, "no/such/file.csv")


def test_unreadable_file(ws_dir, tmp_path):
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(os.urandom(4096))
    r = invoke_cli("data", "ingest", "loans", junk, cwd=ws_dir, check=False)
    assert_one_line_error(r, "junk.parquet")


def test_type_clash(ws_dir, tmp_path):
    frame = loan_applications(50, seed=2)
    frame.to_csv(tmp_path / "a.csv", index=False)
    invoke_cli("data", "ingest", "loans", tmp_path / "a.csv", cwd=ws_dir)
    frame.assign(salary="lots").to_csv(tmp_path / "b.csv", index=False)
    r = invoke_cli("data", "ingest", "loans", tmp_path / "b.csv", cwd=ws_dir, check=False)
    assert_one_line_error(r, "salary")


def test_unknown_dataset_and_version(ws_dir, tmp_path):
    assert_one_line_error(invoke_cli("data", "show", "nope", cwd=ws_dir, check=False), "nope")
    loan_applications(10).to_csv(tmp_path / "a.csv", index=False)
    invoke_cli("data", "ingest", "loans", tmp_path / "a.csv", cwd=ws_dir)
    r = invoke_cli("data", "show", "loans@9", cwd=ws_dir, check=False)
    assert_one_line_error(r, "no version 9")


def test_invalid_dataset_name(ws_dir, tmp_path):
    loan_applications(10).to_csv(tmp_path / "a.csv", index=False)
    for bad in ("../x", "a/b", ".hidden", ""):
        r = invoke_cli("data", "ingest", bad, tmp_path / "a.csv", cwd=ws_dir, check=False)
        assert_one_line_error(r, "invalid dataset name")
    assert not (ws_dir.parent / "x").exists()


def test_no_workspace(tmp_path):
    r = invoke_cli("data", "list", cwd=tmp_path, check=False)
    assert_one_line_error(r, "modelloop init")


def test_init_twice_refused(ws_dir):
    assert_one_line_error(invoke_cli("init", ws_dir, check=False), "already a modelloop workspace")


def test_quickstart(tmp_path, cli):
    r = cli("quickstart", tmp_path / "qs")
    assert "loans@3" in r.out and "quarantined" in r.out
    # the same files as 'modelloop samples' and the README's step-by-step quickstart
    assert (tmp_path / "qs" / "day1.csv").is_file()
    assert len(list((tmp_path / "qs" / "incoming").glob("*.csv"))) == 2
    assert cli("data", "list", "--json", cwd=tmp_path / "qs").json()[0]["latest_version"] == 3
    # running it again is harmless
    assert "already ingested" in cli("quickstart", tmp_path / "qs").out


SLOW_TRAINER = """\
import time


def fit(frame, target, params):
    print("trainer started", flush=True)
    time.sleep(600)
"""


@pytest.mark.worker_processes
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killing_train_stops_its_worker_and_says_why(ws_dir, tmp_path, sig):
    """The worker follows the command that started it: no orphan keeps training, the job is
    recorded cancelled with the reason, and nothing gets registered."""
    from modelloop import Workspace

    csv = tmp_path / "day1.csv"
    loan_applications(300, seed=1).to_csv(csv, index=False)
    (tmp_path / "slow.py").write_text(SLOW_TRAINER)
    with Workspace(ws_dir) as ws:
        ws.datasets.ingest("loans", [csv])
        train = subprocess.Popen(
            [sys.executable, "-m", "modelloop", "train", "loans", "-t", "approved",
             "-a", f"{tmp_path / 'slow.py'}:fit", "--register", "loans"],
            cwd=ws_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=foreground,  # Ctrl-C reaches it, however the suite was started
        )
        try:
            job = wait_for(lambda: next(
                (j for j in ws.jobs.list() if j["status"] == "running"
                 and "trainer started" in ws.jobs.log_tail(j["id"])), None))
            ended = stop_command(train, sig, ws, job)
        finally:
            train.kill()
        assert ended["status"] in ("cancelled", "failed"), ended
        assert "started it" in ended["error"] or "interrupted" in ended["error"], ended["error"]
        assert ws.models.list() == []






def test_tables_piped_to_a_file_are_not_folded_at_80_columns(ws_dir, tmp_path, cli):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "applications-of-the-first-day.csv"
    deep.parent.mkdir()
    loan_applications(20, seed=1).to_csv(deep, index=False)
    cli("data", "ingest", "loans", deep, cwd=ws_dir)
    out = cli("data", "show", "loans", cwd=ws_dir).out  # stdout is a pipe here
    assert any(str(deep) in line for line in out.splitlines()), out
    widest = max(len(line) for line in out.splitlines())
    assert widest > len(str(deep)) > 80
