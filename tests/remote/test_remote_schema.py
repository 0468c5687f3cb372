"""schemathesis against the API's OpenAPI document: valid and invalid requests for every
operation (a few examples each, derandomized so a run is repeatable), answered with no 5xx and
no response that breaks the document's schema. One app for the module, called in process (ASGI):
what is checked is the app's answers, not the network."""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

#: Examples per operation and generation mode: bounded. 4 gave 952 calls (135 2xx, 817 4xx) in
#: 80 s on a loaded 2-core machine; the suite takes 1 (each operation valid once, invalid once),
#: .ci/run 5 (MODELLOOP_TEST_SCHEMA_EXAMPLES).
EXAMPLES = int(os.environ.get("MODELLOOP_TEST_SCHEMA_EXAMPLES", "1"))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from argon2 import PasswordHasher

    from modelloop import Workspace
    from modelloop.access import tokens as T
    from modelloop.api.app import create_app
    from modelloop.api.settings import ApiSettings
    from modelloop.data.samples import loan_applications

    root = tmp_path_factory.mktemp("schema")
    ws = Workspace.init(root / "ws")
    csv = root / "loans.csv"
    loan_applications(50, seed=1).to_csv(csv, index=False)
    ws.datasets.ingest("loans", [csv])  # something for the reads to find
    with pytest.MonkeyPatch.context() as m:  # a light hash: verified once, then cached anyway
        m.setattr(T, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        token = ws.tokens.create("schemathesis", role="admin")["token"]
    settings = ApiSettings(rate_limit=1e6, rate_burst=10**6, max_upload_bytes=1 << 20)
    app = create_app(ws, settings)
    yield app, token
    ws.close()


@pytest.fixture(scope="module")
def api_schema(api):
    app, _ = api
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    return schema


@pytest.mark.slow
def test_no_5xx_and_no_response_breaking_the_schema(api_schema, api):
    """Every operation, valid then invalid requests. One test that walks the operations (the
    pytest plugin's per-operation subtests do not run under pytest 9); every failure is
    collected and listed, not only the first."""
    from hypothesis import HealthCheck, Phase, given, settings

    _, token = api
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = 0
    statuses: dict[int, int] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(operation.as_strategy(generation_mode=mode))
            def check(case):
                response = case.call(headers=headers)
                kind = response.status_code // 100
                statuses[kind] = statuses.get(kind, 0) + 1
                case.validate_response(response, checks=CHECKS)

            try:
                check()
            except Exception as exc:  # noqa: BLE001 - listed below with the operation's name
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:600]}")
    assert operations > 100  # the whole document was walked
    assert statuses.get(2) and statuses.get(4), statuses  # requests got through, and were refused
    assert not failures, "\n\n".join(failures)


CHECKS = [not_a_server_error, response_schema_conformance]
