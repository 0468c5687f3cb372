"""Retries, timeouts, manual approval and callback steps."""

from __future__ import annotations

import threading

from pipeline_steps import count, note, square

from modelloop.pipelines import after, approval, callback, pipeline, step


@step(max_attempts=3, backoff=0.01, retry_on=(ConnectionError,), cache=False)
def flaky(trace: str) -> str:
    note(trace, "try")
    if count(trace, "try") < 3:
        raise ConnectionError("the service is busy")
    return "ok"


@step(max_attempts=3, retry_on=(ConnectionError,), cache=False)
def broken(trace: str) -> str:
    note(trace, "try")
    raise ValueError("a bug, not worth retrying")


@step(timeout=0.5, cache=False)
def slow(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "done"


def test_retry_then_success(local_workspace, tmp_path):
    @pipeline
    def p(trace: str = str(tmp_path / "t")):
        flaky(trace)

    result = p.run(local_workspace)
    assert result.status == "succeeded", result
    assert result.output("flaky") == "ok"
    s = local_workspace.runs.step(result.run_id, "flaky")
    assert s["attempts"] == 3
    assert [e["error"] for e in s["info"]["errors"]] == ["ConnectionError: the service is busy"] * 2


def test_errors_not_listed_in_retry_on_fail_at_once(local_workspace, tmp_path):
    @pipeline
    def p(trace: str = str(tmp_path / "t")):
        broken(trace)

    result = p.run(local_workspace)
    assert result.status == "failed"
    assert "ValueError: a bug, not worth retrying" in result.error
    assert count(str(tmp_path / "t"), "try") == 1


def test_a_step_past_its_timeout_fails(local_workspace):
    @pipeline
    def p(seconds: float = 30.0):
        slow(seconds)

    result = p.run(local_workspace, executor="processes")
    assert result.status == "failed"
    assert "timed out after 0.5 s" in result.error


@pipeline
def gated(x: int = 3):
    model = square(x)
    ok = approval("ship-it", message="deploy this model?")
    with after(ok):
        square.with_options(name="deploy")(model)


def test_approval_waits_then_continues_from_the_cli(local_workspace, runs_cli):
    result = gated.run(local_workspace, wait=False)
    assert result.status == "waiting"
    assert result.steps == {"square": "succeeded", "ship-it": "waiting", "deploy": "pending"}
    shown = runs_cli("runs", "show", result.run_id, ws=local_workspace)
    assert "modelloop runs approve" in shown.out and "ship-it" in shown.out
    out = runs_cli(
        "runs", "approve", result.run_id, "ship-it", "--reason", "looks good", "--json",
        ws=local_workspace,
    )
    assert out.json()["status"] == "succeeded"
    runs = local_workspace.runs
    assert runs.get(result.run_id)["status"] == "succeeded"
    assert runs.output(result.run_id, "deploy") == 81
    decision = runs.output(result.run_id, "ship-it")
    assert decision["approved"] is True and decision["reason"] == "looks good"


def test_rejection_fails_the_run(local_workspace, runs_cli):
    result = gated.run(local_workspace, wait=False)
    out = runs_cli(
        "runs",
        "reject",
        result.run_id,
        "ship-it",
        "--reason",
        "too risky",
        "--by",
        "ana",
        ws=local_workspace,
        check=False,
    )
    assert out.code == 0, out
    run = local_workspace.runs.get(result.run_id)
    assert run["status"] == "failed"
    assert "rejected by ana: too risky" in run["error"]


def test_a_waiting_runner_continues_when_approved(local_workspace):
    runs = local_workspace.runs
    holder = {}
    runner = threading.Thread(target=lambda: holder.update(r=gated.run(local_workspace)))
    runner.start()
    while True:  # wait until the approval step is reached (no timing assumptions)
        listed = runs.list(limit=1)
        if listed and any(s["status"] == "waiting" for s in runs.steps(listed[0]["id"])):
            break
        runner.join(0.05)
    runs.approve(listed[0]["id"], "ship-it", by="test")
    runner.join(60)
    assert holder["r"].status == "succeeded"
    assert holder["r"].output("deploy") == 81


TOKENS: list = []


@pipeline
def labelled(x: int = 2):
    done = callback("labelling", notify=lambda token, **kw: TOKENS.append((token, kw)), x=x)
    with after(done):
        square(x)


def test_callback_waits_for_a_report_by_token(local_workspace, runs_cli):
    TOKENS.clear()
    tokens = TOKENS
    p = labelled

    result = p.run(local_workspace, wait=False)
    assert result.status == "waiting" and len(tokens) == 1
    token, kwargs = tokens[0]
    assert kwargs == {"x": 2}
    out = runs_cli(
        "runs", "callback", token, "--success", "--output", '{"labelled": 40}', ws=local_workspace
    )
    assert "succeeded" in out.out
    runs = local_workspace.runs
    assert runs.output(result.run_id, "labelling") == {"labelled": 40}
    assert runs.output(result.run_id, "square") == 4
    bad = runs_cli("runs", "callback", "not-a-token", "--failure", ws=local_workspace, check=False)
    assert bad.code == 1 and "no callback step has this token" in bad.err
