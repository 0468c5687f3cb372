"""A route that reports progress (``modelloop.api.progress``) and the client reading it
(``Transport.events``): reports as lines, then the result; an error before the first report is
the usual JSON error, one after it an error line raised as its class."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from modelloop import errors
from modelloop.api import errors as api_errors
from modelloop.api import progress
from modelloop.remote.client import Transport


def _app() -> FastAPI:
    app = FastAPI()
    api_errors.install(app)

    def steps(report, fail_at: int | None):
        for i in range(3):
            if i == fail_at:
                raise errors.InvalidInput(f"step {i} went wrong", hint="fix it")
            report({"step": i})
        return {"done": 3}

    @app.post("/api/v1/run")
    def run(request: Request, fail_at: int | None = None):
        if not progress.wanted(request):
            return steps(lambda _: None, fail_at)
        return progress.stream(lambda report: steps(report, fail_at))

    return app


@pytest.fixture
def transport():
    t = Transport("http://testserver")
    t.http.close()
    t.http = TestClient(_app(), base_url="http://testserver/api/v1")
    yield t
    t.close()


def test_reports_come_as_lines_then_the_result(transport):
    events = list(transport.events("POST", "/run"))
    assert events == [{"progress": {"step": 0}}, {"progress": {"step": 1}},
                      {"progress": {"step": 2}}, {"result": {"done": 3}}]  # fmt: skip
    assert transport.http.post("/run").json() == {"done": 3}  # not asked: the result alone


def test_errors_before_and_after_the_first_report_are_raised_as_their_class(transport):
    with pytest.raises(errors.InvalidInput, match="step 0 went wrong"):
        list(transport.events("POST", "/run", params={"fail_at": 0}))
    answer = transport.http.post("/run", params={"fail_at": 0},
                                 headers={"Accept": progress.NDJSON})  # fmt: skip
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "InvalidInput"
    seen = []
    with pytest.raises(errors.InvalidInput, match="step 2 went wrong") as raised:
        for event in transport.events("POST", "/run", params={"fail_at": 2}):
            seen.append(event)
    assert seen == [{"progress": {"step": 0}}, {"progress": {"step": 1}}]
    assert raised.value.hint == "fix it"


def test_a_quiet_call_sends_blank_lines_until_its_next_report(monkeypatch):
    import queue

    monkeypatch.setattr(progress, "HEARTBEAT", 0.001)
    events = queue.SimpleQueue()
    lines = progress._lines(("progress", 1), events)
    assert next(lines) == b'{"progress":1}\n'
    assert next(lines) == b"\n"  # nothing came within a heartbeat: the connection stays open
    events.put(("result", 2))
    assert [line for line in lines if line.strip()] == [b'{"result":2}\n']
