"""A runner killed with SIGKILL leaves its run ``interrupted``; ``runs resume`` finishes it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from pipeline_steps import count

SCRIPT = textwrap.dedent(
    """
    import sys
    from modelloop import Workspace
    from modelloop._faults import checkpoint
    from modelloop.pipelines import pipeline, step

    @step
    def first(trace: str) -> int:
        with open(trace, "a") as fh:
            fh.write("first\\n")
        return 20

    @step
    def second(x: int, trace: str) -> int:
        with open(trace, "a") as fh:
            fh.write("second\\n")
        checkpoint("second-step")  # SIGKILLs this whole process when MODELLOOP_FAULT says so
        return x + 1

    @step
    def third(x: int, trace: str) -> int:
        with open(trace, "a") as fh:
            fh.write("third\\n")
        return x * 2

    @pipeline
    def chain(trace: str = ""):
        third(second(first(trace), trace), trace)

    if __name__ == "__main__":
        print(chain.run(Workspace(sys.argv[1]), {"trace": sys.argv[2]}).status)
    """
)


def test_resume_after_the_runner_is_killed(local_workspace, tmp_path, runs_cli):
    script = tmp_path / "chain_pipeline.py"
    script.write_text(SCRIPT)
    trace = str(tmp_path / "trace")
    proc = subprocess.run(
        [sys.executable, str(script), str(local_workspace.root), trace],
        env={**os.environ, "MODELLOOP_FAULT": "second-step"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    listed = runs_cli("runs", "list", "--json", ws=local_workspace).json()
    assert [r["status"] for r in listed] == ["interrupted"]
    run_id = listed[0]["id"]
    shown = runs_cli("runs", "show", run_id, "--json", ws=local_workspace).json()
    assert {s["name"]: s["status"] for s in shown["steps"]} == {
        "first": "succeeded",
        "second": "failed",
        "third": "pending",
    }
    assert "runner process" in shown["error"]

    out = runs_cli("runs", "resume", run_id, "--json", ws=local_workspace).json()
    assert out["status"] == "succeeded"
    assert out["steps"] == {"first": "succeeded", "second": "succeeded", "third": "succeeded"}
    assert (count(trace, "first"), count(trace, "second"), count(trace, "third")) == (1, 2, 1)
    final = runs_cli("runs", "show", run_id, "--json", ws=local_workspace).json()
    assert final["attempt"] == 2 and final["status"] == "succeeded"
    drawn = runs_cli("runs", "show", run_id, ws=local_workspace).out
    assert "chain" in drawn and "third" in drawn and "✔" in drawn

    again = runs_cli("runs", "resume", run_id, ws=local_workspace, check=False)
    assert again.code == 1 and "only a failed, interrupted or waiting run" in again.err


def test_resume_of_an_unknown_run_is_a_clear_error(local_workspace, runs_cli):
    out = runs_cli("runs", "resume", "42", ws=local_workspace, check=False)
    assert out.code == 1 and "no pipeline run 42" in out.err
